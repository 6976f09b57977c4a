"""Celery's entry point: `celery -A worker.main worker -Q cpu` (what `epochal worker` runs)."""

from worker.app import create_celery

app = create_celery()
