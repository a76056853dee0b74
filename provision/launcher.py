"""The ``provision`` console script's entry point, free of imports at load.

The roster reader normalises numbers in spawned worker processes, and a spawned worker
re-runs the parent's ``__main__`` module (the console script) at start-up: pointing the
script here keeps every worker from importing the CLI, typer and rich for nothing
(~0.3 s of CPU and ~20 MB per worker).
"""

from __future__ import annotations


def main() -> None:
    from provision.cli import main as cli_main

    cli_main()
