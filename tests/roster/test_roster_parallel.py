"""Big rosters normalise in worker processes: the outcome must not depend on it."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.roster_writers import write_csv

from provision.roster.files import BATCH_ROWS
from provision.roster.number_pool import BatchNormaliser
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


SCRIPT = '''
import resource, sys
import pandas
import provision

print("script body ran", flush=True)
rows = {rows}
roster = pandas.DataFrame({{
    "UPN": [f"user{{i}}@contoso.com" for i in range(rows)],
    "Mobile": [f"+1 206 55{{i // 10_000}} {{i % 10_000:04d}}" for i in range(rows)],
}})
checked = provision.validate(roster, region="US")
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print("rows", len(checked), "worker cpu", children.ru_utime + children.ru_stime, flush=True)
'''


def test_a_script_without_a_main_guard_runs_once_while_workers_normalise(tmp_path: Path) -> None:
    # The README's API example, saved as a file and run: a worker process must not run the
    # script again (it would read the roster again, or apply the job again).
    script = tmp_path / "check.py"
    script.write_text(SCRIPT.format(rows=BATCH_ROWS + 10_000), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.count("script body ran") == 1
    rows, cpu = ran.stdout.split("rows ")[1].split(" worker cpu ")
    assert int(rows) == BATCH_ROWS + 10_000
    assert float(cpu) > 0.2  # the workers did normalise: 30,000 distinct numbers are ~0.6 s of CPU


def test_pools_started_in_several_threads_at_once_leave_main_as_it_was() -> None:
    # A fleet reads its tenants' rosters in threads: each pool's start hides __main__ and
    # must put back the real one, not another thread's stand-in.
    main = sys.modules["__main__"]

    def start_and_stop(_: int) -> int:
        with BatchNormaliser(1) as normaliser:
            normaliser.warm_up()
            return normaliser.workers

    with ThreadPoolExecutor(4) as threads:
        started = list(threads.map(start_and_stop, range(4)))

    assert started == [1, 1, 1, 1]
    assert sys.modules["__main__"] is main


START_METHODS = '''
import sys, threading
from provision.roster.number_pool import BatchNormaliser

def started_by() -> str:
    with BatchNormaliser(1) as normaliser:
        normaliser.warm_up()
        return normaliser._pool._mp_context.get_start_method()

alone = started_by()
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
with_a_thread = started_by()
stop.set()
other.join()
print(alone, with_a_thread)
'''


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked only on Linux")
def test_workers_are_forked_only_from_a_process_with_one_thread(tmp_path: Path) -> None:
    # A fork copies only the calling thread: a lock another thread held would stay held in the worker.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    ran = subprocess.run([sys.executable, "-c", START_METHODS], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.split() == ["fork", "spawn"]


ONE_BATCH = '''
import resource, sys
from provision.roster.reader import read_roster

pooled = read_roster(sys.argv[1])
children = resource.getrusage(resource.RUSAGE_CHILDREN)
alone = read_roster(sys.argv[1], workers=0)
same = pooled.rows == alone.rows and pooled.issues == alone.issues and pooled.users == alone.users
print(len(pooled.rows), same, children.ru_utime + children.ru_stime > 0)
'''


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked only on Linux")
def test_a_one_batch_roster_with_many_numbers_is_normalised_by_forked_workers(tmp_path: Path) -> None:
    rows = [["UPN", "Mobile", "Office", "Country"]]
    for i in range(8_000):
        rows.append([f"user{i}@contoso.com", f"+1 206 55{i % 10} {i:04d}", f"020 7946 {i:04d}" if i % 2 else "", "GB" if i % 3 else "US"])
    path = write_csv(tmp_path / "mid.csv", rows)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    ran = subprocess.run([sys.executable, "-c", ONE_BATCH, str(path)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.split() == ["8000", "True", "True"]


def test_cells_worked_through_in_text_order_keep_their_own_answers() -> None:
    # The pool works a piece's cells in the order of their texts; each answer must still
    # land on its own cell, and the notes on theirs.
    from provision.model import PhoneType
    from provision.roster.number_pool import normalise_cells
    from provision.roster.numbers import normalise_distinct

    keys = [
        (TYPED[i % len(TYPED)].format(i * 37 % 10_000), REGIONS[i % len(REGIONS)] or None, PhoneType.MOBILE, False)
        for i in range(400, 0, -1)
    ]
    answers = normalise_cells(keys)
    assert len(answers.graphs) == len(keys)
    for at, (raw, region, phone_type, number) in enumerate(keys):
        one = normalise_distinct(raw, region, phone_type, from_number=number)
        assert answers.graphs[at] == one.graph
        note = answers.notes.get(at)
        assert note == ((one.problem, one.reason, one.warning) if one.problem or one.warning else None)
    assert answers.notes and any(answers.graphs)


USABLE = [f"+1 206 555 {k:04d}" for k in range(40)]
UNUSABLE = ["n/a", "call reception", "123", "+999 12345"] * 5
MIXED = ["n/a", *(TYPED[i % len(TYPED)].format(i) for i in range(300)), "call reception"]


@pytest.mark.parametrize(
    "raws",
    [MIXED, [*MIXED[:150], "+1 206 555\x1e0100", *MIXED[151:]], USABLE, UNUSABLE, [*USABLE[:5], *UNUSABLE[:6], *USABLE[5:9], "n/a"]],
    ids=["texts joined", "a cell with the separator", "all usable", "none usable", "unusable in a row"],
)
def test_answers_cross_to_workers_and_back_in_their_places(raws: list[str]) -> None:
    # Texts cross joined on one character, Graph forms come back joined without the
    # unusable cells' None: every answer must come back to its own cell, first and last included.
    from provision.model import PhoneType
    from provision.roster.number_pool import BatchNormaliser, normalise_cells

    keys = [(raw, REGIONS[k % len(REGIONS)] or None, PhoneType.MOBILE, False) for k, raw in enumerate(raws)]
    with BatchNormaliser(1) as pool:
        pooled = pool.submit(keys)()
    alone = normalise_cells(keys)
    assert pooled.graphs == alone.graphs and pooled.notes == alone.notes
    assert len(pooled.graphs) == len(raws)
    if len(raws) == len(MIXED):
        assert pooled.graphs[0] is None and pooled.graphs[-1] is None and (pooled.graphs[150] is None) == ("\x1e" in raws[150])
    else:  # only the +1 206 555 numbers are usable
        assert [g is not None for g in pooled.graphs] == [raw.startswith("+1 206 555") for raw in raws]


@pytest.mark.skipif(sys.platform != "linux", reason="pipe sizes are set on Linux only")
def test_a_pieces_answers_fit_in_the_pools_pipes() -> None:
    # A worker whose answers don't fit in the pipe waits for the caller to read them: the
    # pool's pipes are widened where the system allows it, so that a worker never waits.
    import fcntl

    from provision.roster.number_pool import BatchNormaliser

    allowed = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    with BatchNormaliser(1) as normaliser:
        normaliser.warm_up()
        pool = normaliser._pool
        assert pool is not None
        sizes = {fcntl.fcntl(q._reader.fileno(), fcntl.F_GETPIPE_SZ) for q in (pool._call_queue, pool._result_queue)}  # type: ignore[attr-defined]
    assert sizes == {min(allowed, 1 << 20)} or allowed < 1 << 20
