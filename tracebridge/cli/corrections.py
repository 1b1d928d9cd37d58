"""Human corrections commands (``tracebridge corrections ...``).

``check FILE --traces ROOT`` checks a corrections file (``tracebridge.corrections``) against a
trace root as the export would join it: each line's fields, then its run and event exist and the
event's type fits each label. Exit 0 when every line would apply, 1 when any line is bad or
unmatched (each listed as ``file:line: field: reason``), 2 on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracebridge.cli.app import app, fail, print_json
from tracebridge.corrections.records import DEFAULT_FILE

corrections_app = typer.Typer(no_args_is_help=True, help="Human corrections of trajectories, joined at export.")
app.add_typer(corrections_app, name="corrections")


@corrections_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The corrections JSONL.")] = Path(DEFAULT_FILE),
    traces: Annotated[Path, typer.Option("--traces", help="Trace root the corrections refer to.")] = Path("traces"),
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Check a corrections file against a trace root; exit 1 when a line is bad or unmatched."""
    from tracebridge.corrections.check import check_corrections
    from tracebridge.corrections.records import CorrectionsError

    if not traces.exists():
        fail(f"{traces}: no such trace root")
    try:
        report = check_corrections(file, traces)
    except (CorrectionsError, FileNotFoundError) as exc:
        fail(str(exc))
    doc = report.to_dict()
    problems = report.problems()
    ok = not (problems or report.failures())
    if json_out:
        print_json({**doc, "problems": problems, "ok": ok})
    else:
        for line in problems:
            typer.echo(line)
        typer.echo(f"{doc['lines_read']} lines: {doc['applied']} apply, {doc['unmatched']} unmatched, "
                   f"{doc['quarantined']} bad; {doc['runs_corrected']} runs corrected")
        typer.echo("OK" if not problems else f"FAIL: {len(problems)} line(s) would not apply")
    raise typer.Exit(0 if ok else 1)
