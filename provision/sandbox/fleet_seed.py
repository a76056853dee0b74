"""A generated fleet of sandbox tenants, for rehearsing and testing fleet runs: snapshots, rosters, tenants.csv.

``seed_fleet(out_dir, tenants=N, users=M, seed=S)`` writes

- ``snapshots/<tenant id>.json``: one valid sandbox snapshot per tenant (tenant ids are
  GUIDs drawn from the seed), for ``provision sandbox serve --tenants`` or a fleet's
  ``[target] snapshots``;
- ``rosters/<key>.csv``: each tenant's HR extract for a job like ``jobs/nightly_reconcile.toml``
  (columns ``upn,mobile,office,country``; authoritative: a blank cell deletes that phone);
- ``tenants.csv``: ``tenant_id,name,roster,groups``, rosters relative to it;
- ``job.toml`` (``job_template(users)``: the nightly job the rosters fit) and ``fleet.toml``
  (that job across every tenant, served by a multi-tenant sandbox the fleet starts from
  ``snapshots/``), so ``provision fleet apply OUT/fleet.toml --yes`` rehearses it at once;

and returns a ``FleetSeed`` saying what it wrote and what an authoritative run should do
per tenant. The same seed writes the same files. Per user, drawn from the tenant's rng:
most users are already right; some lack their office phone (a create), some have an old
mobile (an update), some have an office phone the extract leaves blank (a delete), and
a few rows carry a number that can't be read (an invalid row: the user is left alone).
US tenants and GB tenants alternate in blocks, with cells in local and international forms.
"""

from __future__ import annotations

import csv
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

_COMPANIES = (
    "Contoso", "Fabrikam", "Northwind", "Tailspin", "Woodgrove",
    "Litware", "Adatum", "Proseware", "Wingtip", "Alpine",
)  # fmt: skip

# Shares of users per situation (cumulative thresholds on one draw per user).
_UNCHANGED, _CREATE, _UPDATE, _DELETE = 0.80, 0.86, 0.92, 0.97  # the rest: an invalid row
INVALID_CELL = "12345"  # too short for any region: the roster reader refuses the row's mobile


def job_template(users: int) -> str:
    """The job the seeded rosters fit (jobs/nightly_reconcile.toml's columns, authoritative):
    a fleet's ``job_template``. ``max_changes`` leaves room for the seed's ~20% drift."""
    return f"""\
name = "nightly"
mode = "authoritative"
sms_sign_in = "leave"
[roster]
path = "rosters/placeholder.csv"   # each tenant's roster comes from tenants.csv
default_region = "US"
[roster.columns]
user = "upn"
mobile = "mobile"
office = "office"
region = "country"
[safety]
max_changes = {max(200, users)}
max_delete_percent = 30
max_update_percent = 30
"""


_FLEET_FILE = """\
# A rehearsal fleet written by `provision sandbox seed-fleet`: the nightly job across every
# generated tenant, served by a multi-tenant sandbox the fleet starts from snapshots/.
name = "rehearsal"
job_template = "job.toml"
tenants = "tenants.csv"

[target]
kind = "sandbox"
snapshots = "snapshots"
state = "sandbox-state"   # the tenants as the runs leave them (delete it to start again)
profile = "graph-like"

[output]
directory = "reports"
"""


@dataclass(frozen=True, slots=True)
class SeedTenant:
    """One generated tenant. ``expected``: what an authoritative mobile+office run plans
    (``create``/``update``/``delete`` phone writes) and the rows it can't use (``invalid``),
    plus ``unchanged`` users (already right)."""

    tenant_id: str
    name: str
    key: str
    groups: tuple[str, ...]
    region: str  # ISO 3166 code of the roster's country cells
    snapshot: Path
    roster: Path
    users: int
    expected: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class FleetSeed:
    directory: Path
    tenants_csv: Path
    seed: int
    tenants: tuple[SeedTenant, ...]

    @property
    def snapshots(self) -> Path:
        return self.directory / "snapshots"

    @property
    def rosters(self) -> Path:
        return self.directory / "rosters"

    @property
    def fleet_file(self) -> Path:
        return self.directory / "fleet.toml"


class _Numbers:
    """A tenant's phone numbers: Graph's stored form and the cell an HR extract holds."""

    def __init__(self, region: str) -> None:
        self.region = region

    def mobile(self, j: int, old: bool = False) -> str:
        if self.region == "GB":
            return f"+44 79{'2' if old else '1'}1{j:06d}"
        return f"+1 206{'5' if old else '3'}{j:06d}"

    def office(self, j: int) -> str:
        return f"+44 207{j:07d}" if self.region == "GB" else f"+1 4257{j:06d}"

    def cell(self, graph: str, style: int) -> str:
        """The number as a person typed it: international with spaces, or the national form."""
        cc, nsn = graph[1:].split(" ", 1)
        if style == 0:
            return f"+{cc} {nsn[:3]} {nsn[3:6]} {nsn[6:]}"
        if cc == "1":
            return f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}"
        return f"0{nsn[:4]} {nsn[4:]}"


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _phone(kind: str, number: str) -> dict[str, str]:
    return {"phoneType": kind, "phoneNumber": number, "sms": "none"}


