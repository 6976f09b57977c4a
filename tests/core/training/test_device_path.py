"""The GPU path's pieces that the CPU can check: channels-last convolutions (what a CUDA run
uses) give the same outputs and resume with their optimizer state in the same layout."""

from __future__ import annotations

import torch

from core.devices import to_device
from core.nn.network import Network, build_network
from core.spec.job import ModelSpec
from core.spec.optimizers import Adam
from core.training.callbacks import TrainState
from core.training.checkpoint import capture, decode, encode, restore
from core.training.optimizers import build_optimizer

CNN = ModelSpec.model_validate(
    {
        "layers": [
            {"type": "reshape", "target_shape": [4, 2, 2]},
            {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same"},
            {"type": "batch_normalization"},
            {"type": "flatten"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ]
    }
)


def cnn(channels_last: bool) -> Network:
    torch.manual_seed(0)
    net = build_network(CNN, (16,))
    net.initialize()
    return net.to(memory_format=torch.channels_last) if channels_last else net


def test_a_channels_last_network_computes_what_the_contiguous_one_does() -> None:
    plain, last = cnn(False), cnn(True)
    assert (
        last.has_convolutions()
        and not build_network(
            ModelSpec.model_validate({"layers": [{"type": "dense", "units": 2}]}), (3,)
        ).has_convolutions()
    )
    kernel = next(p for p in last.parameters() if p.dim() == 4)
    assert kernel.is_contiguous(memory_format=torch.channels_last)
    assert not kernel.is_contiguous()
    x = torch.randn(5, 16)
    plain.eval(), last.eval()
    assert torch.allclose(plain(x), last(x), atol=1e-6)


def test_adam_state_resumes_in_its_channels_last_parameter_layout() -> None:
    net = cnn(True)
    optimization = build_optimizer(net, Adam(type="adam"), steps_per_epoch=1, epochs=1)
    net(torch.randn(5, 16)).sum().backward()
    optimization.optimizer.step()
    state = TrainState(epochs=1, steps_per_epoch=1, network=net, optimizer=optimization.optimizer)
    snapshot = decode(encode(capture(state, generator=None, callbacks=[], history=[])))

    fresh = cnn(True)
    again = build_optimizer(fresh, Adam(type="adam"), steps_per_epoch=1, epochs=1).optimizer
    restore(snapshot, TrainState(1, 1, network=fresh, optimizer=again), generator=None, history=[])
    checked = 0
    for param, slots in again.state.items():
        for key in ("exp_avg", "exp_avg_sq"):
            assert slots[key].stride() == param.stride(), key
            checked += param.dim() == 4
    assert checked == 2  # the kernel's two moments
    saved = optimization.optimizer.state_dict()["state"]
    for i, slots in again.state_dict()["state"].items():
        assert torch.equal(slots["exp_avg"], saved[i]["exp_avg"])


def test_to_device_on_the_cpu_is_the_tensor_itself() -> None:
    t = torch.arange(3)
    assert to_device(t, torch.device("cpu")) is t
