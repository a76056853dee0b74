"""A minimal job process for the kill -9 test: plan an onboarding and apply it, or resume.

    python tests/executor/executor_driver.py apply  ROOT_URL RUN_DIR USERS
    python tests/executor/executor_driver.py resume ROOT_URL RUN_DIR

``apply`` reads the users' current phones from the sandbox over HTTP (the real reader),
plans the onboarding of ``executor_scenario.onboarding_roster(USERS)``, creates the run
journal and executes it; ``resume`` opens the journal and executes what is left. It stands
in for ``provision apply``/``provision resume`` so the test depends on the executor only.
Exit status 0 when the run completed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import executor_scenario as sc  # noqa: E402

from provision.current_state import read_current_state  # noqa: E402
from provision.executor import ExecutorSettings, RunStatus, execute, journal_changes  # noqa: E402
from provision.graph import GraphClient, StaticTokenCredential, url_target  # noqa: E402
from provision.journal import Journal  # noqa: E402
from provision.planner import PlanPolicy, plan  # noqa: E402
from provision.sandbox.auth import make_token  # noqa: E402

SETTINGS = ExecutorSettings(settle_s=0.5, alternate_settle_s=0.5)


async def _apply(root: str, run_dir: Path, users: int) -> RunStatus:
    desired = sc.onboarding_roster(users, duplicates=3)
    async with GraphClient(url_target(f"{root}/v1.0"), StaticTokenCredential(make_token())) as client:
        current, policy, _notes = await read_current_state(client, list(desired), policy_needs_ids=False)
        the_plan = plan(desired, current, policy, PlanPolicy())
        run_dir.mkdir(parents=True, exist_ok=True)
        journal = Journal.create(run_dir, run_meta={"job": "kill-test"}, changes=journal_changes(the_plan.changes))
        result = await execute(client, journal, settings=SETTINGS)
        journal.close()
    return result.status


async def _resume(root: str, run_dir: Path) -> RunStatus:
    async with GraphClient(url_target(f"{root}/v1.0"), StaticTokenCredential(make_token())) as client:
        journal = Journal.open(run_dir)
        result = await execute(client, journal, settings=SETTINGS)
        journal.close()
    return result.status


def main(argv: list[str]) -> int:
    command, root, run_dir = argv[0], argv[1], Path(argv[2])
    if command == "apply":
        status = asyncio.run(_apply(root, run_dir, int(argv[3])))
    else:
        status = asyncio.run(_resume(root, run_dir))
    return 0 if status is RunStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
