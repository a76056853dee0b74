"""Fleet mode end to end: N small tenants reconciled by `provision fleet apply` on this machine.

What an MSP runs every night, measured as the user runs it (issue 15's bench figure):

- ``seed_fleet`` writes N tenants of M users (default 1,000 x 100), each with the usual
  nightly drift (~20% of users need a create, update or delete; ~3% of rows unreadable);
- one ``provision sandbox serve --tenants DIR --profile graph-like`` **process** serves them
  all over loopback HTTP, each tenant with its own throttle budget (20 writes/s, 350 reads/s)
  and Graph-like latency (150 ms reads, 300 ms writes, jitter, rare 503/504/resets);
- ``provision fleet apply FLEET.toml --yes`` runs as a subprocess (the embedded Dask cluster
  sized to the machine, the fleet file's ``[executor]`` as shipped below).

Measured in the same run:

- the fleet: wall time of the whole command, tenants/min, successful writes/s (the sandbox's
  summed ``writes_succeeded`` over the whole command, and over the write phase: first to
  last second a write landed), 429 share of operations, ``duplicate_writes`` (must be 0),
  every tenant converged (changes done = changes planned = what the seed says), CPU seconds
  of the client process tree (the fleet process: scheduler and dispatcher; its worker
  processes) and of the sandbox, peak RSS of the client tree;
- the cap: client CPU per operation (bench.apply_cpu's executor measurement, 2,000 users on
  an unlimited sandbox of its own) -> CPU cap = cores / CPU per op; admitted = tenants x the
  profile's writes_per_second; ceiling = min(admitted, CPU cap); the ratio writes/s / ceiling.
  Beside it, the per-tenant fixed cost (client CPU per tenant beyond its operations), which
  bounds a fleet of small tenants, and where it goes (``--profile-tenants K``: K tenants run
  in this process under cProfile, CPU time per thread);
- the baseline: what an admin does today, ``provision apply JOB --yes`` once per tenant in a
  loop, on a sample of S fresh tenants of the same fleet, extrapolated per tenant.

The machine is shared: quote the ratios (fleet vs loop, writes/s vs ceiling), and the load
average printed before and after.

    python -m bench.fleet                 # 1,000 tenants x 100 users, baseline sample 20
    python -m bench.fleet --quick         # 100 tenants x 100 users, baseline sample 10
    python -m bench.fleet --tenants 200 --max-parallel 32 --threads-per-worker 16
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import os
import pstats
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import psutil  # type: ignore[import-untyped]  # noqa: E402  (a dependency of distributed)

from provision.sandbox.fleet_seed import FleetSeed, SeedTenant, job_template, seed_fleet  # noqa: E402
from provision.sandbox.limits import load_profile  # noqa: E402

PROFILE = "graph-like"
# Ten-user tenants would be all fixed cost; the fleet is "about 100 users each".
DEFAULT_TENANTS, DEFAULT_USERS = 1000, 100
QUICK_TENANTS = 100

# The executor settings the bench ships as defaults (fleet file [executor]); see --help and
# the module docstring of provision.fleet.dispatch. workers 0: one per core.
DEFAULT_THREADS_PER_WORKER = 16
DEFAULT_MAX_PARALLEL = 32


WRITE_KINDS = ("create", "update", "delete")


# -- processes ----------------------------------------------------------------------------
def _env() -> dict[str, str]:
    """The subprocesses' environment: this tree importable, no stray token or cluster."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROVISION_TOKEN", "PROVISION_CLUSTER")}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # A worker that crashes in C (SIGSEGV) leaves every thread's Python stack in fleet.log.
    env["PYTHONFAULTHANDLER"] = "1"
    return env


_CHILDREN: list[subprocess.Popen[Any]] = []


def _spawn(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    # A process group of its own: stopping it takes its Dask workers along.
    process = subprocess.Popen(list(cmd), env=_env(), start_new_session=True, **kwargs)
    _CHILDREN.append(process)
    return process


def _stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, wait_s: float = 30.0) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(wait_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)
    if process in _CHILDREN:
        _CHILDREN.remove(process)


