"""Confine a simulation process: it may write only inside its job folder, and it may not
start programs.

A GLM model can run shell commands (``#system``) and write wherever its recorders point.
Landlock (a Linux security module usable without privileges) limits writes to the job
folder; a seccomp filter makes ``execve``/``execveat`` fail with EPERM, so no command a
model names can run. Both are applied in the simulation's own process, after Python and
gridlabd are loaded and before the model is read, and last for the life of the process.
"""

from __future__ import annotations

import errno
from pathlib import Path

import landlock
import pyseccomp
from landlock.plumbing import FSAccess

# Everything that creates, changes or removes a file system entry.
_WRITE_ACCESS = (
    FSAccess.WRITE_FILE
    | FSAccess.REMOVE_DIR
    | FSAccess.REMOVE_FILE
    | FSAccess.MAKE_CHAR
    | FSAccess.MAKE_DIR
    | FSAccess.MAKE_REG
    | FSAccess.MAKE_SOCK
    | FSAccess.MAKE_FIFO
    | FSAccess.MAKE_BLOCK
    | FSAccess.MAKE_SYM
)


class SandboxUnavailable(RuntimeError):
    """The kernel cannot confine the process; running unconfined was not allowed."""


def _restrict_writes(job_root: Path) -> None:
    try:
        abi = landlock.landlock_abi_version()
    except Exception as exc:  # noqa: BLE001 - any failure means no Landlock here
        raise SandboxUnavailable(f"Landlock is not available: {exc}") from exc
    access = _WRITE_ACCESS | (FSAccess.TRUNCATE if abi >= 3 else FSAccess(0))
    ruleset = landlock.Ruleset(restrict_rules=access)
    ruleset.allow(str(job_root), rules=access)
    ruleset.allow("/dev/null", rules=FSAccess.WRITE_FILE | (access & FSAccess.TRUNCATE))
    ruleset.apply()


def _forbid_exec() -> None:
    try:
        syscalls = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        for name in ("execve", "execveat"):
            syscalls.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        syscalls.load()
    except Exception as exc:  # noqa: BLE001 - libseccomp missing or refused
        raise SandboxUnavailable(f"seccomp is not available: {exc}") from exc


def confine(job_root: Path) -> None:
    """Apply both restrictions to the calling process (irreversibly)."""
    _restrict_writes(job_root.resolve())
    _forbid_exec()
