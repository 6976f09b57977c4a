"""`epochal from-keras` and `Client.from_keras` against a real API: the spec printed, written,
or submitted; a refusal naming the Keras layer and argument."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from epochal_client import Client
from tests.api.test_from_keras import BODY, MODEL, dense
from tests.client.test_cli import run

pytestmark = pytest.mark.e2e


def files(tmp_path: Path, model: dict) -> tuple[str, str, str]:
    paths = tmp_path / "model.json", tmp_path / "compile.json", tmp_path / "fit.json"
    for path, value in zip(
        paths, (model, BODY["compile"], {**BODY["fit"], "epochs": 1}), strict=True
    ):
        path.write_text(json.dumps(value))
    return tuple(map(str, paths))


def test_from_keras_prints_writes_and_submits_the_spec(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, compile_, fit = files(tmp_path, MODEL)
    common = ("--dataset", "digits", "--compile", compile_, "--fit", fit, "--server", url)
    code, out, err = run(capsys, "from-keras", model, *common)
    assert code == 0, err
    spec = yaml.safe_load(out)
    assert [layer["name"] for layer in spec["model"]["layers"]] == ["hidden", "out"]
    assert spec["training"]["epochs"] == 1
    written = tmp_path / "spec.json"
    code, out, err = run(capsys, "from-keras", model, *common, "-o", str(written), "--json")
    assert code == 0, err
    assert json.loads(written.read_text()) == json.loads(out) == spec

    client = Client(url)
    assert client.from_keras(json.dumps(MODEL), dataset="digits", compile=compile_, fit=fit) == spec
    as_strings = {"compile": json.dumps(BODY["compile"]), "fit": Path(fit).read_text()}
    assert client.from_keras(MODEL, dataset="digits", **as_strings) == spec
    with pytest.raises(ValueError, match="the string: the fit arguments is not valid JSON"):
        client.from_keras(MODEL, dataset="digits", fit='{"epochs": 1')
    code, out, err = run(capsys, "from-keras", model, *common, "--submit")
    assert code == 0, err
    job = client.get(out.strip())
    assert job.spec["model"]["layers"] == spec["model"]["layers"]
    client.cancel(job.id)


def test_a_refusal_names_the_keras_layer_and_argument(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = {**MODEL, "config": {"name": "m", "layers": [dense("head", 10, autocast=False)]}}
    path, compile_, _ = files(tmp_path, model)
    code, out, err = run(
        capsys, "from-keras", path, "--dataset", "digits", "--compile", compile_, "--server", url
    )
    assert code == 3 and out == ""
    assert "model.layers.head.autocast: " in err
