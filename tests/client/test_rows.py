"""epochal_client.rows: raw rows to features as at upload, numpy only (the API and offline
prediction share it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from epochal_client.inputs import check_inputs
from epochal_client.rows import RowError, read_csv_rows, rows_to_features

TABLE = {
    "columns": ["length", "soil"],
    "features": ["length", "soil=clay", "soil=sand"],
    "categories": {"soil": ["clay", "sand"]},
}
PRE = {"table": TABLE, "scaler": {"kind": "standardize", "offset": [1, 0, 0], "scale": [2, 1, 1]}}


def test_records_and_csv_encode_as_at_upload_and_scale() -> None:
    expected = np.array([[0.5, 0, 1], [1.5, 1, 0]], dtype=np.float32)
    records = [{"length": 2, "soil": "sand", "species": "x"}, {"length": 4.0, "soil": "clay"}]
    np.testing.assert_array_equal(rows_to_features(records, PRE), expected)
    text = 'species,soil,length\nx,"sand",2\ny, clay ,4\n'  # any column order, the target kept
    np.testing.assert_array_equal(rows_to_features(text, PRE), expected)


def test_each_bad_cell_is_named_with_what_is_expected() -> None:
    rows = [{"length": [1], "soil": "clay"}, {"length": 1, "soil": 3.5}, {"soil": "sand"}]
    with pytest.raises(RowError) as e:
        rows_to_features(rows, PRE)
    assert [(loc, kind) for loc, _, kind in e.value.issues] == [
        ((0, "length"), "wrong_type"),
        ((1, "soil"), "wrong_type"),
        ((2, "length"), "missing_column"),
    ]
    assert "expected one of 'clay', 'sand'" in e.value.issues[1][1]


def test_a_long_csv_is_refused_at_the_row_past_the_limit() -> None:
    with pytest.raises(RowError, match="at most 3 rows"):
        read_csv_rows("length,soil\n" + "1,clay\n" * 5, TABLE, max_rows=3)
    with pytest.raises(RowError, match="not a readable CSV"):
        read_csv_rows("length,soil\n" + '"' + "x" * 200_000 + '",clay\n', TABLE)


def test_a_text_column_between_numbers_keeps_the_upload_order() -> None:
    """The one-hot columns sit where the text column was, not at the end."""
    table = {
        "columns": ["a", "soil", "b"],
        "features": ["a", "soil=clay", "soil=sand", "b"],
        "categories": {"soil": ["clay", "sand"]},
    }
    x = rows_to_features([{"a": 1, "soil": "sand", "b": 7}], {"table": table, "scaler": None})
    np.testing.assert_array_equal(x, np.array([[1, 0, 1, 7]], dtype=np.float32))


def test_numbers_past_float32_and_odd_csv_headers_are_refused_by_name() -> None:
    with pytest.raises(RowError) as e:
        rows_to_features([{"length": 1e39, "soil": "clay"}], PRE)  # inf for the network
    assert [(loc, kind) for loc, _, kind in e.value.issues] == [((0, "length"), "wrong_type")]
    with pytest.raises(RowError, match="names 'soil' twice"):
        read_csv_rows("length,soil,soil\n1,clay,sand\n", TABLE)
    with pytest.raises(RowError, match="the header has"):
        read_csv_rows(",".join(f"c{i}" for i in range(500)) + "\n", TABLE)
    # A byte-order mark and bare carriage returns, as some spreadsheets write them.
    np.testing.assert_array_equal(
        rows_to_features("\ufefflength,soil\r2,sand\r", PRE), [[0.5, 0, 1]]
    )


def test_booleans_are_numbers_and_categories_match_as_uploaded() -> None:
    """A Parquet boolean column is numeric at upload (1 and 0), and its text is not trimmed;
    a CSV file's cells are. Predict reads both as the upload did."""
    table = {
        "columns": ["wet", "soil"],
        "features": ["wet", "soil= clay", "soil=sand"],
        "categories": {"soil": [" clay", "sand"]},
    }
    pre = {"table": table, "scaler": None}
    records = [{"wet": True, "soil": " clay"}, {"wet": False, "soil": " sand "}]
    expected = [[1, 1, 0], [0, 0, 1]]
    np.testing.assert_array_equal(rows_to_features(records, pre), expected)
    # As a CSV export of the Parquet table writes them; quoted, the spaces are kept.
    text = 'wet,soil\nTrue," clay"\nfalse, sand \n'
    np.testing.assert_array_equal(rows_to_features(text, pre), expected)
    with pytest.raises(RowError, match="unknown category 'clay'"):
        rows_to_features([{"wet": 1, "soil": "clay"}], pre)  # not the category " clay"
    with pytest.raises(RowError, match="'yes' is not a finite number"):
        rows_to_features([{"wet": "yes", "soil": "sand"}], pre)


def test_inputs_are_checked_as_the_api_checks_them() -> None:
    """epochal_client.inputs, which the API (core/serving.py parse_inputs) and the offline path
    share: shape, finite numbers within float32, and integer ids in the model's range."""
    assert check_inputs([[1, 2.5], [0, -1]], (2,)) == [1.0, 2.5, 0.0, -1.0]
    assert check_inputs([[[1], [0]]], (2, 1), ids=(0, 1)) == [1.0, 0.0]
    cases = {
        "inputs[1] has shape (3,); expected (2,), the model's input shape; the features, "
        "in order: a, b": ([[1.0, 2.0], [1.0, 2.0, 3.0]], (2,), None),
        "inputs[0][1] is NaN; expected a finite number": ([[1.0, float("nan")]], (2,), None),
        "inputs[0][0] is -Infinity; expected a finite number": ([[-float("inf"), 0]], (2,), None),
        "inputs[0][0] is 1e+39, outside float32's range": ([[1e39, 0.0]], (2,), None),
        "inputs[0][0] is true; expected a number": ([[True, 0.0]], (2,), None),
        "inputs[0][1][0] is 2; expected an integer id in [0, 1]": ([[[1], [2]]], (2, 1), (0, 1)),
        "inputs[0][0][0] is 0.5; expected an integer id in [0, 1]": (
            [[[0.5], [1]]],
            (2, 1),
            (0, 1),
        ),
        "expected at least one input; received none": ([], (2,), None),
    }
    for message, (inputs, shape, ids) in cases.items():
        with pytest.raises(RowError) as e:
            check_inputs(inputs, shape, ids, features=["a", "b"])
        assert e.value.issues[0][1].startswith(message), (message, e.value.issues)
    with pytest.raises(RowError) as e:
        check_inputs([[float("nan"), 0.0]] * 12, (2,))
    assert [loc for loc, _, _ in e.value.issues] == [("inputs", i) for i in range(10)]


def test_it_imports_without_torch_or_the_server() -> None:
    code = (
        "import sys, epochal_client.rows, epochal_client.predictions; "
        "assert not {'torch', 'core'} & set(sys.modules), sorted(sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "client" / "src")}
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/", env=env)
