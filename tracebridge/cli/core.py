"""Core commands: ``validate``, ``schema export``, ``config show``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.capture.reader import MAX_LINE_BYTES
from tracebridge.cli.app import (
    EXIT_FAILED,
    app,
    check_out_dir,
    check_trace_root,
    config_app,
    config_errors,
    fail,
    print_json,
    schema_app,
    share,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: what a terminal acts on


def printable(text: str) -> str:
    """``text`` with control characters written as ``\\xNN`` escapes. Problems quote field names,
    event types and run ids from the traces: a hostile trace must not clear, retitle or rewrite the
    terminal of whoever validates it (``--json`` output escapes them already)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Trace root (or one run directory).")],
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
    min_schema_valid: Annotated[float, typer.Option(min=0, max=100, help="Min % of complete runs schema-valid.")] = 100.0,
    min_lineage_valid: Annotated[float, typer.Option(min=0, max=100, help="Min % of events with valid lineage.")] = 98.0,
    max_incomplete: Annotated[float, typer.Option(min=0, max=100, help="Max % of runs without session.json.")] = 100.0,
    max_abandoned: Annotated[float, typer.Option(min=0, max=100, help="Max % of runs without session.json and idle "
                                                 "longer than --stale-after (crashed without closing).")] = 0.0,
    stale_after: Annotated[float, typer.Option(min=0, help="Seconds without an event after which a run without "
                                               "session.json counts as abandoned.")] = 3600.0,
    max_dropped_events: Annotated[int, typer.Option(min=-1, help="Max events that recorders dropped (fail-open, "
                                                    "counted in session.json capture); -1 = not judged.")] = 0,
    max_problems: Annotated[int, typer.Option(min=0, help="Problems to list (all are counted).")] = 50,
    max_line_bytes: Annotated[int, typer.Option(min=1024, help="Longest event line read (bytes); a longer one "
                                                "is a problem of its run, read past in bounded memory.")] = MAX_LINE_BYTES,
) -> None:
    """Check schema, drift and lineage of every run; exit 1 below thresholds.

    The thresholds are range-checked before any run is read (exit 2): a percentage outside 0..100 or
    NaN made a check that could never fail (``--min-lineage-valid nan`` passed everything) or never pass."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from tracebridge.schema.validate import Thresholds, validate_root

    check_trace_root(path)
    rep = validate_root(path, Thresholds(min_schema_valid, min_lineage_valid, max_incomplete, max_abandoned,
                                         stale_after, None if max_dropped_events < 0 else max_dropped_events),
                        max_problems, max_line_bytes)
    if json_out:
        print_json(rep.to_dict())
    else:
        con = Console()
        t = Table(title=escape(printable(f"tracebridge validate {path}")), show_header=False)
        for k, v in [
            ("runs total / complete / incomplete (abandoned)",
             f"{rep.runs_total} / {rep.runs_complete} / {rep.runs_incomplete} ({rep.runs_abandoned})"),
            ("schema-valid (complete runs)", f"{share(rep.schema_valid_pct, rep.runs_complete)} of {rep.runs_complete}"),
            ("lineage-valid (events)", f"{share(rep.lineage_valid_pct, rep.events_total)} of {rep.events_total}"),
            ("torn tail lines", str(rep.torn_tails)),
            ("events dropped at capture (runs)", f"{rep.events_dropped} ({rep.runs_with_dropped_events})"),
            ("schema drift", ", ".join(f"{k}×{n}" for k, n in rep.drift.most_common(8)) or "none"),
        ]:
            t.add_row(k, escape(printable(v)))  # drift keys come from the traces: no markup either
        con.print(t)
        for line in problem_lines(rep.problems):  # plain, unwrapped: users grep these file:line locations
            typer.echo(printable(line))
        if rep.problems_total > len(rep.problems):
            con.print(f"... and {rep.problems_total - len(rep.problems)} more problems")
        con.print("[green]PASS[/]" if rep.passed else f"[red]FAIL[/]: {'; '.join(rep.failures())}")
    raise typer.Exit(0 if rep.passed else 1)


_LOCATED = re.compile(r"(?P<file>.+?):(?P<line>\d+): (?P<what>.*)", re.DOTALL)


def problem_lines(problems: list[str]) -> list[str]:
    """``validate``'s problem lines (``file:line: field: message``), a run of the same problem on
    consecutive lines of one file as two lines: the first, then ``file:a-b: the same (n more)``. A run
    folder copied under another name has the same run_id problem on every event: one line each buried
    the others."""
    runs: list[list[Any]] = []  # [first line's text, its (file, line, what) or None, last line, lines after it]
    for text in problems:
        m = _LOCATED.fullmatch(text)
        key = (m["file"], int(m["line"]), m["what"]) if m else None
        run = runs[-1] if runs else None
        if key and run and run[1] and (key[0], key[2]) == (run[1][0], run[1][2]) and key[1] == run[2] + 1:
            run[2], run[3] = key[1], run[3] + 1
        else:
            runs.append([text, key, key[1] if key else 0, 0])
    out: list[str] = []
    for text, key, last, more in runs:
        out.append(text)
        if more:
            out.append(f"{key[0]}:{key[1] + 1}-{last}: the same ({more} more)")
    return out


@schema_app.command("export")
def schema_export(
    out: Annotated[Path | None, typer.Option(help="Folder (default: the package's schema/json).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Only check the files are up to date.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout: the folder, and the files "
                                           "written (`written`) or, with --check, those out of date (`stale`).")] = False,
) -> None:
    """Write JSON Schema files for session.json and events.jsonl lines; ``--out`` that is a file (or, with
    ``--check``, a folder that does not exist) exits 2 before anything is written or read; ``--check`` exits 1
    when a file is out of date."""
    from tracebridge.schema.jsonschema import SCHEMA_DIR, export_schemas, stale_schemas

    target = out or SCHEMA_DIR
    check_out_dir(target)  # was a FileExistsError traceback, exit 1
    if check and not target.is_dir():
        fail(f"--out {target}: no such folder (the folder of the JSON Schema files to check)")
    if check:
        stale = stale_schemas(target)
        if stale:
            fail(f"stale JSON Schema files in {target}: {', '.join(stale)} (run tracebridge schema export)", EXIT_FAILED,
                 folder=str(target), stale=stale)
        if json_out:
            print_json({"ok": True, "folder": str(target), "stale": []})
        else:
            typer.echo(f"JSON Schema files in {target} are up to date")
        return
    written = [str(p) for p in export_schemas(target)]
    if json_out:
        print_json({"ok": True, "folder": str(target), "written": written})
        return
    for p in written:
        typer.echo(p)


@config_app.command("show")
def config_show(
    path: Annotated[Path, typer.Argument(help="A YAML under configs/<kind>/ (elsewhere: give --kind).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key.sub=value overrides.")] = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="The schema of a file kept outside configs/<kind>/, named as that folder (export, train, "
                       "sweep, ...; an unknown one lists them all).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="The resolved config and its hash as one JSON "
                                           "document.")] = False,
) -> None:
    """Print the resolved config (schema defaults ← YAML ← overrides) and its hash; exit 2 listing
    every problem of an invalid one, or for a file that is not there or whose kind is unknown."""
    from tracebridge.config import config_hash, load_config, schema_for, to_dict, to_yaml

    with config_errors():
        cfg = load_config(schema_for(path, kind), path, overrides or [])
    if json_out:
        print_json({"config": to_dict(cfg), "config_hash": config_hash(cfg)})
    else:
        typer.echo(to_yaml(cfg) + f"# config_hash: {config_hash(cfg)}")
