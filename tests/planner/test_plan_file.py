"""The plan file: round trip, checksum reproducibility, and refusal of foreign or edited files."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest
from support.builders import current, desired

from provision.errors import UsageError
from provision.model import (
    ChangeKind,
    PlanMode,
    ReadStatus,
    SmsIntent,
    SmsPolicy,
    SmsSignInState,
)
from provision.planner import PlanPolicy, plan
from provision.planner.plan_file import plan_checksum, read_plan, write_plan

CREATED = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
POLICY = PlanPolicy(PlanMode.AUTHORITATIVE, SmsIntent.ENABLE, max_changes=100, max_delete_percent=50.0, max_update_percent=None)
SMS = SmsPolicy(readable=True, enabled=True, include_all_users=True)


def _inputs():
    ds = {
        "ann@x": desired("ann@x", rows=(2, 5), mobile="+44 2071234567", office=None),
        "bob@x": desired("bob@x", rows=(3,), mobile="+1 2065550100", sms=False),
        "cid@x": desired("cid@x", rows=(4,), mobile="+1 2065550101"),
    }
    cs = {
        "ann@x": current("ann@x", id="aaaaaaaa-0000-0000-0000-000000000001", office="+44 2071234567"),
        "bob@x": current("bob@x", id="bbbbbbbb-0000-0000-0000-000000000002", mobile="+1 2065550100", sms=SmsSignInState.READY),
        "cid@x": current("cid@x", status=ReadStatus.NOT_FOUND),
    }
    return ds, cs


def test_round_trip_keeps_every_change_and_the_checksum(tmp_path):
    ds, cs = _inputs()
    p = plan(ds, cs, SMS, POLICY)
    path = tmp_path / "plan.json"
    checksum = write_plan(p, path, job="nightly", target="sandbox", created=CREATED)
    assert checksum == plan_checksum(p) and checksum.startswith("sha256:")

    doc = json.loads(path.read_text(encoding="utf-8"))
    assert (doc["format"], doc["version"], doc["job"], doc["target"]) == ("provision-plan", 1, "nightly", "sandbox")
    assert doc["created"] == "2026-11-23T12:00:00+00:00" and doc["mode"] == "authoritative" and doc["sms"] == "enable"
    assert doc["policy"]["max_delete_percent"] == 50.0
    ann = doc["users"][0]
    assert ann["current"]["phones"]["office"]["number"] == "+44 2071234567"  # the reviewable artefact is unmasked
    assert [c["kind"] for c in ann["changes"]] == ["create", "delete"]
    assert doc["summary"]["by_kind"]["create"] == 1 and doc["safety"]["ok"] is True

    saved = read_plan(path)
    assert saved.checksum == checksum and saved.job == "nightly" and saved.created == "2026-11-23T12:00:00+00:00"
    assert saved.policy == POLICY
    assert list(saved.changes) == list(p.changes)
    assert [u.outcome for u in saved.users] == [u.outcome.value for u in p.users]
    assert saved.users[2].codes == ("user_not_found",)
    # the saved desired state re-plans to the same checksum against the same reads
    replanned = plan(saved.desired_users(), cs, SMS, saved.policy)
    assert plan_checksum(replanned) == checksum
    assert saved.desired_users()["ann@x"] == ds["ann@x"]


def test_recomputed_plan_against_changed_state_has_another_checksum():
    ds, cs = _inputs()
    before = plan_checksum(plan(ds, cs, SMS, POLICY))
    cs["bob@x"] = current("bob@x", id="bbbbbbbb-0000-0000-0000-000000000002", mobile="+1 2065550100", sms=SmsSignInState.NOT_ENABLED)
    assert plan_checksum(plan(ds, cs, SMS, POLICY)) != before


def test_writes_to_an_open_file_too():
    ds, cs = _inputs()
    buf = io.StringIO()
    write_plan(plan(ds, cs, SMS, POLICY), buf, job="j", target="t", created="2026-11-23T12:00:00Z")
    buf.seek(0)
    saved = read_plan(buf)
    assert saved.created == "2026-11-23T12:00:00Z" and len(list(saved.changes)) == 3


def _written(tmp_path):
    ds, cs = _inputs()
    path = tmp_path / "plan.json"
    write_plan(plan(ds, cs, SMS, POLICY), path, job="j", target="t", created=CREATED)
    return path, json.loads(path.read_text(encoding="utf-8"))


def test_edited_change_is_detected(tmp_path):
    path, doc = _written(tmp_path)
    change = doc["users"][0]["changes"][0]
    assert change["kind"] == ChangeKind.CREATE
    change["after"] = "+44 2079999999"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(UsageError, match="checksum") as exc:
        read_plan(path)
    assert "2079999999" not in str(exc.value)


def test_dropped_change_is_detected(tmp_path):
    path, doc = _written(tmp_path)
    doc["users"][1]["changes"] = []
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(UsageError, match="checksum"):
        read_plan(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="something-else"), "format"),
        (lambda d: d.update(version=2), "version 2"),
        (lambda d: d.pop("policy"), "missing field 'policy'"),
        (lambda d: d["users"][0]["changes"][0].update(kind="rename"), "malformed"),
    ],
)
def test_foreign_or_malformed_files_are_usage_errors(tmp_path, edit, message):
    path, doc = _written(tmp_path)
    edit(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        read_plan(path)


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match="invalid JSON"):
        read_plan(bad)
    with pytest.raises(UsageError, match="not found"):
        read_plan(tmp_path / "missing.json")
