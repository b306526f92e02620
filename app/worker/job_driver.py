"""Run one Python job kind in this process, in its job folder.

    python -m app.worker.job_driver --root JOB_ROOT --kind package.module:Kind --spec SPEC.json

Its own process, so a cancel or a timeout really stops it: SIGINT (or SIGTERM) sets the
flag ``context.cancelled()`` reads, and the supervisor SIGKILLs the process group after
WORKER_CANCEL_GRACE_SECONDS if the job does not stop. Marker lines (console.MARKER) tell
the supervisor the status and how the job ended; everything else printed is the log.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from app.jobkit.context import JobContext
from app.jobkit.kind import JobError, Outputs
from app.jobkit.registry import import_kind
from app.worker.console import marker
from app.worker.gridlabd_driver import PROJECT_ROOT, die_with_parent, emit, hidden_paths

EXIT_FAILED = 3


def _outputs(root: Path, declared: list[str], returned: Outputs) -> list[str]:
    """Declared and returned outputs, as names in the job folder (JobError if outside)."""
    names = list(declared)
    for item in returned or []:
        path = (root / item).resolve()
        if not path.is_relative_to(root.resolve()):
            raise JobError(f"Output {os.fspath(item)!r} is outside the job folder")
        names.append(path.relative_to(root.resolve()).as_posix())
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        raise JobError(f"Declared output(s) not written: {', '.join(missing)}")
    return list(dict.fromkeys(names))


def run(root: Path, reference: str, spec: dict[str, Any]) -> int:
    cancel = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: cancel.set())
    # Tracebacks show the job folder as relative paths and the server's folders by role.
    emit(marker("started", hide=hidden_paths(root)))
    try:
        kind = import_kind(reference)
        from marshmallow import ValidationError

        try:
            parameters = kind.Parameters().load(spec["parameters"])
        except ValidationError as exc:
            raise JobError(f"Invalid parameters: {exc.messages}") from None
        context = JobContext(root, parameters, spec["inputs"], emit_marker=emit, cancel_flag=cancel)
        returned = kind().run(context)
        outputs = _outputs(root, context.declared_outputs, returned)
    except JobError as exc:
        emit(marker("job_error", message=str(exc) or type(exc).__name__))
        return EXIT_FAILED
    except BaseException as exc:  # noqa: BLE001 - any failure of the job's own code
        sys.stdout.flush()
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        emit(marker("exception", type=type(exc).__name__))
        return EXIT_FAILED
    sys.stdout.flush()
    emit(marker("finished", outputs=outputs, cancelled=cancel.is_set()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--kind", required=True)
    parser.add_argument("--spec", required=True, type=Path)
    args = parser.parse_args(argv)
    die_with_parent()
    spec = json.loads(args.spec.read_text())
    # Imports come from the service and the installed packages, never from the job
    # folder (whose files a client chose): drop the working directory from the path.
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    sys.path.insert(0, str(PROJECT_ROOT))
    os.chdir(args.root)
    return run(args.root, args.kind, spec)


if __name__ == "__main__":
    sys.exit(main())
