"""`dataset.max_samples`: the training part cut to a seeded, class-stratified sample, for every
data set (built-in or uploaded), after the test and validation parts are held out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from core.data import DATASETS, Arrays
from core.data.upload_types import UploadOptions
from core.data.uploads import parse_upload
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import DatasetSpec
from core.training.checkpoint import Snapshot
from core.training.checkpointing import WriteTimes
from core.training.session import split_data, train_spec
from tests.core.test_dataset_specs import MemoryUploads

UPLOAD_ID, VALIDATION_ID = "ds_" + "d" * 20, "ds_" + "e" * 20


def rows(a: Arrays) -> set[bytes]:
    return {x.tobytes() + np.asarray(y).tobytes() for x, y in zip(a.x, a.y, strict=True)}


def same(a: Arrays | None, b: Arrays | None) -> bool:
    if a is None or b is None:
        return a is b
    return np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def check_cut(name: str, uploads: MemoryUploads | None = None, **options: object) -> None:
    """With max_samples, the training part is `max_samples` of the uncut one; the test and
    validation parts are the same samples either way."""
    whole = split_data(DatasetSpec(name=name, **options), uploads)
    cut = split_data(DatasetSpec(name=name, max_samples=40, **options), uploads)
    assert len(cut.train) == 40 < len(whole.train)
    assert rows(cut.train) <= rows(whole.train)
    assert same(cut.val, whole.val) and same(cut.test, whole.test)


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_built_in_data_set_trains_on_max_samples(name: str) -> None:
    generated = "n_samples" in DATASETS.get(name).options
    check_cut(
        name,
        n_samples=200 if generated else None,
        test_split=0.1,
        validation_split=0.25,
    )


def test_every_upload_format_trains_on_max_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=120).round(3), rng.normal(size=120).round(3)
    label = np.where(a + b > 0, "yes", "no")
    csv = tmp_path / "t.csv"
    lines = [f"{i},{j},{k}\n" for i, j, k in zip(a, b, label, strict=True)]
    csv.write_text("a,b,label\n" + "".join(lines))
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": a, "b": b, "label": label}), parquet)
    npz = tmp_path / "t.npz"
    np.savez(npz, x=np.stack([a, b], axis=1), y=(label == "yes").astype(np.int64))
    for path in (csv, parquet, npz):
        target = None if path.suffix == ".npz" else "label"
        arrays = parse_upload(path, UploadOptions(target=target)).arrays
        uploads = MemoryUploads({UPLOAD_ID: arrays, VALIDATION_ID: arrays.take(np.arange(30))})
        check_cut(UPLOAD_ID, uploads, test_split=0.2, validation_split=0.2)
        check_cut(UPLOAD_ID, uploads, validation=VALIDATION_ID)


def test_the_cut_keeps_each_class_share_and_depends_on_the_seed_only() -> None:
    spec = DatasetSpec(name="digits", validation_split=0.2, max_samples=100)
    train = split_data(spec).train
    counts = np.bincount(train.y, minlength=10)
    assert counts.min() >= 9 and counts.max() <= 11
    assert same(split_data(spec).train, train)  # every run, attempt and trial: the same cut
    other = split_data(spec.model_copy(update={"seed": 1})).train
    assert rows(other) != rows(train)


def test_max_samples_above_the_training_part_keeps_all_of_it() -> None:
    whole = split_data(DatasetSpec(name="iris", validation_split=0.2))
    above = split_data(DatasetSpec(name="iris", validation_split=0.2, max_samples=10_000))
    assert len(above.train) == 120 and same(above.train, whole.train)


def memorize(epochs: int, **training: object) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": "digits", "validation_split": 0.2, "max_samples": 100},
            "model": {
                "layers": [
                    {"type": "dense", "units": 64, "activation": "relu"},
                    {"type": "dense", "units": 10, "activation": "softmax"},
                ]
            },
            "training": {
                "loss": "sparse_categorical_crossentropy",
                "optimizer": {"type": "adam", "learning_rate": 0.01},
                "metrics": ["accuracy"],
                "batch_size": 32,
                "epochs": epochs,
                "seed": 0,
                **training,
            },
        }
    )


def test_a_small_mlp_memorizes_100_digits() -> None:
    """The seeds' sanity check, one field: 60 epochs of 4 steps, 240 steps in all."""
    result = train_spec(memorize(60), Settings(), device=torch.device("cpu"))
    assert (result.train_samples, result.val_samples) == (100, 359)
    last = result.history.epochs[-1]
    assert last["accuracy"] == 1.0 and last["loss"] < 0.05
    assert last["val_accuracy"] < 1.0  # memorized, not solved: the validation part is whole


class KeptCheckpoints:
    """A checkpoint after every epoch, kept in memory (what CheckpointWriter writes away)."""

    def __init__(self) -> None:
        self.snapshots: dict[int, Snapshot] = {}
        self.times = WriteTimes()

    def due(self, epoch: int, last_epoch: bool) -> bool:
        return True

    def save(self, snapshot: Snapshot, *, last: bool, best: bool) -> None:
        self.snapshots[snapshot.epoch] = snapshot


def test_a_batch_larger_than_the_cut_set_is_one_step_and_a_resume_cuts_the_same() -> None:
    """batch_size 256 over 100 samples: one step an epoch, as for any small set; a run resumed
    from its epoch-3 checkpoint cuts the same samples and ends as the uninterrupted one."""
    spec = memorize(6, batch_size=256)
    kept = KeptCheckpoints()
    whole = train_spec(spec, Settings(), device=torch.device("cpu"), checkpoints=kept)  # type: ignore[arg-type]
    assert [kept.snapshots[e].step for e in range(1, 7)] == [1, 2, 3, 4, 5, 6]
    resumed = train_spec(spec, Settings(), device=torch.device("cpu"), resume=kept.snapshots[3])
    assert resumed.history.epochs == whole.history.epochs
    expected, got = whole.network.state_dict(), resumed.network.state_dict()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
