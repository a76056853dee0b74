"""The cyclic collector is paused while a roster is built, and handed back as it was found."""

from __future__ import annotations

import gc
from pathlib import Path

from support.roster_writers import write_csv

from provision.roster.reader import read_roster

ROWS = [["UPN", "Mobile"], ["a@contoso.com", "+1 206 555 0100"], ["b@contoso.com", "+1 206 555 0101"]]


def test_the_new_columns_start_in_the_oldest_generation_and_the_collector_runs_again(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", ROWS)
    assert gc.isenabled()
    roster = read_roster(path, workers=0)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    columns = roster.rows.columns
    kept = [roster.rows, columns, columns.numbers, columns.users, columns.keys, columns.mobile]
    assert all(id(value) in oldest for value in kept)


def test_a_callers_frozen_objects_stay_frozen_and_a_paused_collector_stays_paused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", ROWS)
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert len(read_roster(path, workers=0).rows) == 2
        # Frozen objects that die meanwhile leave the count (a full suite frees a few):
        # nothing was added to it, and it wasn't emptied by an unfreeze.
        assert frozen // 2 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
    gc.disable()
    try:
        assert len(read_roster(path, workers=0).rows) == 2
        assert not gc.isenabled()
    finally:
        gc.enable()
