"""NPZ uploads (`numpy.savez`): an array `x` of features, channels-last for images, and `y`.

Read member by member from the zip, never with `numpy.load`: each member's compression must be
stored or deflate (`numpy.savez`, `numpy.savez_compressed`); its `.npy` header (dtype, shape)
is read first and checked against EPOCHAL_MAX_DATA_VALUES; only then is an array of exactly the
declared size filled, decompressing as it goes, and a member that holds more or less than its
header declares is refused. The zip's own size fields are not trusted. Arrays of Python objects
(pickles, which could run code) are refused from their header.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from core.data.upload_types import MAX_FEATURE_RANK, Encoding, UploadOptions, refuse
from core.errors import SpecIssue, UnsupportedFormatError

SHAPES = (
    "(rows, features), (rows, steps, features), (rows, height, width, channels) or "
    "(rows, frames, height, width, channels)"
)
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
KINDS = {"x": "biuf", "y": "biufUS"}  # numbers; y may hold text labels too
MAX_HEADER_BYTES = 10_000  # of a member's .npy header (numpy's own default limit)
CHUNK_BYTES = 1 << 20
MAX_MEMBERS = 1_000  # a zip's directory is read whole when opened: bound it first
MAX_DIRECTORY_BYTES = 1 << 20


def read_npz(path: Path, options: UploadOptions) -> tuple[np.ndarray, np.ndarray, Encoding]:
    _check_directory(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {i.filename.removesuffix(".npy"): i for i in archive.infolist()}
            for name in ("x", "y"):
                if name not in members:
                    found = ", ".join(sorted(members)) or "none"
                    raise refuse(
                        ("file", name),
                        f"the NPZ has no array {name!r} (arrays found: {found}); expected x "
                        "(the features) and y (the targets), as numpy.savez(f, x=x, y=y)",
                        "missing",
                    )
                _check_compression(name, members[name])
            x = _read_member(archive, members["x"], "x", options)
            y = _read_member(archive, members["y"], "y", options)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as e:
        raise refuse(("file",), f"not a readable NPZ (zip) file: {e}") from None
    if not 2 <= x.ndim <= MAX_FEATURE_RANK + 1:
        raise refuse(("file", "x"), f"x has shape {x.shape}; expected {SHAPES}", "wrong_shape")
    if 0 in x.shape[1:]:
        raise refuse(("file", "x"), f"x has shape {x.shape}; no dimension may be 0", "wrong_shape")
    if y.ndim == 0:
        raise refuse(
            ("file", "y"),
            f"y has dtype {y.dtype} and shape {y.shape}; expected one number or text label per row",
        )
    return x, y, Encoding()


def _check_directory(path: Path) -> None:
    """Refuse a zip whose central directory (read whole by zipfile) is past the bounds, from
    its end record; a file without one is left for zipfile to refuse."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - (1 << 16) - 22))  # the end record, after a comment of 64 KiB at most
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return
    members, directory = struct.unpack_from("<HI", tail, at + 10)
    if members > MAX_MEMBERS or directory > MAX_DIRECTORY_BYTES:
        raise refuse(
            ("file",),
            f"the NPZ's zip directory lists {members:,} members in {directory:,} bytes; at most "
            f"{MAX_MEMBERS:,} members in {MAX_DIRECTORY_BYTES:,} bytes",
            "too_large",
        )


def _check_compression(name: str, info: zipfile.ZipInfo) -> None:
    if info.compress_type not in COMPRESSIONS:
        raise UnsupportedFormatError(
            [
                SpecIssue(
                    ("file", name),
                    f"the NPZ member {info.filename!r} is compressed with method "
                    f"{info.compress_type} ({_method(info.compress_type)}); expected stored or "
                    "deflate, as numpy.savez or numpy.savez_compressed write",
                    "unsupported_compression",
                )
            ]
        )


def _method(number: int) -> str:
    return {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}.get(number, "unsupported")


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, options: UploadOptions
) -> np.ndarray:
    with archive.open(info) as stream:
        dtype, shape, fortran = _header(stream, name)
        _check_declared(name, info.filename, dtype, shape, options)
        array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        view = memoryview(array.reshape(-1, order="A").view(np.uint8))  # no copy: contiguous
        filled = 0
        while filled < len(view):
            options.check_time()
            got = stream.readinto(view[filled : filled + CHUNK_BYTES])
            if not got:
                raise refuse(
                    ("file", name),
                    f"{name} ends after {filled:,} of the {len(view):,} bytes its header "
                    f"declares (shape {shape}, dtype {dtype})",
                    "truncated",
                )
            filled += got
        if stream.read(1):
            raise refuse(
                ("file", name),
                f"{name} holds more than the {len(view):,} bytes its header declares "
                f"(shape {shape}, dtype {dtype})",
                "too_large",
            )
    return array


def _header(stream: IO[bytes], name: str) -> tuple[np.dtype, tuple[int, ...], bool]:
    """The member's .npy header: (dtype, shape, Fortran order). Pickles are refused here."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(
                stream, max_header_size=MAX_HEADER_BYTES
            )
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(
                stream, max_header_size=MAX_HEADER_BYTES
            )
        else:
            raise ValueError(f".npy format version {version}; expected 1.0 or 2.0")
    except ValueError as e:
        raise refuse(("file", name), f"{name} is not a readable .npy array: {e}") from None
    if dtype.hasobject or dtype.kind not in KINDS[name]:
        what = "pickled Python objects, which are never loaded" if dtype.hasobject else dtype
        raise refuse(
            ("file", name),
            f"{name} has dtype {what}; expected "
            + ("numbers (bool, int or float)" if name == "x" else "numbers or text labels")
            + " (e.g. x.astype(np.float32))",
            "pickled" if dtype.hasobject else "wrong_type",
        )
    return dtype, shape, fortran


def _check_declared(
    name: str, member: str, dtype: np.dtype, shape: tuple[int, ...], options: UploadOptions
) -> None:
    if any(size < 0 for size in shape):
        raise refuse(("file", name), f"{name} declares shape {shape}", "wrong_shape")
    values = 1
    for size in shape:
        values *= size  # Python integers: a declared 10**12 rows cannot overflow
    if values > options.max_values:
        raise refuse(
            ("file", name),
            f"the NPZ member {member!r} declares shape {shape}, {values:,} values; the limit is "
            f"{options.max_values:,} (EPOCHAL_MAX_DATA_VALUES)",
            "too_large",
        )
    if dtype.itemsize == 0:
        raise refuse(("file", name), f"{name} has dtype {dtype} of size 0", "wrong_type")
    if values * dtype.itemsize > options.max_values * 8:
        raise refuse(
            ("file", name),
            f"the NPZ member {member!r} declares {values * dtype.itemsize:,} bytes (shape "
            f"{shape}, dtype {dtype}); the limit is {options.max_values * 8:,} "
            "(EPOCHAL_MAX_DATA_VALUES values of 8 bytes)",
            "too_large",
        )
