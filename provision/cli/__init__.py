"""The command line: the only part of provision that prints.

Each command group lives in its own module; this one assembles them and maps the error
tree (``provision.errors``) to exit codes in one place.
"""

from __future__ import annotations

import typer

from provision.cli import plan_cmd, run_cmds, sandbox_cmd, validate_cmd

app = typer.Typer(
    name="provision",
    help="Bulk provisioning of Microsoft Entra phone authentication methods.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox_cmd.app, name="sandbox")
app.command("validate")(validate_cmd.validate)
app.command("plan")(plan_cmd.plan)
app.command("apply")(run_cmds.apply)
app.command("resume")(run_cmds.resume)
app.command("report")(run_cmds.report)


def main() -> None:
    app()
