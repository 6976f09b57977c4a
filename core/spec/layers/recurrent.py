"""Recurrent layers: simple_rnn, lstm, gru, with Keras's options and defaults.

They run on PyTorch's fused kernels (`nn.RNN`, `nn.LSTM`, `nn.GRU`; cuDNN on a GPU), which
compute one formulation each. So the spec refuses, at submission, the Keras options those
kernels cannot compute (the same options that keep Keras off its own cuDNN path):

- `activation`: tanh (simple_rnn: tanh or relu); `recurrent_activation`: sigmoid.
- `recurrent_dropout`: 0. Keras drops units of the state fed back at every step; a fused kernel
  runs all the steps inside one call, so there is no point at which to drop them.
- gru's `reset_after`: true (Keras 3's default; false is the formulation PyTorch lacks).

`dropout` is Keras's: one mask over the input features per sequence, shared by every step.

Keras's options outside a fused kernel's reach but without effect on the result are accepted:
`unroll` and `use_cudnn` (the same arithmetic, always on the fused kernel), `implementation`
(ignored by Keras 3 too) and `zero_output_for_mask` (Epochal passes no masks). `return_state`
and `stateful` are refused, with the reason.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from core.spec.base import tagged_union
from core.spec.layers.base import ActivationName, BaseLayer, InitializerName, KernelOptions
from core.spec.layers.keras_args import Seed, only
from core.spec.regularizers import L1L2, ConstraintSpec


class RecurrentOptions(BaseLayer, KernelOptions):
    """Keras's options shared by SimpleRNN, LSTM and GRU."""

    kernel_name: ClassVar[str]  # PyTorch's fused module, named in error messages
    activations: ClassVar[tuple[str, ...]] = ("tanh",)

    units: int = Field(gt=0, description="dimensionality of the output space")
    activation: ActivationName = "tanh"
    recurrent_activation: ActivationName = "sigmoid"
    recurrent_initializer: InitializerName = "orthogonal"
    recurrent_regularizer: L1L2 | None = None
    recurrent_constraint: ConstraintSpec | None = None
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="fraction of the input features dropped (one mask)"
    )
    recurrent_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="must be 0: a fused kernel cannot mask the fed-back state"
    )
    return_sequences: bool = Field(
        False, description="output every step (steps, units) instead of the last one (units,)"
    )
    go_backwards: bool = Field(
        False, description="read the input in reverse; a returned sequence stays reversed"
    )
    seed: Seed = None
    return_state: Annotated[
        bool,
        only(
            False,
            why="a sequential network passes one tensor from layer to layer, so the final "
            "states would have nowhere to go",
        ),
    ] = False
    stateful: Annotated[
        bool,
        only(
            False,
            why="Epochal's batches are shuffled and independent, so no state is carried from "
            "one batch to the next",
        ),
    ] = False
    unroll: bool = Field(False, description="the same result: the fused kernel runs either way")
    zero_output_for_mask: bool = Field(False, description="no effect: Epochal passes no masks")
    use_cudnn: Literal["auto"] | bool = Field(
        "auto", description="the fused kernel (cuDNN on a GPU) runs either way"
    )
    implementation: Literal[1, 2] = Field(2, description="ignored, as Keras 3 ignores it")

    @field_validator("activation")
    @classmethod
    def _fused_activation(cls, value: str) -> str:
        if value not in cls.activations:
            expected = " or ".join(repr(a) for a in cls.activations)
            raise ValueError(
                f"expected activation {expected}: PyTorch's fused {cls.kernel_name} kernel "
                f"computes no other. Received: activation={value!r}"
            )
        return value

    @field_validator("recurrent_activation")
    @classmethod
    def _fused_recurrent_activation(cls, value: str) -> str:
        if value != "sigmoid":
            raise ValueError(
                f"expected recurrent_activation 'sigmoid': PyTorch's fused {cls.kernel_name} "
                f"kernel computes no other. Received: recurrent_activation={value!r}"
            )
        return value

    @field_validator("recurrent_dropout")
    @classmethod
    def _no_recurrent_dropout(cls, value: float) -> float:
        if value != 0.0:
            raise ValueError(
                f"expected recurrent_dropout 0: PyTorch's fused {cls.kernel_name} kernel runs "
                "every time step in one call, so the state fed back between steps cannot be "
                f"masked. Use dropout (on the inputs) instead. Received: recurrent_dropout={value}"
            )
        return value


class SimpleRNN(RecurrentOptions):
    kernel_name = "RNN"
    activations = ("tanh", "relu")

    type: Literal["simple_rnn"]


class LSTM(RecurrentOptions):
    kernel_name = "LSTM"

    type: Literal["lstm"]
    unit_forget_bias: bool = Field(
        True, description="initialize the forget gate's bias to 1 (Jozefowicz et al. 2015)"
    )


class GRU(RecurrentOptions):
    kernel_name = "GRU"

    type: Literal["gru"]
    reset_after: bool = Field(
        True, description="apply the reset gate after the recurrent matrix product"
    )

    @field_validator("reset_after")
    @classmethod
    def _reset_after(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "expected reset_after true (Keras 3's default): PyTorch's fused GRU kernel "
                "applies the reset gate after the recurrent matrix product and has separate "
                "input and recurrent biases. Received: reset_after=False"
            )
        return value


SPECS = (SimpleRNN, LSTM, GRU)


# A recurrent layer nested in a wrapper (bidirectional).
RecurrentSpec = tagged_union(SPECS)
