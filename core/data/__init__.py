"""Data sets: the registry of built-in sets and the train/validation split."""

from core.data import builtin as _builtin  # noqa: F401  (registers the built-in sets)
from core.data import sequences as _sequences  # noqa: F401
from core.data import synthetic as _synthetic  # noqa: F401
from core.data.base import DATASETS, Arrays, DatasetInfo

__all__ = ["DATASETS", "Arrays", "DatasetInfo"]
