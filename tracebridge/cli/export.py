"""Curation and export commands: ``redact``, ``export``, ``push``, ``fetch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.cli.app import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    app,
    check_trace_root,
    config_errors,
    fail,
    make_out_dir,
    print_json,
    progress_bar,
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="A YAML under configs/export/.")]
StorageConfigOpt = Annotated[Path | None, typer.Option("--config", help="A YAML under configs/storage/ "
                                                       "(endpoint, request_timeout_s, retry.*).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable summary.")]


def _load(schema: type, config: Path | None, overrides: list[str]) -> Any:
    from tracebridge.config import load_config

    with config_errors():
        return load_config(schema, config, overrides)


@app.command()
def redact(
    inputs: Annotated[list[str], typer.Argument(help="JSONL or text files, then optional key=value overrides.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the redacted copies.")] = Path("redacted"),
    config: ConfigOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 when anything is found.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply the redaction detectors to files: redacted copies out, findings by type and field.

    Each copy is written under a hidden temporary name and renamed when whole: a copy that cannot be
    written (a full disk) exits 1 naming it, and neither it nor a killed run leaves a partial copy."""
    from tracebridge.curate.memo import ScanMemo
    from tracebridge.curate.redact import Redactor
    from tracebridge.curate.redact_files import WriteError, redact_file, redacted_paths
    from tracebridge.export.config import ExportConfig

    # an existing file is a file whatever its name holds (`report=final.txt`); other `a=b` are overrides
    is_override = [("=" in a and not Path(a).is_file()) for a in inputs]
    files = [Path(a) for a, o in zip(inputs, is_override) if not o]
    cfg = _load(ExportConfig, config, [a for a, o in zip(inputs, is_override) if o])
    missing = [str(f) for f in files if not f.is_file()]
    if not files or missing:
        fail(f"no such file (or not a file): {', '.join(missing)}" if missing else "give at least one file")
    red = Redactor(cfg.redaction, memo=ScanMemo())  # rows that repeat their context (conversations): 5.7x faster
    if not check:
        make_out_dir(out)
    results = []
    for f, dst in redacted_paths(files, out).items():
        try:
            if not check:
                dst.parent.mkdir(parents=True, exist_ok=True)
            results.append(redact_file(f, None if check else dst, red).to_dict())
        except WriteError as exc:  # a full disk or a size limit midway: the work failed (1), naming the copy
            done = f"; copies already written stay: {', '.join(r['out'] for r in results)}" if results else ""
            fail(f"redact stopped: {exc.filename}: cannot be written ({exc.strerror}); no partial copy is left "
                 f"under that name{done}", EXIT_FAILED)
        except OSError as exc:
            fail(f"{f}: {exc}")
    total = sum(r["findings_total"] for r in results)
    ok = not (check and total)  # a --check that found something fails; redacting what it found does not
    summary = {"policy": red.policy, "files": results, "findings_total": total, "check": check, "ok": ok}
    if json_out:
        print_json(summary)
    else:
        for r in results:
            kinds = ", ".join(f"{k}×{sum(v.values())}" for k, v in r["findings"].items()) or "nothing found"
            typer.echo(f"{r['file']}: {r['lines']} lines, {kinds}" + (f" → {r['out']}" if r["out"] else ""))
            if "not_json_lines" in r:
                bad = r["not_json_lines"]
                typer.echo(f"  {bad['lines']} line{'s are' if bad['lines'] > 1 else ' is'} no JSON record, redacted as text: "
                           + ", ".join(map(str, bad["first"])) + (", ..." if bad["lines"] > len(bad["first"]) else ""))
    raise typer.Exit(0 if ok else 1)


