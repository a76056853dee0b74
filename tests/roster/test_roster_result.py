"""A Roster kept as columns: its rows and users read like the tuple and dict they replace."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from support.roster_writers import write_csv

from provision.model import PhoneType, RowStatus
from provision.roster.frame import validation_table
from provision.roster.reader import read_roster

M, O = PhoneType.MOBILE, PhoneType.OFFICE

ROWS = [
    ["UPN", "Mobile", "Office", "SMS", "Cost centre"],
    ["a@contoso.com", "+1 206 555 0100", "", "yes", "CC1"],  # 2: ok
    ["bad user", "+1 206 555 0101", "", "", "CC2"],  # 3: error, no key
    ["b@contoso.com", "not a number", "", "", "CC3"],  # 4: b's first row has an error
    ["b@contoso.com", "+1 206 555 0102", "", "", "CC4"],  # 5: ...so b is in conflict
    ["c@contoso.com", "+1 206 555 0103", "+1 206 555 0199", "no", "CC5"],  # 6: c twice, the same
    ["C@Contoso.com", "+1 206 555 0103", "+1 206 555 0199", "no", "CC6"],  # 7
    ["d@contoso.com", "+1 206 555 0104", "", "", ""],  # 8: d twice, differently
    ["d@contoso.com", "+1 206 555 0105", "", "", ""],  # 9
    ["e@contoso.com", "+1 206 555 0100", "", "", ""],  # 10: a's mobile: shared
]


@pytest.fixture(scope="module")
def roster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return read_roster(write_csv(tmp_path_factory.mktemp("r") / "r.csv", ROWS), workers=0)


def test_users_are_those_whose_first_row_ends_without_error(roster) -> None:  # type: ignore[no-untyped-def]
    assert list(roster.users) == ["a@contoso.com", "c@contoso.com", "e@contoso.com"]
    assert len(roster.users) == 3
    assert "b@contoso.com" not in roster.users and "d@contoso.com" not in roster.users
    assert roster.users.get("d@contoso.com") is None
    with pytest.raises(KeyError):
        roster.users["b@contoso.com"]
    c = roster.users["c@contoso.com"]
    assert (c.user, c.rows, c.sms_sign_in) == ("c@contoso.com", (6, 7), False)
    assert c.phones == {M: "+1 2065550103", O: "+1 2065550199"}
    assert dict(roster.users)["a@contoso.com"].rows == (2,)
    assert list(roster.users.items()) == [(key, roster.users[key]) for key in roster.users]
    assert list(roster.users.values()) == [roster.users[key] for key in roster.users]
    assert ("b@contoso.com", None) not in roster.users.items() and len(roster.users.values()) == 3


def test_rows_read_like_a_tuple(roster) -> None:  # type: ignore[no-untyped-def]
    rows = roster.rows
    assert len(rows) == 9
    assert [r.row for r in rows] == list(range(2, 11))
    assert rows[-1].row == 10 and rows[0].row == 2
    assert [r.row for r in rows[1:3]] == [3, 4]
    with pytest.raises(IndexError):
        rows[9]
    assert rows == tuple(rows) and rows == list(rows) and rows != tuple(rows)[:-1]
    assert rows[0].extra == {"Cost centre": "CC1"} and rows[0].sms_sign_in is True
    assert rows[1].key is None and rows[1].status is RowStatus.ERROR
    statuses = [r.status for r in rows]
    assert statuses.count(RowStatus.ERROR) == roster.count(RowStatus.ERROR) == 5  # 3, 4, 5, 8, 9
    assert statuses.count(RowStatus.WARNING) == roster.count(RowStatus.WARNING) == 2  # 2 and 10 share a mobile
    assert roster.status_counts() == {RowStatus.OK: 2, RowStatus.WARNING: 2, RowStatus.ERROR: 5}


def test_the_validation_table_from_columns_matches_the_rows(roster) -> None:  # type: ignore[no-untyped-def]
    header, columns = validation_table(roster)
    by_row = roster.issues_by_row()
    expected = [
        [r.row, r.user, r.phones.get(M) or "", "", r.phones.get(O) or "", r.status.value,
         " | ".join(f"{i.column + ': ' if i.column else ''}{i.reason} [{i.code}]" for i in by_row.get(r.row, ())),
         r.extra["Cost centre"]]
        for r in roster.rows
    ]
    assert header == ["row", "user", "mobile", "alternate_mobile", "office", "status", "problems", "Cost centre"]
    assert [list(record) for record in zip(*columns)] == expected


def test_a_roster_survives_pickling(roster) -> None:  # type: ignore[no-untyped-def]
    again = pickle.loads(pickle.dumps(roster))
    assert again.rows == roster.rows and again.users == roster.users and again.issues == roster.issues


def test_an_empty_roster(tmp_path: Path) -> None:
    roster = read_roster(write_csv(tmp_path / "r.csv", [["UPN", "Mobile"]]), workers=0)
    assert roster.rows == () and len(roster.users) == 0 and list(roster.users) == []
    assert roster.status_counts() == {RowStatus.OK: 0, RowStatus.WARNING: 0, RowStatus.ERROR: 0}


def test_users_met_again_in_later_batches(tmp_path: Path) -> None:
    """A user's rows far apart in the file (read in batches of 5,000 to 20,000 rows) are
    found as one user: identical rows merge, different ones conflict."""
    rows: list[list[str]] = [["UPN", "Mobile"]]
    rows += [[f"u{i}@contoso.com", f"+1 206 55{i // 10_000} {i % 10_000:04d}"] for i in range(45_000)]
    rows[30_001] = ["u0@contoso.com", "+1 206 550 0000"]  # u0 again, the same: merged
    rows[44_001] = ["U1@contoso.com", "+1 425 555 0100"]  # u1 again, differently: both rows in error
    rows[44_002] = ["u5@contoso.com", "+1 206 550 0005"]
    rows[44_003] = ["u5@contoso.com", "+1 206 550 0005"]  # u5 three times, two of them in one batch
    roster = read_roster(write_csv(tmp_path / "far.csv", rows), workers=0)

    users = roster.users
    assert users["u0@contoso.com"].rows == (2, 30_002)
    assert users["u5@contoso.com"].rows == (7, 44_003, 44_004)
    assert "u1@contoso.com" not in users
    conflicts = [i.row for i in roster.issues if i.code == "duplicate_user_conflict"]
    assert conflicts == [3, 44_002]
    keys = list(users)
    assert len(keys) == len(users) == 45_000 - 4 - 1  # four users replaced by repeats, u1 in conflict
    assert keys[:3] == ["u0@contoso.com", "u2@contoso.com", "u3@contoso.com"]
    assert [k for k, _ in users.items()] == keys and len(set(keys)) == len(keys)


def test_shared_mobiles_judged_on_the_final_rows(tmp_path: Path) -> None:
    """Mobiles shared by users are looked at while the last batch is out (a file of a few
    pyarrow blocks), then again where that batch or the checks across rows changed them:
    the outcome is the final rows'."""
    rows: list[list[str]] = [["UPN", "Mobile"]]
    rows += [[f"u{i}@contoso.com", f"+1 206 55{i // 10_000} {i % 10_000:04d}"] for i in range(45_000)]
    rows[1] = ["a@contoso.com", "+1 425 555 0100"]  # row 2: a and b share a mobile...
    rows[2] = ["b@contoso.com", "+1 425 555 0100"]  # row 3
    rows[44_001] = ["b@contoso.com", "+1 425 555 0199"]  # ...until b's rows conflict, in the last batch
    rows[3] = ["c@contoso.com", "+1 425 555 0200"]  # row 4: c's mobile...
    rows[44_002] = ["d@contoso.com", "+1 425 555 0200"]  # ...is d's too, in the last batch
    rows[4] = ["e@contoso.com", "+1 425 555 0300"]  # row 5: e and f share one, early on
    rows[5] = ["f@contoso.com", "+1 425 555 0300"]  # row 6
    roster = read_roster(write_csv(tmp_path / "shared.csv", rows), workers=0)

    shared = sorted(i.row for i in roster.issues if i.code == "duplicate_mobile")
    assert shared == [4, 5, 6, 44_003]
    statuses = {row.row: row.status for row in roster.rows[:5]}
    assert statuses == {2: RowStatus.OK, 3: RowStatus.ERROR, 4: RowStatus.WARNING, 5: RowStatus.WARNING, 6: RowStatus.WARNING}
