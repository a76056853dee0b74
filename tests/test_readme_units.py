"""The README's systemd units pass `systemd-analyze verify` (skipped where systemd isn't
installed), and no setting line carries a trailing comment: systemd reads `#` as a comment
only at the start of a line, so `SuccessExitStatus=1  # ...` silently becomes part of the value.

The units are the README's ``ini`` blocks, split at their ``# /etc/systemd/system/NAME``
lines. `verify` also checks that each ExecStart= program exists: those point at stand-in
executables here (the job's venv and the pager aren't installed on the test machine).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_UNIT_HEADER = re.compile(r"^# /etc/systemd/system/(\S+\.(?:service|timer))$")
_EXEC = re.compile(r"^(Exec\w+=[-@:+!]*)(/\S+)(.*)$")


def readme_units() -> dict[str, str]:
    units: dict[str, list[str]] = {}
    for block in re.findall(r"^```ini\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M):
        name = None
        for line in block.splitlines():
            header = _UNIT_HEADER.match(line)
            if header:
                name = header.group(1)
                units[name] = []
            elif name is not None:
                units[name].append(line)
    return {name: "\n".join(lines).strip() + "\n" for name, lines in units.items()}


def test_the_readme_shows_a_service_its_timer_and_how_to_enable_it() -> None:
    units = readme_units()
    assert {"provision-nightly.service", "provision-nightly.timer"} <= set(units)
    service = units["provision-nightly.service"]
    assert re.search(r"^User=\S+$", service, re.M), "the job should not run as root"
    assert re.search(r"^OnFailure=\S+$", service, re.M)
    assert re.search(r"^SuccessExitStatus=1$", service, re.M)  # exit 1 (some rows failed) is not an outage
    assert "systemctl enable --now provision-nightly.timer" in README.read_text(encoding="utf-8")


def test_no_setting_line_has_a_trailing_comment() -> None:
    for name, text in readme_units().items():
        for line in text.splitlines():
            if "=" in line and not line.lstrip().startswith(("#", ";")):
                assert not re.search(r"\s[#;]", line.split("=", 1)[1]), f"{name}: {line}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    units = readme_units()
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    for name, text in units.items():
        lines = []
        for line in text.splitlines():
            exec_line = _EXEC.match(line)
            if exec_line:
                program = stand_ins / Path(exec_line.group(2)).name
                program.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
                program.chmod(0o755)
                line = f"{exec_line.group(1)}{program}{exec_line.group(3)}"
            lines.append(line)
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    ran = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / name) for name in units)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    # verify exits 0 on many problems (an unknown key, a value it can't parse): it prints them.
    assert ran.returncode == 0 and ran.stdout.strip() == "" and ran.stderr.strip() == "", ran.stdout + ran.stderr
