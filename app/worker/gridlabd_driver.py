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
import contextlib
import ctypes
import importlib.util
import os
import re
import signal
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.worker.console import marker
from app.worker.sandbox import SandboxUnavailable, confine

PR_SET_PDEATHSIG = 1
IOLBF = 1  # setvbuf's line-buffered mode (glibc)
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
SYSTEM_DIRECTIVE = re.compile(r"^\s*#system\b")
# How a model reads a parameter NAME: ${NAME}, or #ifdef/#ifndef/#if NAME.
REFERENCE = re.compile(
    r"\$\{\s*([A-Za-z_][A-Za-z0-9_.]*)|^\s*#\s*(?:ifdef|ifndef|if)\s+([A-Za-z_][A-Za-z0-9_.]*)"
)
REFUSED = re.compile(r"global_setvar\(\): unable to set (?P<name>\S+) to (?P<value>.*)$")
# Without these, GridLAB-D writes a checkpoint (62 MB on a large feeder) and an XML dump
# on failure into the job folder (docs: gridlabd-notes.md).
QUIET_DEFINES = ["-D", "checkpoint_type=NONE", "-D", "dumpfile="]
PROCESS_MAP_KEY_FILE = Path("/tmp/gridlabd-pmap-3")  # GridLAB-D's own name (sched.c)


def die_with_parent() -> None:
    """Be killed if the worker that started us dies (SIGKILL, OOM): no orphan simulations."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def line_buffered_stdout() -> None:
    """GridLAB-D prints warnings on C's stdout and errors on stderr. Into a pipe, stdout is
    fully buffered, so a warning would come after errors printed later, even after the
    process ended: line-buffer it (before GridLAB-D prints anything)."""
    libc = ctypes.CDLL(None)
    libc.setvbuf(ctypes.c_void_p.in_dll(libc, "stdout"), None, IOLBF, 0)


def emit(line: str) -> None:
    """Write a marker on a line of its own: stdout and stderr share one pipe, and
    GridLAB-D leaves progress lines unterminated, so start with a newline, in one write."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), f"\n{line}\n".encode())


def warn(context: str, text: str) -> None:
    """A warning in GridLAB-D's own format, so the run's log reads as one."""
    print(f"WARNING  [{context}] : {text}", file=sys.stderr, flush=True)


def glm_lines(root: Path) -> Iterator[tuple[str, int, str]]:
    """(name in the job folder, line number, text) of every line of the job's .glm files."""
    for path in sorted(root.rglob("*.glm")):
        name = path.relative_to(root).as_posix()
        with open(path, errors="replace") as model:
            for number, line in enumerate(model, start=1):
                yield name, number, line


def warn_disabled_directives(root: Path) -> None:
    """Say in the console which ``#system`` lines will not run (the sandbox stops them)."""
    for name, number, line in glm_lines(root):
        if SYSTEM_DIRECTIVE.match(line):
            text = "#system is disabled on this service; the command will not run"
            warn("SANDBOX", f"{name}({number}): {text}")


def hidden_paths(root: Path) -> list[tuple[str, str]]:
    """The server's folders that may appear in messages, longest first, with what a user
    sees instead: job paths relative to the job folder, the installation by its role."""
    spec = importlib.util.find_spec("gridlabd")
    folders = {
        sysconfig.get_paths()["purelib"]: "<site-packages>",
        sysconfig.get_paths()["platlib"]: "<site-packages>",
        str(PROJECT_ROOT): "<service>",
    }
    if spec is not None and spec.origin:
        folders[str(Path(spec.origin).parent)] = "<gridlabd>"
    if sys.prefix != sys.base_prefix:  # a virtualenv
        folders[sys.prefix] = "<venv>"
    # Whole path segments only ("/app/" never turns "/application" into something else).
    shown = {f"{path}/": f"{name}/" for path, name in folders.items()}
    shown[f"{root}/"] = ""
    return sorted(shown.items(), key=lambda item: len(item[0]), reverse=True)


def unused_parameters(simulator: Any, root: Path, parameters: dict[str, str]) -> list[str]:
    """Parameters the model never reads: no reference in the job's .glm files, and not one
    of GridLAB-D's own globals (those exist, with a value, before any model is loaded)."""
    read: set[str] = set()
    for _, _, line in glm_lines(root):
        read.update(a or b for a, b in REFERENCE.findall(line))
    return sorted(
        name for name in parameters if name not in read and simulator.get_global(name) == ""
    )


def warn_unused(names: list[str]) -> None:
    for name in names:
        reads = f"${{{name}}}, #ifdef {name} or #ifndef {name}"
        warn(
            "PARAMETERS",
            f"parameter {name} has no effect: the model never reads it (no {reads} in its "
            ".glm files) and it is not a GridLAB-D global",
        )
    if names:
        emit(marker("unused_parameters", names=names))


def refused_parameter(messages: list[dict[str, str]], parameters: dict[str, str]) -> dict | None:
    """The first parameter GridLAB-D said it could not set (it goes on without it)."""
    for message in messages:
        found = REFUSED.search(message.get("message", ""))
        if found and found.group("name") in parameters:
            name = found.group("name")
            return {"name": name, "value": parameters[name], "message": message["message"]}
    return None


def parameters_of(defines: list[str]) -> dict[str, str]:
    return dict(define.split("=", 1) if "=" in define else (define, "") for define in defines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gridlabd_driver")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("-D", dest="defines", action="append", default=[])
    parser.add_argument("--no-sandbox", action="store_true")
    return parser.parse_args(argv)


def ensure_process_map_key() -> None:
    """GridLAB-D keys its shared process map on this file (``ftok``) and, when it is
    missing, prints "error generating key to global process map" before the model's own
    messages, so a failed model's first ERROR would not be its cause. An empty file is all
    it needs; where /tmp cannot be written the line stays, harmless."""
    with contextlib.suppress(OSError):
        PROCESS_MAP_KEY_FILE.touch(exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    die_with_parent()
    line_buffered_stdout()
    root = args.root.resolve()
    model = (root / args.model).resolve()
    os.chdir(model.parent)
    folder = model.parent.relative_to(root).as_posix()
    emit(marker("started", folder="" if folder == "." else folder, hide=hidden_paths(root)))
    # GridLAB-D handles SIGINT during run() (stop at the next step, flush outputs); during
    # load Python would defer it, so restore the default: interrupted loads just end.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    import gridlabd  # noqa: PLC0415 - loaded here, after GLPATH and cwd are in place

    ensure_process_map_key()  # before the sandbox: the file is outside the job
    if not args.no_sandbox:
        warn_disabled_directives(root)
        try:
            confine(root)
        except SandboxUnavailable as exc:
            emit(marker("sandbox_unavailable", message=str(exc)))
            return 70
    simulator = gridlabd.DirectGridLabD()
    parameters = parameters_of(args.defines)
    warn_unused(unused_parameters(simulator, root, parameters))
    defines = [part for value in args.defines for part in ("-D", value)]
    simulator.enable_message_capture(True)  # during the load only: defines are set then
    code = _code(simulator.load_glm([model.name, *QUIET_DEFINES, *defines]))
    refused = refused_parameter(simulator.get_messages(), parameters)
    simulator.enable_message_capture(False)
    simulator.clear_messages()
    if refused is not None:
        emit(marker("parameter_refused", **refused))
        return 2
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
    # the process with GridLAB-D's exit_code global: make that the code run() returned.
    if code != 0:
        simulator.set_global("exit_code", str(code))
    simulator.exit_gld("")
    return code


def _code(result: object) -> int:
    return int(getattr(result, "value", result))


if __name__ == "__main__":
    sys.exit(main())
