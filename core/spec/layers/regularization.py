"""Regularization layers beyond `dropout`: spatial dropout, Gaussian noise and dropout, and the
activity regularization layer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.spec.layers.base import BaseLayer
from core.spec.layers.keras_args import DataFormat, Seed, only
from core.spec.regularizers import L1L2


class SpatialDropout1D(BaseLayer):
    """Drops whole channels of (steps, channels) inputs in training."""

    type: Literal["spatial_dropout1d"]
    rate: float = Field(ge=0.0, lt=1.0, description="fraction of the channels to drop")
    seed: Seed = None


class SpatialDropout2D(BaseLayer):
    """Drops whole channels of (height, width, channels) inputs in training."""

    type: Literal["spatial_dropout2d"]
    rate: float = Field(ge=0.0, lt=1.0, description="fraction of the channels to drop")
    data_format: DataFormat = None
    seed: Seed = None


class GaussianNoise(BaseLayer):
    """Adds N(0, stddev²) noise in training."""

    type: Literal["gaussian_noise"]
    stddev: float = Field(ge=0.0)
    seed: Seed = None


class GaussianDropout(BaseLayer):
    """Multiplies by N(1, rate / (1 - rate)) noise in training."""

    type: Literal["gaussian_dropout"]
    rate: float = Field(ge=0.0, lt=1.0)
    seed: Seed = None


class ActivityRegularization(BaseLayer):
    """The identity, adding l1 · Σ|x| + l2 · Σx² of its input to the loss."""

    type: Literal["activity_regularization"]
    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)
    activity_regularizer: Annotated[
        L1L2 | None, only(None, why="l1 and l2 are this layer's activity regularizer")
    ] = None


SPECS = (SpatialDropout1D, SpatialDropout2D, GaussianNoise, GaussianDropout, ActivityRegularization)
