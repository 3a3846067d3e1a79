"""Per-dimension standardisation of model inputs and targets, fitted on data and saved with the model."""

import torch
from torch import Tensor, nn

_MIN_STD = 1e-6  # dimensions with less spread than this (constant in the data) are only centred


class Normalizer(nn.Module):
    """``(x - mean) / std`` per dimension, with ``mean`` and ``std`` kept as buffers (saved in state dicts).

    Args:
        dim: number of dimensions D of the vectors it normalises.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))  # samples it was fitted on (0: never)

    def fit(self, data: Tensor) -> None:
        """Sets mean and std from ``data`` (N, D); near-constant dimensions keep std 1."""
        if data.ndim != 2 or data.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected data of shape (N, {self.mean.shape[0]}), got {tuple(data.shape)}")
        if data.shape[0] == 0:
            raise ValueError("cannot fit a normaliser on no data")
        if not torch.isfinite(data).all():
            raise ValueError("cannot fit a normaliser on data with NaN or inf")
        data = data.double()  # accumulate in double precision: large N and large offsets lose digits in float32
        std = data.std(dim=0, unbiased=False)
        self.mean.copy_(data.mean(dim=0))
        self.std.copy_(torch.where(std < _MIN_STD, torch.ones_like(std), std))
        self.count.fill_(data.shape[0])

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has set the statistics (a fresh normaliser is the identity)."""
        return bool(self.count > 0)

    def normalize(self, x: Tensor) -> Tensor:
        """x (..., D) in raw units -> (..., D) standardised."""
        return (x - self.mean) / self.std

    def denormalize(self, x: Tensor) -> Tensor:
        """x (..., D) standardised -> (..., D) in raw units."""
        return x * self.std + self.mean
