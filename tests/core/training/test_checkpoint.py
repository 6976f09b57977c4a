"""The checkpoint format, its writer, and ModelCheckpoint's decisions, on tiny CPU tensors."""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from core.spec.callbacks import ModelCheckpoint as ModelCheckpointSpec
from core.spec.callbacks import ReduceLROnPlateau as PlateauSpec
from core.spec.diagnostics import StopOnSpec
from core.training.callbacks import TrainState
from core.training.checkpoint import (
    CheckpointError,
    Snapshot,
    capture,
    decode,
    encode,
    model_weights,
    restore,
    restore_callbacks,
)
from core.training.checkpointing import CheckpointWriter
from core.training.health import HealthStop
from core.training.model_checkpoint import ModelCheckpoint
from core.training.plateau import ReduceLROnPlateau
from core.training.preflight import InitialLossCheck


def trained_state() -> tuple[TrainState, torch.Generator]:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    optimizer = torch.optim.Adam(network.parameters(), lr=0.1, betas=(0.8, 0.9))
    for _ in range(3):
        optimizer.zero_grad()
        network(torch.randn(8, 3)).sum().backward()
        optimizer.step()
    state = TrainState(epochs=5, steps_per_epoch=3, epoch=1, step=3)
    state.network, state.optimizer = network, optimizer
    return state, torch.Generator().manual_seed(5)


