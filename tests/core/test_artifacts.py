from pathlib import Path

import pytest

from core.artifacts import FolderArtifacts


def test_write_from_streams_a_file_into_place_and_returns_its_size(tmp_path: Path) -> None:
    store = FolderArtifacts(tmp_path)
    size = store.write_from("a/b.bin", lambda path: path.write_bytes(b"x" * 1000))
    assert size == 1000 and store.read("a/b.bin") == b"x" * 1000
    store.write("a/b.bin", b"new")  # over the old one
    assert store.read("a/b.bin") == b"new" and store.exists("a/b.bin")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]  # no temporary left


def test_a_failed_fill_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    store = FolderArtifacts(tmp_path)
    store.write("k", b"old")

    def half(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        store.write_from("k", half)
    assert store.read("k") == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_a_key_cannot_escape_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        FolderArtifacts(tmp_path / "store").write("../outside", b"x")
