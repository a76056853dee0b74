"""Fixtures for the CLI tests (helpers live in cli_support.py).

Every test runs in its own tmp dir (``chdir`` autouse) without PROVISION_TOKEN, so the
embedded sandbox's ``.provision/`` and the default ``reports/`` never leak between tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from cli_support import CONTOSO


@pytest.fixture(autouse=True)
def _own_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISION_TOKEN", raising=False)
    monkeypatch.delenv("PROVISION_TOKEN_FILE", raising=False)
    yield


@pytest.fixture
def contoso(sandbox: Any) -> Any:
    """The shared loopback sandbox holding the sample tenant the shipped jobs start from."""
    return sandbox.configure(snapshot=json.loads(CONTOSO.read_text(encoding="utf-8")))
