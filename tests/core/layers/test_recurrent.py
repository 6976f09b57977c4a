"""simple_rnn, lstm and gru: Keras's formulas, shapes, parameter counts and initialization, on
PyTorch's fused kernels; what the spec refuses; an LSTM that learns to forecast a sine."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from core.data import DATASETS
from core.data.base import split
from core.errors import SpecError
from core.nn.network import Network, build_network
from core.settings import Settings
from core.spec import JobSpec
from core.spec.job import ModelSpec
from core.training.plan import plan_job
from core.training.session import train_spec

CPU = torch.device("cpu")


def network(shape: tuple[int, ...], *layers: dict, seed: int = 0) -> Network:
    torch.manual_seed(seed)
    net = build_network(ModelSpec.model_validate({"layers": list(layers)}), shape)
    net.initialize()
    return net.eval()


def rnn_of(net: Network) -> torch.nn.RNNBase:
    return net.body[0].rnn


def keras_weights(rnn: torch.nn.RNNBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keras's kernel (features, g·units), recurrent kernel (units, g·units) and bias."""
    return rnn.weight_ih_l0.detach().T, rnn.weight_hh_l0.detach().T, rnn.bias_ih_l0.detach()


def keras_lstm(x: torch.Tensor, kernel, recurrent, bias) -> torch.Tensor:
    """Keras's LSTMCell, step by step: gates i, f, c, o; returns every step's h."""
    u = recurrent.shape[0]
    h = c = x.new_zeros(x.shape[0], u)
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, k * u : (k + 1) * u] for k in range(4))
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, 1)


def keras_gru(x: torch.Tensor, kernel, recurrent, input_bias, recurrent_bias) -> torch.Tensor:
    """Keras's GRUCell with reset_after=True: gates z, r, h."""
    u = recurrent.shape[0]
    h = x.new_zeros(x.shape[0], u)
    outputs = []
    for t in range(x.shape[1]):
        mx = x[:, t] @ kernel + input_bias
        mh = h @ recurrent + recurrent_bias
        z = torch.sigmoid(mx[:, :u] + mh[:, :u])
        r = torch.sigmoid(mx[:, u : 2 * u] + mh[:, u : 2 * u])
        candidate = torch.tanh(mx[:, 2 * u :] + r * mh[:, 2 * u :])
        h = z * h + (1 - z) * candidate
        outputs.append(h)
    return torch.stack(outputs, 1)


def test_lstm_computes_keras_lstm_with_one_bias() -> None:
    net = network((5, 3), {"type": "lstm", "units": 4, "return_sequences": True})
    with torch.no_grad():  # a non-zero bias in every gate, so a misplaced one shows
        rnn_of(net).bias_ih_l0.uniform_(-1, 1)
    x = torch.randn(2, 5, 3)
    expected = keras_lstm(x, *keras_weights(rnn_of(net)))
    torch.testing.assert_close(net(x), expected)
    assert rnn_of(net).bias_hh_l0.abs().sum() == 0  # PyTorch's second bias stays out


def test_gru_computes_keras_gru_with_reset_after_and_gates_z_r_h() -> None:
    net = network((5, 3), {"type": "GRU", "units": 4, "return_sequences": True})
    rnn = rnn_of(net)
    with torch.no_grad():
        rnn.bias_ih_l0.uniform_(-1, 1)
        rnn.bias_hh_l0.uniform_(-1, 1)

    def keras_order(w: torch.Tensor) -> torch.Tensor:  # PyTorch's r, z, n → Keras's z, r, h
        r, z, n = w.detach().chunk(3, dim=0)
        return torch.cat([z, r, n], dim=0)

    x = torch.randn(2, 5, 3)
    expected = keras_gru(
        x,
        keras_order(rnn.weight_ih_l0).T,
        keras_order(rnn.weight_hh_l0).T,
        keras_order(rnn.bias_ih_l0),
        keras_order(rnn.bias_hh_l0),
    )
    torch.testing.assert_close(net(x), expected)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_computes_h_from_x_kernel_h_recurrent_and_bias(activation: str) -> None:
    net = network(
        (4, 2), {"type": "SimpleRNN", "units": 3, "activation": activation, "use_bias": True}
    )
    with torch.no_grad():
        rnn_of(net).bias_ih_l0.uniform_(-1, 1)
    kernel, recurrent, bias = keras_weights(rnn_of(net))
    act = torch.tanh if activation == "tanh" else torch.relu
    x = torch.randn(3, 4, 2)
    h = torch.zeros(3, 3)
    for t in range(4):
        h = act(x[:, t] @ kernel + h @ recurrent + bias)
    torch.testing.assert_close(net(x), h)  # return_sequences false: the last step only