@app.command("export")
def export_cmd(
    traces: Annotated[Path, typer.Argument(help="Trace root (or one run directory).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key.sub=value overrides.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Parent folder; the bundle is <out>/<bundle_id>.")] = Path("bundles"),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes that check, redact and render "
                                         "runs (the bundle is the same for any number).")] = 1,
    cache: Annotated[Path | None, typer.Option("--cache", help="Cache of built runs: runs unchanged since an "
                                               "earlier export with this folder are not checked, redacted and "
                                               "rendered again (the bundle is the same).")] = None,
) -> None:
    """Curate traces (redaction, quality, dedup, family split) into a content-addressed bundle.

    Exits 1 when a check fails (no run accepted, no row in any view, split leakage, counts that do not reconcile,
    too many quarantined runs; a class-balance floor only with ``balance.fail=true``); the bundle
    and its report are written either way. Exits 2, writing nothing, on a config error (a bad
    override or value, a ``corrections.file`` or ``tools.schemas_file`` that cannot be read, a
    ``feedback.ledger`` that does not exist, a ``--cache`` that cannot be created).
    """
    from tracebridge.export.config import ExportConfig
    from tracebridge.export.labels import FeedbackUnavailable, feedback_source
    from tracebridge.export.pipeline import export_traces

    check_trace_root(traces)
    nested = _nested_roots(traces)
    cfg = _load(ExportConfig, config, overrides or [])
    make_out_dir(out)  # a folder that cannot be made: exit 2 now, not exit 1 after the whole export
    try:
        with progress_bar("export", "runs", json_out) as progress:
            res = export_traces(traces, out, cfg, labels_for_run=feedback_source(cfg.feedback), progress=progress,
                                workers=workers, cache_dir=cache)
    except (FeedbackUnavailable, ValueError) as exc:  # set-up errors (a run's bad data is quarantined instead):
        # corrections.file, tools.schemas_file or the feedback files unreadable, a --cache that cannot be created
        fail(str(exc))
    except OSError as exc:  # a root or --out folder that cannot be read or written, a full disk: the path says which
        fail(f"export stopped, nothing published: {exc}", EXIT_FAILED)
    s = res.summary()
    if nested:
        s["nested_runs_not_read"] = sum(n for _, n in nested)
    if json_out:
        print_json(s)
    else:
        _echo_summary(s)
    raise typer.Exit(0 if s["passed"] else 1)


def _nested_roots(traces: Path) -> list[tuple[Path, int]]:
    """The sub-folders of ``traces`` that hold run folders (``reader.nested_roots``): their runs are not
    exported. With no run of its own the root is the wrong folder: exit 2 naming them (before, exit 1 "no
    runs found" and an empty bundle written); beside runs of its own, a warning on stderr (and
    ``nested_runs_not_read``)."""
    from tracebridge.capture.reader import iter_runs, nested_roots

    nested = nested_roots(traces)
    if not nested:
        return []
    where = ", ".join(f"{folder} ({n} runs)" for folder, n in nested[:5]) + (" ..." if len(nested) > 5 else "")
    if next(iter_runs(traces), None) is None:
        fail(f"{traces}: no run folder directly under it; its sub-folders hold runs: {where}. Export each "
             "sub-folder (a trace root holds run folders directly)")
    typer.echo(f"warning: {traces}: runs in sub-folders are not exported: {where}", err=True)
    return nested


