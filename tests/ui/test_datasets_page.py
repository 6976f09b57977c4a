"""The data sets page: the built-ins, and a CSV uploaded from the page with its progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Stack
from tests.ui.helpers import expect

pytestmark = pytest.mark.e2e

FLOWERS = Path(__file__).resolve().parents[2] / "examples" / "flowers.csv"


def test_a_csv_uploaded_from_the_page_is_listed_with_its_columns_and_classes(
    page: Any, stack: Stack
) -> None:
    page.goto("/#/datasets")
    table = page.get_by_test_id("datasets-table")
    builtin = table.locator('tr[data-dataset-id="digits"]')
    expect(builtin).to_contain_text("builtin")
    assert builtin.locator("td").all_inner_texts()[4:7] == ["1,797", "64", "10"]

    page.get_by_test_id("upload-file").set_input_files(str(FLOWERS))
    page.get_by_test_id("upload-target").fill("species")
    page.get_by_test_id("upload-submit").click()
    result = page.get_by_test_id("upload-result")
    expect(result).to_contain_text("uploaded as", timeout=15_000)
    dataset_id = result.locator("[data-dataset-id]").get_attribute("data-dataset-id")
    expect(page.get_by_test_id("upload-progress")).to_have_js_property("value", 100)

    row = table.locator(f'tr[data-dataset-id="{dataset_id}"]')
    expect(row).to_contain_text("flowers.csv")
    for shown in ("length", "width", "soil", "species", "setosa", "versicolor", "classification"):
        expect(row).to_contain_text(shown)


def test_a_refused_upload_shows_the_problem_s_detail(browser: Any, stack: Stack) -> None:
    # Its own page: the browser logs the 422 on the console, which the `page` fixture fails on.
    context = browser.new_context(base_url=stack.url)
    try:
        page = context.new_page()
        page.goto("/#/datasets")
        page.get_by_test_id("upload-file").set_input_files(str(FLOWERS))
        page.get_by_test_id("upload-target").fill("no_such_column")
        page.get_by_test_id("upload-submit").click()
        expect(page.get_by_test_id("upload-result").locator(".error")).to_contain_text(
            "no_such_column", timeout=15_000
        )
        expect(page.get_by_test_id("upload-progress")).to_have_js_property("value", 0)
    finally:
        context.close()
