"""Running a stored job: claim it, hold its lease, stream its metrics and checkpoints to the
store, resume it, and record how it ended. `core.training` trains a spec and knows no store;
this package connects the two."""
