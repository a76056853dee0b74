"""A job's ``[scope]``: only the members of its groups and administrative units are planned.

- The job file's ``[scope]`` block: ids or display names, checked like every key.
- The planner skips a roster user outside the scope (``out_of_scope``, outcome ``skip``)
  whatever its live phones, and plans the others as before.
- The scope reader against a Graph that answers like the real one (absolute next links
  carrying query strings, a 429 with Retry-After, a 403): names resolved exactly and
  case-insensitively, several pages followed, unknown and ambiguous names refused (exit 2),
  a refusal naming the permission to grant (exit 4).
- Whole runs against a served sandbox (run_support): only the scoped users are written,
  the others' rows are ``skipped`` with ``out_of_scope`` and their phones untouched; nested
  groups and administrative units; the permission refusal; no number in the run's log.
- The sandbox's own pages (relative next links naming the page in the path) are followed
  to the last: 230 transitive members, 205 unit members, a name on the second page of groups.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from run_support import apply_in_process, mobile, read_results, read_summary, report_html, served, upn, write_job
from support.builders import current, desired
from support.cli import run_provision
from support.clock import FakeClock
from support.sandbox import SandboxHandle, inprocess_client

from provision.errors import AuthError, ExitCode, JobFileError, UsageError, exit_code_for
from provision.graph.client import GraphClient
from provision.graph.clouds import url_target
from provision.graph.credentials import StaticTokenCredential
from provision.graph.pacing import Pacer
from provision.graph.scope_reader import read_scope
from provision.model import UNREADABLE_SMS_POLICY, UserDecision
from provision.planner import PlanPolicy, ReasonCode, plan
from provision.run.doctor import Status, needs_for, permission_checks, token_claims
from provision.run.jobs import load_job, parse_job
from provision.run.pipeline import plan_job
from provision.run.plan_stage import load_roster
from provision.sandbox.app import SandboxApp, create_app
from provision.sandbox.auth import make_token

GRAPH = "https://graph.example/v1.0"
G_PILOT = "0f8fad5b-d9cb-469f-a165-70867728950e"
G_PILOT_2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
G_NESTED = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
AU_EMEA = "9b2c1c6e-2d0a-4f57-9d3a-4bd0f4d5a001"
U = [f"00000000-0000-4000-8000-{i:012d}" for i in range(10)]


# --- the job file ------------------------------------------------------------------------


def _job(**scope: Any) -> Any:
    raw: dict[str, Any] = {"roster": {"path": "r.csv"}}
    if scope:
        raw["scope"] = scope
    return parse_job(raw, base=Path("."))


def test_scope_block_takes_ids_and_names_and_is_off_when_absent() -> None:
    assert not _job().scope.is_set
    job = _job(groups=[G_PILOT, " Pilot users "], admin_units=["EMEA"])
    assert job.scope.is_set
    assert job.scope.groups == (G_PILOT, "Pilot users")
    assert job.scope.admin_units == ("EMEA",)


@pytest.mark.parametrize(
    ("scope", "words"),
    [({"group": ["x"]}, "scope.group: unknown key (did you mean 'groups'?)"), ({"groups": [""]}, "scope.groups")],
)
def test_scope_block_mistakes_name_the_key(scope: dict[str, Any], words: str) -> None:
    with pytest.raises(JobFileError) as err:
        _job(**scope)
    assert words in str(err.value)
    assert exit_code_for(err.value) is ExitCode.USAGE


# --- the planner -------------------------------------------------------------------------


def test_planner_skips_users_outside_the_scope_and_plans_the_others() -> None:
    inside, outside = desired("in@contoso.com", mobile="+1 4255550100"), desired("out@contoso.com", mobile="+1 4255550101")
    desired_users = {inside.key: inside, outside.key: outside}
    live = {"in@contoso.com": current("in@contoso.com"), "out@contoso.com": current("out@contoso.com")}
    result = plan(desired_users, live, UNREADABLE_SMS_POLICY, PlanPolicy(), out_of_scope={"out@contoso.com"})
    by_key = {up.key: up for up in result.users}
    assert by_key["in@contoso.com"].outcome is UserDecision.CHANGE
    skipped = by_key["out@contoso.com"]
    assert (skipped.outcome, skipped.codes, skipped.changes) == (UserDecision.SKIP, (ReasonCode.OUT_OF_SCOPE,), ())
    assert all(ch.user == "in@contoso.com" for ch in result.changes)


# --- the scope reader against a Graph-like server ---------------------------------------


class FakeGraph:
    """Answers the directory reads the way Graph does: absolute next links that carry the
    query, $top honoured, items typed by ``@odata.type``; ``fail`` answers chosen paths."""

    def __init__(self, page_size: int = 2) -> None:
        self.page_size = page_size
        self.groups: dict[str, tuple[str, list[str]]] = {}
        self.units: dict[str, tuple[str, list[str]]] = {}
        self.upns = {uid: f"user{i}@contoso.com" for i, uid in enumerate(U)}
        self.fail: Callable[[str], httpx.Response | None] = lambda path: None
        self.paths: list[str] = []
        self.limited = False

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)
        start = int(query.get("$skiptoken", ["0"])[0])
        end = start + self.page_size
        body: dict[str, Any] = {"value": items[start:end]}
        if end < len(items):
            nxt = {k: v[0] for k, v in query.items() if k != "$skiptoken"} | {"$skiptoken": str(end)}
            body["@odata.nextLink"] = str(request.url.copy_with(params=nxt))
        return httpx.Response(200, json=body)

    def _item(self, oid: str) -> dict[str, Any]:
        if oid in self.groups:
            return {"@odata.type": "#microsoft.graph.group", "id": oid, "displayName": self.groups[oid][0]}
        if self.limited:  # Graph's "limited information": a member the app may not read as a user
            return {"@odata.type": "#microsoft.graph.user", "id": oid}
        return {"@odata.type": "#microsoft.graph.user", "id": oid, "userPrincipalName": self.upns[oid]}

    def _transitive(self, gid: str) -> list[str]:
        seen: dict[str, None] = {}
        stack = list(reversed(self.groups[gid][1]))
        while stack:
            oid = stack.pop()
            if oid in seen or oid == gid:
                continue
            seen[oid] = None
            if oid in self.groups:
                stack.extend(reversed(self.groups[oid][1]))
        return list(seen)

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1.0")
        self.paths.append(path)
        failed = self.fail(path)
        if failed is not None:
            return failed
        parts = path.strip("/").split("/")
        if parts[0] == "directory":
            parts, store = parts[1:], self.units
        else:
            store = self.groups
        if len(parts) == 1:
            return self._page(request, [{"id": k, "displayName": v[0]} for k, v in store.items()])
        if parts[1] not in store:
            return httpx.Response(404, json={"error": {"code": "Request_ResourceNotFound", "message": "not found"}})
        name, members = store[parts[1]]
        if len(parts) == 2:
            return httpx.Response(200, json={"id": parts[1], "displayName": name})
        ids = self._transitive(parts[1]) if parts[2] == "transitiveMembers" else members
        return self._page(request, [self._item(oid) for oid in ids])

    def client(self, clock: FakeClock) -> GraphClient:
        return GraphClient(
            url_target(GRAPH),
            StaticTokenCredential(make_token()),
            pacer=Pacer(clock=clock, sleep=clock.sleep),
            transport=httpx.MockTransport(self.handler),
        )


def _read(graph: FakeGraph, groups: tuple[str, ...] = (), units: tuple[str, ...] = ()) -> Any:
    clock = FakeClock()

    async def go() -> Any:
        async with graph.client(clock) as client:
            return await read_scope(client, groups, units, clock=clock, sleep=clock.sleep)

    return asyncio.run(go())


def test_reader_follows_pages_through_nested_groups_and_unit_members() -> None:
    graph = FakeGraph()
    graph.groups = {G_PILOT: ("Pilot", [U[0], U[1], G_NESTED]), G_NESTED: ("Nested", [U[2], U[3], G_PILOT])}
    graph.units = {AU_EMEA: ("EMEA", [U[4], G_NESTED, U[5]])}
    scope = _read(graph, ("pilot",), ("EMEA",))
    # The group: its members and the nested group's (the cycle back is harmless); the unit:
    # its direct users only, not the members of the group inside it.
    assert scope.ids == {U[0], U[1], U[2], U[3], U[4], U[5]}
    assert scope.contains("user3@contoso.com") and scope.contains(U[5].upper())
    assert not scope.contains("user6@contoso.com") and not scope.contains(U[6])
    assert sum("skiptoken" in p or "transitiveMembers" in p for p in graph.paths) >= 2


def test_members_listed_without_their_upn_decide_ids_only() -> None:
    graph = FakeGraph()
    graph.groups = {G_PILOT: ("Pilot", [U[0], U[1]])}
    graph.limited = True
    scope = _read(graph, ("Pilot",))
    # Ids still decide; a UPN can't be judged against members that came without theirs, so
    # the plan stops (exit 4) rather than call members "out of scope".
    assert scope.decides(U[0]) and scope.contains(U[0]) and not scope.contains(U[6])
    assert not scope.decides("user0@contoso.com")
    graph.limited = False
    assert _read(graph, ("Pilot",)).decides("user0@contoso.com")


def test_reader_resolves_an_id_and_refuses_unknown_and_ambiguous_names() -> None:
    graph = FakeGraph()
    graph.groups = {G_PILOT: ("Pilot", [U[0]]), G_PILOT_2: ("PILOT", [U[1]]), G_NESTED: ("Other", [U[2]])}
    assert _read(graph, (G_PILOT.upper(),)).ids == {U[0]}
    with pytest.raises(UsageError) as ambiguous:
        _read(graph, ("pilot",))
    assert G_PILOT in str(ambiguous.value) and G_PILOT_2 in str(ambiguous.value)
    with pytest.raises(UsageError, match="scope.groups: no group is named 'Pilots'"):
        _read(graph, ("Pilots",))
    with pytest.raises(UsageError, match="scope.admin_units: no administrative unit has the id"):
        _read(graph, (), (AU_EMEA,))


def test_reader_waits_out_throttling_and_stops_on_a_refusal_naming_the_permission() -> None:
    graph = FakeGraph()
    graph.groups = {G_PILOT: ("Pilot", [U[0], U[1], U[2]])}
    graph.units = {AU_EMEA: ("EMEA", [U[3]])}
    throttled = iter([True, True])

    def fail(path: str) -> httpx.Response | None:
        if path.endswith("transitiveMembers") and next(throttled, False):
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"error": {"code": "TooManyRequests"}})
        if path.startswith("/directory"):
            denied = {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}
            return httpx.Response(403, json={"error": denied})
        return None

    graph.fail = fail
    assert _read(graph, (G_PILOT,)).ids == {U[0], U[1], U[2]}
    with pytest.raises(AuthError) as refused:
        _read(graph, (G_PILOT,), ("EMEA",))
    assert exit_code_for(refused.value) is ExitCode.AUTH
    assert "AdministrativeUnit.Read.All" in str(refused.value)


# --- doctor --------------------------------------------------------------------------------


def test_doctor_lists_the_scope_permissions_and_fails_a_token_without_them() -> None:
    job = _job(groups=["Pilot"], admin_units=["EMEA"])
    needs = needs_for(job, plan_only=True)
    assert {"GroupMember.Read.All", "AdministrativeUnit.Read.All"} <= {n.permission for n in needs}
    assert not {n.operation for n in needs_for(_job(), plan_only=True)} & {"listGroupTransitiveMembers", "listAdminUnitMembers"}
    claims = token_claims(make_token(roles=["UserAuthenticationMethod.ReadWrite.All", "Directory.Read.All"]))
    checks = {c.name: c for c in permission_checks(claims, needs, sandbox=True)}
    assert checks["permission: group members"].status is Status.OK  # Directory.Read.All reads both
    claims = token_claims(make_token(roles=["UserAuthenticationMethod.ReadWrite.All"]))
    failed = {c.name: c for c in permission_checks(claims, needs, sandbox=True)}["permission: unit members"]
    assert failed.status is Status.FAIL and "AdministrativeUnit.Read.All" in failed.detail


# --- whole runs against the sandbox ----------------------------------------------------------


class NoteConsole:
    """Keeps the run's notes (what reaches run.log) to look for numbers in them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, name: str, done: int, total: int | None = None, **fields: Any) -> None:
        pass

    def note(self, level: str, message: str, **fields: Any) -> None:
        self.lines.append(f"{message} {fields}")


