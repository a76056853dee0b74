"""`provision sandbox ...`: serve the local Graph-compatible tenant, mint tokens."""

from __future__ import annotations

import typer

app = typer.Typer(help="The local Graph-compatible sandbox tenant.", no_args_is_help=True)
