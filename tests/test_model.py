"""The roster's frozen values keep every dataclass behaviour with their faster ``__init__``, and
the reader's bulk makers make values no different from the classes' own."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from provision.model import (
    DesiredUser,
    PhoneType,
    RosterRow,
    RowIssue,
    RowStatus,
    Severity,
    make_desired_user,
    make_roster_row,
    make_row_issue,
)


def test_rows_build_positionally_or_by_keyword_with_a_fresh_default_extra() -> None:
    a = RosterRow(2, None, "Ann@contoso.com", "ann@contoso.com", {PhoneType.MOBILE: "+1 2065550100"}, True, RowStatus.OK)
    b = RosterRow(
        row=2, sheet=None, user="Ann@contoso.com", key="ann@contoso.com",
        phones={PhoneType.MOBILE: "+1 2065550100"}, sms_sign_in=True, status=RowStatus.OK,
    )
    assert a == b and a.extra == {} and a.extra is not b.extra
    assert RosterRow(3, "S", "u", None, {}, None, RowStatus.ERROR, {"Dept": "x"}).extra == {"Dept": "x"}
    assert repr(a) == (
        "RosterRow(row=2, sheet=None, user='Ann@contoso.com', key='ann@contoso.com', "
        "phones={<PhoneType.MOBILE: 'mobile'>: '+1 2065550100'}, sms_sign_in=True, "
        "status=<RowStatus.OK: 'ok'>, extra={})"
    )


def test_defaults_equality_hash_replace_and_pickling_are_the_dataclasses() -> None:
    user = DesiredUser("k", "K", {})
    assert (user.sms_sign_in, user.rows) == (None, ())
    assert dataclasses.replace(user, rows=(2, 5)) == DesiredUser(key="k", user="K", phones={}, rows=(2, 5))
    issue = RowIssue(4, None, "Mobile", Severity.WARNING, "duplicate_mobile", "shared")
    same = RowIssue(row=4, sheet=None, column="Mobile", severity=Severity.WARNING, code="duplicate_mobile", reason="shared")
    assert issue == same and hash(issue) == hash(same) and issue != dataclasses.replace(issue, row=5)
    assert pickle.loads(pickle.dumps(issue)) == issue
    assert [f.name for f in dataclasses.fields(RosterRow)] == list(inspect.signature(RosterRow).parameters)


def test_they_stay_frozen_and_refuse_wrong_arguments() -> None:
    issue = RowIssue(4, None, None, Severity.ERROR, "missing_user", "no user")
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.row = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing 2 required positional arguments: 'user' and 'phones'"):
        DesiredUser("k")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        DesiredUser("k", "K", {}, bogus=1)  # type: ignore[call-arg]


def test_bulk_made_values_are_the_classes_own() -> None:
    phones = {PhoneType.MOBILE: "+1 2065550100"}
    row = make_roster_row(2, "Staff", "Ann@contoso.com", "ann@contoso.com", phones, None, RowStatus.OK, {"Dept": "x"})
    same = RosterRow(2, "Staff", "Ann@contoso.com", "ann@contoso.com", phones, None, RowStatus.OK, {"Dept": "x"})
    assert type(row) is RosterRow and row == same and repr(row) == repr(same)
    assert dataclasses.replace(row, status=RowStatus.WARNING).status is RowStatus.WARNING
    issue = make_row_issue(2, None, "Mobile", Severity.WARNING, "duplicate_mobile", "shared")
    assert type(issue) is RowIssue and issue == RowIssue(2, None, "Mobile", Severity.WARNING, "duplicate_mobile", "shared")
    assert hash(issue) == hash(RowIssue(2, None, "Mobile", Severity.WARNING, "duplicate_mobile", "shared"))
    assert pickle.loads(pickle.dumps(issue)) == issue
    user = make_desired_user("ann@contoso.com", "Ann@contoso.com", phones, True, (2,))
    assert type(user) is DesiredUser and user == DesiredUser("ann@contoso.com", "Ann@contoso.com", phones, True, (2,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.rows = (3,)  # type: ignore[misc]
