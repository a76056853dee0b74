"""Who the SMS policy lets sign in: users by id, all users, and groups we can't resolve."""

from __future__ import annotations

from provision.graph.ops import parse_sms_policy

ALICE = "11111111-1111-1111-1111-111111111111"
BOB = "22222222-2222-2222-2222-222222222222"
GROUP = "33333333-3333-3333-3333-333333333333"


def policy(include: list[dict], exclude: list[dict] | None = None, state: str = "enabled"):  # type: ignore[no-untyped-def]
    return parse_sms_policy({"state": state, "includeTargets": include, "excludeTargets": exclude or []})


def target(tid: str, kind: str = "user", usable: bool = True) -> dict:
    return {"id": tid, "targetType": kind, "isUsableForSignIn": usable, "isRegistrationRequired": False}


def test_all_users_with_a_user_excluded() -> None:
    p = policy([target("all_users", "group")], [{"id": BOB.upper(), "targetType": "user"}])
    assert p.allows(ALICE) is True
    assert p.allows(BOB) is False


def test_user_targets_and_targets_not_usable_for_sign_in() -> None:
    p = policy([target(ALICE), target(BOB, usable=False)])
    assert p.allows(ALICE) is True
    assert p.allows(BOB) is False  # MFA only, not sign-in


def test_a_group_target_makes_non_listed_users_unknown_not_refused() -> None:
    p = policy([target(GROUP, "group")])
    assert p.allows(ALICE) is None  # may be a member: the planner must not warn "not allowed"
    assert p.allows(None) is None


def test_an_excluded_group_makes_included_users_unknown() -> None:
    p = policy([target("all_users", "group")], [{"id": GROUP, "targetType": "group"}])
    assert p.allows(ALICE) is None


def test_disabled_policy_refuses_everyone() -> None:
    assert policy([target("all_users", "group")], state="disabled").allows(ALICE) is False
