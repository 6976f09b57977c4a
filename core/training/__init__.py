"""Training: losses, metrics, optimizers, callbacks, the `fit` loop and the job runner."""
