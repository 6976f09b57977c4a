"""Builders of the image augmentation layers. In training they transform each image of the
batch with its own random draw (from PyTorch's global generator, so a seed reproduces them);
otherwise they are the identity.

Translation, rotation and zoom map each output pixel back to the input point it samples, as
Keras's affine transforms do, and sample with `grid_sample` in normalized coordinates
(align_corners=False: -1 and 1 are the outer edges of the border pixels, so the center of
rotation and zoom is the image's center and "reflect" mirrors about the edge of the last pixel).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.nn.layers.base import LAYERS, Built, Shape
from core.nn.layers.conv import check_rank
from core.spec.layers import augmentation as L
from core.spec.layers.augmentation import factor_range

PADDING_MODES = {"constant": "zeros", "nearest": "border", "reflect": "reflection"}

Warp = L.RandomTranslation | L.RandomRotation | L.RandomZoom


class RandomFlip(nn.Module):
    def __init__(self, horizontal: bool, vertical: bool):
        super().__init__()
        self.horizontal = horizontal
        self.vertical = vertical

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        for flip, axis in ((self.horizontal, 2), (self.vertical, 1)):  # (batch, h, w, c)
            if flip:
                chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
                x = torch.where(chosen, x.flip(axis), x)
        return x

    def extra_repr(self) -> str:
        return f"horizontal={self.horizontal}, vertical={self.vertical}"


def uniform(n: int, bounds: tuple[float, float], like: torch.Tensor) -> torch.Tensor:
    low, high = bounds
    return torch.rand(n, device=like.device, dtype=torch.float32) * (high - low) + low


class RandomWarp(nn.Module):
    """A random affine warp per image; `matrices` draws the (batch, 2, 3) matrices that map
    each output point to its input point in normalized (x, y) coordinates."""

    def __init__(self, spec: Warp):
        super().__init__()
        self.padding_mode = PADDING_MODES[spec.fill_mode]
        self.interpolation = spec.interpolation
        self.fill_value = spec.fill_value if spec.fill_mode == "constant" else 0.0

    def matrices(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        images = x.movedim(-1, 1) - self.fill_value  # grid_sample fills with zeros
        theta = self.matrices(x).to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        out = F.grid_sample(
            images,
            grid,
            mode=self.interpolation,
            padding_mode=self.padding_mode,
            align_corners=False,
        )
        return (out + self.fill_value).movedim(1, -1)


def affine(
    xx: torch.Tensor,
    xy: torch.Tensor,
    yx: torch.Tensor,
    yy: torch.Tensor,
    tx: torch.Tensor,
    ty: torch.Tensor,
) -> torch.Tensor:
    """(batch, 2, 3) matrices [[xx, xy, tx], [yx, yy, ty]] from per-image entries."""
    return torch.stack([torch.stack([xx, xy, tx], -1), torch.stack([yx, yy, ty], -1)], 1)


class RandomTranslation(RandomWarp):
    def __init__(self, spec: L.RandomTranslation):
        super().__init__(spec)
        self.height = factor_range(spec.height_factor)
        self.width = factor_range(spec.width_factor)

    def matrices(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        dy, dx = uniform(n, self.height, x), uniform(n, self.width, x)
        ones, zeros = torch.ones_like(dx), torch.zeros_like(dx)
        # A shift by a fraction f of the size is 2f in normalized coordinates ([-1, 1]).
        return affine(ones, zeros, zeros, ones, -2 * dx, -2 * dy)


class RandomRotation(RandomWarp):
    def __init__(self, spec: L.RandomRotation):
        super().__init__(spec)
        self.factor = factor_range(spec.factor)

    def matrices(self, x: torch.Tensor) -> torch.Tensor:
        n, height, width = x.shape[:3]
        angle = uniform(n, self.factor, x) * (2 * math.pi)
        cos, sin = angle.cos(), angle.sin()
        # Rotation in pixel units; normalized coordinates scale x by 2/width and y by 2/height.
        aspect = height / width
        zeros = torch.zeros_like(angle)
        return affine(cos, -sin * aspect, sin / aspect, cos, zeros, zeros)


class RandomZoom(RandomWarp):
    def __init__(self, spec: L.RandomZoom):
        super().__init__(spec)
        self.height = factor_range(spec.height_factor)
        self.width = None if spec.width_factor is None else factor_range(spec.width_factor)

    def matrices(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        zy = 1 + uniform(n, self.height, x)
        zx = zy if self.width is None else 1 + uniform(n, self.width, x)
        zeros = torch.zeros_like(zy)
        return affine(zx, zeros, zeros, zy, zeros, zeros)


@LAYERS.register("random_flip")
def random_flip(spec: L.RandomFlip, shape: Shape) -> Built:
    check_rank(shape, 2)
    return Built(RandomFlip("horizontal" in spec.mode, "vertical" in spec.mode), shape)


@LAYERS.register("random_translation")
def random_translation(spec: L.RandomTranslation, shape: Shape) -> Built:
    check_rank(shape, 2)
    return Built(RandomTranslation(spec), shape)


@LAYERS.register("random_rotation")
def random_rotation(spec: L.RandomRotation, shape: Shape) -> Built:
    check_rank(shape, 2)
    return Built(RandomRotation(spec), shape)


@LAYERS.register("random_zoom")
def random_zoom(spec: L.RandomZoom, shape: Shape) -> Built:
    check_rank(shape, 2)
    return Built(RandomZoom(spec), shape)
