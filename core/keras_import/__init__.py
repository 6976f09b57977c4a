"""Keras 3 models as JobSpecs: what `model.to_json()` writes (with the `compile` and `fit`
arguments) turned into the equivalent spec, or refused naming the Keras layer and argument.

Pure data: it reads the JSON Keras writes and never imports Keras. The layer, loss and optimizer
specs speak Keras's vocabulary themselves; this package only takes off Keras's envelope and its
bookkeeping, and says where in the Keras JSON each problem the spec finds comes from.
"""

from core.keras_import.convert import Conversion, from_keras

__all__ = ["Conversion", "from_keras"]
