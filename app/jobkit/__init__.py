"""The public kit for writing Python job kinds in a package of your own.

A job kind is a class (a subclass of ``JobKind``) or a function decorated with
``job_kind``: it gets a ``JobContext`` and works in the run's temporary job folder::

    from marshmallow import Schema, fields
    from app.jobkit import JobContext, JobError, JobKind

    class Params(Schema):
        column = fields.String(required=True)

    class Peak(JobKind):
        name = "peak"
        title = "Peak of a column"
        Parameters = Params

        def run(self, context: JobContext) -> None:
            with context.step("Reading", percent=10):
                ...
            if context.cancelled():
                return
            context.output("peak.json")

Register it with ``JOB_KINDS=package.module:Peak`` or the ``gridlabd_jobs.kinds`` entry
point of your package. See the README's "Python jobs" section.
"""

from app.jobkit.context import JobContext
from app.jobkit.kind import JobError, JobKind, job_kind

__all__ = ["JobContext", "JobError", "JobKind", "job_kind"]