OLD = "+1 2065550100"


def _tenant_of_six() -> tuple[SandboxApp, list[str]]:
    """Six users, each with an old mobile the roster replaces."""
    app = create_app()
    ids = []
    for i in range(6):
        ids.append(app.sandbox.tenant.create_user(upn(i))["id"].lower())
        app.sandbox.tenant.create_phone(upn(i), OLD[:-2] + f"{i:02d}", "mobile")
    return app, ids


def _mobiles(app: SandboxApp) -> dict[str, str | None]:
    tenant = app.sandbox.tenant
    return {
        upn(i): next((p["phoneNumber"] for p in tenant.list_phones(upn(i)) if p["phoneType"] == "mobile"), None)
        for i in range(6)
    }


def _roster(keys: list[str]) -> list[tuple[str, str]]:
    return [(key, mobile(i)) for i, key in enumerate(keys)]


def test_only_the_groups_members_are_written_the_others_are_skipped_out_of_scope(tmp_path: Path) -> None:
    app, ids = _tenant_of_six()
    tenant = app.sandbox.tenant
    tenant.create_group("Pilot users", [ids[0], upn(2), ids[4]])
    tenant.create_group("Someone else's pilot", [ids[1]])
    before = _mobiles(app)
    # Rows by UPN and by object id alike: a UPN row is matched through the member's UPN.
    keys = [upn(0), ids[1], upn(2), upn(3), ids[4].upper(), upn(5)]
    console = NoteConsole()
    with served(app) as url:
        job = write_job(tmp_path, url, _roster(keys), settings='[scope]\ngroups = ["PILOT USERS"]\n')
        apply_in_process(job, tmp_path / "run")
        # Planned again: the members are right now, the others still out of scope.
        again = asyncio.run(plan_job(load_job(job), load_roster(load_job(job)), console=console))

    after = _mobiles(app)
    assert {u for u in after if after[u] != before[u]} == {upn(0), upn(2), upn(4)}
    assert after[upn(0)] == mobile(0) and after[upn(4)] == mobile(4)
    rows = read_results(tmp_path / "run")
    for key in (ids[1], upn(3), upn(5)):
        assert (rows[key]["outcome"], rows[key]["error_code"]) == ("skipped", "out_of_scope")
    assert {rows[k]["outcome"] for k in (upn(0), upn(2), ids[4].upper())} == {"applied"}
    summary = read_summary(tmp_path / "run")
    assert summary["rows_by_outcome"]["skipped"] == 3 and summary["rows_by_outcome"]["applied"] == 3
    # Left out by design, not needing attention: the run ends ok.
    assert (summary["rows_failed"], summary["exit_code"]) == (0, 0)
    html = report_html(tmp_path / "run")
    assert "Outside the job&#x27;s scope" in html or "Outside the job's scope" in html
    assert "It worked" in html  # the verdict agrees with the exit code: nothing needs attention
    # Out-of-scope users were never read: 3 phone lists, not 6.
    assert app.sandbox.stats.to_json()["by_operation"]["listPhoneMethods"] == 2 * 3
    assert [up.outcome.value for up in again.plan.users] == ["noop", "skip", "noop", "skip", "noop", "skip"]
    logged = "\n".join(console.lines)
    assert "scope:" in logged
    assert not any(n in logged for n in [*before.values(), *(mobile(i) for i in range(6))] if n)