def _echo_summary(s: dict[str, Any]) -> None:
    """The export summary (``ExportResult.summary``) as text."""
    c = s["counts"]
    typer.echo(f"bundle {s['bundle_id']}\n  {s['path']}")
    typer.echo(f"  runs read {c['read']} = accepted {c['accepted']} + quarantined {c['quarantined']}; "
               f"exported {c['exported']}, duplicates {c['duplicates']}")
    if c["quarantined"]:
        typer.echo("  quarantined by rule: " + ", ".join(f"{k} {n}" for k, n in s["quarantine"]["by_rule"].items())
                   + f" (see {s['quarantine']['file']}: run, rule, file:line:field)")
    if c.get("runs_with_dropped_events"):
        typer.echo(f"  events dropped at capture: {c['events_dropped']} in {c['runs_with_dropped_events']} run(s) "
                   "(rule events_dropped: quarantined unless in quality.allow, then rows carry "
                   "meta.labels.events_dropped)")
    for view, splits in s["rows"].items():
        typer.echo(f"  {view}: " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    typer.echo(f"  governance: pii_scan={s['data_governance'].get('pii_scan')}")
    if not s["class_balance_passed"]:
        typer.echo("  class balance below its floors (report.json class_balance.checks): "
                   + "; ".join(s["class_balance_failures"]))
    if "corrections" in s:
        k = s["corrections"]
        typer.echo(f"  corrections: {k['lines_read']} lines = {k['applied']} applied + {k['unmatched']} unmatched "
                   f"+ {k['quarantined']} quarantined (report.json corrections)")
    if "feedback" in s:
        f = s["feedback"]
        typer.echo(f"  feedback: {f['runs_labelled']} of {f['runs_exported']} exported runs labelled, "
                   f"{f['events_labelled']} events (report.json feedback)")
        lost = f.get("runs_labelled_not_exported") or {}
        if any(lost.values()):
            typer.echo(f"  feedback: labelled runs not exported (labels in no row): {lost['quarantined']} "
                       f"quarantined, {lost['duplicates']} duplicates")
    if "rows_trimmed" in s:
        typer.echo("  rows trimmed to budgets: " + ", ".join(f"{k} {v}" for k, v in s["rows_trimmed"].items())
                   + " (report.json views.rows_trimmed)")
    if "tool_outputs" in s:
        t = s["tool_outputs"]
        typer.echo(f"  tool outputs cut to {t['max_chars']} characters: {t['cut']}, {t['chars_cut']} characters "
                   "cut (report.json views.tool_outputs; views.tool_output_max_chars=0 keeps them whole)")
    if "cache" in s:
        typer.echo(f"  cache: {s['cache']['hits']} runs reused, {s['cache']['misses']} built")
    typer.echo("PASS" if s["passed"] else "FAIL: " + "; ".join(s["failures"]))


@app.command()
def push(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (or an export --out folder with one bundle).")],
    uri: Annotated[str, typer.Argument(help="Destination prefix: file:///..., s3://bucket/prefix, gs://...")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides of the storage config.")] = None,
    config: StorageConfigOpt = None,
    json_out: JsonOpt = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes that scan the bundle's rows "
                                         "before it leaves (each takes a share of the runs).")] = 1,
) -> None:
    """Publish a verified, redacted bundle (files first, manifest last); a copy already there is checked
    (verify_remote=size|sha256) and what is missing or different is sent again. Exit 1 when refused
    (unverified, unredacted), 2 for a bad bundle folder or a storage that cannot be opened (mistyped URI, no
    credentials), 3 when it cannot be reached after retry.attempts tries."""
    from tracebridge.export.bundle import BundleError
    from tracebridge.export.config import StorageConfig
    from tracebridge.export.push import push_bundle
    from tracebridge.export.storage import (
        PushRefused,
        StorageError,
        StorageUnreachable,
        check_uri,
        resolve_bundle_dir,
    )

    cfg = _load(StorageConfig, config, overrides or [])
    try:
        resolve_bundle_dir(bundle)  # no bundle there (a missing path, none or several): a usage error
        check_uri(uri)  # an empty or mistyped URI: before the bundle is verified and its rows scanned
    except (BundleError, StorageError) as exc:
        fail(str(exc))
    try:
        with progress_bar("push", "rows checked", json_out) as progress:
            res = push_bundle(bundle, uri, cfg, progress, workers)
    except PushRefused as exc:
        fail(str(exc), EXIT_FAILED)
    except StorageUnreachable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except StorageError as exc:
        fail(str(exc))
    if json_out:  # ok and exit_code, as every failure's JSON (fail) and pull's have them
        print_json(res | {"ok": True, "exit_code": 0})
    else:
        for r in res["repaired"]:
            typer.echo(f"sent again: {r['path']} ({r['problem']})")
        typer.echo(f"{res['status']}: {res['uri']} ({res['files']} files, {res['bytes']} bytes; "
                   f"remote copy checked by {res['verified']})")


@app.command()
def fetch(
    uri: Annotated[str, typer.Argument(help="A published bundle, or a prefix with a LATEST pointer.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides of the storage config.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Parent folder; the bundle is <out>/<bundle_id>.")] = Path("bundles"),
    config: StorageConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Download a bundle and verify every sha256. Exit 1 when verification fails, 2 when nothing is published
    there or the storage cannot be opened (mistyped URI, no credentials), 3 when it cannot be reached after
    retry.attempts tries."""
    from tracebridge.export.bundle import BundleError
    from tracebridge.export.config import StorageConfig
    from tracebridge.export.storage import StorageError, StorageUnreachable, fetch_bundle

    cfg = _load(StorageConfig, config, overrides or [])
    try:
        path, man = fetch_bundle(uri, out, cfg)
    except BundleError as exc:
        fail(str(exc), EXIT_FAILED)
    except StorageUnreachable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except StorageError as exc:
        fail(str(exc))
    res = {"bundle_id": man.bundle_id, "path": str(path), "files": len(man.files), "verified": True, "ok": True,
           "exit_code": 0}
    if json_out:
        print_json(res)
    else:
        typer.echo(f"fetched and verified {man.bundle_id} → {path}")
