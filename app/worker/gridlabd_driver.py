"""Run one GridLAB-D model in this process, confined to its job folder.

    python -m app.worker.gridlabd_driver --root JOB_ROOT --model REL/PATH.glm \
        [-D NAME=VALUE ...] [--no-sandbox]

The working directory is the entry model's folder, so relative references resolve as the
model's author meant (``../WA-Yakima.tmy2`` from ``models/x.glm`` is ``JOB_ROOT/WA-Yakima.tmy2``);
the job root is the sandbox boundary. Marker lines (console.MARKER) on stdout tell the
supervisor what happened, since GridLAB-D reports load errors only as console text.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import signal
import sys
from pathlib import Path

from app.worker.console import marker
from app.worker.sandbox import SandboxUnavailable, confine

PR_SET_PDEATHSIG = 1
SYSTEM_DIRECTIVE = re.compile(r"^\s*#system\b")
# Without these, GridLAB-D writes a checkpoint (62 MB on a large feeder) and an XML dump
# on failure into the job folder (docs: gridlabd-notes.md).
QUIET_DEFINES = ["-D", "checkpoint_type=NONE", "-D", "dumpfile="]


def die_with_parent() -> None:
    """Be killed if the worker that started us dies (SIGKILL, OOM): no orphan simulations."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def emit(line: str) -> None:
    """Write a marker on a line of its own: stdout and stderr share one pipe, and
    GridLAB-D leaves progress lines unterminated, so start with a newline, in one write."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), f"\n{line}\n".encode())


def warn_disabled_directives(root: Path) -> None:
    """Say in the console which ``#system`` lines will not run (the sandbox stops them)."""
    for path in sorted(root.rglob("*.glm")):
        with open(path, errors="replace") as model:
            for number, line in enumerate(model, start=1):
                if SYSTEM_DIRECTIVE.match(line):
                    name = path.relative_to(root).as_posix()
                    print(
                        f"WARNING  [SANDBOX] : {name}({number}): #system is disabled on this "
                        "service; the command will not run",
                        file=sys.stderr,
                        flush=True,
                    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gridlabd_driver")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("-D", dest="defines", action="append", default=[])
    parser.add_argument("--no-sandbox", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    die_with_parent()
    root = args.root.resolve()
    model = (root / args.model).resolve()
    os.chdir(model.parent)
    # GridLAB-D handles SIGINT during run() (stop at the next step, flush outputs); during
    # load Python would defer it, so restore the default: interrupted loads just end.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    import gridlabd  # noqa: PLC0415 - loaded here, after GLPATH and cwd are in place

    if not args.no_sandbox:
        warn_disabled_directives(root)
        try:
            confine(root)
        except SandboxUnavailable as exc:
            emit(marker("sandbox_unavailable", message=str(exc)))
            return 70
    simulator = gridlabd.DirectGridLabD()
    defines = [part for value in args.defines for part in ("-D", value)]
    code = _code(simulator.load_glm([model.name, *QUIET_DEFINES, *defines]))
    if code != 0:
        emit(marker("load_failed", code=code))
        return 3
    emit(
        marker(
            "loaded",
            starttime=simulator.get_global("starttime"),
            stoptime=simulator.get_global("stoptime"),
        )
    )
    code = _code(simulator.setup_after_load())
    if code == 0:
        code = _code(simulator.run())
    emit(marker("ran", code=code))
    sys.stdout.flush()
    sys.stderr.flush()
    # exit_gld finalizes the recorders (CSV files are complete only after it) and ends
    # the process with GridLAB-D's own exit code.
    simulator.exit_gld("")
    return code


def _code(result: object) -> int:
    return int(getattr(result, "value", result))


if __name__ == "__main__":
    sys.exit(main())
