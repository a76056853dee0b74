"""Whole runs of a job against a sandbox profile, and what they leave behind, for comparing.

- ``SHIPPED_JOBS``: the job files in ``jobs/`` (each with its sample roster and the sample
  tenant it starts from, ``contoso_tenant()``).
- ``shipped_job(name, folder, url)``: that job, retargeted at a sandbox URL, reporting into
  ``folder``.
- ``scenario(folder, url)``: a 1,000-user authoritative job (creates, updates, deletes,
  numbers swapped, SMS sign-in enabled and disabled, a refused delete, a number another
  user signs in with, one number given to several users, unknown users) and the tenant it
  starts from (``scenario_tenant()``), seeded so every run builds the same ones.
- ``converge(handle, job, profile, tenant, run_dir)``: load ``tenant`` into the sandbox
  under ``profile``, plan, journal, apply and report as ``provision apply --yes`` does
  (with test-sized waits), then plan again; returns a ``Converged`` (final tenant, row
  outcomes, the second plan's changes, the sandbox's ``duplicate_writes`` and 429s).
- ``VARIANTS`` and ``variant_profile(variant, writes)``: each ``[behaviour]`` value on its
  own, all of them together, and a sliding-window throttle, as profiles.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from support.sandbox import SandboxHandle

from provision.executor.settings import ExecutorSettings
from provision.planner import check_safety
from provision.run.apply_stage import apply_planned
from provision.run.jobs import Job, OutputConfig, SandboxTarget, load_job
from provision.run.plan_stage import PlannedRun, load_roster, make_plan
from provision.run.run_report import RunOutcome, render_reports
from provision.run.rundir import create_run_dir
from provision.run.targets import open_target
from provision.sandbox.limits import Profile, parse_profile
from provision.sandbox.tenant import Tenant

REPO = Path(__file__).resolve().parents[2]
SHIPPED_JOBS = ("legacy_mfa_migration", "nightly_reconcile", "onboarding")
CONTOSO = REPO / "sample_data" / "contoso_tenant.json"

# What a report row says happened, without what only the server's wording decides
# (error code and message, request id, the reason sentence quoting them).
OUTCOME_COLUMNS = ("outcome", "sms_action", "sms_state", "http_status")
OUTCOME_SUFFIXES = ("_action", "_outcome", "_after")

USERS = 1000


def _retarget(job: Job, folder: Path, url: str) -> Job:
    return job.model_copy(update={"target": SandboxTarget(url=url), "output": OutputConfig(directory=folder / "reports")})


def shipped_job(name: str, folder: Path, url: str) -> Job:
    return _retarget(load_job(REPO / "jobs" / f"{name}.toml"), folder, url)


def contoso_tenant() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CONTOSO.read_text(encoding="utf-8"))
    return data


# --- the 1,000-user authoritative scenario ------------------------------------------------

def _upn(i: int) -> str:
    return f"user{i:04d}@contoso.example"


def _number(kind: int, i: int) -> str:
    """A distinct valid US number per (kind, i), in Graph form."""
    return f"+1 {206 + kind}{5_000_000 + i:07d}"


# Each user's case: (what the tenant holds, what the roster asks). ``r`` is the seeded
# random source, so which user gets which case is fixed but not a plain stripe.
_CASES = (
    "create_all",  # no phones -> mobile + office + alternate, SMS on
    "enable_sms",  # mobile as desired, SMS off -> on
    "disable_sms",  # mobile as desired, SMS on -> off
    "update_mobile",  # another mobile -> the desired one (SMS stays as the row asks: on)
    "delete_office",  # mobile + office, office blank -> office deleted
    "delete_all",  # mobile, alternate, office; every cell blank -> all deleted
    "swap_numbers",  # mobile and alternate trade numbers (a chain through a temporary state)
    "update_office_ext",  # office without extension -> with one
    "unchanged",  # already as desired
    "refused_delete",  # office blank, but the office is the default method: Graph refuses (400)
    "not_unique",  # mobile whose number another user signs in with: saved, 409, SMS not ready
    "unknown_user",  # not in the tenant: skipped
    "shared_mobile",  # no phones; the roster gives every such user one number: the first row signs in by SMS
)


def scenario_cases(seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    weights = (20, 12, 10, 12, 10, 8, 6, 6, 10, 2, 2, 2, 1)
    return rng.choices(_CASES, weights=weights, k=USERS)


def scenario_tenant(seed: int = 11) -> dict[str, Any]:
    """The tenant the scenario starts from, as a snapshot."""
    tenant = Tenant()
    for i, case in enumerate(scenario_cases(seed)):
        if case == "unknown_user":
            continue
        upn = _upn(i)
        tenant.create_user(upn)
        mob, alt, off = _number(0, i), _number(1, i), _number(2, i)
        if case in ("enable_sms", "disable_sms", "unchanged", "delete_office", "delete_all", "update_office_ext",
                    "refused_delete"):
            method = tenant.create_phone(upn, mob, "mobile")["id"]
            if case in ("enable_sms", "delete_office", "update_office_ext", "refused_delete"):
                tenant.disable_sms_sign_in(upn, method)
        if case == "update_mobile":
            tenant.create_phone(upn, _number(3, i), "mobile")
        if case == "swap_numbers":
            tenant.create_phone(upn, mob, "mobile")
        if case in ("delete_all", "swap_numbers", "unchanged"):
            tenant.create_phone(upn, alt, "alternateMobile")
        if case in ("delete_office", "delete_all", "unchanged", "refused_delete"):
            tenant.create_phone(upn, off, "office")
        if case == "update_office_ext":
            tenant.create_phone(upn, off, "office")
        if case == "refused_delete":
            tenant.set_default_method(upn, "office")
        if case == "not_unique":
            # Someone outside the roster signs in by SMS with the number this row asks for.
            holder = f"holder{i:04d}@contoso.example"
            tenant.create_user(holder)
            tenant.create_phone(holder, mob, "mobile")
    return tenant.to_snapshot()


def _scenario_row(i: int, case: str) -> tuple[str, str, str, str, str]:
    mob, alt, off = _number(0, i), _number(1, i), _number(2, i)
    rows: dict[str, tuple[str, str, str, str]] = {
        "create_all": (mob, alt, off, "yes"),
        "enable_sms": (mob, "", "", "yes"),
        "disable_sms": (mob, "", "", "no"),
        "update_mobile": (mob, "", "", "yes"),
        "delete_office": (mob, "", "", "no"),
        "delete_all": ("", "", "", ""),
        "swap_numbers": (alt, mob, "", "yes"),
        "update_office_ext": (mob, "", off + "x" + str(100 + i % 900), "no"),
        "unchanged": (mob, alt, off, "yes"),
        "refused_delete": (mob, "", "", "no"),
        "not_unique": (mob, "", "", "yes"),
        "unknown_user": (mob, "", "", "yes"),
        "shared_mobile": (_number(4, 0), "", "", "yes"),
    }
    return (_upn(i), *rows[case])


def scenario(folder: Path, url: str, seed: int = 11) -> Job:
    """The authoritative job and its roster (``folder/roster.csv``), aimed at ``url``."""
    lines = ["user,mobile,alternate_mobile,office,sms_sign_in"]
    lines += [",".join(_scenario_row(i, case)) for i, case in enumerate(scenario_cases(seed))]
    (folder / "roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job_file = folder / "job.toml"
    job_file.write_text(
        'name = "converge"\nmode = "authoritative"\nsms_sign_in = "leave"\n'
        '[roster]\npath = "roster.csv"\ndefault_region = "US"\n'
        "[safety]\nmax_changes = 10000\nmax_delete_percent = 100\nmax_update_percent = 100\n"
        f'[target]\nurl = "{url}"\n',
        encoding="utf-8",
    )
    return _retarget(load_job(job_file), folder, url)


# --- one whole run and what it leaves ------------------------------------------------------

@dataclass(frozen=True)
class Converged:
    tenant: dict[str, Any]  # user -> sorted (type, number, smsSignInState)
    rows: dict[tuple[str, str], dict[str, str]]  # (row, user) -> the outcome columns
    second_plan: list[tuple[str, str, str]]  # (user, change kind, phone type) the next run would do
    duplicate_writes: int
    throttled: int
    writes: int  # writes the tenant applied
    exit_code: int


def tenant_state(tenant: Tenant) -> dict[str, Any]:
    """Every live user's phones and SMS sign-in states, in one spelling (type order)."""
    snapshot = tenant.to_snapshot()
    state: dict[str, Any] = {}
    for user in snapshot["users"]:
        if user["deleted"]:
            continue
        phones = tenant.list_phones(user["upn"])
        state[user["upn"]] = sorted((p["phoneType"], p["phoneNumber"], p["smsSignInState"]) for p in phones)
    return state


