"""report.html explains every reason the demo produces with its own card: what happened and
what to fix (in the sheet, for the roster's own problems), never the generic "Other
problem" card.

The demo is `python3 bootstrap.py demo`'s run: jobs/onboarding.toml applied to the embedded
sandbox seeded from the sample tenant. The page is checked twice: as headless Chromium
renders it (skipped without /usr/bin/chromium, except under CI, like
test_report_chromium.py), and as written, read with the standard library's HTML parser.
"""

from __future__ import annotations

import csv
import os
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.cli import REPO

import provision

CHROMIUM = Path("/usr/bin/chromium")
GENERIC_TITLES = {"Other problem", "No reason recorded"}


@dataclass
class Card:
    title: str = ""
    codes: list[str] = field(default_factory=list)
    text: str = ""


class _Cards(HTMLParser):
    """The reason cards (``div.panel.reason``): each one's title, code and text."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[Card] = []
        self._depth = 0  # div nesting inside the current card; 0: not in a card
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div" and self._depth == 0 and {"panel", "reason"} <= set(classes):
            self.cards.append(Card())
            self._depth = 1
            return
        if self._depth:
            if tag == "div":
                self._depth += 1
            self._tag = tag

    def handle_endtag(self, tag: str) -> None:
        if self._depth and tag == "div":
            self._depth -= 1
        self._tag = None

    def handle_data(self, data: str) -> None:
        if not self._depth:
            return
        card = self.cards[-1]
        card.text += data
        if self._tag == "h3":
            card.title += data
        elif self._tag == "code":
            card.codes.append(data.strip())


def cards_in(html: str) -> list[Card]:
    parser = _Cards()
    parser.feed(html)
    return parser.cards


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's run directory: the onboarding job on the embedded sandbox (sample tenant)."""
    work = tmp_path_factory.mktemp("demo")
    text = (REPO / "jobs" / "onboarding.toml").read_text(encoding="utf-8")
    text = text.replace('"../sample_data/', f'"{(REPO / "sample_data").as_posix()}/').replace('"../reports"', '"reports"')
    job = work / "onboarding.toml"
    job.write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)  # the embedded sandbox keeps its state under the working directory
        result = provision.apply(job)
    assert result.exit_code == 1  # sample rows broken on purpose
    return Path(result.run_dir) if Path(result.run_dir).is_absolute() else work / result.run_dir


def demo_codes(run_dir: Path) -> Counter[str]:
    with (run_dir / "results.csv").open(encoding="utf-8-sig", newline="") as f:
        return Counter(row["error_code"] for row in csv.DictReader(f) if row["error_code"])


def assert_one_card_per_code(html: str, codes: Counter[str]) -> None:
    cards = cards_in(html)
    by_code = {code: [c for c in cards if code in c.codes] for code in codes}
    assert {code: len(found) for code, found in by_code.items()} == {code: 1 for code in codes}
    titles = [found[0].title.strip() for found in by_code.values()]
    assert not set(titles) & GENERIC_TITLES, titles
    assert len(set(titles)) == len(titles), f"two codes share one explanation: {titles}"
    for code, (card,) in by_code.items():
        assert "What it means" in card.text and "What to do" in card.text, code
        assert f"{codes[code]}" in card.text  # the card counts its rows


def test_the_demo_has_roster_and_graph_reasons(demo_run: Path) -> None:
    codes = demo_codes(demo_run)
    # The sample roster's broken rows (reader) and the tenant's answers (planner, Graph).
    assert {"too_short", "extension_not_allowed", "invalid_user", "duplicate_user_conflict"} <= set(codes)
    assert {"user_not_found", "phoneNumberNotUnique"} <= set(codes)


def test_every_demo_reason_has_its_own_card_in_the_written_page(demo_run: Path) -> None:
    html = (demo_run / "report.html").read_text(encoding="utf-8")
    assert_one_card_per_code(html, demo_codes(demo_run))


def test_every_demo_reason_has_its_own_card_as_chromium_renders_it(demo_run: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing under CI: run `bash .ci/chromium.sh` first")
        pytest.skip(f"{CHROMIUM} not installed (run `bash .ci/chromium.sh` as root to install it)")
    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         (demo_run / "report.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="yes"' in dom.stdout, "the page's script did not run"
    assert_one_card_per_code(dom.stdout, demo_codes(demo_run))
