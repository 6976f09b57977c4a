"""A checkpoint: everything `fit` needs to continue a run exactly where it stopped.

One safetensors file. Its tensors are the model's state (`model/…`), the optimizer's and the
callbacks' tensors, and the random generators' states as uint8 tensors; its metadata
(`epochal.checkpoint`) is a JSON document with everything else: epochs and steps done, the
optimizer's param groups, the callbacks' counters, the history so far. Reading one needs
safetensors and json only: nothing is ever unpickled.

Taking a checkpoint (`capture`) copies the state to the CPU: that copy is the only part on the
training thread. Encoding and writing happen elsewhere (core/training/checkpointing.py).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from safetensors.torch import save_file as save_safetensors_file

from core.errors import EpochalError
from core.training.callbacks import Callback, TrainState
from core.training.optimizers import merged_groups

FORMAT_VERSION = 1
METADATA_KEY = "epochal.checkpoint"
MODEL = "model/"  # prefix of the network's tensors
MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


class CheckpointError(EpochalError):
    """A checkpoint that cannot be read, or that does not belong to this run."""

    code = "invalid_checkpoint"


@dataclass
class Snapshot:
    """A run's state at the end of an epoch, on the CPU, sharing no memory with the run."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    ready: torch.cuda.Event | None = None  # device-to-host copies still in flight until then

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    def wait_ready(self) -> None:
        if self.ready is not None:
            self.ready.synchronize()
            self.ready = None


