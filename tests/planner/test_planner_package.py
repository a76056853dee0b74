"""The plan package's public API: what ``provision.planner`` exports, and from where."""

from __future__ import annotations

import provision.planner
from provision.model import ChangeKind, PhoneType
from provision.planner import chain, plan_file, plan_users, reasons, safety, summary, values

EXPORTED_FROM = {
    "Change": values,
    "Plan": values,
    "PlanPolicy": values,
    "PlanSummary": summary,
    "ReasonCode": reasons,
    "SafetyVerdict": values,
    "SavedPlan": plan_file,
    "Threshold": values,
    "UserPlan": values,
    "check_safety": safety,
    "plan": plan_users,
    "plan_checksum": plan_file,
    "read_plan": plan_file,
    "summarize": summary,
    "users_by_outcome": summary,
    "write_plan": plan_file,
}


def test_the_package_exports_each_name_from_its_one_home() -> None:
    assert sorted(provision.planner.__all__) == sorted(EXPORTED_FROM)
    for name, home in EXPORTED_FROM.items():
        assert getattr(provision.planner, name) is getattr(home, name), name


def test_chain_ids_count_from_one_and_link_to_the_previous_change() -> None:
    changes = chain.phone_chain("k", "t", (2,), {PhoneType.OFFICE: "+1 2", PhoneType.MOBILE: "+1 1"}, frozenset(), {})
    chain.append_sms_change(changes, "k", "t", (2,), ChangeKind.ENABLE_SMS, None, "ready")
    assert [(c.id, c.phone_type, c.depends_on) for c in changes] == [
        ("k#1", PhoneType.MOBILE, None),
        ("k#2", PhoneType.OFFICE, "k#1"),
        ("k#3", PhoneType.MOBILE, "k#2"),
    ]
