"""changes.jsonl: one masked line per change the run sent, matching the journal; and
``[audit] file`` gets each line once, across an interrupted apply, its resume and a re-report.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from run_support import (
    StopAfterFirstChange,
    apply_in_process,
    mobile,
    roster,
    served,
    tenant_with_users,
    upn,
    write_job,
)

from provision.executor.journal import ChangeStatus, Journal, JournalEntry
from provision.executor.settings import ExecutorSettings
from provision.masking import mask, mask_in_text
from provision.model import SMS_CHANGE_KINDS
from provision.report.change_feed import CHANGES_FILE
from provision.run.pipeline import report_run, resume_job
from provision.run.rundir import RunDir
from provision.sandbox.app import create_app

OLD_OFFICE = "+1 2065550100"
SENT = {ChangeStatus.DONE: "done", ChangeStatus.FAILED: "failed", ChangeStatus.IN_FLIGHT: "uncertain"}


def feed(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / CHANGES_FILE).read_text(encoding="utf-8").splitlines()]


def journal_entries(run_dir: Path) -> dict[str, JournalEntry]:
    journal = Journal.open(run_dir / "journal.sqlite", read_only=True)
    try:
        return {e.id: e for e in journal.changes()}
    finally:
        journal.close()


def assert_no_phone_number(text: str, numbers: list[str]) -> None:
    assert mask_in_text(text) == text  # nothing in the file reads as an unmasked number
    for number in numbers:
        national = re.sub(r"\D", "", number)[1:]
        assert national not in re.sub(r"[^\d\n]", "", text)


def test_feed_has_one_masked_line_per_sent_change_matching_the_journal(tmp_path: Path) -> None:
    app = create_app()
    tenant = app.sandbox.tenant
    for i in range(4):
        tenant.create_user(upn(i))
    tenant.create_phone(upn(0), OLD_OFFICE, "office")  # the default method: Graph refuses the delete
    tenant.set_default_method(upn(0), "office")
    tenant.create_phone(upn(1), "+1 4255550199", "mobile")  # updated
    rows = [(upn(0), mobile(0), ""), (upn(1), mobile(1), ""), (upn(2), mobile(2), ""), (upn(3), mobile(3), "")]
    audit = tmp_path / "shipper" / "provision.jsonl"
    audit.parent.mkdir()
    with served(app) as url:
        job = write_job(tmp_path, url, rows, header="user,mobile,office",
                        settings='mode = "authoritative"\n[audit]\nfile = "shipper/provision.jsonl"')
        apply_in_process(job, tmp_path / "run")

    lines = feed(tmp_path / "run")
    entries = journal_entries(tmp_path / "run")
    sent = {i: e for i, e in entries.items() if e.status in SENT and e.attempts > 0}
    assert sorted(str(line["change"]) for line in lines) == sorted(sent)
    assert len(sent) < len(entries) or any(e.status is ChangeStatus.FAILED for e in sent.values())
    for line in lines:
        e = sent[str(line["change"])]
        c = e.change
        assert (line["run"], line["job"], line["user"], line["phone_type"], line["action"]) == (
            "run", "truth", c.user, c.phone_type, c.kind)
        assert line["outcome"] == SENT[e.status]
        assert (line["http_status"], line["request_id"], line["error"]) == (e.last_http_status, e.request_id, e.graph_code)
        assert line["request_id"], "every answered write carries Graph's request-id"
        if c.kind not in {str(k) for k in SMS_CHANGE_KINDS}:
            assert (line["before"], line["after"]) == (
                mask(c.before) if c.before else None, mask(c.after) if c.after else None)
    by_action = {(line["user"], line["action"], line["outcome"]) for line in lines}
    assert (upn(0), "delete", "failed") in by_action and (upn(1), "update", "done") in by_action
    assert (upn(2), "create", "done") in by_action
    text = (tmp_path / "run" / CHANGES_FILE).read_text(encoding="utf-8")
    assert_no_phone_number(text, [OLD_OFFICE, "+1 4255550199", *(mobile(i) for i in range(4))])
    assert audit.read_text(encoding="utf-8") == text


def test_audit_file_gets_each_line_once_across_apply_resume_and_report(tmp_path: Path) -> None:
    users = 6
    app = tenant_with_users(users)
    run_dir = tmp_path / "run"
    audit = tmp_path / "audit.jsonl"
    audit.write_text('{"from": "another tool"}\n', encoding="utf-8")  # appended to, never rewritten
    stop = asyncio.Event()
    one_at_a_time = ExecutorSettings(batch_size=1, max_batches=1, progress_interval_s=0.0, settle_s=0.1)
    with served(app) as url:
        job = write_job(tmp_path, url, roster(users), settings='[audit]\nfile = "audit.jsonl"')
        apply_in_process(job, run_dir, settings=one_at_a_time, stop=stop, console=StopAfterFirstChange(stop))
        first = (run_dir / CHANGES_FILE).read_text(encoding="utf-8").splitlines()
        assert 0 < len(first) < users
        assert audit.read_text(encoding="utf-8").splitlines()[1:] == first
        asyncio.run(resume_job(RunDir(run_dir)))
    report_run(RunDir(run_dir))
    report_run(RunDir(run_dir))

    final = (run_dir / CHANGES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(final) == users and set(first) <= set(final)
    shipped = audit.read_text(encoding="utf-8").splitlines()
    assert shipped[0] == '{"from": "another tool"}'
    assert sorted(shipped[1:]) == sorted(final)  # every line once: none repeated, none missing
    assert [json.loads(line)["outcome"] for line in final] == ["done"] * users


def test_an_audit_file_that_cannot_be_written_warns_and_the_next_report_ships_its_lines(tmp_path: Path) -> None:
    app = tenant_with_users(2)
    notes: list[tuple[str, str]] = []

    class Recorder:
        def stage(self, name: str, total: int | None = None) -> None:
            pass

        def advance(self, name: str, done: int, total: int | None = None, **fields: object) -> None:
            pass

        def note(self, level: str, message: str, **fields: object) -> None:
            notes.append((level, message))

    with served(app) as url:
        job = write_job(tmp_path, url, roster(2), settings='[audit]\nfile = "not-yet/audit.jsonl"')
        outcome = apply_in_process(job, tmp_path / "run")
    assert outcome.summary.exit_code == 0 and len(feed(tmp_path / "run")) == 2  # the run itself is fine
    report_run(RunDir(tmp_path / "run"), console=Recorder())
    assert [level for level, message in notes if "not-yet/audit.jsonl" in message] == ["warning"]

    (tmp_path / "not-yet").mkdir()
    report_run(RunDir(tmp_path / "run"))
    report_run(RunDir(tmp_path / "run"))
    assert (tmp_path / "not-yet" / "audit.jsonl").read_text(encoding="utf-8") == (
        tmp_path / "run" / CHANGES_FILE).read_text(encoding="utf-8")
