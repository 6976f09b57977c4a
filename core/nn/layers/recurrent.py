"""Builders of the recurrent layers on PyTorch's fused kernels (`nn.RNN`, `nn.LSTM`, `nn.GRU`).

Keras's layer and PyTorch's module, side by side:

- Inputs are (batch, steps, features) as in Keras: the modules run with `batch_first=True`.
- Weights: Keras's kernel (features, g·units) is PyTorch's `weight_ih_l0` (g·units, features)
  transposed, and its recurrent kernel (units, g·units) is `weight_hh_l0` transposed; g is 1, 4
  or 3 gates. Initializers act on each matrix as a whole, as Keras's do: glorot sees the same
  fans on either layout, and orthogonal makes Keras's recurrent kernel's rows orthonormal, so
  `weight_hh_l0`'s columns.
- Gate order: LSTM is i, f, c, o in both (PyTorch calls the candidate c "g"). GRU is z, r, h in
  Keras and r, z, n in PyTorch: the first two row blocks are swapped. Whole-matrix initializers
  do not see the order; it matters only when copying weights between the two.
- Biases: Keras's SimpleRNN and LSTM have one bias, PyTorch's kernels add two (b_ih + b_hh).
  `b_hh` becomes a zero buffer, so `bias_ih_l0` is Keras's bias and the parameter count is
  Keras's. Keras's GRU with reset_after=True has an input and a recurrent bias: PyTorch's two.
  Its bias constraint applies to each of the two vectors (Keras's, to its (2, 3·units) bias).
- unit_forget_bias: the LSTM's bias is initialized per gate block, as Keras does (the forget
  block to ones), through views of the bias: initialize the network before moving it to
  another device (as `train_spec` does).
- dropout: one mask over the input features per sequence, shared by all steps, as Keras draws.
- go_backwards: the input is read in reverse; a returned sequence stays reversed, as in Keras.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.nn.layers.base import LAYERS, Built, LayerShapeError, Shape, with_kernel
from core.spec.layers import recurrent as L


class Recurrent(nn.Module):
    """Runs a fused one-layer RNN on (batch, steps, features) with Keras's options around it."""

    def __init__(
        self, rnn: nn.RNNBase, *, return_sequences: bool, go_backwards: bool, dropout: float
    ):
        super().__init__()
        self.rnn = rnn
        self.return_sequences = return_sequences
        self.go_backwards = go_backwards
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.go_backwards:
            x = x.flip(1)
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask = x.new_full((x.shape[0], 1, x.shape[2]), keep).bernoulli_()
            x = x * mask / keep
        out, _ = self.rnn(x)
        return out if self.return_sequences else out[:, -1]

    def extra_repr(self) -> str:
        return (
            f"return_sequences={self.return_sequences}, go_backwards={self.go_backwards}, "
            f"dropout={self.dropout}"
        )


def sequence(shape: Shape) -> tuple[int, int]:
    """(steps, features) of a sequence input, or a LayerShapeError that says how to get one."""
    if len(shape) != 2:
        if len(shape) > 2:
            hint = "wrap the layers before it in time_distributed, ending with flatten"
        else:
            hint = "it needs a time axis: use a data set of sequences, or reshape"
        raise LayerShapeError(
            f"expects a sequence of shape (steps, features) but gets {shape}: {hint}"
        )
    return shape[0], shape[1]


def _drop_recurrent_bias(rnn: nn.RNNBase) -> None:
    """Keras's SimpleRNN and LSTM have one bias: keep PyTorch's second one (b_hh) at zero."""
    zeros = torch.zeros_like(rnn.bias_hh_l0, requires_grad=False)
    del rnn.bias_hh_l0
    rnn.register_buffer("bias_hh_l0", zeros, persistent=False)
    rnn.bias_hh_l0 = zeros  # RNNBase.__setattr__ points its list of flat weights at the buffer


def _built(
    spec: L.RecurrentOptions,
    shape: Shape,
    rnn: nn.RNNBase,
    biases: list[torch.Tensor],
    bias_blocks: list[tuple[torch.Tensor, Any]],
) -> Built:
    """The Built of a recurrent layer: its shapes and its weights' Keras options. `biases` are
    the trainable bias vectors; `bias_blocks` what initializes each part of them."""
    module = Recurrent(
        rnn,
        return_sequences=spec.return_sequences,
        go_backwards=spec.go_backwards,
        dropout=spec.dropout,
    )
    steps = shape[0]
    output = (steps, spec.units) if spec.return_sequences else (spec.units,)
    built = with_kernel(Built(module, output), spec, rnn.weight_ih_l0, None)
    built.initializers.append((rnn.weight_hh_l0, spec.recurrent_initializer))
    if spec.recurrent_regularizer is not None:
        built.penalties.append((rnn.weight_hh_l0, spec.recurrent_regularizer))
    if spec.recurrent_constraint is not None:
        built.constraints.append((rnn.weight_hh_l0, spec.recurrent_constraint))
    built.initializers += bias_blocks
    for bias in biases:
        if spec.bias_regularizer is not None:
            built.penalties.append((bias, spec.bias_regularizer))
        if spec.bias_constraint is not None:
            built.constraints.append((bias, spec.bias_constraint))
    return built


@LAYERS.register("simple_rnn")
def simple_rnn(spec: L.SimpleRNN, shape: Shape) -> Built:
    _, features = sequence(shape)
    rnn = nn.RNN(
        features, spec.units, nonlinearity=spec.activation, bias=spec.use_bias, batch_first=True
    )
    if not spec.use_bias:
        return _built(spec, shape, rnn, [], [])
    _drop_recurrent_bias(rnn)
    bias = rnn.bias_ih_l0
    return _built(spec, shape, rnn, [bias], [(bias, spec.bias_initializer)])


@LAYERS.register("lstm")
def lstm(spec: L.LSTM, shape: Shape) -> Built:
    _, features = sequence(shape)
    rnn = nn.LSTM(features, spec.units, bias=spec.use_bias, batch_first=True)
    if not spec.use_bias:
        return _built(spec, shape, rnn, [], [])
    _drop_recurrent_bias(rnn)
    bias, u = rnn.bias_ih_l0, spec.units
    blocks: list[tuple[torch.Tensor, Any]] = [(bias, spec.bias_initializer)]
    if spec.unit_forget_bias:  # gate blocks i, f, (c, o): Keras's own three initializer calls
        view = bias.detach()
        blocks = [
            (view[:u], spec.bias_initializer),
            (view[u : 2 * u], "ones"),
            (view[2 * u :], spec.bias_initializer),
        ]
    return _built(spec, shape, rnn, [bias], blocks)


@LAYERS.register("gru")
def gru(spec: L.GRU, shape: Shape) -> Built:
    _, features = sequence(shape)
    rnn = nn.GRU(features, spec.units, bias=spec.use_bias, batch_first=True)
    if not spec.use_bias:
        return _built(spec, shape, rnn, [], [])
    biases = [rnn.bias_ih_l0, rnn.bias_hh_l0]  # Keras's bias[0] (input) and bias[1] (recurrent)
    return _built(spec, shape, rnn, biases, [(b, spec.bias_initializer) for b in biases])
