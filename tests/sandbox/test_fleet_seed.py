"""`provision sandbox seed-fleet`: a generated fleet's snapshots load, its rosters read, its
tenants.csv names them, and the same seed writes the same fleet."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from provision import api
from provision.cli import app
from provision.model import RowStatus
from provision.roster.reader import read_roster
from provision.sandbox.app import create_multi_app
from provision.sandbox.fleet_seed import SeedTenant, job_template, seed_fleet
from provision.sandbox.server import serve_in_thread
from provision.sandbox.tenants_dir import load_tenants, snapshot_paths

COLUMNS = {"user": "upn", "mobile": "mobile", "office": "office", "region": "country"}  # as jobs/nightly_reconcile.toml


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_seed_fleet_writes_loadable_snapshots_readable_rosters_and_a_tenants_csv(tmp_path: Path) -> None:
    fleet = seed_fleet(tmp_path, tenants=30, users=40, seed=5)

    tenants = load_tenants(snapshot_paths(fleet.snapshots))
    assert sorted(t.tenant_id for t in tenants) == sorted(t.tenant_id for t in fleet.tenants)
    assert len({t.tenant_id for t in fleet.tenants}) == 30
    assert {t.region for t in fleet.tenants} == {"US", "GB"}

    with fleet.tenants_csv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["tenant_id"] for r in rows] == [t.tenant_id for t in fleet.tenants]
    assert all((tmp_path / r["roster"]).is_file() and r["groups"] for r in rows)

    for spec in fleet.tenants:
        roster = read_roster(spec.roster, columns=COLUMNS, default_region="US", workers=0)
        assert len(roster.rows) == spec.users == 40
        assert roster.count(RowStatus.ERROR) == spec.expected["invalid"]
        assert sum(spec.expected.values()) == spec.users
    totals = {kind: sum(t.expected[kind] for t in fleet.tenants) for kind in ("create", "update", "delete", "invalid")}
    assert all(count > 0 for count in totals.values())  # the mix holds every situation
    assert sum(t.expected["unchanged"] for t in fleet.tenants) > 0.7 * 30 * 40  # most users already right

    # and the rehearsal fleet file over them: every tenant runnable with the seed's job template
    from provision.fleet.config import load_fleet

    loaded = load_fleet(fleet.fleet_file)
    assert [t.tenant_id for t in loaded.tenants] == [t.tenant_id for t in fleet.tenants]
    assert all(t.problem is None and t.job is not None and t.job.roster.columns == COLUMNS for t in loaded.tenants)


def test_the_same_seed_writes_the_same_fleet_and_another_seed_another(tmp_path: Path) -> None:
    seed_fleet(tmp_path / "a", tenants=3, users=10, seed=1)
    seed_fleet(tmp_path / "b", tenants=3, users=10, seed=1)
    other = seed_fleet(tmp_path / "c", tenants=3, users=10, seed=2)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a").keys() != _files(other.directory).keys()


def test_seed_fleet_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sandbox", "seed-fleet", str(tmp_path / "out"), "--tenants", "2", "--users", "5"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "out" / "tenants.csv")
    assert len(list((tmp_path / "out" / "snapshots").glob("*.json"))) == 2
    assert len(list((tmp_path / "out" / "rosters").glob("*.csv"))) == 2


def _job(tmp: Path, tenant: SeedTenant, url: str) -> Path:
    """The seed's own job template (jobs/nightly_reconcile.toml's roster and mode), aimed at one
    tenant of a multi-tenant sandbox."""
    job = tmp / f"{tenant.key}.toml"
    text = job_template(tenant.users).replace('name = "nightly"', f'name = "nightly_{tenant.key}"')
    text = text.replace('path = "rosters/placeholder.csv"', f'path = "{tenant.roster}"')
    job.write_text(
        f'{text}[output]\ndirectory = "{tmp / "reports"}"\n'
        f'[target]\nkind = "sandbox"\nurl = "{url}"\ntenant_id = "{tenant.tenant_id}"\n',
        encoding="utf-8",
    )
    return job


def test_a_nightly_job_plans_what_the_seed_expects_and_converges_in_its_own_tenant(tmp_path: Path) -> None:
    fleet = seed_fleet(tmp_path / "fleet", tenants=21, users=30, seed=2)
    us, gb = fleet.tenants[0], fleet.tenants[20]
    assert (us.region, gb.region) == ("US", "GB")
    sandbox = create_multi_app(load_tenants(snapshot_paths(fleet.snapshots)))
    assert sandbox.tenant_router is not None
    gb_tenant = sandbox.tenant_router.sandboxes[gb.tenant_id].tenant
    gb_before = gb_tenant.to_snapshot()
    with serve_in_thread(sandbox) as root:
        plans = {t.key: api.plan(_job(tmp_path, t, f"{root}/v1.0")).summary for t in (us, gb)}
        applied = api.apply(_job(tmp_path, us, f"{root}/v1.0"), run_dir=tmp_path / "run")
        replanned = api.plan(_job(tmp_path, us, f"{root}/v1.0")).summary
    for spec in (us, gb):
        summary = plans[spec.key]
        assert {k: summary["changes_by_kind"][k] for k in ("create", "update", "delete")} == {
            k: spec.expected[k] for k in ("create", "update", "delete")
        }
        assert summary["rows_error"] == spec.expected["invalid"]
        assert summary["users_by_outcome"]["noop"] == spec.expected["unchanged"]
    assert applied.exit_code == 0
    outcomes = applied.results["outcome"].value_counts().to_dict()
    assert outcomes == {
        k: v
        for k, v in {
            "unchanged": us.expected["unchanged"],
            "applied": us.expected["create"] + us.expected["update"] + us.expected["delete"],  # one change per user
            "invalid": us.expected["invalid"],
        }.items()
        if v
    }
    assert replanned["changes"] == 0
    assert gb_tenant.to_snapshot() == gb_before
