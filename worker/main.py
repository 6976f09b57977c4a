"""Celery's entry point: `celery -A worker.main worker -Q cpu` (what `epochal worker` runs)."""

# torch imports its compiler (torch._dynamo) at a process's first optimizer call, which costs
# seconds (4.4 s on a busy 2-core machine): here, before the pool forks, it is paid once per
# worker instead of by each pool process's first job. It does not initialize CUDA.
import torch._dynamo  # noqa: F401

from core import logs
from core.settings import get_settings
from worker.app import create_celery

# Before Celery's command starts the worker: its first warnings (running as root) are log
# lines too. The worker sets logging up again at its --loglevel (worker.app).
logs.configure(get_settings().log_format, get_settings().log_level)
app = create_celery()
