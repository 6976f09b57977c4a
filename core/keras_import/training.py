"""Keras's `compile` and `fit` arguments as the JobSpec's `training` (and the validation split
of its `dataset`), with where each value came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import Loc, SpecIssue


@dataclass(frozen=True)
class Argument:
    """A Keras `compile` or `fit` argument that the JobSpec has no field for: its values that
    change nothing are dropped (`inert`), any other is refused with `why`."""

    inert: Callable[[Any], bool]
    why: str


NO_SAMPLE_WEIGHTS = "Epochal weighs every sample alike: there are no class or sample weights"
ONE_OUTPUT = "Epochal networks have one output, whose loss counts as it is"
WHOLE_SPLITS = (
    "an epoch is one pass over the training split and validation one pass over the validation split"
)
THE_DATASET = (
    "the data come from `dataset` (a name or a dataset spec); hold out validation data with "
    "fit's validation_split or the dataset's"
)


def _none(value: Any) -> bool:
    """Null or empty: no values (Keras's `compile` writes null for an argument not given)."""
    return value is None or value in ([], {})


# Keras 3's Model.compile and Model.fit arguments that are no JobSpec field, by name.
COMPILE_ARGUMENTS: dict[str, Argument] = {
    "loss_weights": Argument(_none, ONE_OUTPUT),
    "weighted_metrics": Argument(_none, f"{NO_SAMPLE_WEIGHTS}; list these metrics in `metrics`"),
    "run_eagerly": Argument(
        lambda v: isinstance(v, bool), "PyTorch runs eagerly either way; expected true or false"
    ),
    "steps_per_execution": Argument(
        lambda v: v == 1, "Epochal runs one step per batch and its callbacks see every batch"
    ),
    "jit_compile": Argument(
        lambda v: v in (False, "auto"),
        'Epochal runs PyTorch eagerly and does not compile the network (XLA); give false or "auto"',
    ),
    "auto_scale_loss": Argument(
        lambda v: v is True, "Epochal does not scale the loss (it has no mixed_float16 policy)"
    ),
}
FIT_ARGUMENTS: dict[str, Argument] = {
    "verbose": Argument(lambda v: True, ""),  # what Keras prints; Epochal records every epoch
    "x": Argument(lambda v: v is None, THE_DATASET),
    "y": Argument(lambda v: v is None, THE_DATASET),
    "validation_data": Argument(lambda v: v is None, THE_DATASET),
    "class_weight": Argument(lambda v: v is None, NO_SAMPLE_WEIGHTS),
    "sample_weight": Argument(lambda v: v is None, NO_SAMPLE_WEIGHTS),
    "initial_epoch": Argument(
        lambda v: v == 0,
        "a job trains from epoch 0; to go on from a job's weights, clone it with init_from "
        "(POST /v1/jobs/{id}/clone)",
    ),
    "steps_per_epoch": Argument(lambda v: v is None, WHOLE_SPLITS),
    "validation_steps": Argument(lambda v: v is None, WHOLE_SPLITS),
    "validation_batch_size": Argument(
        lambda v: v is None, "Epochal validates in batches of `batch_size`"
    ),
    "validation_freq": Argument(lambda v: v == 1, "Epochal validates after every epoch"),
}
# JobSpec fields for which Keras's null means the default (no metrics, batch_size 32, no
# callbacks), by where Keras takes them.
NULL_IS_DEFAULT = (("compile", "metrics"), ("fit", "batch_size"), ("fit", "callbacks"))
# Keras values of a JobSpec field that the field does not take, each with why.
REFUSED_VALUES: dict[tuple[str, Any], str] = {
    ("shuffle", "batch"): 'Keras shuffles batch-sized chunks with "batch" (for HDF5 data); '
    "Epochal shuffles the samples (true) or not (false)",
}
# Labels inside a serialized optimizer, loss or metric: they name it and change nothing.
LABELS = ("name", "dtype")


def unlabelled(value: Any) -> Any:
    """A Keras-serialized object ({"class_name", "config"}), and those nested in it, without the
    `name` and `dtype` labels of their configs; anything else as it is."""
    if isinstance(value, list):
        return [unlabelled(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "class_name" in value and isinstance(value.get("config"), dict):
        config = {k: unlabelled(v) for k, v in value["config"].items() if k not in LABELS}
        return {**value, "config": config}
    return {k: unlabelled(v) for k, v in value.items()}


# What each call passes on to the JobSpec (anything else is in its table, or no argument of it).
PASSED_ON = {
    "compile": ("optimizer", "loss", "metrics"),
    "fit": ("batch_size", "epochs", "shuffle", "callbacks", "validation_split"),
}


def _sorted(
    args: dict[str, Any], where: str, table: dict[str, Argument]
) -> tuple[dict[str, Any], list[SpecIssue]]:
    """(the arguments passed on, the refusals): Keras's arguments in `table` dropped when they
    change nothing and refused, saying why, otherwise; a name that is no argument of this call
    (`fit`'s `loss`) is refused too, rather than taken as another call's."""
    kept, refusals = {}, []
    for key, value in args.items():
        argument = table.get(key)
        why = REFUSED_VALUES.get((key, value)) if isinstance(value, str) else None
        if argument is not None and not argument.inert(value):
            why = f"{key} is not offered: {argument.why}"
        elif argument is None and key not in PASSED_ON[where]:
            why = (
                f"{key} is no argument of Keras's {where} that Epochal takes; expected one of: "
                f"{', '.join(PASSED_ON[where])} (or Keras's others, listed in docs/vocabulary.md)"
            )
        if why:
            refusals.append(
                SpecIssue((where, key), f"{why}. Received: {value!r}", "keras_argument")
            )
        elif argument is None and not (value is None and (where, key) in NULL_IS_DEFAULT):
            kept[key] = value
    return kept, refusals


def training_of(
    compile_args: dict[str, Any], fit_args: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[Loc, Loc], list[SpecIssue]]:
    """(training, the dataset's share, origins, refusals): `origins` maps each JobSpec path
    written here to the path it came from (`training.loss` ← `compile.loss`); `refusals` are
    Keras's arguments that Epochal does not offer, located at them and saying why."""
    training: dict[str, Any] = {}
    dataset: dict[str, Any] = {}
    origins: dict[Loc, Loc] = {}
    compiled, refusals = _sorted(compile_args, "compile", COMPILE_ARGUMENTS)
    fitted, refused = _sorted(fit_args, "fit", FIT_ARGUMENTS)
    for key, value in compiled.items():
        training[key] = unlabelled(value)
        origins[("training", key)] = ("compile", key)
    for key, value in fitted.items():
        if key == "validation_split":
            dataset[key] = value
            origins[("dataset", key)] = ("fit", key)
        else:
            training[key] = value
            origins[("training", key)] = ("fit", key)
    origins.setdefault(("training", "loss"), ("compile", "loss"))  # where a missing one belongs
    return training, dataset, origins, refusals + refused
