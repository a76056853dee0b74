"""Helpers shared by the test packages; importable as ``support.*`` (pytest's pythonpath is ``tests``).

- ``support.clock``: ``FakeClock`` (the one fake clock: manual time, recording sleep, UTC readings), ``T0``.
- ``support.builders``: model values: desired/current users, journal changes.
- ``support.sandbox``: ``SandboxHandle``, our GraphClient in process or over loopback, the bare
  msgraph-sdk client, sandbox profile files, ``odata_error``.
- ``support.cli``: `provision` as a real child process (run or start it), its journal's progress.
- ``support.roster_writers``: real CSV/XLSX roster files.

Helpers one test folder alone uses stay in that folder (``apply/executor_scenario.py``,
``report/report_samples.py``, ``cli/cli_support.py``); fixtures are in the conftest files.
"""
