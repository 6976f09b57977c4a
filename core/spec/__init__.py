"""The JobSpec: a network, its data and its hyperparameters as data, in Keras's vocabulary."""

from core.spec.job import DatasetSpec, JobSpec, LossSpec, ModelSpec, ResourcesSpec, TrainingSpec
from core.spec.layers import LayerSpec
from core.spec.optimizers import OptimizerSpec

__all__ = [
    "DatasetSpec",
    "JobSpec",
    "LayerSpec",
    "LossSpec",
    "ModelSpec",
    "OptimizerSpec",
    "ResourcesSpec",
    "TrainingSpec",
]
