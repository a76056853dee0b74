"""The job converges under every plausible Graph: whatever the sandbox's ``[behaviour]``
variants (batch items run and answered out of order, fractional Retry-After, only the
documented number spelling, rule violations worded in codes the client has never seen,
phone lists in any order, all of them at once) and under a sliding-window throttle, each
shipped job and a 1,000-user authoritative run end with the same tenant and the same row
outcomes as under the defaults, write nothing twice, and a second run plans nothing new.
A credential without the permission ends the run as a permission failure under any wording.

Each run goes through real loopback HTTP and the real msgraph-sdk, with the stage
functions ``provision apply`` runs. The runs under the defaults are made once per module.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from convergence_support import (
    DEFAULTS,
    SHIPPED_JOBS,
    VARIANTS,
    Converged,
    contoso_tenant,
    converge,
    scenario,
    scenario_cases,
    scenario_tenant,
    shipped_job,
    throttles,
    variant_profile,
)
from support.sandbox import SandboxHandle

from provision.errors import ExitCode, ProvisionError, exit_code_for
from provision.run.jobs import Job
from provision.run.pipeline import ApplyOptions, apply_job
from provision.run.plan_stage import load_roster
from provision.sandbox.app import SandboxApp
from provision.sandbox.limits import parse_profile

TARGETS = (*SHIPPED_JOBS, "scenario_1000")

MakeJob = Callable[[Path, str], Job]


def _target(name: str) -> tuple[MakeJob, dict[str, Any]]:
    if name == "scenario_1000":
        return scenario, scenario_tenant()
    return (lambda folder, url: shipped_job(name, folder, url)), contoso_tenant()


@pytest.fixture(autouse=True)
def _no_token_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVISION_TOKEN", raising=False)
    monkeypatch.delenv("PROVISION_TOKEN_FILE", raising=False)


@pytest.fixture(scope="module")
def baselines(
    _sandbox_server: tuple[SandboxApp, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Converged]]:
    """Each target's run under the default profile, made on first use."""
    app, root = _sandbox_server
    made: dict[str, Converged] = {}

    def baseline(name: str) -> Converged:
        if name not in made:
            folder = tmp_path_factory.mktemp(f"baseline-{name}")
            make_job, tenant = _target(name)
            with pytest.MonkeyPatch.context() as mp:
                mp.delenv("PROVISION_TOKEN", raising=False)
                mp.delenv("PROVISION_TOKEN_FILE", raising=False)
                made[name] = converge(SandboxHandle(app, root), make_job(folder, f"{root}/v1.0"), DEFAULTS, tenant,
                                      folder / "run")
        return made[name]

    yield baseline


def _by_case(result: Converged) -> dict[str, Counter[str]]:
    cases = scenario_cases()
    by_case: dict[str, Counter[str]] = {}
    for (_row, user), row in result.rows.items():
        case = cases[int(user[4:8])]
        by_case.setdefault(case, Counter())[row["outcome"]] += 1
    return by_case


@pytest.mark.slow
def test_the_defaults_apply_every_case_once(baselines: Callable[[str], Converged]) -> None:
    """What the comparisons compare against is itself right: each case of the scenario ends
    as it should, nothing is written twice, and only Graph's refusals are planned again."""
    result = baselines("scenario_1000")
    by_case = _by_case(result)
    expected = {
        "create_all": "applied", "enable_sms": "applied", "disable_sms": "applied", "update_mobile": "applied",
        "delete_office": "applied", "delete_all": "applied", "swap_numbers": "applied",
        "update_office_ext": "applied", "unchanged": "unchanged", "refused_delete": "failed",
        "not_unique": "partial", "unknown_user": "skipped",
    }
    shared = by_case.pop("shared_mobile")
    assert {case: set(outcomes) for case, outcomes in by_case.items()} == {c: {o} for c, o in expected.items()}
    # One number for several users: the first row's phone signs in by SMS, the others' can't.
    assert shared["applied"] == 1 and shared["partial"] == sum(shared.values()) - 1 > 0
    first = min((int(row), user) for (row, user), r in result.rows.items() if r["outcome"] != "skipped"
                and scenario_cases()[int(user[4:8])] == "shared_mobile")
    assert result.rows[str(first[0]), first[1]]["sms_state"] == "ready"
    assert result.duplicate_writes == 0
    refused = sum(by_case["refused_delete"].values())
    assert result.second_plan and len(result.second_plan) == refused
    assert {(kind, phone) for _user, kind, phone in result.second_plan} == {("delete", "office")}
    for name in SHIPPED_JOBS:
        shipped = baselines(name)
        assert shipped.duplicate_writes == 0 and shipped.second_plan == [] and shipped.writes > 0


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("target", TARGETS)
def test_the_job_converges_as_under_the_defaults(
    target: str, variant: str, baselines: Callable[[str], Converged], sandbox: SandboxHandle, tmp_path: Path
) -> None:
    expected = baselines(target)
    make_job, tenant = _target(target)
    profile = variant_profile(variant, expected.writes)
    result = converge(sandbox, make_job(tmp_path, sandbox.v1), profile, tenant, tmp_path / "run")

    assert result.duplicate_writes == 0
    if throttles(variant):
        assert result.throttled > 0  # the variant was really exercised
    assert result.tenant == expected.tenant
    assert result.rows == expected.rows
    assert result.second_plan == expected.second_plan
    assert result.exit_code == expected.exit_code


READS_NOTHING = ["User.Read.All"]
READS_BUT_MAY_NOT_WRITE = ["UserAuthenticationMethod.Read.All", "Policy.Read.All", "User.Read.All"]


@pytest.mark.parametrize("error_text", ["sandbox", "opaque"])
@pytest.mark.parametrize("roles", [READS_NOTHING, READS_BUT_MAY_NOT_WRITE], ids=["reads-nothing", "may-not-write"])
def test_a_credential_without_the_permission_is_a_permission_failure_whatever_the_wording(
    roles: list[str], error_text: str, sandbox: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Graph's 403 codes are not all public: a refusal is judged by its status (exit 4),
    not by whether its code is one the client knows."""
    sandbox.configure(profile=parse_profile({"behaviour": {"error_text": error_text}}, error_text),
                      snapshot=contoso_tenant())
    monkeypatch.setenv("PROVISION_TOKEN", sandbox.make_token(roles=roles))
    job = shipped_job("onboarding", tmp_path, sandbox.v1)
    try:
        outcome = asyncio.run(apply_job(job, load_roster(job), ApplyOptions(run_dir=tmp_path / "run")))
        ended = outcome.summary.exit_code
    except ProvisionError as exc:
        ended = exit_code_for(exc)
    assert ended == ExitCode.AUTH
    assert sandbox.stats()["writes_succeeded"] == 0
