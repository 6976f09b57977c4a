"""Layer builders, one module per family (mirroring `core/spec/layers/`)."""

from core.nn.layers import core as _core  # noqa: F401  (registers the builders)
from core.nn.layers.base import LAYERS, Built, LayerShapeError, Shape, activation_module

__all__ = ["LAYERS", "Built", "LayerShapeError", "Shape", "activation_module"]