@contextmanager
def _cleanup_on_exit() -> Iterator[None]:
    """Every process this bench started stops however it ends (Ctrl-C and SIGTERM included)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        yield
    finally:
        for process in list(_CHILDREN):
            _stop(process, signal.SIGTERM, 20)
        signal.signal(signal.SIGTERM, previous)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of every reaped child of this process and their reaped descendants."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass
class Sandbox:
    process: subprocess.Popen[str]
    root: str  # http://127.0.0.1:PORT

    @property
    def url(self) -> str:
        return f"{self.root}/v1.0"

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.root}/_sandbox/stats", timeout=30).json()  # type: ignore[no-any-return]

    def tenant_stats(self, tenant_id: str) -> dict[str, Any]:
        return httpx.get(f"{self.root}/_sandbox/stats", params={"tenant": tenant_id}, timeout=30).json()  # type: ignore[no-any-return]


@contextmanager
def serve(snapshots: Path, profile: str = PROFILE) -> Iterator[Sandbox]:
    process = _spawn(
        [sys.executable, "-m", "provision", "sandbox", "serve", "--port", "0", "--tenants", str(snapshots),
         "--profile", profile],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.endswith("/v1.0"):
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        yield Sandbox(process, line.removesuffix("/v1.0"))
    finally:
        _stop(process)


# -- files ----------------------------------------------------------------------------------
def write_fleet(root: Path, tenants: Sequence[SeedTenant], url: str, *, name: str, threads_per_worker: int,
                max_parallel: int, workers: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "template.toml").write_text(job_template(max(t.users for t in tenants)), encoding="utf-8")
    with (root / "tenants.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tenant_id", "name", "roster", "groups"])
        writer.writerows([t.tenant_id, t.name, str(t.roster), ";".join(t.groups)] for t in tenants)
    path = root / "fleet.toml"
    path.write_text(
        f'name = "{name}"\njob_template = "template.toml"\ntenants = "tenants.csv"\n\n'
        f"[executor]\nworkers = {workers}\nthreads_per_worker = {threads_per_worker}\n"
        f"max_parallel_tenants = {max_parallel}\n\n"
        f'[target]\nkind = "sandbox"\nurl = "{url}"\n\n[output]\ndirectory = "reports"\n',
        encoding="utf-8",
    )
    return path


def write_job(root: Path, tenant: SeedTenant, url: str) -> Path:
    """The job file an admin keeps per customer today: the same template, one tenant."""
    root.mkdir(parents=True, exist_ok=True)
    text = job_template(tenant.users).replace('path = "rosters/placeholder.csv"', f'path = "{tenant.roster}"')
    text += f'\n[target]\nkind = "sandbox"\nurl = "{url}"\ntenant_id = "{tenant.tenant_id}"\n'
    text += f'\n[output]\ndirectory = "{root / "reports"}"\n'
    path = root / f"{tenant.key}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def expected_writes(tenants: Sequence[SeedTenant]) -> int:
    return sum(t.expected[k] for t in tenants for k in WRITE_KINDS)


# -- the client tree's CPU and memory, sampled ---------------------------------------------
@dataclass
class TreeSampler:
    """Samples a process tree (RSS summed, CPU per process) and the sandbox's counters, once a second."""

    root_pid: int  # the fleet process (the resume's, after a stall)
    sandbox: Sandbox
    every_s: float = 1.0
    peak_rss: int = 0
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    writes: list[tuple[float, int]] = field(default_factory=list)  # (perf_counter, writes_succeeded)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)

    def sample(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        for p in procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    rss += p.memory_info().rss
                    self.cpu_by_pid[p.pid] = t.user + t.system
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        try:
            self.writes.append((time.perf_counter(), int(self.sandbox.stats()["writes_succeeded"])))
        except (httpx.HTTPError, KeyError, ValueError):
            pass

    def write_phase(self) -> tuple[float, int]:
        """(seconds, writes) from the last sample before the first write to the first sample after the last."""
        if len(self.writes) < 2:
            return 0.0, 0
        base = self.writes[0][1]
        first = next((i for i, (_, w) in enumerate(self.writes) if w > base), None)
        if first is None:
            return 0.0, 0
        last_value = self.writes[-1][1]
        last = next(i for i, (_, w) in enumerate(self.writes) if w == last_value)
        start = self.writes[max(first - 1, 0)]
        end = self.writes[last]
        return end[0] - start[0], end[1] - start[1]


# -- the fleet run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FleetRun:
    wall_s: float
    exit_code: int
    fleet_dir: Path
    stats: dict[str, Any]  # the sandbox's counters over the run (deltas)
    client_cpu_s: float  # the fleet process and every process it started
    fleet_process_cpu_s: float  # the fleet process alone (Dask scheduler, dispatcher, reports)
    sandbox_cpu_s: float
    peak_rss: int
    write_phase: tuple[float, int]
    summary: dict[str, Any]
    results: list[dict[str, Any]]
    timeline: dict[str, float]  # seconds since the command started: ready, first, last tenant, done
    stall: Stall | None  # the fleet stopped progressing: killed and resumed


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {k: after[k] - before.get(k, 0) for k in after if isinstance(after[k], int)}


def run_fleet_command(fleet_file: Path, sandbox: Sandbox, log: Path, *, tenants: int, stall_s: float) -> FleetRun:
    """`provision fleet apply` as a subprocess, measured. A fleet that makes no progress for
    ``stall_s`` (no tenant finished) is killed (SIGKILL, its whole tree) and finished with
    `provision fleet resume`, as an operator would; both commands count in the figures."""
    before = sandbox.stats()
    sandbox_cpu0, children0 = cpu_seconds(sandbox.process.pid), children_cpu()
    t0, started = time.perf_counter(), time.time()
    stall: Stall | None = None
    roots: list[int] = []
    with log.open("w", encoding="utf-8") as out:
        command = ["fleet", "apply", str(fleet_file), "--yes", "--log-format", "json"]
        process = _spawn([sys.executable, "-m", "provision", *command], stdout=out, stderr=subprocess.STDOUT,
                         cwd=fleet_file.parent)
        with TreeSampler(process.pid, sandbox) as sampler:
            roots.append(process.pid)
            code, stall = _wait_or_stall(process, log, tenants, stall_s)
            if stall is not None:
                print(f"  STALL: {stall.finished}/{tenants} tenants finished, none for {stall_s:.0f} s; stuck:"
                      f" {stall.stuck[:4]}; killing the fleet (SIGKILL) and running `provision fleet resume`")
                _stop(process, signal.SIGKILL)
                resume_at = time.perf_counter()
                process = _spawn([sys.executable, "-m", "provision", "fleet", "resume", str(_fleet_dir_of(log)),
                                  "--log-format", "json"], stdout=out, stderr=subprocess.STDOUT, cwd=fleet_file.parent)
                sampler.root_pid = process.pid
                roots.append(process.pid)
                code, again = _wait_or_stall(process, log, tenants, max(stall_s, 30.0))
                stall.resume_s = time.perf_counter() - resume_at
                if again is not None:
                    print("  STALL again during resume: giving up")
                    _stop(process, signal.SIGKILL)
            wall = time.perf_counter() - t0
        sampler.sample()
    if process in _CHILDREN:
        _CHILDREN.remove(process)
    client_cpu = children_cpu() - children0
    sandbox_cpu = cpu_seconds(sandbox.process.pid) - sandbox_cpu0
    stats = _delta(sandbox.stats(), before)
    fleet_dir = _fleet_dir_of(log)
    summary_file = fleet_dir / "fleet_summary.json"
    summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else {}
    results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((fleet_dir / "tenants").glob("*/tenant.json"))]
    return FleetRun(
        wall_s=wall, exit_code=code, fleet_dir=fleet_dir, stats=stats,
        client_cpu_s=max(client_cpu, sum(sampler.cpu_by_pid.values())),
        fleet_process_cpu_s=sum(sampler.cpu_by_pid.get(pid, 0.0) for pid in roots), sandbox_cpu_s=sandbox_cpu,
        peak_rss=sampler.peak_rss, write_phase=sampler.write_phase(), summary=summary, results=results,
        timeline=_timeline(log, started), stall=stall,
    )