def test_nested_group_members_and_admin_unit_users_are_in_scope(tmp_path: Path) -> None:
    app, ids = _tenant_of_six()
    tenant = app.sandbox.tenant
    inner = tenant.create_group("Inner", [ids[1]])
    outer = tenant.create_group("Outer", [ids[0], inner])
    tenant.add_members(inner, [outer, ids[2]])  # a cycle back is harmless
    unit_group = tenant.create_group("Unit group", [ids[5]])  # in the unit below: its members are not
    tenant.create_admin_unit("EMEA", [ids[3], unit_group])
    before = _mobiles(app)
    with served(app) as url:
        job = write_job(tmp_path, url, _roster([upn(i) for i in range(6)]),
                        settings=f'[scope]\ngroups = ["{outer}"]\nadmin_units = ["emea"]\n')
        apply_in_process(job, tmp_path / "run")

    after = _mobiles(app)
    assert {u for u in after if after[u] != before[u]} == {upn(0), upn(1), upn(2), upn(3)}
    rows = read_results(tmp_path / "run")
    assert {u: r["outcome"] for u, r in rows.items()} == {
        upn(0): "applied", upn(1): "applied", upn(2): "applied", upn(3): "applied",
        upn(4): "skipped", upn(5): "skipped",
    }
    assert rows[upn(5)]["error_code"] == "out_of_scope"


