"""The upload readers in bounded time and memory: a column limit read from the header, NPZ
members checked from their .npy header and zip entry before any data is read, Parquet checked
from its metadata, and a deadline that stops every reader (and stores nothing)."""

from __future__ import annotations

import io
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from core.artifacts import FolderArtifacts
from core.data import csv_upload
from core.data.upload_types import UploadOptions
from core.data.uploads import parse_upload
from core.errors import TimedOutError, UnsupportedFormatError, UploadError
from core.store import datasets as dataset_store
from core.store.db import session_factory
from core.store.models import Dataset


def write(tmp_path: Path, data: bytes | str, name: str = "upload") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def wide_csv(columns: int, rows: int = 12) -> str:
    header = ",".join(f"c{i}" for i in range(columns - 1)) + ",label"
    row = ",".join(str(i % 3) for i in range(columns - 1))
    return header + "\n" + "".join(f"{row},{i % 2}\n" for i in range(rows))


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


X, Y = np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20) % 2


def issue(error: UploadError) -> tuple[tuple, str]:
    return tuple(error.issues[0].loc), error.issues[0].type


def test_a_wide_csv_reads_in_linear_time(tmp_path: Path) -> None:
    path = write(tmp_path, wide_csv(40_000))
    start = time.monotonic()
    parsed = parse_upload(path, UploadOptions(target="label", max_columns=50_000))
    assert time.monotonic() - start < 10  # was 17 s of quadratic duplicate counting
    assert parsed.arrays.x.shape == (12, 39_999)


def test_the_column_limit_is_checked_at_the_header(tmp_path: Path) -> None:
    with pytest.raises(UploadError) as e:
        parse_upload(write(tmp_path, wide_csv(5)), UploadOptions(target="label", max_columns=4))
    assert issue(e.value) == (("file", "header"), "too_many_columns")
    assert "5 columns" in str(e.value) and "at most 4" in str(e.value)
    quoted = '"a,b,c,d",label\n' + "1,0\n2,1\n" * 6  # commas inside quotes are not columns
    parsed = parse_upload(write(tmp_path, quoted), UploadOptions(target="label", max_columns=2))
    assert parsed.encoding.columns == ["a,b,c,d"]


def test_duplicate_and_unknown_column_names_are_named(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="repeated: 'a'"):
        parse_upload(write(tmp_path, "a,a,label\n1,2,0\n"), UploadOptions(target="label"))
    with pytest.raises(UploadError, match="and 9,980 more"):
        parse_upload(write(tmp_path, wide_csv(10_000)), UploadOptions(target="nope"))


def test_a_line_past_the_line_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_upload, "MAX_LINE_CHARS", 100)
    with pytest.raises(UploadError) as e:
        parse_upload(write(tmp_path, "a" * 200 + ",label\n1,0\n"), UploadOptions(target="label"))
    assert issue(e.value) == (("file", 1), "too_long")


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_npz_compressions_other_than_stored_and_deflate_are_refused(
    tmp_path: Path, method: int
) -> None:
    body = zipped({"x.npy": npy(X), "y.npy": npy(Y)}, method)
    with pytest.raises(UnsupportedFormatError) as e:
        parse_upload(write(tmp_path, body), UploadOptions())
    assert issue(e.value) == (("file", "x"), "unsupported_compression")


def test_npz_written_by_numpy_reads_whole(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.asfortranarray(X), y=np.array(["a", "b"] * 10))
    parsed = parse_upload(write(tmp_path, buffer.getvalue()), UploadOptions())
    np.testing.assert_array_equal(parsed.arrays.x, X)
    assert parsed.encoding.classes == ["a", "b"]


def test_an_npz_declaring_more_values_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    body = zipped({"x.npy": npy_header((10**12, 10)) + bytes(80), "y.npy": npy(Y)})
    with pytest.raises(UploadError) as e:
        parse_upload(write(tmp_path, body), UploadOptions())
    assert issue(e.value) == (("file", "x"), "too_large")
    assert "'x.npy'" in str(e.value) and "250,000,000" in str(e.value)


