"""Reads of the pipelines domain. ``get_*`` raise NotFound; nested lookups filter by the
parent id from the URL, so a run id never resolves under another pipeline."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.errors import NotFound
from app.pagination import paginate
from app.pipelines.models import Pipeline, PipelineFile, PipelineRun
from app.runs.queries import get_artifact
from app.runs.states import RunState


def get_pipeline(session: Session, pipeline_id: str) -> Pipeline:
    pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise NotFound("Pipeline not found", {"pipeline_id": [f"No pipeline {pipeline_id}"]})
    return pipeline


def list_pipelines(
    session: Session, limit: int, cursor: str | None
) -> tuple[Sequence[Pipeline], str | None]:
    query = select(Pipeline).options(selectinload(Pipeline.files))
    return paginate(session, query, Pipeline.created_at, Pipeline.id, limit, cursor)


def list_files(
    session: Session, pipeline_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[PipelineFile], str | None]:
    get_pipeline(session, pipeline_id)
    query = select(PipelineFile).where(PipelineFile.pipeline_id == pipeline_id)
    # Names are unique within a pipeline: the cursor's key.
    return paginate(session, query, PipelineFile.created_at, PipelineFile.name, limit, cursor)


def get_file(session: Session, pipeline_id: str, name: str) -> PipelineFile:
    found = session.scalar(
        select(PipelineFile).where(
            PipelineFile.pipeline_id == pipeline_id, PipelineFile.name == name
        )
    )
    if found is None:
        raise NotFound("File not found", {"name": [f"Pipeline has no file {name!r}"]})
    return found


def get_run_file_key(session: Session, run_id: str, name: str) -> str:
    """Storage key of file ``name`` of run ``run_id`` (for the worker): an artifact input
    the run was given by reference, or else a file of its pipeline."""
    run = session.get(PipelineRun, run_id)
    if run is None:
        raise NotFound("Run not found", {"run_id": [f"No run {run_id}"]})
    for item in run.artifact_inputs:
        if item["name"] == name:
            return get_artifact(session, item["run_id"], item["artifact"]).storage_key
    return get_file(session, run.pipeline_id, name).storage_key


def get_run(session: Session, pipeline_id: str, run_id: str) -> PipelineRun:
    # One run: plain lazy loads of states and artifacts are cheaper than selectin here
    # (measured in bench/get_run_latency.py); lists below use selectin to avoid N+1.
    run = session.scalar(
        select(PipelineRun).where(PipelineRun.id == run_id, PipelineRun.pipeline_id == pipeline_id)
    )
    if run is None:
        raise NotFound("Run not found", {"run_id": [f"Pipeline {pipeline_id} has no run {run_id}"]})
    return run


def list_runs(
    session: Session,
    pipeline_id: str,
    state: RunState | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[PipelineRun], str | None]:
    get_pipeline(session, pipeline_id)
    query = (
        select(PipelineRun)
        .where(PipelineRun.pipeline_id == pipeline_id)
        .options(selectinload(PipelineRun.states), selectinload(PipelineRun.artifacts))
    )
    if state is not None:
        query = query.where(PipelineRun.state == state)
    return paginate(session, query, PipelineRun.created_at, PipelineRun.id, limit, cursor)