def test_an_unknown_group_ends_with_exit_2_naming_it(tmp_path: Path) -> None:
    app, ids = _tenant_of_six()
    app.sandbox.tenant.create_group("Pilot", [ids[0]])
    with served(app) as url:
        write_job(tmp_path, url, _roster([upn(0)]), settings='[scope]\ngroups = ["Pilots"]\n')
        ran = run_provision(["plan", "job.toml"], cwd=tmp_path)
    assert ran.exit_code == ExitCode.USAGE
    assert "scope.groups: no group is named 'Pilots'" in ran.output


def test_a_token_without_group_member_reads_ends_with_exit_4_naming_the_permission(tmp_path: Path) -> None:
    app, ids = _tenant_of_six()
    app.sandbox.tenant.create_group("Pilot", [ids[0]])
    token = app.sandbox.token(roles=["UserAuthenticationMethod.ReadWrite.All", "Policy.Read.All", "User.Read.All"])
    before = _mobiles(app)
    with served(app) as url:
        write_job(tmp_path, url, _roster([upn(i) for i in range(6)]), settings='[scope]\ngroups = ["Pilot"]\n')
        ran = run_provision(["apply", "job.toml", "--yes"], cwd=tmp_path, env={"PROVISION_TOKEN": token})
    assert ran.exit_code == ExitCode.AUTH
    assert "GroupMember.Read.All" in ran.output
    assert _mobiles(app) == before
    assert not any(n in ran.output for n in [*before.values(), *(mobile(i) for i in range(6))] if n)


def test_the_sandbox_member_pages_are_followed_to_the_last(asgi_sandbox: SandboxHandle) -> None:
    tenant = asgi_sandbox.tenant
    ids = [tenant.create_user(f"member{i}@contoso.example")["id"].lower() for i in range(230)]
    inner = tenant.create_group("Inner", ids[100:])
    tenant.create_group("Everyone", [*ids[:100], inner])
    tenant.create_admin_unit("Big unit", ids[:205])
    for i in range(120):  # more groups than one page of GET /groups before the name matches
        tenant.create_group(f"Filler {i}")
    tenant.create_group("Last")

    async def go() -> Any:
        async with inprocess_client(asgi_sandbox.app, token=asgi_sandbox.token) as client:
            return await read_scope(client, ["everyone"], []), await read_scope(client, ["last"], ["BIG UNIT"])

    everyone, last_and_unit = asyncio.run(go())
    assert everyone.ids == set(ids)
    assert last_and_unit.ids == set(ids[:205])
    assert everyone.contains("member229@contoso.example")
