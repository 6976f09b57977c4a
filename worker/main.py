"""Celery's entry point: `celery -A worker.main worker -Q cpu` (what `epochal worker` runs)."""

from core import logs
from core.settings import get_settings
from worker.app import create_celery

# Before Celery's command starts the worker: its first warnings (running as root) are log
# lines too. The worker sets logging up again at its --loglevel (worker.app).
logs.configure(get_settings().log_format, get_settings().log_level)
app = create_celery()
