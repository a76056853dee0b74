"""Scenario builders for the executor's tests and its kill -9 driver (no test code here).

An onboarding roster for ``n`` sandbox users: every user gets a mobile, every second an
office phone, every third an alternateMobile; ``duplicates`` users get the mobile of
another user (SMS sign-in conflict: Graph saves the phone and answers 409). The current
state is read from the sandbox tenant directly (the executor is under test, not the reader).
"""

from __future__ import annotations

from typing import Any, Mapping

from provision.graph import ops as graph_ops
from provision.model import (
    UNREADABLE_SMS_POLICY,
    CurrentUser,
    DesiredUser,
    PhoneType,
    PlanMode,
    ReadStatus,
    SmsIntent,
)
from provision.planner import Plan, PlanPolicy, plan
from provision.sandbox.tenant import Tenant

MOBILE, ALT, OFFICE = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE


def upn(i: int) -> str:
    return f"user{i:06d}@contoso.example"


_AREAS = (206, 425, 360)  # mobile, office, alternateMobile: valid US numbers (the CLI's reader checks)


def number(i: int, kind: int) -> str:
    return f"+1 {_AREAS[kind]}{2_000_000 + i:07d}"


def add_users(tenant: Tenant, n: int) -> list[str]:
    """Create ``n`` users (no phones); returns their UPNs."""
    names = [upn(i) for i in range(n)]
    for name in names:
        tenant.create_user(name)
    return names


def onboarding_roster(n: int, *, duplicates: int = 0) -> dict[str, DesiredUser]:
    desired: dict[str, DesiredUser] = {}
    for i in range(n):
        phones: dict[PhoneType, str | None] = {MOBILE: number(i, 0)}
        if i % 2 == 0:
            phones[OFFICE] = number(i, 1)
        if i % 3 == 0:
            phones[ALT] = number(i, 2)
        if 0 < i <= duplicates:
            phones[MOBILE] = number(n - i, 0)  # another user's mobile
        key = upn(i).casefold()
        desired[key] = DesiredUser(key=key, user=upn(i), phones=phones, rows=(i + 2,))
    return desired


def current_from_tenant(tenant: Tenant, keys: list[str]) -> dict[str, CurrentUser]:
    current: dict[str, CurrentUser] = {}
    for key in keys:
        phones = graph_ops.parse_phone_list({"value": tenant.list_phones(key)})
        current[key] = CurrentUser(key=key, status=ReadStatus.OK, phones=phones)
    return current


def make_plan(
    tenant: Tenant, desired: Mapping[str, DesiredUser], *, mode: PlanMode = PlanMode.ADDITIVE,
    sms: SmsIntent = SmsIntent.LEAVE,
) -> Plan:
    current = current_from_tenant(tenant, list(desired))
    return plan(desired, current, UNREADABLE_SMS_POLICY, PlanPolicy(mode=mode, sms=sms))


def expected_phones(snapshot_before: Mapping[str, Any], the_plan: Plan) -> dict[str, dict[str, str]]:
    """UPN (case-folded) -> {phoneType: number} the tenant must hold once the plan is applied."""
    state: dict[str, dict[str, str]] = {}
    for user in snapshot_before["users"]:
        if not user.get("deleted"):
            state[user["upn"].casefold()] = {p["phoneType"]: p["phoneNumber"] for p in user.get("phones", [])}
    for change in the_plan.changes:
        phones = state.setdefault(change.user, {})
        if change.kind in ("create", "update"):
            phones[change.phone_type.value] = change.after  # type: ignore[assignment]
        elif change.kind == "delete":
            phones.pop(change.phone_type.value, None)
    return state


def actual_phones(snapshot: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    return {
        u["upn"].casefold(): {p["phoneType"]: p["phoneNumber"] for p in u.get("phones", [])}
        for u in snapshot["users"]
        if not u.get("deleted")
    }