class _Packer:
    """Splits a nested state into tensors (copied to the CPU) and a JSON-able document.

    Tensors become {"__tensor__": key}; tuples {"__tuple__": [...]}; dicts with keys that are
    not strings (an optimizer's state is keyed by parameter index) {"__items__": [[k, v], ...]}.
    """

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self.on_device = False

    def pack(self, value: Any, key: str) -> Any:
        if isinstance(value, torch.Tensor):
            self.tensors[key] = self.copy(value)
            return {"__tensor__": key}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {k: self.pack(v, f"{key}/{k}") for k, v in value.items()}
            return {"__items__": [[k, self.pack(v, f"{key}/{k}")] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"__tuple__": [self.pack(v, f"{key}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.pack(v, f"{key}/{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"cannot checkpoint {key}: a {type(value).__name__} is not state")

    def copy(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        if t.device.type == "cpu":
            return t.clone(memory_format=torch.contiguous_format)
        self.on_device = True  # pinned host memory: the copy overlaps with training
        return t.contiguous().to("cpu", non_blocking=True)


def unpack(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [unpack(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__tuple__" in value:
        return tuple(unpack(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {k: unpack(v, tensors) for k, v in value["__items__"]}
    return {k: unpack(v, tensors) for k, v in value.items()}


def capture(
    state: TrainState,
    *,
    generator: torch.Generator | None,
    callbacks: Sequence[Callback],
    history: list[dict[str, float]],
) -> Snapshot:
    """Copy the run's state at an epoch's end (the only stall the training thread sees)."""
    tensors: dict[str, torch.Tensor] = {}
    packer = _Packer(tensors)
    for name, value in state.network.state_dict().items():
        tensors[MODEL + name] = packer.copy(value)
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if generator is not None:
        rng["shuffle"] = generator.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    meta = {
        "format": FORMAT_VERSION,
        "epoch": state.epoch,
        "step": state.step,
        "stop_training": state.stop_training,
        "stop_reason": state.stop_reason,
        "optimizer": packer.pack(state.optimizer.state_dict(), "optimizer"),
        "callbacks": [
            {"type": type(cb).__name__, "state": packer.pack(cb.state_dict(), f"callbacks/{i}")}
            for i, cb in enumerate(callbacks)
        ],
        "rng": packer.pack(rng, "rng"),
        # fp16's loss scale (Python numbers; {} at other precisions): absent from older files
        "scaler": state.precision.state_dict() if state.precision is not None else {},
        "history": [dict(logs) for logs in history],
    }
    ready = None
    if packer.on_device:
        ready = torch.cuda.Event()
        ready.record()
    return Snapshot(tensors, meta, ready)


def encode(snapshot: Snapshot) -> bytes:
    snapshot.wait_ready()
    return save_safetensors(snapshot.tensors, metadata=_metadata(snapshot))


def encode_to(snapshot: Snapshot, path: Path) -> None:
    """`encode` straight into a file. Unlike encoding to bytes, safetensors releases the GIL
    while it writes a file, so the training thread runs on meanwhile."""
    snapshot.wait_ready()
    save_safetensors_file(snapshot.tensors, path, metadata=_metadata(snapshot))


def _metadata(snapshot: Snapshot) -> dict[str, str]:
    return {METADATA_KEY: json.dumps(snapshot.meta)}


def decode(data: bytes) -> Snapshot:
    """Read a checkpoint written by `encode`: safetensors and JSON, never pickle."""
    try:
        (size,) = struct.unpack("<Q", data[:8])
        if size > MAX_HEADER:
            raise ValueError("header too large")
        header = json.loads(data[8 : 8 + size])
        meta = json.loads(header["__metadata__"][METADATA_KEY])
        tensors = load_safetensors(data)
    except Exception as e:  # noqa: BLE001 - whatever is wrong, the file is not a checkpoint
        raise CheckpointError(f"not an Epochal checkpoint: {e}") from None
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format {meta.get('format')!r}; expected {FORMAT_VERSION}"
        )
    return Snapshot(tensors, meta)


def model_weights(snapshot: Snapshot) -> dict[str, torch.Tensor]:
    """The network's state alone, under the names a Network's `load_state_dict` expects."""
    return {k.removeprefix(MODEL): v for k, v in snapshot.tensors.items() if k.startswith(MODEL)}


def weights_file(data: bytes) -> bytes:
    """A checkpoint file's network weights as a plain safetensors file."""
    return save_safetensors(model_weights(decode(data)))


def restore(
    snapshot: Snapshot,
    state: TrainState,
    *,
    generator: torch.Generator | None,
    history: list[dict[str, float]],
) -> None:
    """Put the network, optimizer, generators, counters and history back as they were.

    The callbacks come back separately (`restore_callbacks`), after their `on_train_begin`."""
    meta, tensors = snapshot.meta, snapshot.tensors
    state.network.load_state_dict(model_weights(snapshot), strict=True)
    optimizer = unpack(meta["optimizer"], tensors)
    state.optimizer.load_state_dict(merged_groups(optimizer, state.optimizer))
    _match_layouts(state.optimizer)
    if state.precision is not None:
        state.precision.load_state_dict(meta.get("scaler", {}))
    rng = unpack(meta["rng"], tensors)
    torch.set_rng_state(rng["torch"])
    if generator is not None and "shuffle" in rng:
        generator.set_state(rng["shuffle"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state.epoch, state.step = meta["epoch"], meta["step"]
    state.stop_training, state.stop_reason = meta["stop_training"], meta["stop_reason"]
    history[:] = [dict(logs) for logs in meta["history"]]


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give the optimizer's per-parameter tensors (Adam's moments) their parameter's memory
    layout again: a checkpoint stores them contiguous, a convolution's kernel may be
    channels-last on CUDA, and torch's fused and foreach kernels want matching strides."""
    for param, slots in optimizer.state.items():
        for key, value in slots.items():
            if (
                isinstance(value, torch.Tensor)
                and value.shape == param.shape
                and value.stride() != param.stride()
            ):
                slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _keys(types: Sequence[str]) -> list[tuple[str, int]]:
    """Each callback's key: its type and its rank among the callbacks of that type."""
    seen: dict[str, int] = {}
    keys = []
    for name in types:
        keys.append((name, seen.get(name, 0)))
        seen[name] = seen.get(name, 0) + 1
    return keys


def restore_callbacks(snapshot: Snapshot, callbacks: Sequence[Callback]) -> None:
    """Give each callback its saved state, matched by key (type, and rank among those of its
    type), not by position: a run resumed on a newer version may hold callbacks its checkpoint
    does not (a pre-flight, a health rule added since), and those start fresh, from their
    `on_train_begin` (the pre-flight does not run again: a resumed run's first step is long
    past). A saved state whose callback this run no longer has is left:
    the checkpoint is the same job's (same spec), so such a state is of a callback the code
    dropped, and nothing in this run would read it; refusing it would fail the job for nothing."""
    saved = dict(
        zip(
            _keys([c["type"] for c in snapshot.meta["callbacks"]]),
            snapshot.meta["callbacks"],
            strict=True,
        )
    )
    for key, cb in zip(_keys([type(cb).__name__ for cb in callbacks]), callbacks, strict=True):
        if key in saved:
            cb.load_state_dict(unpack(saved[key]["state"], snapshot.tensors))
