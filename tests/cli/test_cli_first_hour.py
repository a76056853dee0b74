"""The first hour, as a new user meets it: `--version`, `-h`, help texts that say what they
mean (literal brackets, no `<bool>` on flags), and the tour's output on an 80-column
terminal without a word cut in two.

The terminal is rich's own notion of one (``TTY_COMPATIBLE=1``, ``COLUMNS=80``, no live
animation): the same decisions the commands make on a real 80-column terminal.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from cli_support import JOBS, SAMPLE, cli, shipped_job, tenant_snapshot
from rich.cells import cell_len

import provision

COMMANDS = (
    ["validate"], ["plan"], ["apply"], ["resume"], ["report"], ["export"], ["rollback"],
    ["sandbox"], ["sandbox", "serve"], ["sandbox", "token"], ["sandbox", "snapshot"],
)
TERMINAL_80 = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "0", "COLUMNS": "80", "LINES": "50", "NO_COLOR": "1"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_version_prints_the_package_version() -> None:
    ran = cli(["--version"])
    assert ran.exit_code == 0
    assert ran.stdout.strip() == f"provision {version('provision')}"
    assert version("provision") == provision.__version__


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "provision")
def test_dash_h_is_help_and_flags_show_no_type(command: list[str]) -> None:
    short, long = cli([*command, "-h"]), cli([*command, "--help"])
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout and "Usage: provision" in short.stdout
    assert "<bool>" not in short.stdout  # a flag takes no value: no type to show


def test_help_keeps_literal_brackets() -> None:
    text = " ".join(cli(["validate", "-h"]).stdout.split())
    assert "its [roster] table is used" in text
    assert "wins over the job's [roster.columns]" in text
    assert "[ROSTER]" in text  # the optional argument in the usage line


def test_top_level_help_lists_commands_whole_and_the_exit_codes() -> None:
    lines = cli(["-h"], env={"COLUMNS": "80"}).stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), [line for line in lines if cell_len(line) > 80]
    commands = [line for line in lines if re.match(r"^  (validate|plan|apply|resume|report|export|rollback|sandbox) ", line)]
    assert len(commands) == 8 and not any(line.endswith("...") for line in commands)  # no cut-off summaries


def _screen(text: str) -> list[str]:
    return [_ANSI.sub("", line).rstrip() for line in text.replace("\r", "").splitlines()]


def _cut_words(lines: list[str], width: int = 80) -> list[str]:
    """Lines wider than the terminal (it would cut them anywhere), and words rich folded:
    it folds only a word too long for a line of its own, so a full-width line whose last
    word, joined to the next line's first, is longer than the width was cut mid-word."""
    bad = [f"too wide: {line!r}" for line in lines if cell_len(line) > width]
    for line, after in zip(lines, lines[1:]):
        if cell_len(line) == width and line[-1:].isalnum() and after[:1].isalnum():
            if cell_len(line.split()[-1]) + cell_len(after.split()[0]) > width:
                bad.append(f"word cut: {line!r} / {after!r}")
    return bad


def _tour(tmp_path: Path, url: str) -> dict[str, Any]:
    # Relative paths, as the tour types them from the working directory (the test's own).
    onboarding = shipped_job(tmp_path, "onboarding", url).relative_to(tmp_path)
    nightly = shipped_job(tmp_path, "nightly_reconcile", url).relative_to(tmp_path)
    plan_file = Path("plan.json")
    runs = {
        "validate": cli(["validate", SAMPLE / "new_hires.xlsx", "--region", "US", "--out", "checked.csv"], env=TERMINAL_80),
        "validate --job": cli(["validate", "--job", JOBS / "onboarding.toml"], env=TERMINAL_80),
        "plan": cli(["plan", onboarding, "--out", plan_file, "--log-format", "text"], env=TERMINAL_80),
        "apply --plan (another job's)": cli(["apply", nightly, "--plan", plan_file, "--yes", "--log-format", "text"], env=TERMINAL_80),
        "apply --plan": cli(["apply", onboarding, "--plan", plan_file, "--yes", "--log-format", "text"], env=TERMINAL_80),
        "plan --check": cli(["plan", onboarding, "--check", "--log-format", "text"], env=TERMINAL_80),
    }
    return runs


def test_tour_output_fits_80_columns_without_cutting_words(tmp_path: Path, contoso: Any) -> None:
    runs = _tour(tmp_path, contoso.v1)
    assert [runs[k].exit_code for k in runs] == [1, 1, 1, 3, 1, 0]
    problems = {name: _cut_words(_screen(ran.stdout) + _screen(ran.stderr)) for name, ran in runs.items()}
    assert {name: p for name, p in problems.items() if p} == {}
    # The words themselves are all there: the wrapped summary still names every row error.
    plan_text = " ".join(_screen(runs["plan"].stdout))
    for code in ("duplicate_user_conflict", "invalid_user", "too_short", "extension_not_allowed"):
        assert code in plan_text


def test_apply_with_another_jobs_plan_says_so(tmp_path: Path, contoso: Any) -> None:
    onboarding = shipped_job(tmp_path, "onboarding", contoso.v1)
    nightly = shipped_job(tmp_path, "nightly_reconcile", contoso.v1)
    plan_file = tmp_path / "plan.json"
    assert cli(["plan", onboarding, "--out", plan_file]).exit_code == 1  # sample rows broken on purpose
    before = tenant_snapshot(contoso)
    ran = cli(["apply", nightly, "--plan", plan_file, "--yes"])
    assert ran.exit_code == 3  # like a reviewed plan that no longer matches
    text = " ".join(ran.stderr.split())
    assert "another job's plan" in text and "'onboarding'" in text and "'nightly_reconcile'" in text
    assert tenant_snapshot(contoso) == before and contoso.stats()["writes_succeeded"] == 0  # nothing written
