"""provision: bulk provisioning of Microsoft Entra phone authentication methods.

The package is a batch job whose packages follow the data:

    roster/    files -> Roster (column recognition, number normalisation)
    planner/   Roster + current state -> Plan (pure; safety; plan file)
    graph/     GraphClient on msgraph-sdk: $batch, pacing, retry, bulk state reads
    executor/  Plan -> Graph writes, journaled and resumable
    report/    journal + plan + roster -> one row result per roster row, and the writers
    run/       job files, targets, run directories, the whole run in one call
    cli/       the command line (the only part that prints)
    sandbox/   a local Graph-compatible tenant: default target and test server

``validate``, ``plan`` and ``apply`` (``provision.api``) are the API for scripts and
notebooks: rosters as paths or pandas DataFrames, results as DataFrames. ``__all__`` below
is what a script may import from ``provision`` itself; everything else is internal and may
move. Names load on first use, so ``import provision`` stays cheap (no msgraph until a
Graph client is needed).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    # closed sets and values
    "ChangeKind": "provision.model",
    "PhoneType": "provision.model",
    "PlanMode": "provision.model",
    "RowOutcome": "provision.model",
    "SmsIntent": "provision.model",
    "SmsSignInState": "provision.model",
    "UserDecision": "provision.model",
    # errors and exit codes
    "AuthError": "provision.errors",
    "ExitCode": "provision.errors",
    "GraphError": "provision.errors",
    "JobFileError": "provision.errors",
    "PlanMismatchError": "provision.errors",
    "ProvisionError": "provision.errors",
    "RosterReadError": "provision.errors",
    "SafetyError": "provision.errors",
    "UsageError": "provision.errors",
    # personal data
    "mask": "provision.masking",
    "mask_in_text": "provision.masking",
    # the stages
    "Roster": "provision.roster.reader",
    "read_roster": "provision.roster.reader",
    "normalise": "provision.roster.numbers",
    "validate": "provision.api",
    "plan": "provision.api",
    "apply": "provision.api",
    "PlanResult": "provision.api",
    "ApplyResult": "provision.api",
    "Job": "provision.run.jobs",
    "load_job": "provision.run.jobs",
    "RunDir": "provision.run.rundir",
    "ApplyOptions": "provision.run.pipeline",
    "apply_job": "provision.run.pipeline",
    "plan_job": "provision.run.pipeline",
    "report_run": "provision.run.pipeline",
    "resume_job": "provision.run.pipeline",
}

__all__ = [
    "__version__",
    "ApplyOptions",
    "ApplyResult",
    "AuthError",
    "ChangeKind",
    "ExitCode",
    "GraphError",
    "Job",
    "JobFileError",
    "PhoneType",
    "PlanMismatchError",
    "PlanMode",
    "PlanResult",
    "ProvisionError",
    "Roster",
    "RosterReadError",
    "RowOutcome",
    "RunDir",
    "SafetyError",
    "SmsIntent",
    "SmsSignInState",
    "UsageError",
    "UserDecision",
    "apply",
    "apply_job",
    "load_job",
    "mask",
    "mask_in_text",
    "normalise",
    "plan",
    "plan_job",
    "read_roster",
    "report_run",
    "resume_job",
    "validate",
]

if TYPE_CHECKING:
    from provision.api import ApplyResult, PlanResult, apply, plan, validate
    from provision.errors import (
        AuthError,
        ExitCode,
        GraphError,
        JobFileError,
        PlanMismatchError,
        ProvisionError,
        RosterReadError,
        SafetyError,
        UsageError,
    )
    from provision.masking import mask, mask_in_text
    from provision.model import ChangeKind, PhoneType, PlanMode, RowOutcome, SmsIntent, SmsSignInState, UserDecision
    from provision.roster.numbers import normalise
    from provision.roster.reader import Roster, read_roster
    from provision.run.jobs import Job, load_job
    from provision.run.pipeline import ApplyOptions, apply_job, plan_job, report_run, resume_job
    from provision.run.rundir import RunDir


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'provision' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
