"""The `bandfusion` command: click subcommands, one per file, as rasterio's `rio` has them."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from typing import NoReturn

import click
from bandfusion import __version__
from bandfusion.cli.flags import in_flags
from bandfusion.cli.messages import terminal_messages
from bandfusion.errors import BandfusionError

SUBCOMMANDS = ("train", "predict", "evaluate", "info", "benchmark", "explain", "batch")
"""Each subcommand NAME is `NAME_command` in this package's module NAME."""


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs (or `--help`
    lists them all), so `bandfusion predict` loads neither scikit-learn nor dask.distributed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module = importlib.import_module(f".{cmd_name}", __name__)
        command: click.Command = getattr(module, f"{cmd_name}_command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bandfusion")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Per-pixel land-cover maps from multispectral rasters with a 1x1-conv fusion network.

    \b
    Example:
      bandfusion train scene.tif --labels labels.tif -o model
      bandfusion predict scene.tif -m model -o map.tif --preview map.png
    """
    ctx.obj = {"debug": debug}


INTERRUPT_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""Exit code after an interrupt, 128 + the signal's number as shells report a process the
signal killed: what a signal that lands before Python runs bandfusion's code also gives."""

_received: list[int] = []
"""The signals that interrupted this run, in order."""


def _interrupt_on_signals() -> None:
    """SIGINT and SIGTERM (a job scheduler, `timeout`, `kill`) unwind as KeyboardInterrupt,
    so temp files go; the signal is remembered for the exit code."""

    def interrupt(signum: int, _frame: object) -> None:
        _received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in INTERRUPT_EXIT:
        signal.signal(signum, interrupt)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors → one line on stderr and exit 2; crashes → exit 1.

    What else reaches the terminal (warnings, GDAL's messages) is `messages`' business.
    """
    _interrupt_on_signals()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        with terminal_messages(debug):
            _run(argv, debug)
    except KeyboardInterrupt:  # while setting up or tearing down the terminal's messages
        _exit_interrupted()


def _exit_interrupted() -> NoReturn:
    """Say so and exit 130 (143 after SIGTERM) once an interrupt has unwound the main thread
    (temp files are gone). Further signals are ignored from here: the exit is under way.

    Worker threads (dask's pool, the writer's) cannot be interrupted, and one blocked on a queue
    the main thread no longer serves would hold interpreter shutdown forever: where any is still
    alive, the process ends at once rather than waiting for them.
    """
    for signum in INTERRUPT_EXIT:
        signal.signal(signum, signal.SIG_IGN)
    code = INTERRUPT_EXIT.get(signal.Signals(_received[0]), 130) if _received else 130
    click.echo("bandfusion: interrupted", err=True)
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _usage_line(error: click.UsageError) -> str:
    """A usage error in one line, like every other error: the problem, then where help is."""
    command = error.ctx.command_path if error.ctx is not None else "bandfusion"
    return f"{error.format_message()} (see '{command} -h')"


def _run(argv: list[str] | None, debug: bool) -> None:
    """Run the command line, turning each kind of failure into its message and exit code."""
    try:
        cli.main(args=argv, prog_name="bandfusion", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _exit_interrupted()
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        click.echo(f"bandfusion: error: {_usage_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        if _received:  # the signal landed in code that reraised it as its own error (a C
            _exit_interrupted()  # extension's callback, a broad except): still an interrupt
        if debug:
            raise
        if isinstance(exc, BandfusionError):
            click.echo(f"bandfusion: error: {in_flags(exc)}", err=True)
            sys.exit(exc.exit_code)
        click.echo(
            f"bandfusion: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            err=True,
        )
        sys.exit(1)
