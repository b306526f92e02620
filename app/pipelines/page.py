"""The pipeline run's page, and the start page's forms to make a pipeline, add its files
and start it: what pipelines add to the generic page (app/page)."""

from __future__ import annotations

from typing import Any, BinaryIO

from flask import current_app
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.page.registry import Action, RunKindPage, by_parent_name, register
from app.page.starters import Field, Made, Maker, Pick, Starter, register_maker, register_starter
from app.pipelines import queries, services
from app.pipelines.models import Pipeline, PipelineFile, PipelineRun
from app.pipelines.schedule_target import TARGET
from app.pipelines.schemas import PipelineSchema, RunCreateSchema
from app.runs import broker
from app.runs.models import Run
from app.storage.extension import store
from app.uploads import PayloadTooLarge, capped


def _context(session: Session, run: Run) -> dict[str, Any]:
    assert isinstance(run, PipelineRun)
    return {"pipeline": run.pipeline, "parent_run_id": run.parent_run_id}


def _rerun(session: Session, run: Run) -> str:
    assert isinstance(run, PipelineRun)
    new = services.rerun(session, run)
    broker.commit_and_publish(session, new)
    return new.id


def _choices(session: Session, limit: int) -> list[tuple[str, str]]:
    """The newest pipelines, each saying whether its model has been uploaded yet."""
    has_model = exists().where(
        PipelineFile.pipeline_id == Pipeline.id, PipelineFile.name == Pipeline.model
    )
    rows = session.execute(
        select(Pipeline.id, Pipeline.name, Pipeline.model, has_model.label("ready"))
        .order_by(Pipeline.created_at.desc(), Pipeline.id.desc())
        .limit(limit)
    )
    return [
        (id_, f"{name} · {model}{'' if ready else ' (model not uploaded yet)'}")
        for id_, name, model, ready in rows
    ]


PIPELINE = Pick(
    "pipeline_id", "Pipeline", _choices, "No pipelines yet: make one with New pipeline above."
)
PARAMETERS = Field(
    "parameters",
    "Parameters",
    "mapping",
    "KEY=VALUE lines (or a JSON object): defines the model reads as ${KEY}.",
    "INTERVAL=60",
)
TIMEOUT = Field("timeout_seconds", "Timeout (seconds)", "number", "Blank: the default.")


def _settings() -> Any:
    return current_app.config["SETTINGS"]


def _start(session: Session, pipeline_id: str, body: dict[str, Any]) -> Run:
    """As ``POST /pipelines/{id}/runs``: the model must have been uploaded."""
    return TARGET.start(session, pipeline_id, body, _settings())


def _make(session: Session, _: str | None, values: dict[str, Any]) -> Made:
    pipeline = services.create_pipeline(session, values, _settings())
    session.commit()
    return Made(
        f"Pipeline {pipeline.name!r} made. Add its files ({pipeline.model!r} first), then "
        "start it.",
        {"pipeline_id": pipeline.id},
        "make-pipeline-files",
    )


def _add_files(session: Session, pipeline_id: str | None, values: dict[str, Any]) -> Made:
    """Store each file as ``POST /pipelines/{id}/files?name=`` does (each up to
    MAX_FILE_UPLOAD_BYTES), all or none: a failure deletes the objects already written,
    and replaced ones go after the commit."""
    pipeline = queries.get_pipeline(session, pipeline_id or "")
    files: list[tuple[str, BinaryIO]] = values["files"]
    limit = _settings().MAX_FILE_UPLOAD_BYTES
    objects, written, replaced = store(), [], []
    try:
        for name, stream in files:
            try:
                record, _, old_key = services.store_file(
                    session, objects, pipeline, name, capped(stream, limit)
                )
            except PayloadTooLarge:
                raise PayloadTooLarge(
                    f"{name!r} is larger than the limit of {limit} bytes (MAX_FILE_UPLOAD_BYTES)",
                    {"files": [f"{name!r}: more than {limit} bytes"]},
                ) from None
            written.append(record.storage_key)
            replaced += [old_key] if old_key else []
        session.commit()
    except BaseException:
        session.rollback()
        for key in written:
            objects.delete_prefix(key)
        raise
    for key in replaced:
        objects.delete_prefix(key)
    names = ", ".join(name for name, _ in files)
    missing = (
        ""
        if pipeline.model in {f.name for f in pipeline.files}
        else (f" It still lacks its model {pipeline.model!r}.")
    )
    return Made(
        f"Stored {names} in pipeline {pipeline.name!r}.{missing}",
        {"pipeline_id": pipeline.id},
        "start-pipeline",
    )


def _register_forms() -> None:
    register_maker(
        Maker(
            "pipeline",
            "New pipeline",
            _make,
            (
                Field("name", "Name", required=True, placeholder="residential"),
                Field(
                    "model",
                    "Model file",
                    help="The entry .glm, as you will name it below; a folder is allowed.",
                    placeholder="models/test_HVAC_common_cool.glm",
                    required=True,
                ),
                PARAMETERS,
                TIMEOUT,
            ),
            schema=PipelineSchema,
            order=10,
        )
    )
    register_maker(
        Maker(
            "pipeline-files",
            "Add files to a pipeline",
            _add_files,
            (
                Field(
                    "files",
                    "Files",
                    "files",
                    "Name each file as the model refers to it (a relative path; the same "
                    "name replaces a file). The residential model: "
                    "models/test_HVAC_common_cool.glm and WA-Yakima.tmy2 at the top.",
                ),
            ),
            pick=PIPELINE,
            order=20,
            button="Upload",
        )
    )
    register_starter(
        Starter(
            "pipeline",
            "Run a pipeline",
            PIPELINE,
            RunCreateSchema,
            _start,
            (
                PARAMETERS,
                TIMEOUT,
                Field(
                    "inputs",
                    "Inputs by URL",
                    "json",
                    "Optional: files fetched into the job folder first.",
                    '[{"name": "weather.tmy2", "url": "https://example.com/weather.tmy2"}]',
                ),
            ),
            "Parameters override the pipeline's own for this run.",
            order=10,
        )
    )


def register_page() -> None:
    _register_forms()
    register(
        RunKindPage(
            kind="pipeline",
            label="Pipeline run",
            template="page/pipeline_run.html",
            context=_context,
            describe=by_parent_name(PipelineRun, Pipeline, PipelineRun.pipeline_id),
            actions={"rerun": Action("Re-run", _rerun, lambda run: run.state.is_final)},
        )
    )
