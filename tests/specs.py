"""Specs shared by several test modules."""

# The reference spec: reaches val_accuracy >= 0.95 in 20 epochs.
DIGITS = {
    "name": "digits-mlp",
    "tags": ["baseline"],
    "dataset": {"name": "digits", "validation_split": 0.2},
    "model": {
        "layers": [
            {"type": "dense", "units": 128, "activation": "relu"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ]
    },
    "training": {
        "loss": "sparse_categorical_crossentropy",
        "optimizer": {"type": "adam", "learning_rate": 0.001},
        "batch_size": 64,
        "epochs": 20,
        "metrics": ["accuracy"],
        "seed": 0,
    },
    "resources": {"device": "auto"},
}

# DIGITS with two wide hidden layers: the same data and series (23 steps an epoch), but an epoch
# of tens of milliseconds even on a quiet machine, so that an end-to-end test that acts on a job
# mid-run (a kill, a stop) finds it still training; the digits MLP takes a few milliseconds.
SLOW_DIGITS = {
    **DIGITS,
    "model": {
        "layers": [
            {"type": "dense", "units": 512, "activation": "relu"},
            {"type": "dense", "units": 512, "activation": "relu"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ]
    },
}

# Plain SGD with an absurd learning rate: the loss becomes inf/NaN within a few steps.
DIVERGING = {
    "dataset": {"name": "regression", "n_samples": 200},
    "model": {
        "layers": [
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 1},
        ]
    },
    "training": {
        "loss": "mean_squared_error",
        "optimizer": {"type": "sgd", "learning_rate": 1e6},
        "epochs": 20,
        "seed": 0,
    },
}


def moons_mlp(epochs: int) -> dict:
    """A tiny classifier that trains in well under a second: the base of the sweep tests."""
    return {
        "dataset": {"name": "moons", "n_samples": 200, "validation_split": 0.25},
        "model": {
            "layers": [
                {"type": "dense", "units": 8, "activation": "relu"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ]
        },
        "training": {
            "loss": "sparse_categorical_crossentropy",
            "optimizer": {"type": "adam", "learning_rate": 0.01},
            "batch_size": 32,
            "epochs": epochs,
            "metrics": ["accuracy"],
            "seed": 0,
        },
    }
