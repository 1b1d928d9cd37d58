"""The ``tracebridge`` Typer app and its command groups; command modules register on these."""

from __future__ import annotations

import json
import sys
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
