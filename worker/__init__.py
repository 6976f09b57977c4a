"""Celery workers: thin tasks that load a job, train it with `core` and stream the results."""
