"""The Keras CNN of the fundamentals, submitted as a JobSpec: it validates, builds on
channels-last (32, 32, 3) images with Keras's shapes and trainable parameter counts, and runs."""

from __future__ import annotations

import torch

from core.nn.network import build_network
from core.spec import JobSpec


def block(filters: int) -> list[dict]:
    return [
        {"type": "Conv2D", "filters": filters, "kernel_size": 3, "padding": "same",
         "kernel_initializer": "he_uniform"},
        {"type": "BatchNormalization"},
        {"type": "Activation", "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 3, "padding": "same"},
    ]  # fmt: skip


CNN = {
    "name": "keras-cnn",
    "dataset": {"name": "digits"},
    "model": {
        "layers": [
            {"type": "Rescaling", "scale": 1 / 255},
            *block(128),
            *block(256),
            *block(512),
            {"type": "GlobalAveragePooling2D"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ]
    },
    "training": {"loss": "sparse_categorical_crossentropy"},
}

# Keras's model.summary() for this model: (output shape, trainable params) per layer.
SUMMARY = [
    ("rescaling", (32, 32, 3), 0),
    ("conv2d", (32, 32, 128), 3 * 3 * 3 * 128 + 128),  # 3,584
    ("batch_normalization", (32, 32, 128), 2 * 128),
    ("activation", (32, 32, 128), 0),
    ("max_pooling2d", (11, 11, 128), 0),  # ceil(32 / 3)
    ("conv2d", (11, 11, 256), 3 * 3 * 128 * 256 + 256),  # 295,168
    ("batch_normalization", (11, 11, 256), 2 * 256),
    ("activation", (11, 11, 256), 0),
    ("max_pooling2d", (4, 4, 256), 0),
    ("conv2d", (4, 4, 512), 3 * 3 * 256 * 512 + 512),  # 1,180,160
    ("batch_normalization", (4, 4, 512), 2 * 512),
    ("activation", (4, 4, 512), 0),
    ("max_pooling2d", (2, 2, 512), 0),
    ("global_average_pooling2d", (512,), 0),
    ("dense", (10,), 512 * 10 + 10),
]


def test_the_keras_cnn_builds_with_keras_shapes_and_parameter_counts() -> None:
    spec = JobSpec.model_validate(CNN)
    with torch.device("meta"):
        net = build_network(spec.model, (32, 32, 3))
    assert [(r.type, r.output_shape, r.params) for r in net.layer_summaries] == SUMMARY
    assert net.parameter_count() == 1_485_834  # Keras: trainable params
    assert net.output_activation == "softmax"
    kernels = [name for p, name in net.initializers if p.dim() == 4]
    assert kernels == ["he_uniform"] * 3


def test_the_keras_cnn_runs_on_pixels_in_training_and_evaluation() -> None:
    torch.manual_seed(0)
    net = build_network(JobSpec.model_validate(CNN).model, (32, 32, 3))
    net.initialize()
    x = torch.randint(0, 256, (2, 32, 32, 3)).float()
    net.train()
    probabilities = net(x)
    assert probabilities.shape == (2, 10)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2))
    net.eval()
    with torch.no_grad():
        assert net.logits(x).shape == (2, 10)
