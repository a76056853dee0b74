"""report.html renders in a real browser: headless Chromium takes a screenshot and dumps the
DOM; the page's script must have run (marker) and the page must log nothing to the console
(a blocked network fetch would show up there as a Content-Security-Policy violation).

Needs /usr/bin/chromium (``bash .ci/chromium.sh`` installs it). Skipped without it, except
under CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from report_samples import sample_rows, summary_for

from provision.report import write_reports

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2000


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing under CI: run `bash .ci/chromium.sh` first")
        pytest.skip(f"{CHROMIUM} not installed (run `bash .ci/chromium.sh` as root to install it)")
    return CHROMIUM


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = sample_rows()
    run_dir = tmp_path_factory.mktemp("run")
    return write_reports(run_dir, rows, summary_for(rows, run_dir=str(run_dir)))["html"]


def _run(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


def _page_console_lines(stderr: str, page: Path) -> list[str]:
    # Chromium logs every console message of a page as ...:CONSOLE...] "text", source: <url>
    return [line for line in stderr.splitlines()
            if ("CONSOLE" in line and page.name in line) or "Uncaught" in line]


def _png(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_report_renders_in_headless_chromium(chromium: Path, report: Path, tmp_path: Path) -> None:
    url = report.resolve().as_uri()
    shot = tmp_path / "report.png"
    done = _run(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000, "screenshot missing or nearly empty"
    width, height, pixels = _png(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    # A blank page compresses to a handful of distinct byte values; a rendered report has
    # text, tables and charts in many colours.
    assert len(set(pixels[:: 7])) > 100, "screenshot looks like a single colour"
    assert _page_console_lines(done.stderr, report) == []

    dom = _run(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="yes"' in dom.stdout, "the page's script did not run"
    assert "Phone provisioning report" in dom.stdout
    assert _page_console_lines(dom.stderr, report) == []
