"""A run journal whose writer was SIGKILLed at a chosen point of ``Journal.create`` (or just after).

- ``kill_journal_create(db, point)``: runs ``Journal.create`` of three changes in a child
  process that is SIGKILLed at ``point``, one of ``STATEMENT_POINTS`` (the child kills itself
  as that SQL statement starts, through sqlite3's trace callback), ``SYSCALL_POINTS`` (strace
  kills it as it enters that system call on that file: the only way to land inside one SQL
  statement, such as the WAL switch) or ``AFTER_CREATE`` (create returned). Asserts the
  child died of the kill. No timing is involved: every point is reached deterministically.
- ``can_strace()``: whether ``SYSCALL_POINTS`` can run here (strace installed, ptrace allowed).
- ``killed_in_the_wal_switch(db)``: what a kill inside ``PRAGMA journal_mode = WAL`` leaves,
  built without strace: the database header page written, its rollback journal still there
  (hot). Byte for byte what the ``"WAL switch: header page written, not synced"`` kill
  leaves, but for the rollback journal's random nonce.
- ``CREATED_POINTS``: the points after which the journal's creation had committed.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

from support.cli import child_env

CHANGES = 3

# The child: Journal.create of CHANGES changes, then close(). A statement point is matched
# against the start of each statement a connection runs (whitespace folded).
_CHILD = """
import os, signal, sqlite3, sys
from provision.executor.journal import Journal, JournalChange

db, point = sys.argv[1], sys.argv[2]
connect = sqlite3.connect

def stopping_connect(*args, **kwargs):
    conn = connect(*args, **kwargs)
    def trace(statement):
        if " ".join(statement.split()).startswith(point):
            os.kill(os.getpid(), signal.SIGKILL)
    conn.set_trace_callback(trace)
    return conn

sqlite3.connect = stopping_connect
changes = [
    JournalChange(id=f"c{i}", user=f"user{i:04d}@contoso.example", target=f"user{i:04d}@contoso.example",
                  kind="create", phone_type="mobile", before=None, after=f"+1 425555{i:04d}",
                  depends_on=None, rows=(i + 2,))
    for i in range(int(sys.argv[3]))
]
journal = Journal.create(db, run_meta={"job": "nightly"}, changes=changes)
if point == "after create":
    os.kill(os.getpid(), signal.SIGKILL)
journal.close()
"""

AFTER_CREATE = "after create"

# Killed as the statement starts, so before it ran.
STATEMENT_POINTS = {
    "before the WAL switch": "PRAGMA journal_mode = WAL",
    "before BEGIN": "BEGIN IMMEDIATE",
    "after the first CREATE": "CREATE TABLE changes",
    "after every CREATE": "PRAGMA application_id",
    "before the rows": "INSERT INTO changes",
    "before COMMIT": "COMMIT",
}

# (file, system call, which of its calls on that file): strace kills on entry to it.
SYSCALL_POINTS = {
    # The WAL switch writes the database's header page in a rollback-journal transaction
    # of its own, before create's transaction: its journal first, then the page, then a
    # sync (the slow step), then the journal is deleted.
    "WAL switch: rollback journal written, header page not": ("journal.sqlite", "pwrite64", 1),
    "WAL switch: header page written, not synced": ("journal.sqlite", "fdatasync", 1),
    "WAL switch: header page synced, rollback journal not deleted": ("journal.sqlite-journal", "unlink", 1),
    "COMMIT: the WAL half written": ("journal.sqlite-wal", "pwrite64", 3),
    "close: checkpoint half copied": ("journal.sqlite", "pwrite64", 3),
}

CREATED_POINTS = frozenset({AFTER_CREATE, "close: checkpoint half copied"})


@functools.cache
def can_strace() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def kill_journal_create(db: Path, point: str) -> None:
    """Run ``Journal.create`` at ``db`` in a child SIGKILLed at ``point``."""
    command = [sys.executable, "-c", _CHILD, str(db), STATEMENT_POINTS.get(point, point), str(CHANGES)]
    if point in SYSCALL_POINTS:
        name, call, nth = SYSCALL_POINTS[point]
        command = [
            "strace", "-f", "-qq", "-o", os.devnull, "-P", str(db.with_name(name)), "-e", f"trace={call}",
            "-e", f"inject={call}:signal=KILL:when={nth}", *command[:-2], "none", str(CHANGES),
        ]
    elif point not in STATEMENT_POINTS and point != AFTER_CREATE:
        raise ValueError(f"unknown kill point {point!r}")
    ran = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=60)
    assert ran.returncode == -signal.SIGKILL, f"not killed at {point!r} ({ran.returncode}): {ran.stderr[-2000:]}"


# The rollback journal's header (https://www.sqlite.org/fileformat.html#the_rollback_journal):
# magic, page records (none: the database was empty), nonce, pages before the transaction
# (none), sector size, page size; padded to one sector.
_JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")


def killed_in_the_wal_switch(db: Path) -> None:
    """Leave at ``db`` what a kill inside ``Journal.create``'s ``PRAGMA journal_mode = WAL`` does."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")  # the header page, as the switch writes it
    conn.close()
    header = struct.pack(">8sIIIII", _JOURNAL_MAGIC, 0, 0x203B9DA4, 0, 512, 4096)
    Path(f"{db}-journal").write_bytes(header.ljust(512, b"\0"))
    os.chmod(db, 0o600)
