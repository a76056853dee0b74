"""Rollback: the inverse plan (pure, ``planner.rollback``) and ``pipeline.rollback_job`` over a
served sandbox, including the rollback of a run stopped part-way (only what it applied is undone).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from run_support import (
    StopAfterFirstChange,
    apply_in_process,
    mobiles_held,
    roster,
    served,
    tenant_with_users,
    upn,
    write_job,
)
from support.builders import A, M, O, current

from provision.errors import ExitCode
from provision.executor.settings import ExecutorSettings
from provision.model import ChangeKind, PhoneType, SmsSignInState, UserDecision
from provision.planner import Change
from provision.planner.rollback import AppliedChange, RunUser, inverse_user
from provision.run.pipeline import RollbackOptions, plan_rollback_job, rollback_job
from provision.run.rundir import RunDir

KEY = "ann@contoso.com"


MOB, ALT, OFF = "+1 2065550100", "+1 2065550101", "+1 2065550102"
NEW = "+1 2065550199"


def _applied(*changes: tuple[ChangeKind, PhoneType, str | None, str | None]) -> tuple[AppliedChange, ...]:
    out = []
    for n, (kind, ptype, before, after) in enumerate(changes, 1):
        out.append(AppliedChange(Change(f"{KEY}#{n}", KEY, KEY, kind, ptype, before, after, None, (2,))))
    return tuple(out)


def _kinds(changes: tuple[Change, ...]) -> list[tuple[str, str, str | None, str | None]]:
    return [(c.kind.value, c.phone_type.value, c.before, c.after) for c in changes]


def test_undoing_creates_deletes_the_alternate_before_the_mobile() -> None:
    run = RunUser(KEY, KEY, (2,), _applied(
        (ChangeKind.CREATE, M, None, MOB), (ChangeKind.CREATE, A, None, ALT), (ChangeKind.ENABLE_SMS, M, None, "ready"),
    ), current(KEY))
    live = current(KEY, sms=SmsSignInState.READY, mobile=MOB, alternate=ALT)
    up = inverse_user(run, live)
    assert up.outcome is UserDecision.CHANGE
    # No SMS change: deleting the mobile ends its SMS sign-in.
    assert _kinds(up.changes) == [("delete", "alternateMobile", ALT, None), ("delete", "mobile", MOB, None)]
    assert [c.depends_on for c in up.changes] == [None, f"{KEY}#1"]


def test_update_and_delete_are_restored_creates_first_and_sms_last() -> None:
    before = current(KEY, sms=SmsSignInState.NOT_ENABLED, mobile=MOB, office=OFF, alternate=ALT)
    run = RunUser(KEY, KEY, (2,), _applied(
        (ChangeKind.UPDATE, M, MOB, NEW), (ChangeKind.DELETE, O, OFF, None), (ChangeKind.DELETE, A, ALT, None),
        (ChangeKind.ENABLE_SMS, M, None, "ready"),
    ), before)
    live = current(KEY, sms=SmsSignInState.READY, mobile=NEW)
    up = inverse_user(run, live)
    assert _kinds(up.changes) == [
        ("update", "mobile", NEW, MOB), ("create", "alternateMobile", None, ALT), ("create", "office", None, OFF),
        ("disable_sms", "mobile", None, "notEnabled"),
    ]


def test_a_value_changed_since_the_run_is_a_conflict_and_blocks_what_depends_on_it() -> None:
    run = RunUser(KEY, KEY, (2,), _applied((ChangeKind.CREATE, M, None, MOB), (ChangeKind.CREATE, A, None, ALT)), current(KEY))
    live = current(KEY, mobile=MOB, alternate=NEW)  # someone renumbered the alternate since
    up = inverse_user(run, live)
    assert up.outcome is UserDecision.SKIP and up.changes == ()
    assert [str(c) for c in up.codes] == ["conflict"] and up.reason is not None
    assert up.reason.startswith("conflict: ") and NEW not in up.reason and MOB not in up.reason
    only_mobile = inverse_user(RunUser(KEY, KEY, (2,), _applied((ChangeKind.CREATE, O, None, OFF),
                                                                (ChangeKind.UPDATE, M, NEW, MOB))), current(KEY, mobile=MOB))
    assert only_mobile.outcome is UserDecision.ERROR  # the mobile is restored, the office was deleted meanwhile
    assert _kinds(only_mobile.changes) == [("update", "mobile", MOB, NEW)]


def test_nothing_applied_is_unchanged_and_masked_numbers_are_never_judged() -> None:
    assert inverse_user(RunUser(KEY, KEY, (2,)), current(KEY, mobile=MOB)).outcome is UserDecision.NOOP
    run = RunUser(KEY, KEY, (2,), _applied((ChangeKind.CREATE, M, None, MOB)))
    assert inverse_user(run, current(KEY, masked=True, mobile="+1 20655501**")).outcome is UserDecision.SKIP


def test_rollback_of_a_stopped_run_undoes_only_what_it_applied(tmp_path: Path) -> None:
    users = 12
    app = tenant_with_users(users)
    run_dir, back_dir = tmp_path / "run", tmp_path / "back"
    stop = asyncio.Event()
    one_at_a_time = ExecutorSettings(batch_size=1, max_batches=1, progress_interval_s=0.0, settle_s=0.1)
    with served(app) as url:
        apply_in_process(write_job(tmp_path, url, roster(users)), run_dir, settings=one_at_a_time, stop=stop,
                         console=StopAfterFirstChange(stop))
        held = mobiles_held(app, users)
        assert 0 < held < users

        planned = asyncio.run(plan_rollback_job(RunDir(run_dir), out=tmp_path / "inverse.json"))
        assert planned.plan.counts() == {ChangeKind.DELETE: held}
        assert mobiles_held(app, users) == held  # planning wrote nothing

        outcome = asyncio.run(rollback_job(RunDir(run_dir), RollbackOptions(run_dir=back_dir)))
    assert mobiles_held(app, users) == 0
    assert app.sandbox.stats.to_json()["duplicate_writes"] == 0
    assert outcome.summary.exit_code == ExitCode.OK
    assert outcome.summary.changes_done == {"delete": held}
    assert outcome.summary.rows_by_outcome == {"applied": held, "unchanged": users - held}
    summary = json.loads((back_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["rollback_of"] == str(run_dir.resolve())
    assert RunDir(back_dir).rollback_of == run_dir.resolve()
    assert all(app.sandbox.tenant.list_phones(upn(i)) == [] for i in range(users))
