"""NPZ uploads (`numpy.savez`): an array `x` of features, channels-last for images, and `y`.

Loaded with `allow_pickle=False`: an array of Python objects could run code when unpickled, so
it is refused. The zip's declared sizes are checked before anything is decompressed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from core.data.upload_types import MAX_FEATURE_RANK, Encoding, UploadOptions, refuse

SHAPES = (
    "(rows, features), (rows, steps, features), (rows, height, width, channels) or "
    "(rows, frames, height, width, channels)"
)


def read_npz(path: Path, options: UploadOptions) -> tuple[np.ndarray, np.ndarray, Encoding]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = {i.filename.removesuffix(".npy"): i.file_size for i in archive.infolist()}
    except zipfile.BadZipFile as e:
        raise refuse(("file",), f"not a readable NPZ (zip) file: {e}") from None
    for name in ("x", "y"):
        if name not in members:
            found = ", ".join(sorted(members)) or "none"
            raise refuse(
                ("file", name),
                f"the NPZ has no array {name!r} (arrays found: {found}); expected x "
                "(the features) and y (the targets), as numpy.savez(f, x=x, y=y)",
                "missing",
            )
    declared = members["x"] + members["y"]
    limit = options.max_values * 8 + (1 << 20)  # float64 features, and room for y and headers
    if declared > limit:
        raise refuse(
            ("file",),
            f"the NPZ unpacks to {declared:,} bytes; at most {limit:,} "
            "(EPOCHAL_MAX_DATA_VALUES values of 8 bytes)",
            "too_large",
        )
    with np.load(path, allow_pickle=False) as npz:
        x, y = _array(npz, "x"), _array(npz, "y")
    if x.dtype.kind not in "biuf":
        raise refuse(("file", "x"), f"x has dtype {x.dtype}; expected numbers (bool, int or float)")
    if not 2 <= x.ndim <= MAX_FEATURE_RANK + 1:
        raise refuse(("file", "x"), f"x has shape {x.shape}; expected {SHAPES}", "wrong_shape")
    if 0 in x.shape[1:]:
        raise refuse(("file", "x"), f"x has shape {x.shape}; no dimension may be 0", "wrong_shape")
    if y.ndim == 0 or y.dtype.kind not in "biufUS":
        raise refuse(
            ("file", "y"),
            f"y has dtype {y.dtype} and shape {y.shape}; expected one number or text label per row",
        )
    return x, y, Encoding()


def _array(npz: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    try:
        return npz[name]
    except ValueError as e:  # "Object arrays cannot be loaded when allow_pickle=False"
        raise refuse(
            ("file", name),
            f"{name} holds pickled Python objects, which are never loaded ({e}); save it as "
            "numbers (e.g. x.astype(np.float32))",
            "pickled",
        ) from None
    except (OSError, zipfile.BadZipFile) as e:
        raise refuse(("file", name), f"{name} cannot be read: {e}") from None
