"""Constant tensors on the device of the tensors they meet, copied there once."""

import torch
from torch import Tensor

_copies: dict[tuple[int, torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}


def constant_like(constant: Tensor, like: Tensor, keep_dtype: bool = False) -> Tensor:
    """``constant`` on ``like``'s device, in ``like``'s dtype unless ``keep_dtype``; the copy is made once and reused.

    Only for tensors that never change and live as long as the program (module constants): copying a CPU tensor to
    a GPU at every call waits for the GPU, and a CUDA graph cannot capture it.
    """
    dtype = constant.dtype if keep_dtype else like.dtype
    if constant.device == like.device and constant.dtype == dtype:
        return constant
    key = (id(constant), like.device, dtype)
    cached = _copies.get(key)
    if cached is None or cached[0] is not constant:  # the original is kept in the entry, so its id stays its own
        cached = _copies[key] = (constant, constant.to(like.device, dtype))
    return cached[1]
