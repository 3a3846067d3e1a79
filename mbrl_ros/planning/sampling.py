"""Random draws for a batch of B independent planning problems, one ``torch.Generator`` per problem.

Problem b only ever draws from generator b, so a batch of B problems gives exactly the numbers that B
separate runs with the same seeds give. ``None`` in place of a generator means torch's global generator.
"""

import math
from collections.abc import Sequence

import torch
from torch import Tensor

Generators = Sequence[torch.Generator | None]


def make_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One generator on ``device`` per seed."""
    generators = []
    for seed in seeds:
        generator = torch.Generator(device=device)
        generator.manual_seed(int(seed))
        generators.append(generator)
    return generators


def as_generators(generators: torch.Generator | Generators | None, batch: int) -> list[torch.Generator | None]:
    """Normalises ``generators`` to a list of ``batch`` entries (a single generator serves a batch of one)."""
    if generators is None:
        return [None] * batch
    if isinstance(generators, torch.Generator):
        generators = [generators]
    generators = list(generators)
    if len(generators) != batch:
        raise ValueError(f"expected {batch} generators (one per problem), got {len(generators)}")
    return generators


def _per_problem(draw, generators: Generators) -> Tensor:
    if len(generators) == 1:
        return draw(generators[0]).unsqueeze(0)
    return torch.stack([draw(generator) for generator in generators])


def normal(generators: Generators, shape: Sequence[int], device: torch.device, dtype: torch.dtype) -> Tensor:
    """Standard normal draws of shape (B, *shape), problem b from generator b."""
    return _per_problem(lambda g: torch.randn(tuple(shape), generator=g, device=device, dtype=dtype), generators)


def uniform(generators: Generators, shape: Sequence[int], device: torch.device, dtype: torch.dtype) -> Tensor:
    """Uniform draws in [0, 1) of shape (B, *shape), problem b from generator b."""
    return _per_problem(lambda g: torch.rand(tuple(shape), generator=g, device=device, dtype=dtype), generators)


def permutations(generators: Generators, n: int, device: torch.device) -> Tensor:
    """(B, n): a random permutation of ``range(n)`` per problem."""
    return _per_problem(lambda g: torch.randperm(n, generator=g, device=device), generators)


def truncated_normal(
    generators: Generators, shape: Sequence[int], device: torch.device, dtype: torch.dtype, bound: float = 2.0
) -> Tensor:
    """Standard normal draws truncated to [-bound, bound], shape (B, *shape), by inverse-CDF sampling."""
    low = 0.5 * (1.0 + math.erf(-bound / math.sqrt(2.0)))
    u = low + (1.0 - 2.0 * low) * uniform(generators, shape, device, dtype)
    return (math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)).clamp_(-bound, bound)


def truncated_normal_between(generators: Generators, shape: Sequence[int], low: Tensor, high: Tensor) -> Tensor:
    """Standard normal draws truncated to [low, high] (broadcast to (B, *shape)), by inverse-CDF sampling.

    Computed in float64 so that truncation far in a tail stays accurate; returned in ``low``'s dtype.
    """
    u = uniform(generators, shape, low.device, torch.float64)
    cdf_low, cdf_high = torch.special.ndtr(low.double()), torch.special.ndtr(high.double())
    x = torch.special.ndtri(cdf_low + (cdf_high - cdf_low) * u)
    return torch.maximum(torch.minimum(x, high.double()), low.double()).to(low.dtype)


def colored_noise(
    generators: Generators, shape: Sequence[int], exponent: float, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Gaussian noise with power spectral density ``1 / f**exponent`` along time, unit variance per entry.

    Args:
        generators: one per problem (B).
        shape: (N, H, A): N sequences of H time steps and A independent channels.
        exponent: 0 gives white noise, 1 pink, 2 red (Brownian-like); larger is smoother in time.
        device: where the noise is drawn.
        dtype: floating-point type of the result.

    Returns:
        (B, N, H, A) noise, stationary in time with variance 1.

    The spectrum is drawn in the frequency domain with amplitude ``max(f, 1/H) ** (-exponent / 2)`` and
    transformed back with an inverse real FFT (Timmer and Koenig 1995; used by iCEM, Pinneri et al. 2020).
    """
    count, horizon, channels = (int(x) for x in shape)
    frequencies = torch.fft.rfftfreq(horizon, device=device, dtype=torch.float64).clamp(min=1.0 / horizon)
    amplitude = frequencies.pow(-exponent / 2.0)
    real_only = torch.zeros_like(amplitude, dtype=torch.bool)
    real_only[0] = True  # the DC component of a real signal is real
    if horizon % 2 == 0:
        real_only[-1] = True  # and so is the Nyquist component of an even-length one
    # A real-only component carries its power in one coordinate: scale it by sqrt(2) to keep the spectrum.
    amplitude = torch.where(real_only, amplitude * math.sqrt(2.0), amplitude)
    # y_t = (1/H) [X_0 + sum_k 2 Re(X_k exp(2 pi i k t / H)) + X_Nyquist (-1)^t]: a real-only component adds
    # its amplitude^2 to H^2 Var(y_t), an interior one 4 amplitude^2 (real and imaginary parts each amplitude^2).
    power = torch.where(real_only, amplitude.square(), 4.0 * amplitude.square())
    std = power.sum().sqrt() / horizon
    frequency_count = amplitude.shape[0]
    parts = normal(generators, (count, channels, frequency_count, 2), device, dtype)
    real = parts[..., 0] * amplitude.to(dtype)
    imaginary = torch.where(real_only.to(device), 0.0, parts[..., 1] * amplitude.to(dtype))
    signal = torch.fft.irfft(torch.complex(real, imaginary), n=horizon, dim=-1) / std.to(dtype)
    return signal.transpose(-1, -2).contiguous()