@dataclass
class Stall:
    finished: int  # tenants finished when the fleet was killed
    stuck: list[str]  # "<key>: <the last line of its run.log>"
    waited_s: float  # from the last tenant finishing to the kill
    resume_s: float = 0.0


def _wait_or_stall(process: subprocess.Popen[Any], log: Path, tenants: int, stall_s: float) -> tuple[int, Stall | None]:
    """The process's exit code; or, when no tenant finished for ``stall_s``, what was stuck."""
    finished, progress_at = -1, time.perf_counter()
    while True:
        try:
            return process.wait(timeout=2.0), None
        except subprocess.TimeoutExpired:
            pass
        done = _finished_tenants(log)
        if done != finished:
            finished, progress_at = done, time.perf_counter()
        elif time.perf_counter() - progress_at > stall_s and done < tenants:
            return -1, Stall(done, _stuck(_fleet_dir_of(log)), time.perf_counter() - progress_at)


def _finished_tenants(log: Path) -> int:
    try:
        fleet_dir = _fleet_dir_of(log)
    except RuntimeError:
        return 0
    return sum(1 for _ in (fleet_dir / "tenants").glob("*/tenant.json"))


def _stuck(fleet_dir: Path) -> list[str]:
    stuck = []
    for tenant in sorted((fleet_dir / "tenants").iterdir()):
        if (tenant / "tenant.json").exists():
            continue
        run_log = tenant / "run" / "run.log"
        last = run_log.read_text(encoding="utf-8").strip().splitlines()[-1:] if run_log.is_file() else []
        message = json.loads(last[0]).get("message", "") if last else "(no run.log)"
        files = sorted(p.name for p in (tenant / "run").iterdir()) if (tenant / "run").is_dir() else []
        stuck.append(f"{tenant.name}: {message} [run/: {', '.join(files)}]")
    return stuck


