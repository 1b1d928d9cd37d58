"""The ``tracebridge`` Typer app and its command groups; command modules register on these.

Exit codes, the same in every command (README "Exit codes"): ``EXIT_FAILED`` (1) when the command
ran and what it checks failed (thresholds, gates, problems found, a failed job), ``EXIT_USAGE`` (2)
for a usage or config error found before any work (click's own usage errors exit 2 as well), and
3 for "try again later": ``EXIT_LOCKED`` when a shadow cycle or weekly run holds its lock, ``EXIT_UNREACHABLE``
when storage (or a Ray head) could not be reached. A config error goes through ``config_errors()``,
so no command can give it a code of its own. ``fail()`` is the one way out with an error: under
``--json`` it also prints ``{"ok": false, "error", "exit_code"}`` on stdout, so a script reading
stdout always gets one JSON document.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

try:
    from typer._click.exceptions import ClickException
except ImportError:  # older typer: plain click
    from click.exceptions import ClickException

EXIT_FAILED = 1  # the command ran; what it checks failed, or its work did
EXIT_USAGE = 2  # bad flags, overrides, config values or input paths; nothing was done
EXIT_LOCKED = 3  # another run holds the lock (shadow-cycle, shadow-prune, ops weekly, import, collect); nothing was done
EXIT_UNREACHABLE = 3  # storage or a Ray head could not be reached: as locked, a later try may work
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (window, shadow-cycle): what was started is stopped


class _JsonUsageErrors(TyperGroup):
    """The root group: under ``--json``, click's usage errors (an unknown option, a missing argument,
    a value of the wrong type: found before the command runs, so its ``fail()`` never sees them) also
    print ``{"ok": false, "error", "exit_code": 2, "usage": true}`` on stdout, the shape of every other
    error under ``--json``; click alone prints them on stderr only. Without ``--json`` nothing changes."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or "--json" not in argv:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:  # non-standalone: click raises its errors, and returns an ``Exit``'s code (no command returns a value)
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except ClickException as exc:
            _show_usage_error(exc)
            print_json({"ok": False, "error": exc.format_message(), "exit_code": exc.exit_code, "usage": True})
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if type(rv) is int else 0)


def _show_usage_error(exc: ClickException) -> None:
    """Print a click error on stderr as typer does (in a rich panel when rich is there)."""
    try:
        from typer import rich_utils
    except ImportError:  # typer without rich
        exc.show()
    else:
        rich_utils.rich_format_error(exc)


app = typer.Typer(cls=_JsonUsageErrors, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="TraceBridge: agent traces → curated training views → better role models.")
schema_app = typer.Typer(no_args_is_help=True, help="Schema v2: export and check JSON Schema files.")
config_app = typer.Typer(no_args_is_help=True, help="Show and check OmegaConf configs.")
app.add_typer(schema_app, name="schema")
app.add_typer(config_app, name="config")


def print_json(obj: Any) -> None:
    """Write one machine-readable JSON document to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _current_context() -> Any:
    """The running command's click context, or None outside one (typer >= 0.2x vendors click)."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # older typer: plain click
        from click import get_current_context
    return get_current_context(silent=True)


def json_requested() -> bool:
    """Whether the running command was given ``--json`` (read from its parsed options, so no
    command has to pass it on)."""
    ctx = _current_context()
    while ctx is not None:
        for p in ctx.command.params:
            if "--json" in (getattr(p, "opts", None) or ()) and ctx.params.get(p.name):
                return True
        ctx = ctx.parent
    return False


def fail(message: str, code: int = EXIT_USAGE, **details: Any) -> NoReturn:
    """Print an error to stderr and exit with ``code`` (default: a usage error).

    Under ``--json`` stdout gets ``{"ok": false, "error": message, "exit_code": code, **details}``
    too: a script parsing stdout never meets a bare ``error:`` line.
    """
    typer.echo(f"error: {message}", err=True)
    if json_requested():
        print_json({"ok": False, "error": message, "exit_code": code, **details})
    raise typer.Exit(code)


@contextmanager
def config_errors() -> Iterator[None]:
    """Exit ``EXIT_USAGE`` with every problem when the block raises ``ConfigError``.

    A bad override, an unknown key, a value that is not valid YAML or out of range is the caller's
    mistake, found before any work: scripts must be able to tell it from a failed check (exit 1).
    """
    from tracebridge.config import ConfigError

    try:
        yield
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)


