"""Image augmentation layers on (height, width, channels) inputs. They act in training only and
are the identity otherwise, as in Keras.

A factor is a fraction: one number f stands for the range [-|f|, |f|], a pair for [low, high].
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.spec.layers.base import BaseLayer
from core.spec.layers.keras_args import DataFormat, Seed

Fraction = Annotated[float, Field(ge=-1.0, le=1.0)]
Factor = Fraction | tuple[Fraction, Fraction]


def factor_range(factor: float | tuple[float, float]) -> tuple[float, float]:
    """Keras's reading of a factor: f → (-|f|, |f|); a pair → (min, max)."""
    if isinstance(factor, tuple):
        return min(factor), max(factor)
    return -abs(factor), abs(factor)


class _Augmentation(BaseLayer):
    seed: Seed = None
    data_format: DataFormat = None


class RandomFlip(_Augmentation):
    """Flips each image left-right and/or top-bottom, each with probability 1/2."""

    type: Literal["random_flip"]
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal_and_vertical"


class _Warp(_Augmentation):
    """How a warp fills the points that come from outside the image (Keras's `fill_mode`):
    "reflect" (d c b a | a b c d | d c b a), "nearest" (a a | a b c d | d d), or "constant"
    (`fill_value`)."""

    fill_mode: Literal["reflect", "constant", "nearest"] = "reflect"
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    fill_value: float = 0.0


class RandomTranslation(_Warp):
    """Shifts each image by a fraction of its height (positive: down) and of its width
    (positive: right)."""

    type: Literal["random_translation"]
    height_factor: Factor
    width_factor: Factor


class RandomRotation(_Warp):
    """Rotates each image about its center by a fraction of a full turn (positive:
    counter-clockwise)."""

    type: Literal["random_rotation"]
    factor: Factor


class RandomZoom(_Warp):
    """Zooms each image about its center: a factor z shows (1 + z) times the height (positive:
    zoom out). Without a width_factor the aspect ratio is kept."""

    type: Literal["random_zoom"]
    height_factor: Factor
    width_factor: Factor | None = None


SPECS = (RandomFlip, RandomTranslation, RandomRotation, RandomZoom)