@pytest.mark.parametrize(
    ("data", "kind"),
    [(npy(X)[:-8], "truncated"), (npy(X) + bytes(8), "too_large")],
    ids=["shorter", "longer"],
)
def test_an_npz_member_must_hold_what_its_header_declares(
    tmp_path: Path, data: bytes, kind: str
) -> None:
    body = zipped({"x.npy": data, "y.npy": npy(Y)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(UploadError) as e:
        parse_upload(write(tmp_path, body), UploadOptions())
    assert issue(e.value) == (("file", "x"), kind)


def test_an_npz_with_a_huge_zip_directory_is_refused_before_it_is_read(tmp_path: Path) -> None:
    members = {"x.npy": npy(X), "y.npy": npy(Y)} | {f"m{i}": b"" for i in range(1_001)}
    with pytest.raises(UploadError) as e:
        parse_upload(write(tmp_path, zipped(members)), UploadOptions())
    assert issue(e.value) == (("file",), "too_large")
    assert "1,003 members" in str(e.value)


def test_an_object_array_is_refused_from_its_header(tmp_path: Path) -> None:
    objects = npy_header((20, 2), "|O") + b"\x80\x04N."  # the pickle is never read
    with pytest.raises(UploadError) as e:
        parse_upload(write(tmp_path, zipped({"x.npy": objects, "y.npy": npy(Y)})), UploadOptions())
    assert issue(e.value) == (("file", "x"), "pickled")


def test_parquet_is_checked_from_its_metadata(tmp_path: Path) -> None:
    table = pa.table({f"c{i}": list(range(20)) for i in range(5)} | {"label": [0, 1] * 10})
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(UploadError) as e:
        parse_upload(tmp_path / "t.parquet", UploadOptions(target="label", max_columns=4))
    assert issue(e.value) == (("file", "header"), "too_many_columns")
    with pytest.raises(UploadError) as e:
        parse_upload(tmp_path / "t.parquet", UploadOptions(target="label", max_values=99))
    assert issue(e.value) == (("file",), "too_large")
    parsed = parse_upload(tmp_path / "t.parquet", UploadOptions(target="label", max_values=100))
    assert parsed.arrays.x.shape == (20, 5)


def files(tmp_path: Path) -> dict[str, Path]:
    pq.write_table(pa.table({"a": list(range(20)), "label": [0, 1] * 10}), tmp_path / "p")
    return {
        "csv": write(tmp_path, wide_csv(3, rows=20_000), "c"),
        "npz": write(tmp_path, zipped({"x.npy": npy(X), "y.npy": npy(Y)}), "n"),
        "parquet": tmp_path / "p",
    }


@pytest.mark.parametrize("fmt", ["csv", "npz", "parquet"])
def test_every_reader_stops_at_its_deadline(tmp_path: Path, fmt: str) -> None:
    target = None if fmt == "npz" else "label"
    expired = UploadOptions(target=target, deadline=time.monotonic() - 1, timeout=5)
    with pytest.raises(TimedOutError, match="EPOCHAL_UPLOAD_TIMEOUT_SECONDS"):
        parse_upload(files(tmp_path)[fmt], expired)


def test_an_ingest_stopped_by_its_deadline_stores_nothing(
    tmp_path: Path, database_url: str
) -> None:
    sessions = session_factory(database_url)
    artifacts = FolderArtifacts(tmp_path / "artifacts")
    options = UploadOptions(target="label", deadline=time.monotonic() - 1, timeout=5)
    upload = dataset_store.Upload(files(tmp_path)["csv"], "0" * 64, 1, "late", options)
    with pytest.raises(TimedOutError):
        dataset_store.ingest(sessions, artifacts, upload)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").rglob("*"))


def test_a_column_numeric_in_early_blocks_and_text_later_keeps_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_upload, "ROWS_PER_BLOCK", 4)
    cells = ["1", "2.0", "", "1"] * 3 + ["n/a", "2.0"] * 2

    def table(cells: list[str]) -> Path:
        rows = "".join(f"{c},{i},{i % 2}\n" for i, c in enumerate(cells))
        return write(tmp_path, "code,size,label\n" + rows)

    with pytest.raises(UploadError, match="column 'code', row 3: missing"):
        parse_upload(table(cells), UploadOptions(target="label"))
    parsed = parse_upload(table([c or "1" for c in cells]), UploadOptions(target="label"))
    assert parsed.encoding.categories == {"code": ["1", "2.0", "n/a"]}
