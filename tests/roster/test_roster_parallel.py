"""Big rosters normalise in worker processes: the outcome must not depend on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.roster_writers import write_csv

from provision.roster.files import BATCH_ROWS
from provision.roster.reader import read_roster

TYPED = ["+1 206 555 {:04d}", "(425) 555-{:04d}", "07911 12{:04d}", "020 7946 {:04d}", "+33 6 12 34 {:04d}", "n/a {}", "55{}"]
REGIONS = ["US", "US", "GB", "GB", "", "US", "US"]


@pytest.mark.slow
def test_worker_processes_give_the_same_roster(tmp_path: Path) -> None:
    rows = [["UPN", "Mobile", "Office", "Country"]]
    total = BATCH_ROWS + 5_000  # the second batch goes to the workers
    for i in range(total):
        k = i % len(TYPED)
        mobile = TYPED[k].format((i // 7) % 3_000) if i % 3 else ""  # repeats after 21,000 rows
        office = TYPED[(k + 3) % len(TYPED)].format((i * 7) % 10_000) if i % 2 else ""
        user = f"user{i % (total - 50)}@contoso.com"  # the last 50 rows repeat earlier users
        rows.append([user, mobile, office, REGIONS[k]])
    path = write_csv(tmp_path / "big.csv", rows)

    alone = read_roster(path, workers=0)
    pooled = read_roster(path, workers=2)

    assert len(alone.rows) == total
    assert pooled.rows == alone.rows
    assert pooled.issues == alone.issues
    assert pooled.users == alone.users
    assert {"duplicate_mobile", "not_a_number", "duplicate_user_conflict"} <= set(alone.issue_counts())
