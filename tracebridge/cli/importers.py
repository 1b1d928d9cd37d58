"""Import and runtime-hook commands: ``import openclaw``, ``import agentlightning`` and ``smoke runtime-hook``.

``tracebridge import openclaw [PATH...] --out TRACES [key=value ...]`` imports OpenClaw
transcripts (default: ``~/.openclaw`` and ``~/.clawdbot``) into a trace root, incrementally; it
exits 1 when the counts do not reconcile, when nothing could be imported (no transcript, or no line
of the new input imported or waiting) or, with ``--validate``, when the imported runs fail
``tracebridge validate``; 2 on bad input. ``tracebridge import agentlightning PATH... --out TRACES``
imports stored Agent Lightning spans the same way, one run per rollout, with the same exit codes. ``tracebridge smoke runtime-hook`` runs a tiny agent
through the Agent Lightning runtime hook and validates the run (exit 1 on any failure). Both Agent
Lightning commands exit 2 when agentlightning is not installed (a set-up problem, not a failed check).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.cli.app import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_USAGE,
    app,
    check_out_dir,
    config_errors,
    fail,
    print_json,
    progress_bar,
    share,
)

import_app = typer.Typer(no_args_is_help=True, help="Import traces from other runtimes into schema v2.")
app.add_typer(import_app, name="import")


def _group(name: str, help_text: str) -> typer.Typer:
    """The ``name`` command group, shared with any other module that registers one."""
    for g in app.registered_groups:
        if g.name == name and g.typer_instance is not None:
            return g.typer_instance
    t = typer.Typer(no_args_is_help=True, help=help_text)
    app.add_typer(t, name=name)
    return t


smoke_app = _group("smoke", "End-to-end smoke checks.")
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


def _split_args(items: list[str]) -> tuple[list[str], list[str]]:
    """(paths, key=value overrides) of the positional arguments."""
    overrides = [a for a in items if _OVERRIDE.match(a) and not Path(a).exists()]
    return [a for a in items if a not in overrides], overrides


def _check_paths(paths: list[str]) -> None:
    """Exit 2 naming every path that does not exist, by why (``no such file or folder``, ``symlink loop``)."""
    from tracebridge.importers.openclaw.discover import not_there

    missing: dict[str, list[str]] = {}
    for p in paths:
        if not Path(p).expanduser().exists():
            missing.setdefault(not_there(Path(p).expanduser()), []).append(p)
    if missing:
        fail("; ".join(f"{why}: {', '.join(ps)}" for why, ps in missing.items()), 2)


def _run(do: Any, out: Path) -> Any:
    """``do()``, with a bad state file as an exit-2 error and a concurrent import as exit 3 (locked: try again
    later, as a running shadow cycle's lock), not a traceback (the lock's message names the running import:
    pid, host, start, command)."""
    from tracebridge.importers.lock import ImportLocked
    from tracebridge.importers.openclaw.state import StateError

    try:
        return do()
    except StateError as exc:
        fail(str(exc), 2)
    except ImportLocked as exc:
        fail(f"{exc}; nothing was imported: try again when it ends", EXIT_LOCKED)
    except OSError as exc:  # a full disk (or a trace root that turned read-only) midway: the work failed
        fail(f"import stopped: {exc}. Runs imported before it are whole and kept; free space and import "
             "again: it continues from them, nothing twice", EXIT_FAILED)


def _finish(doc: dict, ok: bool, out: Path, cfg: Any, validate: bool, json_out: bool, title: str,  # type: ignore[type-arg]
            extra_rows: list[tuple[str, str]]) -> None:
    """Validate (``--validate``), print the summary (``--json`` or a table) and exit 0 or 1."""
    if validate:
        from tracebridge.schema.validate import Thresholds, validate_root

        v = validate_root(out, Thresholds(min_lineage_valid_pct=cfg.min_lineage_valid), max_problems=50)
        doc["validation"] = {k: v.to_dict()[k] for k in ("runs_total", "runs_complete", "events_total", "schema_valid_pct",
                                                         "lineage_valid_pct", "passed", "failures", "problems",
                                                         "problem_entries")}
        ok = ok and v.passed
    doc.update(out=str(out), state_file=str(out / ".import" / cfg.state_file),
               quarantine_file=str(out / ".import" / cfg.quarantine_file), passed=ok)
    if json_out:
        print_json(doc)
    else:
        _print_import(doc, title, extra_rows)
    raise typer.Exit(0 if ok else 1)


@import_app.command("openclaw")
def import_openclaw_cmd(
    args: Annotated[list[str] | None, typer.Argument(
        help="Transcript files or folders (default ~/.openclaw ~/.clawdbot), then key=value config overrides.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Trace root to import into.")] = Path("traces"),
    config: Annotated[Path | None, typer.Option("--config", help="A YAML under configs/import/.")] = None,
    final: Annotated[bool, typer.Option("--final", help="Quarantine half-written last lines (sessions are over).")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="Validate the imported runs afterwards.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes importing sessions side by side "
                                         "(same runs, state and report for any number).")] = 1,
) -> None:
    """Import OpenClaw session transcripts as schema-v2 runs (streaming, incremental, reproducible);
    exit 1 when the counts do not reconcile or nothing could be imported."""
    from tracebridge.config import load_config
    from tracebridge.importers.config import ImportConfig
    from tracebridge.importers.openclaw import import_openclaw

    paths, overrides = _split_args(args or [])
    with config_errors():
        cfg = load_config(ImportConfig, config, overrides + (["final=true"] if final else []))
    _check_paths(paths)
    check_out_dir(out)
    with progress_bar("import openclaw", "transcripts", json_out) as progress:
        rep = _run(lambda: import_openclaw(paths or None, out, cfg, workers=workers, progress=progress), out)
    migrated = [("files OpenClaw migrated in place (continued)", str(rep.files_migrated))] if rep.files_migrated else []
    if rep.files_repaired:
        migrated.append(("files OpenClaw repaired in place, header moved first (continued)", str(rep.files_repaired)))
    doc = rep.to_dict()
    if rep.imported_nothing:  # as for agentlightning: a wrong folder or file is a failed import, not "passed"
        doc["problems"].append("nothing could be imported: no transcript, or no line read could be imported")
    _finish(doc, rep.reconciles and not rep.imported_nothing, out, cfg, validate, json_out,
            f"tracebridge import openclaw → {out}", migrated)


@import_app.command("agentlightning")
def import_agentlightning_cmd(
    args: Annotated[list[str], typer.Argument(
        help="Span files (JSONL of Agent Lightning Span records, optionally Rollout and Attempt records) or "
             "folders of *.jsonl span files, then key=value config overrides.")],
    out: Annotated[Path, typer.Option("--out", help="Trace root to import into.")] = Path("traces"),
    config: Annotated[Path | None, typer.Option("--config", help="A YAML of SpanImportConfig values.")] = None,
    final: Annotated[bool, typer.Option("--final", help="Files are finished: quarantine half-written last lines "
                                        "and import rollouts still running.")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="Validate the imported runs afterwards.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Import stored Agent Lightning spans as schema-v2 runs, one per rollout (streaming, incremental,
    reproducible); exit 1 when the counts do not reconcile or nothing could be imported."""
    from tracebridge.config import load_config
    from tracebridge.importers.agentlightning.config import SpanImportConfig

    paths, overrides = _split_args(args)
    with config_errors():
        cfg = load_config(SpanImportConfig, config, overrides + (["final=true"] if final else []))
    if not paths:
        fail("name at least one span file or folder", 2)
    _check_paths(paths)
    check_out_dir(out)
    try:
        from tracebridge.importers.agentlightning.importer import import_agentlightning

        rep = _run(lambda: import_agentlightning(paths, out, cfg), out)
    except ImportError as exc:
        fail(f"agentlightning is not installed ({exc}); pip install 'tracebridge[agentlightning]'", EXIT_USAGE)
    doc = rep.to_dict()
    counts = " / ".join(str(doc[f"rollouts_{k}"]) for k in ("seen", "imported", "unchanged", "pending", "skipped"))
    rows = [("rollouts seen / imported / unchanged / waiting / skipped", counts),
            ("records", ", ".join(f"{k}×{n}" for k, n in doc["records"].items()) or "none"),
            ("tool schemas of model calls: recorded / missing",
             " / ".join(str(doc["tool_schemas"].get(k, 0)) for k in ("recorded", "missing"))),
            ("reply tool-call ids not recorded: reconciled / unrecorded (call_K)",
             " / ".join(str(doc["tool_call_ids"][k]) for k in ("reconciled", "unrecorded")))]
    if rep.clock_skew_rollouts:  # hosts whose clocks differ: the order is the store's, not the clocks'
        rows.append(("rollouts with clock skew (spans): ordered by parent/child and sequence_id",
                     f"{rep.clock_skew_rollouts} ({rep.clock_skew_spans})"))
    if rep.imported_nothing:
        doc["problems"].append("nothing could be imported: no span file, or no new rollout became a run")
    _finish(doc, rep.reconciles and not rep.imported_nothing, out, cfg, validate, json_out,
            f"tracebridge import agentlightning → {out}", rows)


