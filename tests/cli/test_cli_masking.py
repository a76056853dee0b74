"""No phone number of the sample tenant or the shipped rosters appears unmasked in any
console output (stdout, stderr) or run.log line, in text and in JSON-lines mode, across
every command and every failure path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import (
    CONTOSO,
    clean_job,
    cli,
    leaked_numbers,
    personal_numbers,
    shipped_job,
)

from provision.sandbox.auth import make_token


def test_the_leak_detector_sees_numbers_in_any_format_and_not_masked_ones() -> None:
    assert len(personal_numbers()) > 50
    for text in ("+1 2065550161", "(206) 555-0161", "tel 206.555.0161", "+234 803 123 4567", "+49 30 901820"):
        assert leaked_numbers(text), text
    for text in ("+1 *******161", "+234 *******567", "+49 *****820", "row 2065, 5550161 ops"):
        assert not leaked_numbers(text), text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_unmasked_number_in_any_output_or_run_log(fmt: str, contoso: Any, tmp_path: Path) -> None:
    outputs: list[str] = []
    run_dirs: list[Path] = []

    def run(args: list[Any], expect: int, env: dict[str, str] | None = None, log_format: bool = True) -> None:
        ran = cli([*args, *(["--log-format", fmt] if log_format else [])], env=env)
        assert ran.exit_code == expect, ran.output
        outputs.append(ran.output)

    onboarding = shipped_job(tmp_path, "onboarding", contoso.v1)
    run(["apply", onboarding, "--run-dir", tmp_path / "refused"], 2)  # no --yes, no TTY
    for name in ("onboarding", "legacy_mfa_migration", "nightly_reconcile"):
        job = shipped_job(tmp_path, name, contoso.v1)
        run(["validate", "--job", job], 1, log_format=False)
        run(["plan", job, "--out", tmp_path / f"{name}-plan.json"], 1)
        run_dir = tmp_path / f"{name}-run"
        run(["apply", job, "--yes", "--run-dir", run_dir], 1)
        run(["report", run_dir], 1)
        run(["resume", run_dir], 1)
        run_dirs.append(run_dir)

    run(["apply", onboarding, "--yes", "--run-dir", tmp_path / "second"], 1)  # 0 changes, warnings
    run_dirs.append(tmp_path / "second")
    wrong_tenant = {"PROVISION_TOKEN": make_token(tid="00000000-0000-4000-8000-00000000beef")}
    run(["apply", onboarding, "--yes", "--run-dir", tmp_path / "denied"], 4, env=wrong_tenant)

    contoso.configure(snapshot=json.loads(CONTOSO.read_text(encoding="utf-8")))  # back to the sample tenant
    nightly = tmp_path / "nightly_reconcile.toml"
    nightly.write_text(nightly.read_text(encoding="utf-8").replace("max_delete_percent = 20", "max_delete_percent = 1"), encoding="utf-8")
    run(["apply", nightly, "--yes", "--run-dir", tmp_path / "unsafe"], 3)
    bad_key = clean_job(tmp_path, contoso.v1, extra='[roster.colums]\nmobile = "+1 206 555 0161"\n')
    run(["plan", bad_key], 2)

    console = "\n".join(outputs)
    logs = "\n".join((d / "run.log").read_text(encoding="utf-8") for d in run_dirs)
    assert "*******" in console + logs  # numbers were talked about, masked
    assert leaked_numbers(console) == []
    assert leaked_numbers(logs) == []

