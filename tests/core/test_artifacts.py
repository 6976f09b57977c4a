"""The artifacts store's contract, on a folder and on a real S3-protocol server (moto)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.artifacts import ArtifactsUnavailable, FolderArtifacts, S3Artifacts, open_artifacts
from core.artifacts.s3 import PART_BYTES
from core.settings import Settings
from tests.s3 import Relay, S3Server
from tests.servers import free_port


@dataclass
class Store:
    store: FolderArtifacts | S3Artifacts
    keys: Callable[[], list[str]]  # everything the store holds, looked at from outside it


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "folder":
        root = tmp_path / "store"
        root.mkdir()
        return Store(
            FolderArtifacts(root),
            lambda: sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
        )
    request.getfixturevalue("s3_env")
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket()
    return Store(
        S3Artifacts(f"s3://{bucket}/some/prefix", endpoint_url=server.endpoint),
        lambda: [k.removeprefix("some/prefix/") for k in server.keys(bucket)],
    )


def test_write_from_streams_a_file_into_place_and_returns_its_size(store: Store) -> None:
    s = store.store
    size = s.write_from("a/b.bin", lambda path: path.write_bytes(b"x" * 1000))
    assert size == 1000 and s.read("a/b.bin") == b"x" * 1000
    s.write("a/b.bin", b"new")  # over the old one
    assert s.read("a/b.bin") == b"new" and s.exists("a/b.bin")
    assert store.keys() == ["a/b.bin"]  # no temporary left


def test_a_failed_fill_leaves_the_old_object_and_no_temporary(store: Store) -> None:
    store.store.write("k", b"old")

    def half(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        store.store.write_from("k", half)
    assert store.store.read("k") == b"old"
    assert store.keys() == ["k"]


def test_a_missing_key_reads_as_file_not_found_and_deletes_quietly(store: Store) -> None:
    with pytest.raises(FileNotFoundError):
        store.store.read("jobs/nope/model.safetensors")
    assert not store.store.exists("jobs/nope/model.safetensors")
    store.store.delete("jobs/nope/model.safetensors")  # nothing happens


def test_delete_prefix_removes_one_folder_and_nothing_beside_it(store: Store) -> None:
    for key in ("jobs/a/1.bin", "jobs/a/deep/2.bin", "jobs/ab/3.bin", "jobs/b/4.bin"):
        store.store.write(key, b"x")
    store.store.delete_prefix("jobs/a/")
    assert store.keys() == ["jobs/ab/3.bin", "jobs/b/4.bin"]
    with pytest.raises(ValueError, match="folder-like prefix"):
        store.store.delete_prefix("jobs")
    with pytest.raises(ValueError, match="folder-like prefix"):
        store.store.delete_prefix("/")


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/abs", "a//b", "./a"])
def test_a_key_cannot_escape_the_store(store: Store, key: str) -> None:
    with pytest.raises(ValueError, match="escapes"):
        store.store.write(key, b"x")
    with pytest.raises(ValueError, match="escapes"):
        store.store.read(key)
    assert store.keys() == []


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(
    s3_server: S3Server, s3_env: None
) -> None:
    bucket = s3_server.new_bucket()
    store = S3Artifacts(f"s3://{bucket}", endpoint_url=s3_server.endpoint)
    data = bytes(range(256)) * ((2 * PART_BYTES + 1000) // 256)
    assert store.write_from("big.bin", lambda path: path.write_bytes(data)) == len(data)
    assert store.read("big.bin") == data
    etag = s3_server.client().head_object(Bucket=bucket, Key="big.bin")["ETag"]
    assert etag.strip('"').endswith("-3")  # a multipart upload's ETag counts its parts


def test_the_factory_picks_the_folder_or_the_bucket(tmp_path: Path, s3_env: None) -> None:
    folder = open_artifacts(Settings(artifacts_dir=tmp_path))
    assert isinstance(folder, FolderArtifacts) and folder.root == tmp_path
    bucket = open_artifacts(
        Settings(artifacts_url="s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:9")
    )
    assert isinstance(bucket, S3Artifacts)
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        Settings(artifacts_url="gs://bucket")


def test_an_unreachable_store_is_unavailable_not_missing(s3_env: None) -> None:
    store = S3Artifacts("s3://bucket", endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ArtifactsUnavailable, match="unavailable"):
        store.read("k")
    with pytest.raises(ArtifactsUnavailable):
        store.write_from("k", lambda path: path.write_bytes(b"x"))


def test_a_patient_store_waits_out_an_outage(
    s3_server: S3Server, s3_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay refuses connections for 3 s: the write keeps trying, then lands whole."""
    bucket = s3_server.new_bucket()
    relay = Relay(int(s3_server.endpoint.rsplit(":", 1)[1]))
    store = S3Artifacts(f"s3://{bucket}", endpoint_url=relay.endpoint, patience=60)
    relay.cut()
    restorer = threading.Timer(3.0, relay.restore)
    restorer.start()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="core.artifacts.s3"):
        store.write("jobs/j/model.safetensors", b"weights")
    assert time.monotonic() - started >= 2.5  # it did wait for the store
    assert "unavailable; retrying" in caplog.text
    assert s3_server.keys(bucket) == ["jobs/j/model.safetensors"]
    assert store.read("jobs/j/model.safetensors") == b"weights"
    restorer.join()
    relay.cut()
