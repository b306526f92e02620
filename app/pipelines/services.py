"""Writes of the pipelines domain. Functions take the session and validated data, flush,
and leave the commit to the caller."""

from __future__ import annotations

import uuid
from typing import Any, BinaryIO

from blinker import Namespace
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import NotFound, ValidationFailed
from app.pipelines.models import Pipeline, PipelineFile, PipelineRun
from app.runs.services import add_new, check_attempt, delete_runs, lock_run
from app.storage import ObjectStore

_signals = Namespace()
#: Sent (with ``session``) before a pipeline is deleted. Other domains that use pipelines
#: (workflows) refuse the delete by raising a DomainError; pipelines never import them.
pipeline_deleting = _signals.signal("pipeline-deleting")


def lock_pipeline(session: Session, pipeline_id: str, *, shared: bool) -> Pipeline:
    """Load a pipeline with a row lock; raise NotFound if it is gone.

    Creating a run or a file takes the lock shared, deleting the pipeline takes it
    exclusive, so a delete cannot slip between a run's check and its insert: either the
    run commits first (and the delete sees an unfinished run: 409) or the delete does
    (and the run creation finds no pipeline: 404). Never a run without its pipeline.
    SQLite ignores FOR SHARE/UPDATE; its BEGIN IMMEDIATE serializes the writers anyway.
    """
    pipeline = session.scalar(
        select(Pipeline)
        .where(Pipeline.id == pipeline_id)
        .with_for_update(read=shared)
        .execution_options(populate_existing=True)
    )
    if pipeline is None:
        raise NotFound("Pipeline not found", {"pipeline_id": [f"No pipeline {pipeline_id}"]})
    return pipeline


def create_pipeline(session: Session, data: dict[str, Any], settings: Settings) -> Pipeline:
    pipeline = Pipeline(**_with_default_timeout(data, settings))
    session.add(pipeline)
    session.flush()
    return pipeline


def update_pipeline(
    session: Session, pipeline: Pipeline, data: dict[str, Any], settings: Settings
) -> Pipeline:
    for field, value in _with_default_timeout(data, settings).items():
        setattr(pipeline, field, value)
    session.flush()
    return pipeline


def _with_default_timeout(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    if data.get("timeout_seconds") is None:
        return {**data, "timeout_seconds": settings.DEFAULT_TIMEOUT_SECONDS}
    return data


def delete_pipeline(session: Session, pipeline: Pipeline) -> list[str]:
    """Delete a pipeline with its files and runs; refuse while a run is unfinished.

    Runs are deleted from the shared ``runs`` table (which cascades to their pipeline rows,
    history, logs and artifact rows). Returns the storage prefixes whose objects the caller
    deletes after the commit.
    """
    pipeline_deleting.send(pipeline, session=session)
    run_ids = delete_runs(
        session,
        select(PipelineRun.id).where(PipelineRun.pipeline_id == pipeline.id),
        "Pipeline",
        "pipeline_id",
    )
    session.delete(pipeline)
    session.flush()
    return [f"pipelines/{pipeline.id}/", *(f"runs/{run_id}/" for run_id in run_ids)]


def store_file(
    session: Session, store: ObjectStore, pipeline: Pipeline, name: str, body: BinaryIO
) -> tuple[PipelineFile, bool, str | None]:
    """Stream ``body`` to a new object and point the file record at it.

    The old object (if the name existed) is only superseded once this transaction commits;
    its key is returned so the caller can delete it then. Returns (file, created, old_key).
    """
    key = f"pipelines/{pipeline.id}/files/{uuid.uuid4().hex}"
    stored = store.put_stream(key, body)
    try:  # the upload took a while: the pipeline may have been deleted meanwhile
        pipeline = lock_pipeline(session, pipeline.id, shared=True)
    except NotFound:
        store.delete_prefix(key)
        raise
    existing = next((f for f in pipeline.files if f.name == name), None)
    old_key = existing.storage_key if existing else None
    record = existing or PipelineFile(pipeline_id=pipeline.id, name=name)
    record.size, record.sha256, record.storage_key = stored.size, stored.sha256, key
    if existing is None:
        session.add(record)
    session.flush()
    return record, existing is None, old_key


def check_model_uploaded(pipeline: Pipeline) -> None:
    """A run needs the file the pipeline names as its model: refuse now, listing the files
    the pipeline has, rather than let the run fail on the worker."""
    names = [f.name for f in pipeline.files]
    if pipeline.model in names:
        return
    model = pipeline.model
    if not names:
        has = "it has no files yet"
    else:
        has = "its files are " + ", ".join(repr(name) for name in names)
    same = [n for n in names if n.rsplit("/", 1)[-1] == model.rsplit("/", 1)[-1]]
    if same:
        has += f" ({same[0]!r} has the model's name in another folder)"
    raise ValidationFailed(
        f"The pipeline has no file {model!r}, the model it names; {has}. Upload the model "
        f"under that name (POST /api/v1.0/pipelines/{pipeline.id}/files?name={model}, the file "
        "as the body), or change the pipeline's model to one of its files",
        {"model": [f"No file {model!r}; {has}"]},
    )


def create_run(
    session: Session,
    pipeline: Pipeline,
    data: dict[str, Any],
    *,
    artifact_inputs: list[dict[str, str]] | None = None,
) -> PipelineRun:
    """Record a READY run with the pipeline's defaults overridden by ``data``;
    ``artifact_inputs`` name other runs' artifacts that become files of this one."""
    run = new_run(pipeline, data, artifact_inputs=artifact_inputs)
    add_new(session, run)
    session.flush()
    return run


def new_run(
    pipeline: Pipeline,
    data: dict[str, Any],
    *,
    parent_run_id: str | None = None,
    artifact_inputs: list[dict[str, str]] | None = None,
) -> PipelineRun:
    """The run ``create_run`` records, not yet added: a workflow adds its nodes' at once
    (``app.runs.services.add_new``). ``parent_run_id`` names the run that started this
    one (a workflow run), which hears when it ends."""
    return PipelineRun(
        pipeline_id=pipeline.id,
        parent_run_id=parent_run_id,
        artifact_inputs=artifact_inputs or [],
        inputs=data["inputs"],
        parameters={**pipeline.parameters, **data["parameters"]},
        callback_url=data.get("callback_url"),
        timeout_seconds=data.get("timeout_seconds") or pipeline.timeout_seconds,
        max_retries=pipeline.max_retries,
        retry_backoff_seconds=pipeline.retry_backoff_seconds,
    )


def record_unused_parameters(
    session: Session, run_id: str, attempt: int, names: list[str]
) -> PipelineRun:
    """The worker found parameters the run's model never reads; keep those the run has."""
    run = lock_run(session, run_id, PipelineRun)
    check_attempt(run, attempt)
    run.unused_parameters = sorted(set(names) & set(run.parameters))
    session.flush()
    return run


def rerun(session: Session, run: PipelineRun) -> PipelineRun:
    """A new run of ``run``'s pipeline with the same inputs, parameters and timeout (the
    page's re-run button); the new run is nobody's child."""
    pipeline = lock_pipeline(session, run.pipeline_id, shared=True)
    check_model_uploaded(pipeline)
    data = {
        "inputs": run.inputs,
        "parameters": run.parameters,
        "timeout_seconds": run.timeout_seconds,
        "callback_url": run.callback_url,
    }
    return create_run(session, pipeline, data, artifact_inputs=run.artifact_inputs)
