"""The workers' Celery application: ``celery -A app.worker.celery_app worker``."""

from __future__ import annotations

from celery import Celery

from app.celery_config import celery_settings
from app.config import Settings

settings = Settings.from_env()
celery_app = Celery(
    "jobs", include=["app.worker.tasks", "app.worker.job_tasks", "app.worker.flow_tasks"]
)
celery_app.conf.update(celery_settings(settings))
