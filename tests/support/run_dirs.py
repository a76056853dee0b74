"""A minimal job (a one-row roster, a sandbox address nothing listens on) for run-directory tests."""

from __future__ import annotations

from pathlib import Path

from provision.run.jobs import Job, load_job

NIGHTLY_JOB_TEXT = """name = "nightly"
[roster]
path = "roster.csv"
[output]
directory = "reports"
[target]
url = "http://127.0.0.1:9/v1.0"
"""


def nightly_job(tmp_path: Path) -> Job:
    """``nightly.toml`` and its roster written in ``tmp_path``, loaded."""
    (tmp_path / "roster.csv").write_text("user,mobile\nuser0001@contoso.example,+1 4255550101\n", encoding="utf-8")
    (tmp_path / "nightly.toml").write_text(NIGHTLY_JOB_TEXT, encoding="utf-8")
    return load_job(tmp_path / "nightly.toml")
