"""Layer builders, one module per family (mirroring `core/spec/layers/`)."""

from core.nn.layers import augmentation as _augmentation  # noqa: F401
from core.nn.layers import conv as _conv  # noqa: F401
from core.nn.layers import core as _core  # noqa: F401  (registers the builders)
from core.nn.layers import embedding as _embedding  # noqa: F401
from core.nn.layers import normalization as _normalization  # noqa: F401
from core.nn.layers import pooling as _pooling  # noqa: F401
from core.nn.layers import recurrent as _recurrent  # noqa: F401
from core.nn.layers import regularization as _regularization  # noqa: F401
from core.nn.layers import reshaping as _reshaping  # noqa: F401
from core.nn.layers import wrappers as _wrappers  # noqa: F401
from core.nn.layers.base import (
    LAYERS,
    Built,
    LayerShapeError,
    Shape,
    activation_module,
    build_layer,
)

__all__ = [
    "LAYERS",
    "Built",
    "LayerShapeError",
    "Shape",
    "activation_module",
    "build_layer",
]
