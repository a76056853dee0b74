"""``[notify]``: tell a chat channel how a run ended, through an incoming webhook.

A nightly job nobody watches needs to say when it failed, and a security team watching for
"Admin registered security info" needs to know when it wrote. When ``apply``, ``resume``,
``rollback`` or ``plan --check`` ends, the job's ``[notify]`` section decides whether to post
(``on``), and ``format`` picks the body:

- ``slack``: ``{"text": ...}``, what Slack incoming webhooks take.
- ``teams``: ``{"type": "message", "attachments": [<one Adaptive Card>]}``, what the Teams
  Workflows "webhook request" trigger posts to a channel. The retired Office 365 connectors'
  MessageCard is not sent: Workflows don't take it.

No single body suits both: Slack reads ``attachments`` as its own legacy attachments, and
Workflows need the card envelope, so the job file says which one its webhook is.

``on``: ``failure`` posts when the exit code is neither 0 nor 6 (rows failed, refused,
credential, stopped); ``drift`` when the tenant differed from the roster: ``plan --check``
found changes pending (exit 6), or an apply, resume or rollback wrote at least one change;
``always`` after every run. A failure before the run could start (a refusal, a held lock, a
credential) is a failure too; an admin's "no" at the confirmation is not.

The body holds counts, reason codes and paths, never a phone number (and passes through
``mask_in_text`` as a safety net). The URL is read only from the environment variable the
job names: it carries a secret, so logs name only its host. Posting waits at most 5 s per
try and tries twice at most; a failure to notify is logged and shown as a warning, and never
changes the run's exit code.
"""

from __future__ import annotations

import csv
import functools
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, Mapping, ParamSpec, cast
from urllib.parse import urlsplit

import httpx

from provision.errors import Cancelled, ExitCode, ProvisionError, exit_meaning
from provision.masking import mask_in_text
from provision.run.console import Console, NullConsole
from provision.run.jobs import Job, NotifyConfig, SandboxTarget
from provision.run.logs import attach_run_log, detach
from provision.run.run_report import RunOutcome
from provision.run.rundir import RunDir

log = logging.getLogger("provision.notify")

TIMEOUT_S = 5.0
ATTEMPTS = 2  # one retry: a dropped connection or a 5xx/429 answer
TOP_PROBLEMS = 5


@dataclass(frozen=True, slots=True)
class RunNotice:
    """What a notification says about one command's end: counts, codes and paths, no numbers."""

    job: str
    command: str  # apply | resume | rollback | plan --check
    status: str  # completed | interrupted | failed | drift | no drift | refused
    exit_code: int
    target: str
    rows_by_outcome: Mapping[str, int] = field(default_factory=dict)
    changes_done: int = 0
    changes_pending: int = 0  # plan --check: changes a run would send
    top_problems: Mapping[str, int] = field(default_factory=dict)  # reason/error code -> rows
    run_dir: str | None = None
    detail: str = ""  # the error that ended the command early, if one did

    @property
    def drift(self) -> bool:
        """The tenant differed from the roster: changes pending (check) or written (a run)."""
        return self.changes_pending > 0 or self.changes_done > 0


def wanted(on: tuple[str, ...], notice: RunNotice) -> bool:
    """Whether ``[notify] on`` asks for this notice."""
    failure = notice.exit_code not in (ExitCode.OK, ExitCode.DRIFT)
    return "always" in on or ("failure" in on and failure) or ("drift" in on and notice.drift)


# --- what happened -------------------------------------------------------------------


def notice_for_run(command: str, outcome: RunOutcome) -> RunNotice:
    """The notice for a run that wrote its reports (summary.json's numbers, results.csv's codes)."""
    s = outcome.summary
    return RunNotice(
        job=s.job,
        command=command,
        status=s.status.value,
        exit_code=int(s.exit_code),
        target=s.target,
        rows_by_outcome={k: int(v) for k, v in s.rows_by_outcome.items() if v},
        changes_done=sum(int(n) for n in s.changes_done.values()),
        top_problems=_problem_codes(outcome.reports.get("csv")),
        run_dir=str(outcome.run_dir),
    )


def notice_for_error(job: Job, command: str, exc: Exception, run_dir: Path | None = None) -> RunNotice:
    """The notice for a command that ended on an error before (or instead of) its reports."""
    code = exc.exit_code if isinstance(exc, ProvisionError) else ExitCode.STOPPED
    status = "refused" if code is ExitCode.REFUSED else "failed"
    return RunNotice(
        job=job.name, command=command, status=status, exit_code=int(code), target=_target_label(job),
        run_dir=str(run_dir) if run_dir else None, detail=str(exc) or type(exc).__name__,
    )


def notice_for_check(
    job: Job, target: str, exit_code: ExitCode, *, changes: int, rows: Mapping[str, int], problems: Mapping[str, int]
) -> RunNotice:
    """The notice for ``plan --check``: drift (exit 6), no drift (0) or refused (3)."""
    status = {ExitCode.DRIFT: "drift", ExitCode.OK: "no drift"}.get(exit_code, "refused")
    return RunNotice(
        job=job.name, command="plan --check", status=status, exit_code=int(exit_code), target=target,
        rows_by_outcome={k: v for k, v in rows.items() if v}, changes_pending=changes, top_problems=dict(problems),
    )


def _problem_codes(results_csv: Path | None) -> dict[str, int]:
    """The most frequent reason codes in results.csv's ``error_code`` column."""
    if results_csv is None or not results_csv.is_file():
        return {}
    codes: Counter[str] = Counter()
    with results_csv.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            code = (row.get("error_code") or "").strip()
            if code:
                codes[code] += 1
    return dict(codes.most_common(TOP_PROBLEMS))


