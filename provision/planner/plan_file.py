"""The plan as a file: versioned JSON an admin reviews before anything is written.

Layout (``version`` 1)::

    {"format": "provision-plan", "version": 1, "job": ..., "target": ..., "created": ...,
     "mode": ..., "sms": ..., "policy": {...},
     "users": [{"key", "user", "outcome", "reason", "codes", "rows", "desired", "sms_sign_in",
                "current": {"status", "id", "masked", "phones": {type: {"number", "smsSignInState"}}},
                "changes": [{"id", "user", "target", "kind", "phone_type", "before", "after",
                             "depends_on", "rows"}]}],
     "summary": {...}, "safety": {...}, "checksum": "sha256:<hex>"}

Numbers here are unmasked on purpose: like the roster, the file is the reviewable artefact
(the CLI's printed summary masks). Each user carries its desired phones so a saved plan can
be re-planned against fresh reads without the roster, and compared by ``checksum``: a
sha256 over a canonical serialisation (sorted keys, compact) of the changes only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, TypeVar

from provision.errors import PlanMismatchError, UsageError
from provision.model import (
    ChangeKind,
    CurrentPhone,
    CurrentUser,
    DesiredUser,
    PhoneType,
    ReadStatus,
    SmsSignInState,
)
from provision.planner.plan_users import gc_paused
from provision.planner.summary import summarize
from provision.planner.values import Change, Plan, PlanPolicy, UserPlan
from provision.private_files import open_private

__all__ = ["FORMAT", "VERSION", "SavedPlan", "SavedUser", "changes_checksum", "plan_checksum", "read_plan", "write_plan"]

FORMAT = "provision-plan"
VERSION = 1

# by-value lookups: Enum(value) costs microseconds, a dict lookup nanoseconds (KeyError: malformed)
_KIND = {k.value: k for k in ChangeKind}
_TYPE = {t.value: t for t in PhoneType}
_SMS_STATE = {s.value: s for s in SmsSignInState}
_T = TypeVar("_T")


def _change_dict(ch: Change) -> dict[str, Any]:
    return {
        "id": ch.id,
        "user": ch.user,
        "target": ch.target,
        "kind": ch.kind.value,
        "phone_type": ch.phone_type.value,
        "before": ch.before,
        "after": ch.after,
        "depends_on": ch.depends_on,
        "rows": list(ch.rows),
    }


def changes_checksum(changes: Iterable[Change]) -> str:
    """``sha256:<hex>`` over the changes, in order, each serialised with sorted keys."""
    h = hashlib.sha256()
    h.update(b"[")
    first = True
    for ch in changes:
        if not first:
            h.update(b",")
        first = False
        h.update(json.dumps(_change_dict(ch), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    h.update(b"]")
    return "sha256:" + h.hexdigest()


def plan_checksum(plan: Plan) -> str:
    """The checksum a recomputed plan must reproduce for a saved plan to be applied."""
    return changes_checksum(plan.changes)


# -- writing -----------------------------------------------------------------------------
def _policy_dict(p: PlanPolicy) -> dict[str, Any]:
    return {
        "mode": p.mode.value,
        "sms": p.sms.value,
        "max_changes": p.max_changes,
        "max_delete_percent": p.max_delete_percent,
        "max_update_percent": p.max_update_percent,
        "retry_sms_conflicts": p.retry_sms_conflicts,
    }


def _current_dict(c: CurrentUser | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "status": str(c.status),
        "id": c.id,
        "masked": c.masked,
        "error_code": c.error_code,
        "phones": {
            str(t): {"number": cp.number, "smsSignInState": None if cp.sms_sign_in_state is None else str(cp.sms_sign_in_state)}
            for t, cp in c.phones.items()
        },
    }


def _user_dict(up: UserPlan) -> dict[str, Any]:
    d = up.desired
    return {
        "key": up.key,
        "user": up.user,
        "outcome": up.outcome.value,
        "reason": up.reason,
        "codes": [str(c) for c in up.codes],
        "rows": list(up.rows),
        "desired": None if d is None else {str(t): n for t, n in d.phones.items()},
        "sms_sign_in": None if d is None else d.sms_sign_in,
        "current": _current_dict(up.current),
        "changes": [_change_dict(ch) for ch in up.changes],
    }


def _summary_dict(plan: Plan) -> dict[str, Any]:
    s = summarize(plan)
    return {
        "users": s.users,
        "total_changes": s.total_changes,
        "by_kind": {str(k): v for k, v in s.by_kind.items()},
        "by_phone_type": {str(t): {str(k): v for k, v in kinds.items()} for t, kinds in s.by_phone_type.items()},
        "by_outcome": {str(o): v for o, v in s.by_outcome.items()},
        "top_errors": [list(p) for p in s.top_errors],
        "top_warnings": [list(p) for p in s.top_warnings],
    }


def _safety_dict(plan: Plan) -> dict[str, Any]:
    v = plan.safety
    return {
        "ok": v.ok,
        "base_phones": v.base_phones,
        "exceeded": [{"name": t.name, "limit": t.limit, "actual": t.actual, "message": t.message} for t in v.exceeded],
    }


def write_plan(plan: Plan, path_or_file: str | Path | IO[str], *, job: str, target: str, created: datetime | str) -> str:
    """Write the plan as JSON (UTF-8) and return its checksum. ``created`` comes from the caller."""
    with gc_paused():
        return _write(plan, path_or_file, job=job, target=target, created=created)


def _write(plan: Plan, path_or_file: str | Path | IO[str], *, job: str, target: str, created: datetime | str) -> str:
    checksum = plan_checksum(plan)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "job": job,
        "target": target,
        "created": created.isoformat() if isinstance(created, datetime) else created,
        "mode": plan.policy.mode.value,
        "sms": plan.policy.sms.value,
        "policy": _policy_dict(plan.policy),
        "users": [_user_dict(up) for up in plan.users],
        "summary": _summary_dict(plan),
        "safety": _safety_dict(plan),
        "checksum": checksum,
    }
    if isinstance(path_or_file, (str, Path)):
        with open_private(path_or_file) as f:  # 0600: the plan holds every number
            _dump(doc, f)
    else:
        _dump(doc, path_or_file)
    return checksum


def _dump(doc: dict[str, Any], f: IO[str]) -> None:
    """One top-level key per line and one user per line: diffable, greppable, and written
    by json's C encoder (``indent`` would switch to the pure-Python one, ~10x slower)."""
    dumps = json.dumps
    f.write("{\n")
    last_key = len(doc) - 1
    for k, (name, value) in enumerate(doc.items()):
        if name == "users":
            f.write(' "users": [\n')
            last = len(value) - 1
            for i, user in enumerate(value):
                f.write("  ")
                f.write(dumps(user, ensure_ascii=False))
                f.write(",\n" if i < last else "\n")
            f.write(" ]")
        else:
            f.write(f" {dumps(name)}: {dumps(value, ensure_ascii=False)}")
        f.write(",\n" if k < last_key else "\n")
    f.write("}\n")