def _print_import(d: dict, title: str, extra_rows: list[tuple[str, str]]) -> None:  # type: ignore[type-arg]
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=False)
    for k, v in [
        ("files seen / new / appended / unchanged / skipped",
         f"{d['files_seen']} / {d['files_new']} / {d['files_appended']} / {d['files_unchanged']} / {d['files_skipped']}"),
        ("lines read = accepted + quarantined", (f"{d['read']} = {d['accepted']} + {d['quarantined']}"
                                                 f" ({'reconciles' if d['reconciles'] else 'DOES NOT RECONCILE'})")),
        *extra_rows,
        # a half-written last line is in none of the counts above: without this row it was shown nowhere
        *([("half-written last lines left for the next import (--final quarantines them)", str(d["lines_pending"]))]
          if d.get("lines_pending") else []),
        ("events written (already present)", f"{d['events_written']} ({d['events_already_present']})"),
        ("drift", ", ".join(f"{k}×{n}" for k, n in list(d["drift"].items())[:8]) or "none"),
    ]:
        t.add_row(k, v)
    Console().print(t)
    for line in d["quarantine_samples"] + d["skipped"] + d["problems"]:
        typer.echo(line)
    if "validation" in d:  # a rate of nothing is n/a, as validate's table shows it (its JSON keeps 100)
        va = d["validation"]
        typer.echo(f"validate: lineage {share(va['lineage_valid_pct'], va['events_total'])}, schema "
                   f"{share(va['schema_valid_pct'], va['runs_complete'])}"
                   f" — {'PASS' if va['passed'] else 'FAIL: ' + '; '.join(va['failures'])}")


