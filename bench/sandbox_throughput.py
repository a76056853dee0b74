"""How many Graph operations per second the sandbox serves (unlimited profile).

The server runs in its own process (`provision sandbox serve`, uvicorn on loopback),
loaded with a generated tenant; this process is the client: a minimal asyncio HTTP/1.1
client over a few keep-alive connections (lean, so the client's own CPU cost doesn't
hide the server's). It reports ops/s and the server process's CPU time per operation.
Two figures, measured in the same run:

- unbatched: GET /users/{id}/authentication/phoneMethods, one operation per request;
- batched:   POST /$batch with 20 such GETs, 20 operations per request.

Run: `python -m bench.sandbox_throughput [--seconds 5] [--concurrency 8] [--users 2000]`.
Targets (issue 2): >= 1,000 unbatched and >= 5,000 batched operations/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from provision.sandbox.auth import make_token

TENANT_ID = "00000000-0000-0000-0000-0000000000aa"
UNBATCHED_TARGET = 1_000
BATCHED_TARGET = 5_000


def write_snapshot(path: Path, users: int) -> list[str]:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(users)]
    snapshot = {
        "format": "provision-sandbox-tenant",
        "version": 1,
        "tenant_id": TENANT_ID,
        "users": [
            {
                "id": user_id,
                "upn": f"user{i}@contoso.com",
                "displayName": f"User {i}",
                "accountEnabled": True,
                "deleted": False,
                "default_method": None,
                "phones": [
                    {"phoneType": "mobile", "phoneNumber": f"+1 206{i:07d}", "sms": "none"},
                    {"phoneType": "office", "phoneNumber": f"+1 425{i:07d}x1", "sms": "none"},
                ],
            }
            for i, user_id in enumerate(ids)
        ],
    }
    path.write_text(json.dumps(snapshot))
    return ids


def start_server(snapshot: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "provision", "sandbox", "serve", "--port", "0", "--snapshot", str(snapshot)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


class Connection:
    """A minimal HTTP/1.1 keep-alive client connection: the load generator must cost far
    less CPU than the server it measures (httpx costs about as much as the sandbox)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, token: str) -> None:
        self.reader, self.writer = reader, writer
        self.prefix = f"Host: {host}\r\nAuthorization: Bearer {token}\r\nConnection: keep-alive\r\n"

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\n{self.prefix}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(status_line.split(b" ", 2)[1]), await self.reader.readexactly(length)


async def run_load(base: str, ids: list[str], seconds: float, concurrency: int, batch: int) -> tuple[int, int]:
    """(operations, failures) completed in ``seconds`` over ``concurrency`` keep-alive connections."""
    url = urlsplit(base)
    token = make_token(tid=TENANT_ID)
    done = failures = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done, failures
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        conn = Connection(reader, writer, url.netloc, token)
        i = offset
        while time.perf_counter() < deadline:
            if batch == 1:
                status, _ = await conn.request("GET", f"{url.path}/users/{ids[i % len(ids)]}/authentication/phoneMethods")
                done += 1
                failures += status != 200
            else:
                requests = [
                    {"id": str(k), "method": "GET", "url": f"/users/{ids[(i + k) % len(ids)]}/authentication/phoneMethods"}
                    for k in range(batch)
                ]
                status, body = await conn.request("POST", f"{url.path}/$batch", json.dumps({"requests": requests}).encode())
                items = json.loads(body)["responses"]
                done += len(items)
                failures += (status != 200) + sum(item["status"] != 200 for item in items)
            i += concurrency * batch
        writer.close()

    await asyncio.gather(*(worker(n * batch) for n in range(concurrency)))
    return done, failures


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(process: subprocess.Popen[str], base: str, ids: list[str], seconds: float, concurrency: int, batch: int) -> tuple[float, float, int]:
    """(ops/s, server CPU ms per op, failures)."""
    cpu_before = cpu_seconds(process.pid)
    ops, failures = asyncio.run(run_load(base, ids, seconds, concurrency, batch))
    cpu = cpu_seconds(process.pid) - cpu_before
    return ops / seconds, 1000 * cpu / max(ops, 1), failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ids = write_snapshot(Path(tmp) / "tenant.json", args.users)
        process, base = start_server(Path(tmp) / "tenant.json")
        try:
            asyncio.run(run_load(base, ids, 0.5, args.concurrency, 1))  # warm up
            u_rate, u_cpu, bad_u = measure(process, base, ids, args.seconds, args.concurrency, 1)
            b_rate, b_cpu, bad_b = measure(process, base, ids, args.seconds, args.concurrency, 20)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)

    print(f"sandbox throughput, unlimited profile, {os.cpu_count()} CPUs, {args.concurrency} connections, {args.seconds:g} s each")
    print("  (server CPU per op: what one server core could sustain, whatever the client and other load)")
    for label, rate, cpu, target, bad in (
        ("unbatched GET phoneMethods", u_rate, u_cpu, UNBATCHED_TARGET, bad_u),
        ("$batch of 20 GETs         ", b_rate, b_cpu, BATCHED_TARGET, bad_b),
    ):
        print(
            f"  {label}: {rate:8.0f} ops/s ({rate / target:.2f}x target {target:,}); "
            f"server {cpu:.3f} CPU-ms/op = {1000 / cpu if cpu else float('inf'):,.0f} ops/s per core; failures {bad}"
        )
    print(f"  batched / unbatched: {b_rate / u_rate:.2f}x ops/s, {u_cpu / b_cpu if b_cpu else float('inf'):.2f}x less server CPU per op")


if __name__ == "__main__":
    main()
