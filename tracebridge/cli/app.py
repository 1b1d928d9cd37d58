"""The ``tracebridge`` Typer app and its command groups; command modules register on these."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="TraceBridge: agent traces → curated training views → better role models.")
schema_app = typer.Typer(no_args_is_help=True, help="Schema v2: export and check JSON Schema files.")
config_app = typer.Typer(no_args_is_help=True, help="Show and check OmegaConf configs.")
app.add_typer(schema_app, name="schema")
app.add_typer(config_app, name="config")


def print_json(obj: Any) -> None:
    """Write one machine-readable JSON document to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def check_out_dir(out: Path, flag: str = "--out") -> None:
    """Exit 2 before any work when ``out`` cannot become a folder (it, or its nearest existing
    parent, is a file): found later, it would be a traceback after the work was done."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                fail(f"{flag} {out}: {p} is a file, not a folder", 2)
            return


def check_trace_root(path: Path) -> None:
    """Exit 2 unless ``path`` is a folder (a trace root, or one run's folder)."""
    if not path.is_dir():
        fail(f"{path}: no such trace root" if not path.exists() else f"{path}: not a trace root (a file, not a folder)")