@smoke_app.command("runtime-hook")
def smoke_runtime_hook(
    out: Annotated[Path | None, typer.Option("--out", help="Trace root for the run (default: a temp folder).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Run a tiny agent end to end through the Agent Lightning runtime hook and validate its run; exit 1 when
    it fails, 2 before it for an --out that is (or lies under) a file, or without agentlightning installed."""
    import tempfile

    from tracebridge.importers.agentlightning.smoke import run_smoke

    if out is not None:  # was a fail-open capture error after the agent ran: exit 1, as a failed smoke
        check_out_dir(out)
    try:
        if out is None:
            with tempfile.TemporaryDirectory(prefix="tb-smoke-") as tmp:
                doc = run_smoke(tmp)
        else:
            doc = run_smoke(out)
    except ImportError as exc:  # a set-up problem, as for `import agentlightning`: 2, not a failed smoke
        msg = f"agentlightning is not installed ({exc}); pip install 'tracebridge[agentlightning]'"
        fail(msg, EXIT_USAGE, problems=[msg])
    if json_out:
        print_json(doc)
    else:
        typer.echo(("PASS" if doc["ok"] else "FAIL") + f": runtime hook smoke, run {doc.get('run_id')}, "
                   f"{doc.get('events')} events, {doc.get('triplets')} triplets")
        for p in doc.get("problems", []):
            typer.echo(f"  {p}")
    raise typer.Exit(0 if doc["ok"] else 1)
