"""Run states and the one table of allowed transitions."""

from __future__ import annotations

import enum


class RunState(str, enum.Enum):
    READY = "READY"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    def can_become(self, target: RunState) -> bool:
        return target in TRANSITIONS[self]


FINAL_STATES = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED})

# RUNNING -> READY is a retry: the attempt failed for an infrastructure reason and the
# policy allows another. Final states have no way out, so a late write can never flip them.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.READY: frozenset({RunState.RUNNING, RunState.CANCELLED, RunState.FAILED}),
    RunState.RUNNING: frozenset(
        {RunState.COMPLETED, RunState.FAILED, RunState.CANCELLING, RunState.READY}
    ),
    # A simulation that finished before it saw the cancel is reported as what it did.
    RunState.CANCELLING: frozenset({RunState.CANCELLED, RunState.FAILED, RunState.COMPLETED}),
    RunState.COMPLETED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
}


class ErrorType(str, enum.Enum):
    """Why a run did not complete; clients branch on this, so the names are a contract."""

    MODEL_ERROR = "MODEL_ERROR"  # the model failed to load or initialise (GridLAB-D says why)
    SIMULATION_ERROR = "SIMULATION_ERROR"  # the simulator ran and reported failure
    CRASH = "CRASH"  # the simulation process died (signal, abnormal exit)
    INPUT_ERROR = "INPUT_ERROR"  # an input could not be fetched or is not allowed
    PARAMETER_ERROR = "PARAMETER_ERROR"  # GridLAB-D could not set a parameter to its value
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    WORKER_LOST = "WORKER_LOST"  # the attempt's lease expired: the worker died or hung
    INFRASTRUCTURE_ERROR = "INFRASTRUCTURE_ERROR"  # storage or API unreachable from the worker
    NODE_FAILED = "NODE_FAILED"  # a run driven by children: one or more of them failed
    JOB_ERROR = "JOB_ERROR"  # a Python job raised JobError: its message is the user's
    JOB_EXCEPTION = "JOB_EXCEPTION"  # a Python job raised another exception (traceback in log)
    SOURCE_ERROR = "SOURCE_ERROR"  # a flow could not read a source (connection, table)
    SQL_ERROR = "SQL_ERROR"  # a flow's transform failed in the engine (details: transform, line)
    CHECK_FAILED = "CHECK_FAILED"  # a flow's data check found offending rows
    PUBLISH_ERROR = "PUBLISH_ERROR"  # a flow's results could not be written to its target
    # A flow's data store password cannot be decrypted with the current key (details.store_id).
    PASSWORD_UNREADABLE = "PASSWORD_UNREADABLE"


RETRYABLE_ERRORS = frozenset({ErrorType.WORKER_LOST, ErrorType.INFRASTRUCTURE_ERROR})
