import pytest

from core.spec.paths import flatten, format_path, parse_path, with_values


def test_parse_and_format_round_trip() -> None:
    assert parse_path("model.layers[0].units") == ("model", "layers", 0, "units")
    assert format_path(("model", "layers", 0, "units")) == "model.layers[0].units"


def test_with_values_sets_nested_values_and_leaves_the_original_alone() -> None:
    spec = {"model": {"layers": [{"units": 4}, {"rate": 0.1}]}, "training": {"optimizer": {}}}
    changed = with_values(
        spec, {"model.layers[0].units": 64, "training.optimizer.learning_rate": 0.01}
    )
    assert changed["model"]["layers"][0]["units"] == 64
    assert changed["training"]["optimizer"]["learning_rate"] == 0.01
    assert spec["model"]["layers"][0]["units"] == 4
    assert "learning_rate" not in spec["training"]["optimizer"]


def test_with_values_adds_missing_objects_on_the_way() -> None:
    assert with_values({}, {"training.optimizer.type": "sgd"}) == {
        "training": {"optimizer": {"type": "sgd"}}
    }


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("model.layers[5].units", "model.layers has 2 items, no [5]"),
        ("model.layers[0].units.x", "model.layers[0].units is not an object"),
        ("model[0]", "model is not a list"),
        ("model..x", "is not a spec path"),
    ],
)
def test_with_values_names_the_bad_path(path: str, message: str) -> None:
    spec = {"model": {"layers": [{"units": 4}, {"rate": 0.1}]}}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        with_values(spec, {path: 1})


def test_flatten() -> None:
    assert flatten({"a": {"b": [{"c": 1}, 2], "e": []}, "f": {}}) == {
        "a.b[0].c": 1,
        "a.b[1]": 2,
        "a.e": [],
        "f": {},
    }