# -- reading -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SavedUser:
    key: str
    user: str
    outcome: str
    reason: str | None
    codes: tuple[str, ...]
    rows: tuple[int, ...]
    desired: DesiredUser
    current: CurrentUser | None
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class SavedPlan:
    """A plan file as read back (checksum verified)."""

    job: str
    target: str
    created: str
    policy: PlanPolicy
    users: tuple[SavedUser, ...]
    checksum: str
    summary: Mapping[str, Any]
    safety: Mapping[str, Any]

    @property
    def changes(self) -> Iterator[Change]:
        return (ch for u in self.users for ch in u.changes)

    def desired_users(self) -> dict[str, DesiredUser]:
        """The desired state the plan was computed from, in plan order (to re-plan it)."""
        return {u.key: u.desired for u in self.users}

    def refuse_other_job(self, job: str, path: str | Path) -> None:
        """Refuse a plan file written for another job (exit 3, like a plan that no longer
        matches): its checksum would only say "no longer matches", which sends an admin
        re-planning the wrong job instead of picking the right file."""
        if self.job != job:
            raise PlanMismatchError(
                f"the saved plan {path} is another job's plan: it was made for job {self.job!r} "
                f"(target {self.target}), not {job!r}. Pass this job's plan file "
                f"(`provision plan` for {job!r} writes one), or apply the plan with its own job file."
            )