@pytest.mark.parametrize("layer", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_output_shapes(layer: str, return_sequences: bool) -> None:
    net = network((7, 3), {"type": layer, "units": 5, "return_sequences": return_sequences})
    shape = (7, 5) if return_sequences else (5,)
    assert net.layer_summaries[0].output_shape == shape
    assert net(torch.randn(2, 7, 3)).shape == (2, *shape)


@pytest.mark.parametrize("use_bias", [True, False])
def test_parameter_counts_are_keras(use_bias: bool) -> None:
    u, f, b = 6, 3, int(use_bias)
    counts = {
        "simple_rnn": u * f + u * u + b * u,
        "lstm": 4 * (u * f + u * u + b * u),
        "gru": 3 * (u * f + u * u + b * 2 * u),  # reset_after: an input and a recurrent bias
    }
    for layer, count in counts.items():
        net = network((5, f), {"type": layer, "units": u, "use_bias": use_bias})
        assert (layer, net.parameter_count()) == (layer, count)
        assert net.layer_summaries[0].params == count


def test_go_backwards_reads_the_input_reversed_and_returns_it_reversed() -> None:
    spec = {"type": "lstm", "units": 3, "return_sequences": True}
    forward = network((6, 2), spec, seed=1)
    backward = network((6, 2), {**spec, "go_backwards": True}, seed=1)  # the same weights
    x = torch.randn(2, 6, 2)
    torch.testing.assert_close(backward(x), forward(x.flip(1)))  # step t read input step 5-t


def test_lstm_initialization_is_keras() -> None:
    u, f = 32, 10
    net = network((4, f), {"type": "lstm", "units": u})
    rnn = rnn_of(net)
    bias = rnn.bias_ih_l0.detach()
    assert torch.equal(bias[u : 2 * u], torch.ones(u))  # unit_forget_bias: the f block
    assert torch.equal(torch.cat([bias[:u], bias[2 * u :]]), torch.zeros(3 * u))
    # glorot_uniform on the (features, 4·units) kernel as a whole
    limit = math.sqrt(6 / (f + 4 * u))
    w = rnn.weight_ih_l0.detach()
    assert w.abs().max() <= limit and w.abs().max() > 0.95 * limit
    assert w.var().item() == pytest.approx(limit**2 / 3, rel=0.1)
    # orthogonal on the (units, 4·units) recurrent kernel: its rows, weight_hh's columns
    rec = rnn.weight_hh_l0.detach()
    torch.testing.assert_close(rec.T @ rec, torch.eye(u), atol=1e-5, rtol=0)


def test_no_forget_bias_and_a_bias_initializer_apply_to_the_whole_bias() -> None:
    net = network((4, 2), {"type": "lstm", "units": 3, "unit_forget_bias": False})
    assert torch.equal(rnn_of(net).bias_ih_l0.detach(), torch.zeros(12))
    net = network((4, 2), {"type": "lstm", "units": 3, "bias_initializer": "ones"})
    assert torch.equal(rnn_of(net).bias_ih_l0.detach(), torch.ones(12))


def test_simple_rnn_and_gru_recurrent_kernels_are_orthogonal_and_biases_zero() -> None:
    net = network((4, 5), {"type": "simple_rnn", "units": 8})
    rec = rnn_of(net).weight_hh_l0.detach()
    torch.testing.assert_close(rec @ rec.T, torch.eye(8), atol=1e-5, rtol=0)  # square
    gru = rnn_of(network((4, 5), {"type": "gru", "units": 8}))
    torch.testing.assert_close(
        gru.weight_hh_l0.detach().T @ gru.weight_hh_l0.detach(), torch.eye(8), atol=1e-5, rtol=0
    )
    assert gru.bias_ih_l0.abs().sum() == 0 and gru.bias_hh_l0.abs().sum() == 0


def test_dropout_masks_input_features_with_one_mask_for_all_steps() -> None:
    rate = 0.5
    net = network(
        (6, 40), {"type": "simple_rnn", "units": 40, "dropout": rate, "return_sequences": True}
    )
    with torch.no_grad():  # h_t = tanh(x_t): each unit shows whether its input was kept
        rnn_of(net).weight_ih_l0.copy_(torch.eye(40))
        rnn_of(net).weight_hh_l0.zero_()
    x = torch.ones(8, 6, 40)
    torch.testing.assert_close(net(x), torch.tanh(x))  # evaluation: no dropout
    torch.manual_seed(3)
    out = net.train()(x)
    kept = out[:, 0] != 0
    assert torch.equal(out != 0, kept[:, None].expand(-1, 6, -1))  # the same mask at every step
    torch.testing.assert_close(out[out != 0], torch.full_like(out[out != 0], math.tanh(2.0)))
    assert 0.35 < kept.float().mean().item() < 0.65  # about 1 - rate kept, scaled by 1/(1 - rate)
    assert not torch.equal(kept[0], kept[1])  # one mask per sample


def test_weight_regularizers_cover_kernel_recurrent_kernel_and_keras_bias() -> None:
    reg = {"l1": 0.0, "l2": 0.1}
    spec = {"units": 3, "kernel_regularizer": reg, "recurrent_regularizer": reg}
    net = network((4, 2), {"type": "lstm", **spec, "bias_regularizer": {"l1": 0.5}})
    rnn = rnn_of(net)
    expected = 0.1 * (rnn.weight_ih_l0.square().sum() + rnn.weight_hh_l0.square().sum())
    expected = expected + 0.5 * rnn.bias_ih_l0.abs().sum()  # the forget block: 0.5 · 3 · 1
    torch.testing.assert_close(net.regularization_loss(), expected)
    gru = network((4, 2), {"type": "gru", "units": 3, "bias_regularizer": {"l1": 1.0}})
    with torch.no_grad():
        rnn_of(gru).bias_ih_l0.fill_(1.0)
        rnn_of(gru).bias_hh_l0.fill_(-2.0)
    assert gru.regularization_loss().item() == pytest.approx(9 * 1.0 + 9 * 2.0)  # both biases


def test_recurrent_constraint_limits_each_unit_gate_norm() -> None:
    net = network(
        (4, 2),
        {
            "type": "lstm",
            "units": 3,
            "recurrent_constraint": {"type": "max_norm", "max_value": 0.5},
        },
    )
    with torch.no_grad():
        rnn_of(net).weight_hh_l0.mul_(10)
    net.apply_constraints()
    norms = rnn_of(net).weight_hh_l0.detach().norm(dim=1)  # Keras: each column of (u, 4u)
    torch.testing.assert_close(norms, torch.full((12,), 0.5))


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"type": "lstm", "units": 2, "activation": "relu"}, "expected activation 'tanh'"),
        (
            {"type": "gru", "units": 2, "recurrent_activation": "hard_sigmoid"},
            "recurrent_activation 'sigmoid'",
        ),
        (
            {"type": "simple_rnn", "units": 2, "activation": "sigmoid"},
            "expected activation 'tanh' or 'relu'",
        ),
        ({"type": "lstm", "units": 2, "recurrent_dropout": 0.2}, "between steps cannot be masked"),
        ({"type": "gru", "units": 2, "reset_after": False}, "expected reset_after true"),
        ({"type": "lstm", "units": 0}, "greater than 0"),
        ({"type": "lstm", "units": 2, "return_state": True}, "expected return_state False"),
        ({"type": "gru", "units": 2, "stateful": True}, "no state is carried"),
    ],
)
def test_the_spec_refuses_what_the_fused_kernels_cannot_compute(layer: dict, message: str) -> None:
    with pytest.raises(ValidationError) as e:
        ModelSpec.model_validate({"layers": [layer]})
    assert message in str(e.value)


