"""Job kinds the tests use beside the examples: slow, failing and never-installed ones.

The e2e API loads them with JOB_KINDS; workers run the ones WORKER_JOB_KINDS names.
"""

from __future__ import annotations

import time

from marshmallow import Schema, fields, validate

from app.jobkit import JobContext, JobError, JobKind, job_kind


class SleeperParams(Schema):
    seconds = fields.Float(load_default=600, validate=validate.Range(min=0, max=3600))
    heed_cancel = fields.Boolean(load_default=False)


class Sleeper(JobKind):
    """Works for ``seconds``, writing a line a tenth of a second; by default it never checks
    ``cancelled()``, so only killing its process stops it."""

    name = "test_sleeper"
    Parameters = SleeperParams
    max_retries = 0

    def run(self, context: JobContext) -> None:
        started = time.monotonic()
        context.status("sleeping", percent=1)
        with open(context.folder / "ticks.txt", "w") as ticks:
            while time.monotonic() - started < context.parameters["seconds"]:
                if context.parameters["heed_cancel"] and context.cancelled():
                    return
                ticks.write("tick\n")
                ticks.flush()
                time.sleep(0.1)


class FailParams(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(["job_error", "exception"]))


@job_kind("test_failer", parameters=FailParams, max_retries=0)
def failer(context: JobContext) -> None:
    """Fails on purpose: with a JobError, or with an unexpected exception."""
    context.log("about to fail")
    if context.parameters["mode"] == "job_error":
        raise JobError("The feeder has no meters named in the study")
    {}["secret_internal_key"]  # a KeyError: a bug in the job's own code


@job_kind("test_nobody", max_retries=0)
def nobody(context: JobContext) -> None:
    """Installed on the API only: no worker runs it."""