def test_a_checkpoint_round_trips_every_piece_of_state() -> None:
    state, generator = trained_state()
    plateau = ReduceLROnPlateau(PlateauSpec(type="reduce_lr_on_plateau"))  # best = inf
    plateau.wait = 2
    history = [{"loss": 0.5, "val_loss": math.nan}]
    snapshot = capture(state, generator=generator, callbacks=[plateau], history=history)
    expected_draw = torch.randn(3, generator=generator)  # what comes next from each generator
    expected_global = torch.rand(2)

    fresh, other = trained_state()
    for p in fresh.network.parameters():
        p.data.zero_()
    fresh.epoch = fresh.step = 0
    decoded = decode(encode(snapshot))
    restored_history: list[dict[str, float]] = []
    restore(decoded, fresh, generator=other, history=restored_history)
    again = ReduceLROnPlateau(PlateauSpec(type="reduce_lr_on_plateau"))
    restore_callbacks(decoded, [again])

    for (name, a), b in zip(
        state.network.state_dict().items(), fresh.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name  # weights and BatchNorm's running statistics
    saved, loaded = state.optimizer.state_dict(), fresh.optimizer.state_dict()
    assert loaded["param_groups"] == saved["param_groups"]  # betas come back as a tuple
    for i, per_param in saved["state"].items():
        for key, value in per_param.items():
            assert torch.equal(loaded["state"][i][key], value), (i, key)
    assert (fresh.epoch, fresh.step) == (1, 3)
    assert restored_history[0]["loss"] == 0.5 and math.isnan(restored_history[0]["val_loss"])
    assert (again.best, again.wait) == (math.inf, 2)
    assert torch.equal(torch.randn(3, generator=other), expected_draw)
    assert torch.equal(torch.rand(2), expected_global)
    assert set(model_weights(decoded)) == set(state.network.state_dict())


def test_a_snapshot_shares_no_memory_with_the_run() -> None:
    state, generator = trained_state()
    snapshot = capture(state, generator=generator, callbacks=[], history=[])
    before = snapshot.tensors["model/0.weight"].clone()
    with torch.no_grad():
        state.network[0].weight.add_(1.0)
    assert torch.equal(snapshot.tensors["model/0.weight"], before)


class Boom:
    def __reduce__(self):  # unpickling this would create a file
        return (Path.touch, (Path("unpickled-marker"),))


def test_a_pickle_is_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    buffer = io.BytesIO()
    torch.save({"model": Boom()}, buffer)
    for data in (buffer.getvalue(), pickle.dumps(Boom()), b"", b"\xff" * 16):
        with pytest.raises(CheckpointError, match="not an Epochal checkpoint"):
            decode(data)
    assert not (tmp_path / "unpickled-marker").exists()


def snapshot_of(epoch: int) -> Snapshot:
    return Snapshot(
        {"model/w": torch.full((2,), float(epoch))},
        {"format": 1, "epoch": epoch, "step": 10 * epoch},
    )


def test_the_writer_never_deletes_a_file_the_store_may_name(tmp_path: Path) -> None:
    files: dict[str, bytes] = {}
    handed: list[tuple[dict, object]] = []

    def write(key: str, fill: Callable[[Path], None]) -> int:
        fill(tmp_path / "file")
        files[key] = (tmp_path / "file").read_bytes()
        return len(files[key])

    writer = CheckpointWriter(
        prefix="ck",
        attempt=1,
        write=write,
        delete=files.pop,
        publish=lambda pointers, step, committed: handed.append((pointers, committed)),
    )
    writer.save(snapshot_of(1), last=True, best=True)
    writer.save(snapshot_of(2), last=True, best=False)
    writer.wait()
    assert set(files) == {"ck/epoch-1.safetensors", "ck/epoch-2.safetensors"}  # none committed
    handed[0][1]()  # epoch 1's pointers are stored now
    writer.save(snapshot_of(3), last=True, best=False)
    writer.wait()
    assert "ck/epoch-2.safetensors" in files  # handed over: it may be being committed
    handed[2][1]()  # epoch 3's pointers stored: epoch 2's can no longer be
    writer.collect()
    assert set(files) == {"ck/epoch-1.safetensors", "ck/epoch-3.safetensors"}  # best, last
    last, best = handed[2][0]["last"], handed[2][0]["best"]
    assert (last["epoch"], last["step"], best["epoch"]) == (3, 30, 1)
    assert decode(files[last["key"]]).epoch == 3
    assert writer.times.count == 3 and len(writer.times.wait) == 3
    assert writer.times.nbytes == len(files[last["key"]])


def run_epochs(writer: CheckpointWriter, best_epochs: set[int], epochs: int, end: int) -> None:
    """What `fit` does at each epoch end up to `end` (a run of `epochs` epochs)."""
    for epoch in range(1, end + 1):
        last = writer.due(epoch, epoch == epochs)
        if last or epoch in best_epochs:
            writer.save(snapshot_of(epoch), last=last, best=epoch in best_epochs)
    writer.wait()


def test_short_epochs_save_last_by_time_and_hold_best_until_then(tmp_path: Path) -> None:
    files: dict[str, bytes] = {}
    published: list[dict] = []

    def write(key: str, fill: Callable[[Path], None]) -> int:
        fill(tmp_path / "file")
        files[key] = (tmp_path / "file").read_bytes()
        return len(files[key])

    def publish(pointers: dict, step: int, committed: Callable[[], None]) -> None:
        published.append(pointers)
        committed()

    def writer(**rule: float) -> CheckpointWriter:
        files.clear(), published.clear()
        return CheckpointWriter(
            prefix="ck", attempt=1, write=write, delete=files.pop, publish=publish, **rule
        )

    # An hour between `last` saves: a run of 5 short epochs writes at its end only, its best
    # epoch (3, held in memory meanwhile) just before its last.
    run_epochs(writer(every_seconds=3600), {1, 2, 3}, epochs=5, end=5)
    assert [sorted(p) for p in published] == [["best"], ["best", "last"]]
    assert (published[-1]["best"]["epoch"], published[-1]["last"]["epoch"]) == (3, 5)
    assert set(files) == {"ck/epoch-3.safetensors", "ck/epoch-5.safetensors"}
    assert decode(files["ck/epoch-3.safetensors"]).epoch == 3

    # A cancelled run (no last epoch) writes its held best when it settles, as its `last`
    # too: the held epoch is newer than any `last`, and `best` never names one past `last`.
    w = writer(every_seconds=3600)
    run_epochs(w, {1, 2}, epochs=5, end=3)
    assert published == []
    w.finish()
    assert [(p["best"]["epoch"], p["last"]["epoch"]) for p in published] == [(2, 2)]

    # 0 seconds: every epoch, each best at once; every_epochs: its own rule, best at once.
    run_epochs(writer(every_seconds=0), {2}, epochs=3, end=3)
    assert [(p["last"]["epoch"], p.get("best", {}).get("epoch")) for p in published] == [
        (1, None),
        (2, 2),
        (3, 2),
    ]
    run_epochs(writer(every_epochs=2, every_seconds=3600), {1}, epochs=5, end=5)
    assert [p.get("last", {}).get("epoch") for p in published] == [None, 2, 4, 5]


def test_a_failed_write_is_raised_on_the_training_thread() -> None:
    def full(key: str, fill: Callable[[Path], None]) -> int:
        raise OSError("no space left on device")

    writer = CheckpointWriter(prefix="ck", attempt=1, write=full, delete=print, publish=print)
    writer.save(snapshot_of(1), last=True, best=False)
    with pytest.raises(OSError, match="no space"):
        writer.wait()


@pytest.mark.parametrize(
    ("options", "values", "best_epochs"),
    [
        ({}, [3.0, 2.0, 4.0], [1, 2, 3]),  # Keras's default: every epoch
        ({"save_best_only": True}, [3.0, 2.0, 2.0, 4.0, 1.0], [1, 2, 5]),  # strictly better
        ({"save_best_only": True, "monitor": "val_accuracy"}, [0.5, 0.7, 0.6], [1, 2]),
        ({"save_best_only": True, "mode": "max"}, [1.0, 0.5, 2.0], [1, 3]),
        ({"save_best_only": True, "initial_value_threshold": 2.5}, [3.0, 2.0, 2.4], [2]),
    ],
)
def test_model_checkpoint_marks_the_epochs_keras_would_save(
    options: dict, values: list[float], best_epochs: list[int]
) -> None:
    spec = ModelCheckpointSpec.model_validate({"type": "model_checkpoint", **options})
    callback = ModelCheckpoint(spec)
    state = TrainState(epochs=len(values), steps_per_epoch=1)
    saved = []
    for value in values:
        state.epoch += 1
        callback.on_epoch_end(state, {spec.monitor: value})
        if state.save_best:
            saved.append(state.epoch)
            state.save_best = False
    assert saved == best_epochs


def test_callbacks_are_restored_by_type_and_new_ones_start_fresh() -> None:
    """Matched by type (and rank among those of a type), not by position: a callback the
    checkpoint lacks keeps its fresh state, a saved one this run lacks is left."""
    first, second = InitialLossCheck(), InitialLossCheck()
    first.warnings = [{"type": "initial_loss", "layer": "dense_1", "step": 1, "message": "a"}]
    second.warnings = [{"type": "initial_loss", "layer": "dense_2", "step": 1, "message": "b"}]
    health = HealthStop(StopOnSpec(conditions=["divergence"]), None)
    health.streaks = {"divergence": 2}
    state, generator = trained_state()
    snapshot = capture(state, generator=generator, callbacks=[health, first, second], history=[])
    snapshot = decode(encode(snapshot))
    a, b = InitialLossCheck(), InitialLossCheck()
    plateau = ReduceLROnPlateau(PlateauSpec(type="reduce_lr_on_plateau"))
    plateau.wait = 3  # what its on_train_begin left: kept
    restore_callbacks(snapshot, [a, plateau, b])  # no HealthStop in this run; a new callback
    assert a.warnings == first.warnings and b.warnings == second.warnings
    assert plateau.wait == 3
