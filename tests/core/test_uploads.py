"""Reading uploaded files into normalized arrays: CSV, NPZ and Parquet, and what each refuses."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.data.upload_types import UploadOptions
from core.data.uploads import from_npz, parse_upload, write_npz
from core.errors import UnsupportedFormatError, UploadError

CSV = "size,color,weight,species\n" + "".join(
    f"{i % 7 + 0.5},{['red', 'green', 'blue'][i % 3]},{i * 1.5},{['cat', 'dog'][i % 2]}\n"
    for i in range(12)
)


def write(tmp_path: Path, data: bytes | str, name: str = "upload") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_csv_becomes_float_features_with_text_columns_one_hot(tmp_path: Path) -> None:
    parsed = parse_upload(write(tmp_path, CSV), UploadOptions(target="species"))
    assert parsed.format == "csv" and parsed.task == "classification"
    assert parsed.feature_shape == (5,) and parsed.num_classes == 2
    assert parsed.encoding.columns == ["size", "color", "weight"]
    assert parsed.encoding.features == [
        "size",
        "color=blue",
        "color=green",
        "color=red",
        "weight",
    ]
    assert parsed.encoding.classes == ["cat", "dog"]
    x, y = parsed.arrays.x, parsed.arrays.y
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x[1].tolist() == [1.5, 0.0, 1.0, 0.0, 1.5]  # row 1: green
    assert y[:4].tolist() == [0, 1, 0, 1]


def test_targets_decide_the_task_unless_it_is_given(tmp_path: Path) -> None:
    rows = "a,b\n" + "".join(f"{i},{i * 0.37}\n" for i in range(20))
    path = write(tmp_path, rows)
    regression = parse_upload(path, UploadOptions(target="b"))
    assert (regression.task, regression.target_shape) == ("regression", (1,))
    assert regression.arrays.y.dtype == np.float32 and regression.arrays.y.shape == (20, 1)
    classes = parse_upload(path, UploadOptions(target="a"))  # 20 distinct integers
    assert classes.task == "classification" and classes.num_classes == 20
    forced = parse_upload(path, UploadOptions(target="a", task="regression"))
    assert forced.task == "regression"


def test_integer_labels_that_skip_ids_are_mapped_and_kept(tmp_path: Path) -> None:
    x = np.arange(40, dtype=np.float32).reshape(10, 2, 2, 1)
    y = np.array([3, 7, 3, 7, 9, 9, 3, 7, 9, 3])
    parsed = parse_upload(write(tmp_path, npz(x=x, y=y)), UploadOptions())
    assert parsed.format == "npz" and parsed.feature_shape == (2, 2, 1)
    assert parsed.encoding.classes == [3, 7, 9]
    assert parsed.arrays.y.tolist() == [0, 1, 0, 1, 2, 2, 0, 1, 2, 0]
    write_npz(parsed.arrays, tmp_path / "stored")  # what the store keeps
    again = from_npz((tmp_path / "stored").read_bytes())
    assert np.array_equal(again.x, parsed.arrays.x) and np.array_equal(again.y, parsed.arrays.y)


def test_parquet_reads_like_the_csv(tmp_path: Path) -> None:
    table = pa.table(
        {
            "size": [i % 7 + 0.5 for i in range(12)],
            "color": [["red", "green", "blue"][i % 3] for i in range(12)],
            "weight": [i * 1.5 for i in range(12)],
            "species": [["cat", "dog"][i % 2] for i in range(12)],
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    parquet = parse_upload(path, UploadOptions(target="species"))
    csv = parse_upload(write(tmp_path, CSV), UploadOptions(target="species"))
    assert parquet.format == "parquet"
    assert parquet.encoding == csv.encoding
    assert np.array_equal(parquet.arrays.x, csv.arrays.x)
    assert np.array_equal(parquet.arrays.y, csv.arrays.y)


def refusal(tmp_path: Path, data: bytes | str, **options: object) -> UploadError:
    with pytest.raises(UploadError) as caught:
        parse_upload(write(tmp_path, data), UploadOptions(**options))  # type: ignore[arg-type]
    return caught.value


def test_a_missing_cell_is_named_by_column_and_row(tmp_path: Path) -> None:
    bad = CSV.replace("\n2.5,", "\nnan,", 1)  # the size of row 3 (i = 2)
    issue = refusal(tmp_path, bad, target="species").issues[0]
    assert issue.loc == ("file", "size", 3) and "row 3" in issue.msg and "NaN" in issue.msg


def test_a_typo_in_a_numeric_column_is_explained(tmp_path: Path) -> None:
    rows = "a,b,y\n" + "".join(f"{i},{i if i != 4 else '4x'},{i % 2}\n" for i in range(60))
    issue = refusal(tmp_path, rows, target="y", max_categories=50).issues[0]
    assert issue.loc == ("file", "b") and issue.type == "too_many_categories"
    assert "'4x'" in issue.msg and "60 distinct" in issue.msg


def test_npz_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    x = np.empty(12, dtype=object)
    x[:] = [{"a": i} for i in range(12)]
    issue = refusal(tmp_path, npz(x=x, y=np.arange(12) % 2)).issues[0]
    assert issue.loc == ("file", "x") and issue.type == "pickled"


def test_the_declared_format_must_match_the_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError) as caught:
        parse_upload(write(tmp_path, CSV), UploadOptions(format="npz"))
    assert "format=npz" in caught.value.issues[0].msg