def _tenant(
    index: int, users: int, seed: int, width: int, snapshots: Path, rosters: Path
) -> tuple[SeedTenant, dict[str, Any], list[list[str]]]:
    rng = random.Random(f"fleet-seed:{seed}:{index}")
    tenant_id = _guid(rng)
    key = f"t{index + 1:0{width}d}"
    name = f"{_COMPANIES[index % len(_COMPANIES)]} {index + 1:0{width}d}"
    region = "GB" if (index // 10) % 3 == 2 else "US"  # blocks of ten: two US, one GB
    groups = ("enterprise" if index % 5 == 0 else "smb", "eu" if region == "GB" else "us")
    numbers = _Numbers(region)
    domain = f"{key}.example.com"
    snapshot_users: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    expected = {"create": 0, "update": 0, "delete": 0, "invalid": 0, "unchanged": 0}
    for j in range(users):
        upn = f"user{j:05d}@{domain}"
        mobile, office = numbers.mobile(j), numbers.office(j)
        style = rng.randrange(2)
        draw = rng.random()
        phones = [_phone("mobile", mobile), _phone("office", office)]
        row = [upn, numbers.cell(mobile, style), numbers.cell(office, style), region]
        if draw < _UNCHANGED:
            expected["unchanged"] += 1
        elif draw < _CREATE:
            phones = [_phone("mobile", mobile)]
            expected["create"] += 1
        elif draw < _UPDATE:
            phones = [_phone("mobile", numbers.mobile(j, old=True)), _phone("office", office)]
            expected["update"] += 1
        elif draw < _DELETE:
            row[2] = ""
            expected["delete"] += 1
        else:
            row[1] = INVALID_CELL
            expected["invalid"] += 1
        snapshot_users.append(
            {
                "id": _guid(rng),
                "upn": upn,
                "displayName": f"User {j:05d}",
                "accountEnabled": True,
                "deleted": False,
                "default_method": None,
                "phones": phones,
            }
        )
        rows.append(row)
    snapshot = {"format": "provision-sandbox-tenant", "version": 1, "tenant_id": tenant_id, "users": snapshot_users}
    spec = SeedTenant(
        tenant_id=tenant_id,
        name=name,
        key=key,
        groups=groups,
        region=region,
        snapshot=snapshots / f"{tenant_id}.json",
        roster=rosters / f"{key}.csv",
        users=users,
        expected=expected,
    )
    return spec, snapshot, rows


def seed_fleet(out_dir: Path, *, tenants: int, users: int, seed: int = 0) -> FleetSeed:
    """Write a fleet of ``tenants`` generated tenants of ``users`` users each under ``out_dir``."""
    if tenants < 1 or users < 1:
        raise ValueError("a fleet needs at least one tenant of at least one user")
    if users > 999_999:
        raise ValueError("at most 999,999 users per tenant (the generated numbers run out)")
    out_dir = Path(out_dir)
    snapshots, rosters = out_dir / "snapshots", out_dir / "rosters"
    snapshots.mkdir(parents=True, exist_ok=True)
    rosters.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(tenants)))
    specs: list[SeedTenant] = []
    for index in range(tenants):
        spec, snapshot, rows = _tenant(index, users, seed, width, snapshots, rosters)
        spec.snapshot.write_text(json.dumps(snapshot, separators=(",", ":")), encoding="utf-8")
        with spec.roster.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["upn", "mobile", "office", "country"])
            writer.writerows(rows)
        specs.append(spec)
    tenants_csv = out_dir / "tenants.csv"
    with tenants_csv.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["tenant_id", "name", "roster", "groups"])
        for spec in specs:
            writer.writerow([spec.tenant_id, spec.name, f"rosters/{spec.roster.name}", ";".join(spec.groups)])
    (out_dir / "job.toml").write_text(job_template(users), encoding="utf-8")
    (out_dir / "fleet.toml").write_text(_FLEET_FILE, encoding="utf-8")
    return FleetSeed(directory=out_dir, tenants_csv=tenants_csv, seed=seed, tenants=tuple(specs))


__all__ = ["INVALID_CELL", "FleetSeed", "SeedTenant", "job_template", "seed_fleet"]
