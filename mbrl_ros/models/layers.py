"""Batched ensemble layers: E independent MLPs evaluated with one batched matmul per layer."""

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn import functional

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}
IN_PLACE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": partial(functional.silu, inplace=True), "relu": torch.relu_, "tanh": torch.tanh_,
    "elu": partial(functional.elu, inplace=True),
}
INFERENCE_BLOCK_ROWS = 256  # rows per member per block without autograd: 5 x 256 x 200 floats = 1 MB, in L2
BALANCED_MIN_FAN_IN = 128  # without autograd, layers this wide (fan-in) run the members the threads do not divide as mm


class EnsembleLinear(nn.Module):
    """``E`` independent affine maps applied with one batched matmul: (E, B, in) -> (E, B, out).

    Weights are shaped (E, in, out); initialised as in PETS (truncated normal, std ``1 / (2 sqrt(in))``).
    """

    def __init__(self, ensemble_size: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, out_features))
        std = 1.0 / (2.0 * math.sqrt(max(in_features, 1)))
        nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std)

    def forward(self, x: Tensor, output_columns: int | None = None) -> Tensor:
        """(E, B, in) -> (E, B, out), or (E, B, output_columns): only the first ``output_columns`` outputs."""
        weight, bias = self.columns(output_columns)
        # bmm then an in-place add: baddbmm first expands the bias to (E, B, out), ~20% slower on CPU
        return torch.bmm(x, weight).add_(bias)

    def columns(self, output_columns: int | None) -> tuple[Tensor, Tensor]:
        """The weight (E, in, c) and bias (E, 1, c) of the first ``output_columns`` outputs (all if None)."""
        if output_columns is None:
            return self.weight, self.bias
        return self.weight[..., :output_columns], self.bias[..., :output_columns]


class EnsembleMLP(nn.Module):
    """E members, each ``in -> [hidden_units] * hidden_layers -> out`` with one activation between layers.

    Args:
        ensemble_size: E.
        in_features: input width.
        out_features: output width.
        hidden_layers: number of hidden layers (0: one affine map).
        hidden_units: width of each hidden layer.
        activation: one of :data:`ACTIVATIONS`.
    """

    def __init__(
        self, ensemble_size: int, in_features: int, out_features: int, hidden_layers: int, hidden_units: int,
        activation: str,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.activation, self.out_features = activation, out_features
        self.inference_block_rows = INFERENCE_BLOCK_ROWS
        widths = [in_features] + [hidden_units] * hidden_layers + [out_features]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [EnsembleLinear(ensemble_size, fan_in, fan_out), ACTIVATIONS[activation]()]
        self.layers = nn.Sequential(*layers[:-1])

    def forward(self, x: Tensor, output_columns: int | None = None) -> Tensor:
        """(E, B, in) -> (E, B, out), or (E, B, output_columns) for the first ``output_columns`` outputs only
        (e.g. a mean without its log-variance: the output layer then does only that part of its work).

        Without autograd (planning), activations are applied in place and, on the CPU, rows go through the
        whole stack in blocks of :attr:`inference_block_rows`: a block's activations stay in the cache from one
        layer to the next, where a whole planning batch would make every bias add and activation a round trip
        to memory (P1a: 1.5x the model steps per second of the unblocked forward on a 2-core CPU).
        """
        if output_columns is not None and not 0 < output_columns <= self.out_features:
            raise ValueError(f"output_columns must be in 1..{self.out_features}, got {output_columns}")
        if torch.is_grad_enabled():
            *hidden, output = self.layers
            for layer in hidden:
                x = layer(x)
            return output(x, output_columns)
        if x.device.type != "cpu":
            return self._forward_in_place(x, output_columns)
        members, rows = x.shape[:2]
        if rows <= self.inference_block_rows:
            return self._forward_block(x, output_columns)
        out = x.new_empty(members, rows, self.out_features if output_columns is None else output_columns)
        for start in range(0, rows, self.inference_block_rows):
            block = slice(start, start + self.inference_block_rows)
            out[:, block] = self._forward_block(x[:, block], output_columns)
        return out

    def _forward_in_place(self, x: Tensor, output_columns: int | None) -> Tensor:
        *hidden, output = self.layers
        for layer in hidden:
            x = layer(x) if isinstance(layer, EnsembleLinear) else IN_PLACE_ACTIVATIONS[self.activation](x)
        return output(x, output_columns)

    def _forward_block(self, x: Tensor, output_columns: int | None) -> Tensor:
        """One block of rows (E, n, in) through the stack on the CPU without autograd, each matmul shaped for MKL.

        - A bmm over E members on T threads gives each thread whole members, so when T does not divide E some
          threads idle (5 members on 2 threads: 3 + 2). The wide layers (fan-in >= :data:`BALANCED_MIN_FAN_IN`)
          go as a bmm over the first ``E - E % T`` members and one multi-threaded mm per member left (P1a's
          layer, 5 x 256 x 200 x 200 on 2 threads: 1.14x). A narrow layer's mm does not gain from the threads.
        - The output layer is computed transposed, (W^T h^T)^T: MKL runs a narrow output (8 columns) about 4x
          faster so, and no output width measured was slower.
        """
        members, rows = x.shape[:2]
        balanced = members - members % torch.get_num_threads()
        activation = IN_PLACE_ACTIVATIONS[self.activation]
        *hidden, output = self.linear_layers()
        for layer in hidden:
            fan_in, fan_out = layer.weight.shape[1:]
            if 0 < balanced < members and fan_in >= BALANCED_MIN_FAN_IN:
                result = x.new_empty(members, rows, fan_out)
                torch.bmm(x[:balanced], layer.weight[:balanced], out=result[:balanced])
                for member in range(balanced, members):
                    torch.mm(x[member], layer.weight[member], out=result[member])
                x = result.add_(layer.bias)
            else:
                x = layer(x)
            x = activation(x)
        weight, bias = output.columns(output_columns)
        return torch.bmm(weight.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2).add_(bias)

    def linear_layers(self) -> list[EnsembleLinear]:
        """The affine layers, input first."""
        return [layer for layer in self.layers if isinstance(layer, EnsembleLinear)]

    @torch.no_grad()
    def reparametrize_inputs(self, scale: Tensor, shift: Tensor) -> None:
        """Makes ``f(x * scale + shift)`` of the old network equal ``f'(x)`` of the new one; scale, shift (in,)."""
        first = self.linear_layers()[0]
        first.bias.add_(torch.matmul(shift, first.weight).unsqueeze(1))
        first.weight.mul_(scale[None, :, None])

    @torch.no_grad()
    def reparametrize_outputs(self, columns: slice, scale: Tensor, shift: Tensor) -> None:
        """Replaces outputs ``y[..., columns]`` by ``y * scale + shift``; scale and shift sized like the slice."""
        last = self.linear_layers()[-1]
        last.weight[..., columns].mul_(scale)
        last.bias[..., columns].mul_(scale).add_(shift)
