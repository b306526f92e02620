"""Celery settings shared by the API (which only publishes) and the workers.

Delivery is at-most-once by design: messages are acknowledged on receipt
(``task_acks_late=False``), so a broker never redelivers a job a worker took, however
long it runs. Lost work is found by the run lease and recovered by the sweeper instead
(docs/adr/0005-run-leases-and-sweeper.md). The Redis ``visibility_timeout`` is still set
above the longest allowed job, so nothing can be redelivered in the middle of a run.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings

TASK_PIPELINE_RUN = "jobs.run_pipeline"
TASK_DELIVER_CALLBACK = "jobs.deliver_callback"
TASK_JOB_RUN = "jobs.run_job"
TASK_FLOW_RUN = "jobs.run_flow"


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Return the Celery configuration for ``settings`` (embedded or production broker)."""
    transport_options: dict[str, Any] = {
        "visibility_timeout": settings.MAX_TIMEOUT_SECONDS + 3600,
    }
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folder = settings.broker_data_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        transport_options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.1,
        }
    return {
        "broker_url": settings.CELERY_BROKER_URL,
        "broker_transport_options": transport_options,
        "broker_connection_timeout": settings.BROKER_PUBLISH_TIMEOUT_SECONDS,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.CELERY_TASK_QUEUE,
        # Data workers scale apart from simulation workers: flows have a queue of their own.
        "task_routes": {TASK_FLOW_RUN: {"queue": settings.CELERY_FLOW_QUEUE}},
        "task_acks_late": False,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }
