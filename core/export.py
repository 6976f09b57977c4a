"""A succeeded job's model as ONNX or TorchScript, to serve it without Epochal or Python.

The network is rebuilt from the spec with its weights loaded strictly (`serving.load_model`: CPU,
eval mode, so dropout, noise and augmentation layers are the identity), then exported with a
dynamic batch axis: one input `inputs` of shape (batch, *input_shape), float32 like the data
(token ids too), and one output `outputs`, what the Keras model returns. Each file carries
`serving.bundle_metadata` (the normalized spec, the format version, the column encoding and
the output layout that `epochal_client.offline` reads): ONNX in `metadata_props`, TorchScript
as `_extra_files` under the same names.

An export is computed once per job attempt and format, and cached in the artifacts store next
to the weights (`jobs/<id>/attempt-<n>/model.onnx`); later downloads read the cached file.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Literal, get_args

import onnx
import torch

from core import serving
from core.artifacts import Artifacts
from core.errors import EpochalError, InvalidArgumentError
from core.nn.network import Network, layer_label
from core.settings import Settings

Format = Literal["safetensors", "onnx", "torchscript"]
FORMATS: tuple[str, ...] = get_args(Format)
SUFFIXES = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}
NAMES = {"onnx": "ONNX", "torchscript": "TorchScript"}
# The example batch the exporters trace. Not 1: torch.export specializes a size of 1 to a
# constant, and the batch axis must stay dynamic.
EXAMPLE_BATCH = 2

# Exporters keep global tracing state: one export at a time in a process.
_export_lock = threading.Lock()


class NotExportableError(EpochalError):
    """The network has a layer or an operation the format cannot express."""

    code = "not_exportable"


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InvalidArgumentError(
            f"format {fmt!r} is unknown; expected one of: {', '.join(FORMATS)}"
        )


def export_key(ref: serving.ModelRef, fmt: str) -> str:
    """Where the export is cached: beside the weights, so each attempt has its own."""
    return str(PurePosixPath(ref.weights).with_suffix(SUFFIXES[fmt]))


def model_file(ref: serving.ModelRef, artifacts: Artifacts, settings: Settings, fmt: str) -> bytes:
    """The model in `fmt`, with its metadata; an ONNX or TorchScript export is made once."""
    check_format(fmt)
    if fmt == "safetensors":
        return serving.model_bundle(ref, artifacts)
    key = export_key(ref, fmt)
    cached = _read(artifacts, key)
    if cached is not None:
        return cached
    with _export_lock:
        cached = _read(artifacts, key)  # made while this request waited for the lock
        if cached is not None:
            return cached
        model = serving.load_model(ref, artifacts, settings)
        data = EXPORTERS[fmt](
            model.network, model.info.feature_shape, serving.bundle_metadata(ref, artifacts, model)
        )
        artifacts.write(key, data)  # atomic: a reader never sees half an export
    return data


def _read(artifacts: Artifacts, key: str) -> bytes | None:
    try:
        return artifacts.read(key)
    except FileNotFoundError:
        return None


def example_inputs(input_shape: tuple[int, ...]) -> torch.Tensor:
    """Zeros: a valid input for every network, token ids included."""
    return torch.zeros(EXAMPLE_BATCH, *input_shape)


def check_inputs(input_shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform in [0, 1), another batch size: the values differ from the example's (a branch
    on them shows), yet they are still token id 0 once an embedding truncates them."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(EXAMPLE_BATCH + 1, *input_shape, generator=generator)


def to_onnx(network: Network, input_shape: tuple[int, ...], metadata: dict[str, str]) -> bytes:
    # torch 2.13's exporter is torch.export-based (`dynamo=True`, the default; it needs
    # onnxscript) and exports all our layer families. The TorchScript-based one (`dynamo=False`)
    # is deprecated, and it writes `movedim(-1, 1)` (channels-last conv and pooling layers) as a
    # Transpose that onnxruntime rejects. The capture runs non-strict, torch.onnx.export's first
    # strategy, under our hooks, so a failure there names its layer.
    example = example_inputs(input_shape)
    with _watching(network) as current:
        try:
            program = torch.export.export(
                network,
                (example,),
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                strict=False,
            )
        except Exception as e:
            raise _not_exportable(network, "onnx", e, current[0]) from e
    try:
        onnx_program = torch.onnx.export(
            program,
            dynamo=True,
            input_names=["inputs"],
            output_names=["outputs"],
            verbose=False,  # no progress lines on stdout
        )
    except Exception as e:  # an operator without an ONNX translation: the error names it
        raise _not_exportable(network, "onnx", e) from e
    proto = onnx_program.model_proto
    onnx.helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


def to_torchscript(
    network: Network, input_shape: tuple[int, ...], metadata: dict[str, str]
) -> bytes:
    # Traced rather than scripted: scripting rejects Python our layers use (comprehensions,
    # tuples of ranges), and in eval mode every forward is straight-line code. The trace is
    # then run against the network on other inputs, of another batch size: a branch on the
    # values, or a batch size, frozen into the trace shows there. (torch.jit.trace's own
    # check only warns when the outputs differ.)
    example, check = example_inputs(input_shape), check_inputs(input_shape)
    with _watching(network) as current, torch.no_grad():
        try:
            module = torch.jit.trace(network, (example,), check_trace=False)
            expected = network(check)
            same = torch.allclose(module(check), expected, rtol=1e-5, atol=1e-6, equal_nan=True)
        except Exception as e:
            raise _not_exportable(network, "torchscript", e, current[0]) from e
    if not same:
        raise NotExportableError(
            "the model cannot be exported to TorchScript: the trace computes something else "
            "on other inputs (a branch on the values?)"
        )
    buffer = io.BytesIO()
    torch.jit.save(module, buffer, _extra_files=metadata)
    return buffer.getvalue()


EXPORTERS: dict[str, Callable[[Network, tuple[int, ...], dict[str, str]], bytes]] = {
    "onnx": to_onnx,
    "torchscript": to_torchscript,
}


@contextmanager
def _watching(network: Network) -> Iterator[list[int | None]]:
    """Tracks which module of the network's body is running: [index], or [None] between them.

    A failure while tracing happens inside a module, so this names the layer to blame.
    """
    current: list[int | None] = [None]
    handles = []
    for i, module in enumerate(network.body):
        handles.append(module.register_forward_pre_hook(lambda *_, i=i: current.__setitem__(0, i)))
        handles.append(module.register_forward_hook(lambda *_: current.__setitem__(0, None)))
    try:
        yield current
    finally:
        for handle in handles:
            handle.remove()


def _not_exportable(
    network: Network, fmt: str, error: Exception, module: int | None = None
) -> NotExportableError:
    what = "the model"
    if module is not None:
        name = network.module_layers[module]
        index, summary = next(
            (i, s) for i, s in enumerate(network.layer_summaries) if s.name == name
        )
        what = layer_label(index, summary.type)
    return NotExportableError(f"{what} cannot be exported to {NAMES[fmt]}: {_reason(error)}")


def _reason(error: BaseException) -> str:
    """The first line of the innermost cause: what the exporter tripped on, without its advice."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= 300 else f"{line[:297]}..."