def _target_label(job: Job) -> str:
    """The job's target, named without opening it (no secrets: ids and URLs of a sandbox only)."""
    t = job.target
    if isinstance(t, SandboxTarget):
        return f"sandbox at {t.url}" if t.url else "embedded sandbox"
    return f"Microsoft Graph {t.cloud.value} tenant {t.tenant_id}"


# --- the body --------------------------------------------------------------------------


def _facts(notice: RunNotice) -> list[tuple[str, str]]:
    rows = ", ".join(f"{k} {v}" for k, v in notice.rows_by_outcome.items()) or "none"
    facts = [
        ("Job", notice.job),
        ("Command", notice.command),
        ("Status", notice.status),
        ("Exit code", f"{notice.exit_code} ({exit_meaning(notice.exit_code)})"),
        ("Target", notice.target or "unknown"),
        ("Rows", rows),
    ]
    if notice.command == "plan --check":
        facts.append(("Changes pending", str(notice.changes_pending)))
    else:
        facts.append(("Changes written", str(notice.changes_done)))
    problems = ", ".join(f"{code} x{n}" for code, n in notice.top_problems.items())
    if problems:
        facts.append(("Top problems", problems))
    if notice.detail:
        facts.append(("Error", notice.detail))
    if notice.run_dir:
        facts.append(("Run directory", notice.run_dir))
    return [(k, mask_in_text(v)) for k, v in facts]


def _title(notice: RunNotice) -> str:
    return mask_in_text(f"provision {notice.command} {notice.job}: {notice.status} (exit {notice.exit_code})")


def slack_body(notice: RunNotice) -> dict[str, Any]:
    """Slack incoming webhook: ``text`` alone (mrkdwn), which every Slack webhook accepts."""
    lines = [f"*{_title(notice)}*"] + [f"*{k}:* {v}" for k, v in _facts(notice)]
    return {"text": "\n".join(lines)}


def teams_body(notice: RunNotice) -> dict[str, Any]:
    """Teams Workflows webhook: a message carrying one Adaptive Card (title and a fact set)."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": _title(notice), "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(notice)]},
        ],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}],
    }


def body_for(config: NotifyConfig, notice: RunNotice) -> dict[str, Any]:
    return slack_body(notice) if config.format == "slack" else teams_body(notice)


# --- sending ---------------------------------------------------------------------------


async def send(
    config: NotifyConfig,
    notice: RunNotice,
    *,
    console: Console | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bool:
    """Post the notice if ``on`` asks for it; True when posted. Never raises."""
    if not wanted(config.on, notice):
        return False
    console = console or NullConsole()
    url = os.environ.get(config.webhook_env, "").strip()
    if not url:
        return _failed(console, f"not sent: the environment variable {config.webhook_env} is not set")
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return _failed(console, f"not sent: {config.webhook_env} is not an http(s) URL")
    problem = ""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S, transport=transport, follow_redirects=False) as client:
            for _ in range(ATTEMPTS):
                try:
                    response = await client.post(url, json=body_for(config, notice))
                except httpx.TransportError as exc:
                    problem = type(exc).__name__  # never str(exc): it may quote the URL
                    continue
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    break  # the URL or the body is wrong: the same request fails again
    except Exception as exc:  # noqa: BLE001 - a notification never changes how the run ended
        problem = type(exc).__name__
    return _failed(console, f"to {host} failed: {problem}")


def _failed(console: Console, why: str) -> bool:
    message = f"notification {why}; the run's exit code is unchanged"
    log.warning(message)
    console.note("warning", message)
    return False


# --- where commands end ------------------------------------------------------------------

P = ParamSpec("P")


def notifies(
    command: str,
) -> Callable[[Callable[P, Awaitable[RunOutcome]]], Callable[P, Coroutine[Any, Any, RunOutcome]]]:
    """Wrap a pipeline command (first argument a ``Job`` or a ``RunDir``) to notify when it ends.

    The outcome (or the error) passes through unchanged; an admin's cancel is not notified.
    """

    def wrap(fn: Callable[P, Awaitable[RunOutcome]]) -> Callable[P, Coroutine[Any, Any, RunOutcome]]:
        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> RunOutcome:
            console = cast(Console | None, kwargs.get("console"))
            try:
                outcome = await fn(*args, **kwargs)
            except Cancelled:
                raise
            except Exception as exc:
                job, run_dir = _job_of(args[0] if args else None)
                if job is not None and job.notify is not None:
                    await send(job.notify, notice_for_error(job, command, exc, run_dir), console=console)
                raise
            job, _ = _job_of(args[0] if args else None)
            if job is not None and job.notify is not None:
                handler = attach_run_log(RunDir(outcome.run_dir).log_file)  # a failure to notify lands in run.log too
                try:
                    await send(job.notify, notice_for_run(command, outcome), console=console)
                finally:
                    detach(handler)
            return outcome

        return run

    return wrap


def _job_of(first: object) -> tuple[Job | None, Path | None]:
    """The job a command ran (a rollback or resume: the job file copy in its run directory)."""
    if isinstance(first, Job):
        return first, None
    if isinstance(first, RunDir):
        try:
            return first.load_job(), first.path
        except Exception:  # noqa: BLE001 - no readable job: nobody to notify
            return None, first.path
    return None, None


__all__ = [
    "RunNotice",
    "body_for",
    "notice_for_check",
    "notice_for_error",
    "notice_for_run",
    "notifies",
    "send",
    "slack_body",
    "teams_body",
    "wanted",
]
