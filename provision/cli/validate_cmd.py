"""`provision validate ROSTER`: check a roster without touching any tenant."""

from __future__ import annotations

import typer


def validate(roster: str = typer.Argument(..., help="Roster file (.csv/.tsv/.txt/.xlsx/.xlsm)")) -> None:
    """Check a roster file and report every row's problems."""
    raise typer.Exit(2)
