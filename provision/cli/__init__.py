"""The command line: the only part of provision that prints.

Each command group lives in its own module; this one assembles them. Every command runs
inside ``output.exits_on_error``, the one place an error becomes an exit code
(``provision.errors.ExitCode``, whose table ``--help`` prints).
"""

from __future__ import annotations

import sys

import typer

from provision.cli import export_cmd, plan_cmd, run_cmds, sandbox_cmd, validate_cmd
from provision.errors import EXIT_MEANINGS, ExitCode
from provision.run.logs import record_crash

_EXIT_CODES = "Exit codes:\n\n" + "\n".join(f"  {int(code)}  {meaning}" for code, meaning in EXIT_MEANINGS.items())

app = typer.Typer(
    name="provision",
    help="Bulk provisioning of Microsoft Entra phone authentication methods.",
    epilog=_EXIT_CODES,
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
app.command("export")(export_cmd.export)
app.command("rollback")(run_cmds.rollback)


def main() -> None:
    """The ``provision`` command. Commands handle their own errors (``output.exits_on_error``);
    this is the last line of defence for anything that escapes them (typer itself, a
    rendering step): a masked crash file and exit 5, never a traceback on the console."""
    try:
        app()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001
        where = record_crash(exc)
        sys.stderr.write(f"error: unexpected {type(exc).__name__}; the details are in {where}\n")
        sys.exit(int(ExitCode.STOPPED))
