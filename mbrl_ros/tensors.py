"""Constant tensors on the device of the tensors they meet, copied there once."""

from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

_copies: WeakIdKeyDictionary = WeakIdKeyDictionary()  # constant -> {(device, dtype): copy}, gone with the constant


def constant_like(constant: Tensor, like: Tensor, keep_dtype: bool = False) -> Tensor:
    """``constant`` on ``like``'s device, in ``like``'s dtype unless ``keep_dtype``; the copy is made once and reused.

    Only for tensors that never change (module constants, a task's fixed geometry): copying a CPU tensor to a GPU at
    every call waits for the GPU, and a CUDA graph cannot capture it. A copy lives as long as its constant.
    """
    dtype = constant.dtype if keep_dtype else like.dtype
    if constant.device == like.device and constant.dtype == dtype:
        return constant
    copies = _copies.get(constant)
    if copies is None:
        copies = _copies[constant] = {}
    key = (like.device, dtype)
    if key not in copies:
        copies[key] = constant.to(like.device, dtype)
    return copies[key]