def _bad(path: str, why: str) -> UsageError:
    return UsageError(f"{path}: not a usable plan file: {why}")


def _lookup(table: Mapping[str, _T], value: Any, field: str) -> _T:
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {field}") from None


def _kind(value: Any) -> ChangeKind:
    return _lookup(_KIND, value, "kind")


def _type(value: Any) -> PhoneType:
    return _lookup(_TYPE, value, "phone type")


def _change_from(d: Mapping[str, Any]) -> Change:
    return Change(
        id=d["id"],
        user=d["user"],
        target=d["target"],
        kind=_kind(d["kind"]),
        phone_type=_type(d["phone_type"]),
        before=d["before"],
        after=d["after"],
        depends_on=d["depends_on"],
        rows=tuple(int(r) for r in d["rows"]),
    )


def _current_from(d: Mapping[str, Any] | None, key: str) -> CurrentUser | None:
    if d is None:
        return None
    phones = {}
    for t, p in d.get("phones", {}).items():
        pt = _type(t)
        state = p.get("smsSignInState")
        phones[pt] = CurrentPhone(pt, p["number"], None if state is None else _lookup(_SMS_STATE, state, "smsSignInState"))
    return CurrentUser(key, ReadStatus(d["status"]), d.get("id"), phones, bool(d.get("masked")), d.get("error_code"))


def _user_from(d: Mapping[str, Any]) -> SavedUser:
    key = d["key"]
    rows = tuple(int(r) for r in d["rows"])
    desired_phones = {_type(t): n for t, n in (d.get("desired") or {}).items()}
    desired = DesiredUser(key, d["user"], desired_phones, d.get("sms_sign_in"), rows)
    return SavedUser(
        key=key,
        user=d["user"],
        outcome=d["outcome"],
        reason=d.get("reason"),
        codes=tuple(d.get("codes") or ()),
        rows=rows,
        desired=desired,
        current=_current_from(d.get("current"), key),
        changes=tuple(_change_from(c) for c in d["changes"]),
    )


def read_plan(path_or_file: str | Path | IO[str]) -> SavedPlan:
    """Read and verify a plan file; UsageError on a foreign, newer, malformed or tampered file."""
    with gc_paused():
        return _read(path_or_file)


def _read(path_or_file: str | Path | IO[str]) -> SavedPlan:
    name = str(path_or_file) if isinstance(path_or_file, (str, Path)) else getattr(path_or_file, "name", "<plan>")
    try:
        if isinstance(path_or_file, (str, Path)):
            with open(path_or_file, encoding="utf-8") as f:
                doc = json.load(f)
        else:
            doc = json.load(path_or_file)
    except FileNotFoundError:
        raise UsageError(f"{name}: plan file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(name, f"can't read it ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise _bad(name, f"invalid JSON at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad(name, f"format is not {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise _bad(name, f"version {doc.get('version')!r} is not supported (this provision reads version {VERSION})")
    try:
        p = doc["policy"]
        policy = PlanPolicy(
            p["mode"], p["sms"], p["max_changes"], p["max_delete_percent"], p["max_update_percent"],
            bool(p.get("retry_sms_conflicts", False)),
        )
        users = tuple(_user_from(u) for u in doc["users"])
        saved = SavedPlan(
            job=str(doc["job"]),
            target=str(doc["target"]),
            created=str(doc["created"]),
            policy=policy,
            users=users,
            checksum=str(doc["checksum"]),
            summary=doc.get("summary") or {},
            safety=doc.get("safety") or {},
        )
    except KeyError as exc:
        raise _bad(name, f"missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        # the message could quote a value (a number): name only the kind of fault
        raise _bad(name, f"malformed value ({type(exc).__name__})") from None
    if changes_checksum(saved.changes) != saved.checksum:
        raise _bad(name, "checksum does not match its changes (edited or damaged since it was written)")
    return saved
