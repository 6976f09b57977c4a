"""Hyperparameter sweeps: a SweepSpec, its search space, TPE, early termination, the controller."""