def _timeline(log: Path, started: float) -> dict[str, float]:
    """When the executor was ready, the first and last tenant ended and the command ended (its JSON lines)."""
    from datetime import datetime

    marks: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
            at = datetime.fromisoformat(event["time"]).timestamp() - started
        except (ValueError, KeyError, TypeError):
            continue
        if "executor" in event:
            marks.setdefault("ready", at)
        elif event.get("event_kind") == "tenant":
            marks.setdefault("first", at)
            marks["last"] = at
        elif event.get("event_kind") == "fleet_run":
            marks["done"] = at
    return marks


def _fleet_dir_of(log: Path) -> Path:
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event_kind") == "fleet_run":
            return Path(event["fleet_dir"])
        if event.get("fleet_dir"):
            return Path(event["fleet_dir"])
    raise RuntimeError(f"the fleet command named no fleet directory; its output: {log}")


# -- the baseline: one `provision apply` per tenant, in a loop ---------------------------------
@dataclass(frozen=True)
class Loop:
    tenants: int
    wall_s: float
    cpu_s: float
    writes: int
    exit_codes: tuple[int, ...]


def run_loop(tenants: Sequence[SeedTenant], sandbox: Sandbox, root: Path) -> Loop:
    jobs = [write_job(root, t, sandbox.url) for t in tenants]
    before = sandbox.stats()
    cpu0 = children_cpu()
    codes = []
    t0 = time.perf_counter()
    for job in jobs:
        process = _spawn([sys.executable, "-m", "provision", "apply", str(job), "--yes"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
        codes.append(process.wait())
        _CHILDREN.remove(process)
    wall = time.perf_counter() - t0
    writes = _delta(sandbox.stats(), before)["writes_succeeded"]
    return Loop(len(jobs), wall, children_cpu() - cpu0, writes, tuple(codes))


# -- client CPU per operation (bench.apply_cpu's executor measurement) -------------------------
def cpu_per_operation(users: int = 2000) -> tuple[float, int]:
    """(client CPU seconds per operation, operations) of the executor alone, as bench.apply_cpu measures it."""
    import asyncio

    from bench.apply_throughput import apply_changes, onboarding_changes, profile_text, sandbox_process

    with sandbox_process(profile_text(), users) as root:
        measured = asyncio.run(apply_changes(root, onboarding_changes(0, users)))
    ops = measured.result.write_operations + measured.result.read_operations
    return measured.cpu_s / ops, ops


# -- where a tenant's fixed cost goes ------------------------------------------------------------
PHASES: tuple[tuple[str, str, str], ...] = (
    # (label, file suffix, function): inclusive CPU in the thread(s) that ran it
    ("  roster read", "provision/run/plan_stage.py", "load_roster"),
    ("  open target (token, SDK client)", "provision/run/targets.py", "open_target"),
    ("    GraphClient()", "provision/graph/client.py", "__init__"),
    ("  plan (state read + planner)", "provision/run/plan_stage.py", "make_plan"),
    ("    planner", "provision/planner/plan_users.py", "plan"),
    ("  run directory", "provision/run/rundir.py", "create_run_dir"),
    ("  journal create", "provision/executor/journal.py", "create"),
    ("  apply (executor)", "provision/executor/dispatch.py", "execute"),
    ("  reports (render_reports)", "provision/run/run_report.py", "render_reports"),
    ("    results.xlsx", "provision/report/xlsx_writer.py", "write_xlsx"),
    ("    report.html", "provision/report/html_report.py", "write_html"),
    ("    results.csv", "provision/report/csv_writer.py", "write_csv"),
    ("    summary.json", "provision/report/summary_json.py", "write_summary_json"),
    ("    changes.jsonl", "provision/run/run_report.py", "_write_change_feed"),
    ("  tenant results copy", "provision/fleet/tenant_run.py", "_copy_results"),
)


class _ThreadProfiles:
    """cProfile in every thread that runs while enabled (the tenant's, asyncio.to_thread's), CPU time per thread."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []

    def _start_here(self, *_: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)
        self.profiles.append(profile)
        profile.enable()

    def __enter__(self) -> _ThreadProfiles:
        threading.setprofile(self._start_here)
        self._start_here()
        return self

    def __exit__(self, *exc: Any) -> None:
        threading.setprofile(None)
        for profile in self.profiles:
            profile.disable()

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            try:
                stats.add(profile)
            except TypeError:  # a thread that profiled nothing
                continue
        return stats


def profile_tenants(tenants: Sequence[SeedTenant], sandbox: Sandbox, root: Path) -> Profiled:
    """Run 2K+1 tenants one after another in this process as a fleet worker thread would: one to warm
    the imports up, K for CPU per tenant, K under cProfile for where it goes."""
    from provision.fleet.config import QuarantineConfig, load_fleet
    from provision.fleet.tenant_run import TenantTask, run_tenant

    fleet = load_fleet(write_fleet(root, tenants, sandbox.url, name="profile", threads_per_worker=1,
                                   max_parallel=1, workers=1))
    tasks = [TenantTask(spec=spec, action="apply", tenant_dir=root / "run" / spec.key, fleet_dir=root / "run",
                        quarantine=QuarantineConfig()) for spec in fleet.tenants]
    k = (len(tasks) - 1) // 2
    run_tenant(tasks[0])
    before = sandbox.stats()
    cpu0 = time.process_time()
    for task in tasks[1:k + 1]:
        run_tenant(task)
    cpu = time.process_time() - cpu0
    ops = _delta(sandbox.stats(), before)["operations"]
    with _ThreadProfiles() as profiles:
        for task in tasks[k + 1:]:
            run_tenant(task)
    return Profiled(k, cpu / k, ops / k, profiles.stats())


@dataclass(frozen=True)
class Profiled:
    tenants: int
    cpu_s: float  # per tenant, unprofiled
    operations: float  # per tenant
    stats: pstats.Stats  # of `tenants` more tenants, under cProfile

    @property
    def profiled_cpu_s(self) -> float:
        raw: dict[Any, Any] = self.stats.stats  # type: ignore[attr-defined]
        return float(sum(v[2] for v in raw.values())) / self.tenants


def phase_table(stats: pstats.Stats, tenants: int) -> list[tuple[str, float]]:
    """(label, CPU ms per tenant) of each phase found in the profile."""
    table = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for label, suffix, name in PHASES:
        cumulative = sum(v[3] for (filename, _, func), v in raw.items() if filename.endswith(suffix) and func == name)
        if cumulative:
            table.append((label, 1000 * cumulative / tenants))
    return table


def top_functions(stats: pstats.Stats, tenants: int, n: int = 12) -> list[tuple[str, float]]:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    ranked = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    return [(f"{_short(filename)}:{line}({func})", 1000 * v[2] / tenants) for (filename, line, func), v in ranked]


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/provision/", "/lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# -- the whole bench ------------------------------------------------------------------------------
def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _converged(results: Sequence[dict[str, Any]], seeded: dict[str, SeedTenant]) -> tuple[int, list[str]]:
    """How many tenants did every write the seed expects (and nothing else); the others' ids."""
    good, bad = 0, []
    for r in results:
        t = seeded.get(r["tenant_id"])
        planned = {k: int(v) for k, v in (r.get("changes") or {}).items() if int(v)}
        done = {k: int(v) for k, v in (r.get("changes_done") or {}).items() if int(v)}
        want = {k: t.expected[k] for k in WRITE_KINDS if t is not None and t.expected[k]}
        if t is not None and r["status"] in ("ok", "rows_failed") and planned == done and sum(done.values()) == sum(want.values()):
            good += 1
        else:
            bad.append(f"{r.get('key')}: {r.get('status')} {r.get('message', '')}")
    return good, bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=None, help=f"fleet size (default {DEFAULT_TENANTS}; --quick {QUICK_TENANTS})")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TENANTS} tenants, baseline sample 10")
    parser.add_argument("--sample", type=int, default=None, help="baseline: tenants applied one by one (default 20; --quick 10; 0: skip)")
    parser.add_argument("--profile-tenants", type=int, default=5, help="tenants run under cProfile in this process (0: skip)")
    parser.add_argument("--workers", type=int, default=0, help="[executor] workers (0: the machine's cores)")
    parser.add_argument("--threads-per-worker", type=int, default=DEFAULT_THREADS_PER_WORKER)
    parser.add_argument("--max-parallel", type=int, default=DEFAULT_MAX_PARALLEL)
    parser.add_argument("--per-op-users", type=int, default=2000, help="users of the client-CPU-per-operation run")
    parser.add_argument("--stall", type=float, default=180.0,
                        help="seconds without a tenant finishing before the fleet is killed and resumed")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    args = parser.parse_args(argv)
    n = args.tenants or (QUICK_TENANTS if args.quick else DEFAULT_TENANTS)
    sample = args.sample if args.sample is not None else (10 if args.quick else 20)
    k = max(args.profile_tenants, 0)
    cores = _cores()
    profile = load_profile(PROFILE)
    tmp = Path(tempfile.mkdtemp(prefix="provision-bench-fleet-"))
    print(f"fleet bench: {n} tenants x {args.users} users, profile {PROFILE}, {cores} cores; load before {_load()}")
    print(f"  executor: workers {args.workers or cores} x threads {args.threads_per_worker}, "
          f"max_parallel_tenants {args.max_parallel}; temp dir {tmp}")
    try:
        with ExitStack() as stack:
            stack.enter_context(_cleanup_on_exit())
            t0 = time.perf_counter()
            # One seed for all: the fleet's tenants, then the loop's sample, then the profiled ones
            # (each set fresh: a converged tenant has nothing left to write).
            seeded = seed_fleet(tmp / "seed", tenants=n + sample + (2 * k + 1 if k else 0), users=args.users, seed=args.seed)
            fleet_tenants = seeded.tenants[:n]
            loop_tenants = seeded.tenants[n:n + sample]
            profile_set = seeded.tenants[n + sample:]
            print(f"  seeded {len(seeded.tenants)} tenants in {time.perf_counter() - t0:.1f} s")

            per_op_s, per_op_ops = cpu_per_operation(args.per_op_users)
            print(f"client CPU per operation (executor, {per_op_ops} ops, unlimited sandbox): {per_op_s * 1000:.3f} ms")

            t0 = time.perf_counter()
            sandbox = stack.enter_context(serve(seeded.snapshots))
            print(f"  sandbox serving {len(seeded.tenants)} tenants (one process), up in {time.perf_counter() - t0:.1f} s")

            loop = run_loop(loop_tenants, sandbox, tmp / "loop") if loop_tenants else None
            profiled = profile_tenants(profile_set, sandbox, tmp / "profile") if k else None

            fleet_file = write_fleet(tmp / "fleet", fleet_tenants, sandbox.url, name="bench",
                                     threads_per_worker=args.threads_per_worker, max_parallel=args.max_parallel,
                                     workers=args.workers)
            load_before_fleet = _load()
            run = run_fleet_command(fleet_file, sandbox, tmp / "fleet" / "fleet.out", tenants=n, stall_s=args.stall)
            report(run, seeded, fleet_tenants, loop, profiled, per_op_s, cores, profile.throttle.writes_per_second,
                   load_before_fleet)
        converged, _ = _converged(run.results, {t.tenant_id: t for t in fleet_tenants})
        ok = converged == n and run.stats.get("duplicate_writes", 1) == 0
        print("every tenant converged, no write twice" if ok else "NOT every tenant converged, or a write was sent twice")
        return 0 if ok else 1
    finally:
        print(f"load after {_load()}")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(run: FleetRun, seeded: FleetSeed, fleet_tenants: Sequence[SeedTenant], loop: Loop | None,
           profiled: Profiled | None, per_op_s: float, cores: int, writes_per_tenant_s: float,
           load_before: str) -> None:
    n = len(fleet_tenants)
    by_id = {t.tenant_id: t for t in fleet_tenants}
    converged, bad = _converged(run.results, by_id)
    stats = run.stats
    writes, ops = stats["writes_succeeded"], stats["operations"]
    want = expected_writes(fleet_tenants)
    per_min = n / run.wall_s * 60
    w_s = writes / run.wall_s
    phase_s, phase_writes = run.write_phase
    print(f"fleet apply (load before it {load_before}): exit {run.exit_code}, {n} tenants in {run.wall_s:.1f} s wall"
          f" -> {per_min:.0f} tenants/min")
    if run.stall is not None:
        st = run.stall
        print(f"  the fleet STALLED with {st.finished}/{n} tenants finished: killed after {st.waited_s:.0f} s without"
              f" progress; `fleet resume` then took {st.resume_s:.1f} s. Stuck tenants ({len(st.stuck)}):")
        for line in st.stuck[:20]:
            print(f"    {line}")
        print(f"  wall without the stall wait: {run.wall_s - st.waited_s:.1f} s"
              f" -> {n / (run.wall_s - st.waited_s) * 60:.0f} tenants/min")
    tl = run.timeline
    if {"ready", "first", "last", "done"} <= tl.keys():
        steady = (n - 1) / (tl["last"] - tl["first"]) * 60 if tl["last"] > tl["first"] else float("nan")
        print(f"  timeline: executor ready at {tl['ready']:.1f} s, first tenant done {tl['first']:.1f} s, last"
              f" {tl['last']:.1f} s, merged reports done {tl['done']:.1f} s, exit {run.wall_s:.1f} s;"
              f" {steady:.0f} tenants/min between first and last tenant")
    print(f"  tenants by status: {run.summary.get('tenants_by_status') or _count(r['status'] for r in run.results)};"
          f" converged {converged}/{n}" + (f"; not: {bad[:3]}" if bad else ""))
    print(f"  writes: {writes} succeeded, {stats['writes_applied']} applied (seed expects {want}; applied without"
          f" success: a 504 or reset after the work, read back), duplicate_writes {stats['duplicate_writes']},"
          f" {ops} operations, 429s {stats['throttled']} ({100 * stats['throttled'] / max(ops, 1):.2f}% of operations)")
    print(f"  writes/s: {w_s:.1f} over the whole command; {phase_writes / phase_s if phase_s else 0:.1f} over the"
          f" write phase ({phase_s:.0f} s, first to last write)")
    worker_cpu = run.client_cpu_s - run.fleet_process_cpu_s
    print(f"  CPU: client tree {run.client_cpu_s:.1f} s (fleet process {run.fleet_process_cpu_s:.1f} s, workers"
          f" {worker_cpu:.1f} s), sandbox {run.sandbox_cpu_s:.1f} s; machine busy"
          f" {(run.client_cpu_s + run.sandbox_cpu_s) / (run.wall_s * cores):.0%} of {cores} cores")
    print(f"  peak RSS of the client tree: {run.peak_rss / 2**20:.0f} MB")
    # The cap the issue names: each tenant's own budget, and the client's CPU per operation.
    admitted = n * writes_per_tenant_s
    cpu_cap = cores / per_op_s
    ceiling = min(admitted, cpu_cap)
    print(f"cap: admitted {n} x {writes_per_tenant_s:g} = {admitted:.0f} writes/s; CPU cap {cores} cores /"
          f" {per_op_s * 1000:.3f} ms = {cpu_cap:.0f} ops/s; ceiling {ceiling:.0f}/s")
    print(f"  ratio writes/s / ceiling: {w_s / ceiling:.4f} (whole command)")
    client_per_tenant = run.client_cpu_s / n
    ops_per_tenant = ops / n
    fixed = client_per_tenant - ops_per_tenant * per_op_s
    writes_per_tenant = writes / n
    cpu_bound_tenants_s = cores / (client_per_tenant + run.sandbox_cpu_s / n)
    print(f"  per tenant: {ops_per_tenant:.0f} operations ({writes_per_tenant:.1f} writes), client CPU"
          f" {client_per_tenant * 1000:.0f} ms = {ops_per_tenant * per_op_s * 1000:.0f} ms for its operations +"
          f" {fixed * 1000:.0f} ms fixed ({fixed / client_per_tenant:.0%}); sandbox {run.sandbox_cpu_s / n * 1000:.0f} ms")
    print(f"  so this machine's CPU (client + sandbox) allows {cpu_bound_tenants_s * 60:.0f} tenants/min ="
          f" {cpu_bound_tenants_s * writes_per_tenant:.1f} writes/s; the fleet reached"
          f" {per_min / (cpu_bound_tenants_s * 60):.2f} of that")
    if loop is not None:
        loop_per_tenant = loop.wall_s / loop.tenants
        loop_per_min = 60 / loop_per_tenant
        print(f"baseline: `provision apply JOB --yes` per tenant in a loop, {loop.tenants} tenants:"
              f" {loop_per_tenant:.2f} s each ({loop.cpu_s / loop.tenants:.2f} s CPU), exit codes"
              f" {_count(loop.exit_codes)}, {loop.writes} writes -> {loop_per_min:.1f} tenants/min;"
              f" {n} tenants would take {n * loop_per_tenant / 60:.1f} min")
        print(f"  fleet mode: {per_min:.0f} tenants/min vs {loop_per_min:.1f} sequentially:"
              f" {per_min / loop_per_min:.1f}x")
    if profiled is not None:
        k, total = profiled.tenants, profiled.profiled_cpu_s
        print(f"one tenant at a time in one thread (this process, {k} tenants after a warm-up one):"
              f" {profiled.cpu_s * 1000:.0f} ms CPU per tenant for {profiled.operations:.0f} operations;")
        print(f"  where it goes ({k} more tenants under cProfile, CPU per thread: {total * 1000:.0f} ms per tenant"
              f" profiled), share and ms scaled to the unprofiled figure:")
        for label, ms in phase_table(profiled.stats, k):
            share = ms / 1000 / total
            print(f"    {label:38} {share:6.1%} {share * profiled.cpu_s * 1000:7.1f} ms")
        print("  top functions by own CPU (share of the profiled total):")
        for name, ms in top_functions(profiled.stats, k):
            print(f"    {ms / 1000 / total:6.1%}  {name}")


def _count(values: Any) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


if __name__ == "__main__":
    sys.exit(main())
