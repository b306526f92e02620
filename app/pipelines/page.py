"""The pipeline run's page: what it adds to the generic run page (app/page)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.page.registry import Action, RunKindPage, register
from app.pipelines import services
from app.pipelines.models import Pipeline, PipelineRun
from app.runs import broker
from app.runs.models import Run


def _context(session: Session, run: Run) -> dict[str, Any]:
    assert isinstance(run, PipelineRun)
    return {"pipeline": run.pipeline, "parent_run_id": run.parent_run_id}


def _describe(session: Session, ids: Sequence[str]) -> Mapping[str, str]:
    rows = session.execute(
        select(PipelineRun.id, Pipeline.name)
        .join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .where(PipelineRun.id.in_(ids))
    )
    return {run_id: name for run_id, name in rows}


def _rerun(session: Session, run: Run) -> str:
    assert isinstance(run, PipelineRun)
    new = services.rerun(session, run)
    broker.commit_and_publish(session, new)
    return new.id


def register_page() -> None:
    register(
        RunKindPage(
            kind="pipeline",
            label="Pipeline run",
            template="page/pipeline_run.html",
            context=_context,
            describe=_describe,
            actions={"rerun": Action("Re-run", _rerun, lambda run: run.state.is_final)},
        )
    )
