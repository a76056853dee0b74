"""What a script may import from ``provision``, and what importing the light modules costs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import provision

PUBLIC = [
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


def test_the_public_api_is_pinned() -> None:
    # Adding a name is a decision: add it here too. Removing one breaks scripts.
    assert provision.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(provision, name) is not None


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        provision.no_such_name  # noqa: B018


HEAVY = ("msgraph", "kiota_abstractions", "kiota_http", "msgraph_core", "azure.identity")


@pytest.mark.parametrize(
    "statement",
    [
        "import provision",
        "import provision.run.jobs",
        "from provision.run.jobs import load_job",
        "import provision.roster.reader",
        "import provision.planner",
        "import provision.cli",
        "from provision import load_job, read_roster, PlanMode, ExitCode, mask",
        "import provision.cli.validate_cmd",
        "import provision.api",
        "from provision import validate, plan, apply",
    ],
)
def test_light_imports_do_not_load_the_graph_sdk(statement: str) -> None:
    probe = f"{statement}\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {{'msgraph', 'kiota_abstractions', 'kiota_http', 'msgraph_core', 'azure'}})))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout)
    heavy = [m for m in loaded if m.startswith(HEAVY)]
    assert heavy == [], f"{statement!r} imports {heavy[:5]}"
