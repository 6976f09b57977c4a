"""Helpers for the layer tests: a layer spec from a dict, its builder's result, and a module run
on a tensor in training or evaluation mode."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import TypeAdapter

from core.nn.layers import LAYERS, Built
from core.spec.layers import LayerSpec

_LAYER = TypeAdapter(LayerSpec)


def spec(**fields: Any) -> Any:
    return _LAYER.validate_python(fields)


def build(shape: tuple[int, ...], **fields: Any) -> Built:
    layer = spec(**fields)
    return LAYERS.get(layer.type)(layer, shape)


def run(built: Built, x: torch.Tensor, *, training: bool = False) -> torch.Tensor:
    assert built.module is not None
    built.module.train(training)
    with torch.no_grad():
        return built.module(x)


def trainable(built: Built) -> int:
    """Keras's "trainable params" of a built layer."""
    assert built.module is not None
    return sum(p.numel() for p in built.module.parameters() if p.requires_grad)
