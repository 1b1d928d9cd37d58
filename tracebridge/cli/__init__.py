"""The ``tracebridge`` command: thin, one function per subcommand.

Each area registers its commands in its own module here (``tracebridge/cli/<area>.py``);
heavy imports happen inside the command functions, so ``tracebridge --help`` stays fast.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os

import typer

from tracebridge.cli.app import app

# Command modules, imported for their registrations.
COMMAND_MODULES = [
    "tracebridge.cli.core",
    "tracebridge.cli.train",
    "tracebridge.cli.report",
    "tracebridge.cli.sim",
    "tracebridge.cli.ops",
    "tracebridge.cli.ops_cadence",
    "tracebridge.cli.ops_canary",
    "tracebridge.cli.ops_retention",
    "tracebridge.cli.cluster",
    "tracebridge.cli.cluster_pull",
    "tracebridge.cli.cluster_window",
    "tracebridge.cli.export",
    "tracebridge.cli.importers",
    "tracebridge.cli.feedback",
    "tracebridge.cli.feedback_reports",
    "tracebridge.cli.feedback_migrate",
    "tracebridge.cli.corrections",
]


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    logging.basicConfig(level=os.environ.get("TRACEBRIDGE_LOG", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod)
    app()


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod)


def plain_help(t: typer.Typer) -> None:
    """Each command's help as its docstring with single backquotes: the docstrings mark code with
    doubled backquotes (reST, for the API docs), which ``--help`` showed as they are. The line a
    command gets in its group's list is the docstring's first paragraph as one line: rich help keeps
    the docstring's own line breaks there, mid-sentence in a narrow column."""
    for cmd in t.registered_commands:
        if cmd.help is None and cmd.callback is not None and cmd.callback.__doc__:
            first, *rest = inspect.getdoc(cmd.callback).replace("``", "`").split("\n\n")
            # rich help keeps a paragraph's line breaks: `collect --help` broke "exits 1" / "when a check" mid-sentence
            cmd.help = "\n\n".join([first, *(" ".join(p.split("\n")) for p in rest)])
        if cmd.short_help is None and cmd.help:
            cmd.short_help = " ".join(cmd.help.split("\n\n", 1)[0].split())
    for group in t.registered_groups:
        if group.typer_instance is not None:
            plain_help(group.typer_instance)


plain_help(app)
