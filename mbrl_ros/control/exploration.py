"""What a controller does before it has a model: random actions within the bounds, optionally smoothed."""

import numpy as np


class SmoothedRandomActions:
    """Uniform random actions passed through a first-order filter: ``a_t = beta * u_t + (1 - beta) * a_{t-1}``.

    ``beta = 1`` is white noise; smaller values give the slower, larger excursions a position-controlled hand
    needs to visit interesting states (PDDM filters its sampling noise the same way).

    Args:
        low: (A,) lowest action.
        high: (A,) highest action.
        beta: filter coefficient in (0, 1].
        seed: random seed.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, beta: float = 1.0, seed: int | None = None):
        self.low, self.high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        if self.low.shape != self.high.shape or not np.all(np.isfinite(self.low) & np.isfinite(self.high)):
            raise ValueError("exploration needs finite action bounds of one shape")
        if not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        self.beta = beta
        self._rng = np.random.default_rng(seed)
        self._action = (self.low + self.high) / 2

    def __call__(self) -> np.ndarray:
        """The next exploratory action (A,)."""
        noise = self._rng.uniform(self.low, self.high)
        self._action = self.beta * noise + (1 - self.beta) * self._action
        return self._action.copy()
