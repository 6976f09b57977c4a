"""Pooling layers: max and average over windows (1-D and 2-D), and global pooling."""

from __future__ import annotations

from typing import Literal

from core.spec.layers.base import BaseLayer
from core.spec.layers.conv import Padding, Size1, Size2
from core.spec.layers.keras_args import DataFormat


class _Window(BaseLayer):
    data_format: DataFormat = None


class _Pooling1D(_Window):
    pool_size: Size1 = 2
    strides: Size1 | None = None  # Keras: None means pool_size
    padding: Padding = "valid"


class _Pooling2D(_Window):
    pool_size: Size2 = (2, 2)
    strides: Size2 | None = None
    padding: Padding = "valid"


class MaxPooling1D(_Pooling1D):
    type: Literal["max_pooling1d"]


class MaxPooling2D(_Pooling2D):
    type: Literal["max_pooling2d"]


class AveragePooling1D(_Pooling1D):
    """With "same" padding, the padded cells are left out of each average (as in Keras)."""

    type: Literal["average_pooling1d"]


class AveragePooling2D(_Pooling2D):
    """With "same" padding, the padded cells are left out of each average (as in Keras)."""

    type: Literal["average_pooling2d"]


class _GlobalPooling(_Window):
    keepdims: bool = False  # keep the pooled axes with size 1


class GlobalMaxPooling1D(_GlobalPooling):
    type: Literal["global_max_pooling1d"]


class GlobalMaxPooling2D(_GlobalPooling):
    type: Literal["global_max_pooling2d"]


class GlobalAveragePooling1D(_GlobalPooling):
    type: Literal["global_average_pooling1d"]


class GlobalAveragePooling2D(_GlobalPooling):
    type: Literal["global_average_pooling2d"]


SPECS = (
    MaxPooling1D,
    MaxPooling2D,
    AveragePooling1D,
    AveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
)
