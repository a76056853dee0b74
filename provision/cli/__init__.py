"""The command line: the only part of provision that prints.

Each command group lives in its own module; this one assembles them. Every command runs
inside ``output.exits_on_error``, the one place an error becomes an exit code
(``provision.errors.ExitCode``, whose table ``--help`` prints).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from provision import __version__
from provision.cli import doctor_cmd, export_cmd, fleet_cmd, plan_cmd, run_cmds, sandbox_cmd, validate_cmd
from provision.errors import EXIT_MEANINGS, ExitCode
from provision.run.logs import record_crash

# "\b" keeps click from re-flowing the table into one paragraph.
_EXIT_CODES = "\b\nExit codes:\n" + "\n".join(f"{int(code)}  {meaning}" for code, meaning in EXIT_MEANINGS.items())

app = typer.Typer(
    name="provision",
    help="Bulk provisioning of Microsoft Entra phone authentication methods.",
    epilog=_EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich markup would swallow literal brackets ("its [roster] table")
    # and this typer labels every flag "<bool>"; plain help has neither problem.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"provision {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


app.add_typer(sandbox_cmd.app, name="sandbox")
app.add_typer(fleet_cmd.app, name="fleet")
app.command("validate")(validate_cmd.validate)
app.command("doctor")(doctor_cmd.doctor)
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
