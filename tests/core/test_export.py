"""Exported networks compute what the PyTorch network computes: ONNX run by onnxruntime, and
TorchScript loaded back with torch.jit.load, on random inputs at two batch sizes (the batch axis
is dynamic). Tiny untrained networks with a seed: equivalence needs no training."""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

from core import export
from core.errors import InvalidArgumentError
from core.nn.network import Network, build_network
from core.spec.job import ModelSpec

METADATA = {"epochal.spec": json.dumps({"model": "a spec"}), "epochal.format": "1"}

CONV = {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"}
ARCHITECTURES: dict[str, tuple[tuple[int, ...], list[dict]]] = {
    "mlp": (
        (8,),
        [
            {"type": "dense", "units": 16, "activation": "relu"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
    ),
    # examples/digits_cnn.yaml, narrower, with augmentation in front (the identity here).
    "digits cnn": (
        (64,),
        [
            {"type": "reshape", "target_shape": [8, 8, 1]},
            {"type": "random_flip"},
            {"type": "random_rotation", "factor": 0.1},
            CONV,
            {"type": "batch_normalization"},
            {"type": "activation", "activation": "relu"},
            {"type": "max_pooling2d", "pool_size": 2, "padding": "same"},
            CONV,
            {"type": "batch_normalization"},
            {"type": "activation", "activation": "relu"},
            {"type": "global_average_pooling2d"},
            {"type": "dropout", "rate": 0.5},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ],
    ),
    "lstm": (
        (6, 3),
        [
            {"type": "lstm", "units": 5, "return_sequences": True},
            {"type": "lstm", "units": 4, "go_backwards": True},
            {"type": "dense", "units": 1},
        ],
    ),
    "bidirectional gru and simple_rnn": (
        (6, 3),
        [
            {"type": "bidirectional", "layer": {"type": "gru", "units": 5, "return_sequences": True}},
            {"type": "bidirectional", "layer": {"type": "simple_rnn", "units": 4}, "merge_mode": "sum"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    ),
    "embedding and conv1d": (
        (12,),
        [
            {"type": "embedding", "input_dim": 20, "output_dim": 6},
            {"type": "conv1d", "filters": 5, "kernel_size": 3, "activation": "relu"},
            {"type": "max_pooling1d", "pool_size": 2},
            {"type": "global_max_pooling1d"},
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ],
    ),
    # examples/moving_dot_lrcn.yaml, smaller.
    "time_distributed cnn and lstm": (
        (4, 6, 6, 1),
        [
            {"type": "time_distributed", "layer": {"type": "conv2d", "filters": 3, "kernel_size": 3, "activation": "relu"}},
            {"type": "time_distributed", "layer": {"type": "max_pooling2d", "pool_size": 2}},
            {"type": "time_distributed", "layer": {"type": "flatten"}},
            {"type": "lstm", "units": 4},
            {"type": "dense", "units": 4, "activation": "softmax"},
        ],
    ),
}  # fmt: skip


def network(layers: list[dict], input_shape: tuple[int, ...]) -> Network:
    """Built and initialized with a seed; every weight and statistic moved off its initial
    value (zero biases, unit batch-norm statistics), so none of them is trivially exported."""
    torch.manual_seed(0)
    net = build_network(ModelSpec.model_validate({"layers": layers}), input_shape)
    net.initialize()
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            noise = torch.rand_like(tensor) if "variance" in name else torch.randn_like(tensor)
            tensor.add_(0.1 * noise)
    return net.eval()


def inputs(name: str, shape: tuple[int, ...], batch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(batch)
    if name.startswith("embedding"):  # token ids, as floats like the data
        return torch.randint(0, 20, (batch, *shape), generator=generator).float()
    return torch.randn(batch, *shape, generator=generator)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_the_onnx_export_computes_what_the_network_computes(name: str) -> None:
    shape, layers = ARCHITECTURES[name]
    net = network(layers, shape)
    model = onnx.load_model_from_string(export.to_onnx(net, shape, METADATA))
    assert {p.key: p.value for p in model.metadata_props} == METADATA

    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    [given] = session.get_inputs()
    assert given.name == "inputs" and given.shape[1:] == list(shape)
    assert not isinstance(given.shape[0], int)  # the batch axis is symbolic
    for batch in (1, 7):
        x = inputs(name, shape, batch)
        with torch.no_grad():
            expected = net(x).numpy()
        [outputs] = session.run(["outputs"], {"inputs": x.numpy()})
        assert outputs.shape == expected.shape
        assert np.abs(outputs - expected).max() <= 1e-5, (name, batch)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_the_torchscript_export_computes_what_the_network_computes(name: str) -> None:
    shape, layers = ARCHITECTURES[name]
    net = network(layers, shape)
    data = export.to_torchscript(net, shape, METADATA)

    extra = dict.fromkeys(METADATA, "")
    loaded = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    assert {k: v.decode() for k, v in extra.items()} == METADATA
    for batch in (1, 7):
        x = inputs(name, shape, batch)
        with torch.no_grad():
            assert torch.allclose(loaded(x), net(x), rtol=0, atol=1e-6), (name, batch)


class DataDependent(nn.Module):
    """Branches on the values: a trace would freeze one branch, torch.export refuses it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() > 0:
            return x
        return -x


class NoOnnxOperator(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.zeta(x, x)  # Riemann zeta: no ONNX operator


MLP = ARCHITECTURES["mlp"][1]


def test_a_layer_that_cannot_be_traced_is_named() -> None:
    net = network(MLP, (8,))
    net.body[0] = nn.Sequential(DataDependent(), net.body[0])  # in layer 0 (dense)
    with pytest.raises(export.NotExportableError) as e:
        export.to_onnx(net, (8,), METADATA)
    assert str(e.value).startswith(
        "layer 0 (dense) cannot be exported to ONNX: Could not guard on data-dependent expression"
    )
    # The trace takes one branch on zeros; its check on other inputs sees the other branch.
    with pytest.raises(export.NotExportableError) as e:
        export.to_torchscript(net, (8,), METADATA)
    assert str(e.value) == (
        "the model cannot be exported to TorchScript: the trace computes something else on "
        "other inputs (a branch on the values?)"
    )


def test_an_operator_without_an_onnx_translation_is_named() -> None:
    net = network(MLP, (8,))
    net.body[3] = NoOnnxOperator()  # in place of layer 2 (dense)
    with pytest.raises(export.NotExportableError) as e:
        export.to_onnx(net, (8,), METADATA)
    message = str(e.value)
    assert message.startswith("the model cannot be exported to ONNX: No ONNX function found")
    assert "zeta" in message and len(message) < 400
    assert export.to_torchscript(net, (8,), METADATA)  # TorchScript has the operator


def test_an_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(InvalidArgumentError) as e:
        export.check_format("keras")
    assert (
        str(e.value) == "format 'keras' is unknown; expected one of: safetensors, onnx, torchscript"
    )
