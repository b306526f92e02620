"""The client routes every kind of run shares: cancel, logs and artifact download.

Each domain nests them under its own run URL (``/pipelines/{id}/runs/{run_id}``,
``/workflows/{id}/runs/{run_id}``, ``/flows/{id}``) with ``add_run_routes``, giving a
function that finds the run from the URL's arguments (raising NotFound when the run is
not under that parent) and the schema its run is dumped with. The behaviour lives here
once; the domains only say where.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import redirect, send_file
from flask.views import MethodView
from marshmallow import Schema

from app.blueprint import Blueprint
from app.extensions import db
from app.openapi import BINARY_BODY, IDEMPOTENT, LOCATION, OCTET_STREAM, ErrorSchema
from app.runs import dispatch, queries
from app.runs.idempotency import idempotent
from app.runs.models import Run
from app.runs.schemas import LogPageSchema, LogQuerySchema
from app.runs.services import lock_run, request_cancel
from app.storage.extension import store

FindRun = Callable[..., Run]


def cancel_run(find_run: FindRun, **url_args: str) -> Run:
    """Cancel the run ``find_run`` finds (READY ends at once, RUNNING goes CANCELLING)."""
    run = find_run(**url_args)
    request_cancel(db.session, lock_run(db.session, run.id))
    db.session.commit()
    dispatch.follow_up(db.session, run.id)  # stop its children, start what follows
    return find_run(**url_args)


def add_run_routes(
    blp: Blueprint,
    run_url: str,
    find_run: FindRun,
    run_schema: type[Schema],
    decorators: list[Callable[..., Any]],
    kind: str,
) -> None:
    """Register ``{run_url}/cancel``, ``{run_url}/logs`` and ``{run_url}/artifacts/<name>``.

    ``find_run(**url_args)`` returns the run (or raises NotFound); ``kind`` names the
    operations (``cancelPipelineRun``...).
    """

    RunView = type("RunView", (MethodView,), {"decorators": list(decorators)})  # noqa: N806

    @blp.route(f"{run_url}/cancel")
    class RunCancel(RunView):
        @idempotent
        @blp.response(200, run_schema, headers=IDEMPOTENT)
        @blp.alt_response(
            409, schema=ErrorSchema, description="The run has ended, or the same key is in progress"
        )
        @blp.doc(operationId=f"cancel{kind}", parameters=["IdempotencyKey"])
        def post(self, **url_args: str) -> Any:
            """Cancel: READY ends at once; RUNNING goes CANCELLING until the work stops."""
            return cancel_run(find_run, **url_args)

    @blp.route(f"{run_url}/logs")
    class RunLogs(RunView):
        @blp.arguments(LogQuerySchema, location="query")
        @blp.response(200, LogPageSchema)
        @blp.doc(operationId=f"list{kind}Logs")
        def get(self, args: dict[str, Any], **url_args: str) -> Any:
            """Read log lines after sequence number ``after``; live and after the end."""
            run = find_run(**url_args)
            lines = queries.list_log_lines(db.session, run.id, args["after"], args["limit"])
            next_after = lines[-1].seq if lines else args["after"]
            complete = run.state.is_final and next_after >= run.next_log_seq - 1
            return {
                "lines": lines,
                "next_after": next_after,
                "state": run.state,
                "complete": complete,
            }

    @blp.route(f"{run_url}/artifacts/<filename:name>")
    class RunArtifact(RunView):
        @blp.response(302, description="To a presigned URL of the file (S3)", headers=LOCATION)
        @blp.alt_response(
            200, schema=BINARY_BODY, content_type=OCTET_STREAM, description="The file"
        )
        @blp.doc(operationId=f"download{kind}Artifact")
        def get(self, name: str, **url_args: str) -> Any:
            """Download an artifact: a redirect to a presigned S3 URL, or the bytes."""
            run = find_run(**url_args)
            artifact = queries.get_artifact(db.session, run.id, name)
            filename = name.rsplit("/", 1)[-1]
            url = store().presigned_url(artifact.storage_key, filename)
            if url:
                return redirect(url, code=302)
            return send_file(
                store().open(artifact.storage_key),
                mimetype="application/octet-stream",
                as_attachment=True,
                download_name=filename,
            )