@contextmanager
def progress_bar(command: str, what: str, json_out: bool = False) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr for long work (stdout keeps the summary or the JSON document),
    gone when the block ends under ``--json``; yields ``update(done, total, what=None)``. Drawn by
    ``update`` itself, at most 10 times a second, not by a refresh thread: the work may fork workers
    (export, import), and a child forked while that thread held stderr's lock would hang on its
    first write there."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if json_out and not console.is_terminal:  # a script reads the document: nothing to clear, no stray newline
        yield lambda *_: None
        return
    with Progress(TextColumn(f"[bold]{command}[/] {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=json_out, auto_refresh=False) as bar:
        task = bar.add_task(what, total=None)
        drawn = [0.0]

        def update(done: int, total: int | None, what: str | None = None) -> None:
            bar.update(task, completed=done, total=total, **({"description": what} if what else {}))
            if done == total or time.monotonic() - drawn[0] >= 0.1:
                bar.refresh()
                drawn[0] = time.monotonic()

        yield update


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``systemctl stop``, ``timeout``, a supervisor) and SIGHUP (the terminal or SSH
    session it ran in closed) raise KeyboardInterrupt as Ctrl-C does, so the command's ``finally`` clauses run (a
    head it started is stopped, its child processes are stopped) instead of the process dying at once and leaving
    them behind. A signal the process was started ignoring stays ignored: ``nohup`` (SIGHUP) asked to outlive
    the terminal."""
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s, h in old.items():
        if h != signal.SIG_IGN:
            signal.signal(s, _interrupted)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def out_dir_problem(out: Path, flag: str = "--out") -> str | None:
    """Why ``out`` cannot become a folder (it, or its nearest existing parent, is a file), or None."""
    for p in (out, *out.parents):
        if p.exists():
            return None if p.is_dir() else f"{flag} {out}: {p} is a file, not a folder"
    return None


def check_out_dir(out: Path, flag: str = "--out") -> None:
    """Exit 2 before any work when ``out`` cannot become a folder (``out_dir_problem``): found later,
    it would be a traceback after the work was done."""
    if problem := out_dir_problem(out, flag):
        fail(problem)


def make_out_dir(out: Path, flag: str = "--out") -> None:
    """``check_out_dir``, then create ``out``; exit 2 when it cannot be made (a folder above it not
    writable, a read-only disk): ``redact`` and ``collect`` met that as a PermissionError traceback."""
    check_out_dir(out, flag)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{flag} {out}: cannot create the folder: {exc.strerror or exc}")


def share(pct: float, n: int) -> str:
    """A percentage of ``n`` things for the text table: ``n/a`` when there are none. The report's rate is 100
    then, so that nothing fails a threshold it could not be measured against; shown, it read as "all valid"
    next to a FAIL for having no runs."""
    return f"{pct:.2f}%" if n else "n/a"


def check_trace_root(path: Path) -> None:
    """Exit 2 unless ``path`` is a folder (a trace root, or one run's folder)."""
    if not path.is_dir():
        fail(f"{path}: no such trace root" if not path.exists() else f"{path}: not a trace root (a file, not a folder)")


def step_command(bin_: str | None) -> list[str]:
    """The ``tracebridge`` command the steps of ``shadow-cycle`` and ``ops weekly`` run (``--bin``, split on
    spaces; default: this Python's ``-m tracebridge.cli``), or exit 2 before any work when its program
    cannot be found: before, every step failed on it (a failed shadow cycle, a weekly traceback)."""
    import shutil
    import sys

    argv = bin_.split() if bin_ else [sys.executable, "-m", "tracebridge.cli"]
    if not argv or shutil.which(argv[0]) is None:
        fail(f"--bin {bin_!r}: {argv[0] if argv else 'empty'} is no executable program (give the tracebridge "
             "command the steps run, e.g. --bin 'python -m tracebridge.cli')")
    return argv


def utc_option(flag: str, value: str) -> dt.datetime:
    """An ISO timestamp option (``--since``, ``--now``) in UTC, UTC too when it has no offset; exit 2 naming it."""
    try:
        t = dt.datetime.fromisoformat(value)  # Python >= 3.11 reads a trailing Z
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:  # 0001-01-01T00:00+05:00 is before year 1 in UTC
        fail(f"{flag} {value}: not an ISO timestamp in years 1..9999 UTC ({exc}); e.g. 2026-03-04T08:00:00Z")