def row_outcomes(run_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (run_dir / "results.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        (r["row"], r["user"]): {k: v for k, v in r.items() if k in OUTCOME_COLUMNS or k.endswith(OUTCOME_SUFFIXES)}
        for r in rows
    }


# Test-sized waits: no profile here lags reads behind writes, so a read-back need not wait
# Graph's replication time (the defaults wait seconds for it).
SETTINGS = ExecutorSettings(settle_s=0.05, alternate_settle_s=0.05, alternate_backoff_s=0.05, progress_interval_s=0.1)


def converge(handle: SandboxHandle, job: Job, profile: Profile, tenant: Mapping[str, Any], run_dir: Path,
             *, seed: int = 7) -> Converged:
    """Apply ``job`` to ``tenant`` served under ``profile`` as ``provision apply --yes``
    does (plan, journal, apply, report: the stage functions ``pipeline.apply_job`` runs,
    with test-sized waits), then plan it once more."""
    handle.configure(profile=profile, snapshot=tenant, seed=seed)
    roster = load_roster(job)

    async def apply_and_plan_again() -> tuple[RunOutcome, dict[str, Any], PlannedRun]:
        async with open_target(job) as target:
            planned = await make_plan(job, target, roster=roster)
            check_safety(planned.plan)
            run = create_run_dir(run_dir, job, roster.path)
            execution = await apply_planned(planned, target, run, settings=SETTINGS)
            stats = handle.stats()
            # The next run's plan, read through the same client (its pacer already warm).
            again = await make_plan(job, target, roster=roster)
        outcome = await asyncio.to_thread(render_reports, run, roster=roster, execution=execution)
        return outcome, stats, again

    outcome, stats, again = asyncio.run(apply_and_plan_again())
    return Converged(
        tenant=tenant_state(handle.tenant),
        rows=row_outcomes(run_dir),
        second_plan=sorted((c.user, c.kind.value, c.phone_type.value) for c in again.plan.changes),
        duplicate_writes=stats["duplicate_writes"],
        throttled=stats["throttled"],
        writes=stats["writes_applied"],
        exit_code=int(outcome.summary.exit_code),
    )


# --- the variants ----------------------------------------------------------------------------

BEHAVIOUR_VARIANTS: dict[str, dict[str, str]] = {
    "batch_order-shuffled": {"batch_order": "shuffled"},
    "retry_after-fractional": {"retry_after": "fractional"},
    "number_format-strict": {"number_format": "strict"},
    "error_text-opaque": {"error_text": "opaque"},
    "list_order-shuffled": {"list_order": "shuffled"},
}
ALL_TOGETHER = "all-together"
WINDOW = "window"
VARIANTS = (*BEHAVIOUR_VARIANTS, ALL_TOGETHER, WINDOW)
DEFAULTS = parse_profile({}, "defaults")
# Writes/s a throttled variant admits at most: well below what the job sends unthrottled
# over loopback (several hundred a second), so the 1,000-user run is throttled for sure.
MAX_THROTTLE_RATE = 250.0


def throttles(variant: str) -> bool:
    """Whether the variant's profile throttles (Retry-After is only sent to a throttled client)."""
    return variant in ("retry_after-fractional", ALL_TOGETHER, WINDOW)


def variant_profile(variant: str, writes: int) -> Profile:
    """The profile of ``variant`` for a job that makes ``writes`` writes under the defaults:
    throttled variants admit about half of them in a second (bucket) or in a 2 s window,
    never more than ``MAX_THROTTLE_RATE`` a second, so a run is throttled a few times and
    lasts a few seconds."""
    sections: dict[str, Any] = {}
    if variant == ALL_TOGETHER:
        sections["behaviour"] = {k: v for b in BEHAVIOUR_VARIANTS.values() for k, v in b.items()}
    elif variant in BEHAVIOUR_VARIANTS:
        sections["behaviour"] = dict(BEHAVIOUR_VARIANTS[variant])
    if variant == WINDOW:
        per_window = max(3, min(math.ceil(writes / 2), 2 * MAX_THROTTLE_RATE))
        sections["throttle"] = {"algorithm": "window", "window_seconds": 2.0, "writes_per_second": per_window / 2}
    elif throttles(variant):
        sections["throttle"] = {"writes_per_second": max(4.0, min(writes / 2, MAX_THROTTLE_RATE)), "burst_seconds": 1.0}
    return parse_profile(sections, variant)
