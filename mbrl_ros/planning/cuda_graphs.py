"""A function of fixed-shape CUDA tensors captured once as a CUDA graph and replayed.

A plan's rollout is hundreds of small kernels per step (model layers, normalisers, the reward): on a GPU the
launches, not the arithmetic, take the time. Replaying them as one captured graph removes that cost. A graph
replays exactly the kernels it captured, on the memory it captured: new inputs are copied into its input
tensors, and the outputs it returns are copies of its own. Whatever else the function reads (weights,
constants) must stay where it was; :class:`CapturedCall` checks a list of watched tensors for that and is
rebuilt when one of them moved.
"""

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

WARM_UP_RUNS = 2  # eager runs on a side stream before capture: lazy initialisation (cuBLAS, the allocator)


def data_pointers(tensors: Sequence[Tensor]) -> tuple[int, ...]:
    """Where each tensor's data lives: a tensor replaced (not updated in place) changes its pointer."""
    return tuple(tensor.data_ptr() for tensor in tensors)


class CapturedCall:
    """``function(*inputs) -> tuple of tensors`` captured for the shapes, dtypes and device of ``inputs``.

    Args:
        function: runs only CUDA work on its arguments and on tensors that stay in place; no host
            synchronisation, no copies from host memory, no random numbers.
        inputs: example inputs (CUDA tensors); the graph is built for their shapes.
        watched: tensors the function reads besides its inputs (a model's parameters and buffers).

    Raises:
        RuntimeError: the function cannot be captured (it synchronises, copies from the host, ...).
    """

    def __init__(self, function: Callable[..., tuple[Tensor, ...]], inputs: Sequence[Tensor],
                 watched: Sequence[Tensor] = ()):
        self._inputs = [tensor.clone() for tensor in inputs]
        device = self._inputs[0].device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARM_UP_RUNS):
                function(*self._inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._outputs = tuple(function(*self._inputs))
        self._watched = data_pointers(watched)

    def fits(self, inputs: Sequence[Tensor], watched: Sequence[Tensor]) -> bool:
        """Whether ``inputs`` have the captured layout and the watched tensors are where they were."""
        return (len(inputs) == len(self._inputs)
                and all(new.shape == old.shape and new.dtype == old.dtype and new.device == old.device
                        for new, old in zip(inputs, self._inputs, strict=True))
                and data_pointers(watched) == self._watched)

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        """Replays the graph on ``inputs``; returns copies of its outputs (the next replay overwrites its own)."""
        for static, new in zip(self._inputs, inputs, strict=True):
            static.copy_(new)
        self._graph.replay()
        return tuple(output.clone() for output in self._outputs)