def test_a_recurrent_layer_needs_a_sequence() -> None:
    with pytest.raises(SpecError) as flat:
        build_network(ModelSpec.model_validate({"layers": [{"type": "lstm", "units": 2}]}), (8,))
    assert flat.value.issues[0].msg == (
        "layer 0 (lstm) expects a sequence of shape (steps, features) but gets (8,): "
        "it needs a time axis: use a data set of sequences, or reshape"
    )
    with pytest.raises(SpecError) as video:
        build_network(
            ModelSpec.model_validate({"layers": [{"type": "gru", "units": 2}]}), (8, 4, 4, 1)
        )
    assert "wrap the layers before it in time_distributed, ending with flatten" in str(video.value)


def test_a_plan_on_the_meta_device_reports_keras_parameter_counts() -> None:
    spec = sine_spec(epochs=1)
    plan = plan_job(spec, Settings())
    assert plan.parameter_count == 4 * (16 * 1 + 16 * 16 + 16) + 16 + 1


def sine_spec(epochs: int) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": {"name": "sine", "n_samples": 400, "validation_split": 0.25},
            "model": {"layers": [{"type": "lstm", "units": 16}, {"type": "dense", "units": 1}]},
            "training": {
                "loss": "mean_squared_error",
                "optimizer": {"type": "adam", "learning_rate": 0.02},
                "batch_size": 16,
                "epochs": epochs,
                "seed": 0,
            },
        }
    )


def test_an_lstm_learns_to_forecast_a_sine() -> None:
    spec = sine_spec(epochs=8)
    _, val = split(DATASETS.get("sine").load(spec.dataset), 0.25, spec.dataset.seed)
    repeat_last = ((val.x[:, -1] - val.y) ** 2).mean()  # a forecast without memory
    variance = val.y.var()  # predicting the mean
    assert (round(float(repeat_last), 2), round(float(variance), 1)) == (0.23, 0.5)
    result = train_spec(spec, Settings(), device=CPU)
    first, last = result.history.epochs[0], result.history.epochs[-1]
    assert last["val_loss"] < 0.05 < first["val_loss"]
