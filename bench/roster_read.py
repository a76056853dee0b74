"""Bench: read and normalise a 1,000,000-row CSV roster.

Generates a roster (user, mobile, alternate mobile, office, country; each phone column
about half filled; numbers from a dozen countries typed in E.164, international,
national-with-trunk-zero, dotted, parenthesised, 00/011 and tel: styles, ~1% garbage)
in a temporary folder, then times ``read_roster`` on it and reports peak RSS.

    python -m bench.roster_read [--rows N] [--seed S]

Limits (issue 3): <= 60 s wall, <= 2.5 GB peak RSS on the project's 2-core machine.
The machine is shared: the load average is printed next to the figures.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import phonenumbers

from provision.model import RowStatus
from provision.roster.number_pool import default_workers
from provision.roster.reader import read_roster

LIMIT_S = 60.0
LIMIT_MB = 2.5 * 1024

REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "ES", "IT", "MX", "NL", "SE", "CA")


def _templates() -> list[tuple[str, str, str, str]]:
    """(region, country code, national significant number, trunk prefix) per region and type."""
    out = []
    for region in REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        trunk = (meta.national_prefix or "") if meta else ""
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            out.append((region, str(example.country_code), nsn, trunk))
    return out


def _typed(rng: random.Random, region: str, cc: str, nsn: str, trunk: str) -> str:
    style = rng.randrange(9)
    if style == 0:
        return f"+{cc}{nsn}"
    if style == 1:
        return f"+{cc} {nsn[:3]} {nsn[3:6]} {nsn[6:]}"
    if style == 2:
        return f"{trunk}{nsn[:3]} {nsn[3:]}" if region != "IT" else nsn
    if style == 3:
        return f"{trunk}{nsn[:3]}.{nsn[3:6]}.{nsn[6:]}" if region != "IT" else nsn
    if style == 4:
        return f"({trunk}{nsn[:3]}) {nsn[3:6]}-{nsn[6:]}" if region != "IT" else nsn
    if style == 5:
        return f"00{cc} {nsn}"
    if style == 6:
        return f"tel:+{cc}-{nsn[:3]}-{nsn[3:]}"
    if style == 7:
        return f"+{cc} ({nsn[:2]}) {nsn[2:]}"
    return f"{trunk}{nsn}" if region != "IT" else nsn


def generate(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    templates = _templates()
    by_region: dict[str, list[tuple[str, str, str, str]]] = {}
    for t in templates:
        by_region.setdefault(t[0], []).append(t)

    def number(region: str) -> str:
        if rng.random() < 0.01:
            return rng.choice(("n/a", "123", "+999 12345", "2.06555E+09", "call reception"))
        _, cc, nsn, trunk = rng.choice(by_region[region])
        tail = min(5, len(nsn) - 3)
        nsn = nsn[:-tail] + str(rng.randrange(10**tail)).zfill(tail)
        return _typed(rng, region, cc, nsn, trunk)

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["UserPrincipalName", "Mobile Phone", "Alternate Mobile", "Work Phone", "Country"])
        for i in range(rows):
            region = rng.choice(REGIONS)
            mobile = number(region) if rng.random() < 0.5 else ""
            alternate = number(region) if rng.random() < 0.5 else ""
            office = number(region) if rng.random() < 0.5 else ""
            w.writerow([f"user{i:07d}@contoso.com", mobile, alternate, office, region])


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process and of its reaped children (the normalising workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-roster-") as tmp:
        path = Path(tmp) / "roster.csv"
        started = time.perf_counter()
        generate(path, args.rows, args.seed)
        generated = time.perf_counter() - started
        size_mb = path.stat().st_size / 2**20
        load_before = os.getloadavg()[0]
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        roster = read_roster(path)
        wall = time.perf_counter() - started
        cpu_after = _cpu_seconds()
        cpu_main, cpu_workers = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
        # ru_maxrss is KiB on Linux: the main process's peak (generation included), plus the
        # largest worker's peak counted once per worker (an upper bound on the total).
        main_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        workers = default_workers()
        peak_mb = main_mb + workers * worker_mb
        counts = roster.status_counts()
        filled = sum(1 for r in roster.rows for v in r.phones.values() if v)
        print(f"rows: {len(roster.rows):,} ({size_mb:.0f} MB CSV, generated in {generated:.1f} s)")
        print(
            f"status: ok {counts[RowStatus.OK]:,}, warning {counts[RowStatus.WARNING]:,}, "
            f"error {counts[RowStatus.ERROR]:,}; users {len(roster.users):,}; numbers normalised {filled:,}"
        )
        print(f"top issues: {roster.issue_counts().most_common(6)}")
        print(f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} (2 shared cores)")
        print(f"wall: {wall:.1f} s  (limit {LIMIT_S:.0f} s, ratio {wall / LIMIT_S:.2f}); CPU main {cpu_main:.1f} s + workers {cpu_workers:.1f} s")
        print(
            f"peak RSS: {peak_mb:,.0f} MB = main {main_mb:,.0f} MB + {workers} workers x {worker_mb:,.0f} MB "
            f"(limit {LIMIT_MB:,.0f} MB, ratio {peak_mb / LIMIT_MB:.2f})"
        )
        ok = wall <= LIMIT_S and peak_mb <= LIMIT_MB
        print("within limits" if ok else "OVER LIMIT")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
