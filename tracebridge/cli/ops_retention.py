"""``tracebridge shadow-prune``: retention (``shadow.retention``: daily cycles, weekly bundles, phase-2
trial folders) on demand.

The cycle prunes at its end already; this command runs the same rules by hand, or lists them
(``--dry-run``) before a setting changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracebridge.cli.app import EXIT_FAILED, EXIT_LOCKED, app, fail, print_json
from tracebridge.cli.ops import OPS_CONFIG, JsonOpt, Overrides, _ops_config, config_name


def human_bytes(n: int) -> str:
    """``1536`` → ``1.5 KiB``."""
    size, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"


@app.command("shadow-prune")
def shadow_prune(
    config: Annotated[Path, typer.Option(help="Ops config (configs/ops/shadow.yaml).")] = OPS_CONFIG,
    overrides: Overrides = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove older shadow cycles' bundles, model weights and caches, crashed cycles' folders, older
    weekly bundles and phase-2 trial folders, per shadow.retention; every manifest, report and audit
    stays (--json: ok true iff exit 0). Exit 1 if something could not be removed, 3 while a cycle is running (a dry run too: a
    running cycle's files look old)."""
    from tracebridge.ops.artifacts import check_folders
    from tracebridge.ops.cycle import CycleLocked
    from tracebridge.ops.retention import prune

    cfg = _ops_config(config, overrides)
    try:  # a file there or above it: prune reads and removes under it
        check_folders([("shadow.work_dir", cfg.shadow.work_dir), ("artifacts_dir", cfg.artifacts_dir)])
    except ValueError as exc:
        fail(str(exc))
    try:
        rep = prune(cfg, dry_run=dry_run, config_name=config_name(config, overrides))
    except CycleLocked as exc:
        fail(str(exc), EXIT_LOCKED)
    code = EXIT_FAILED if rep.failed or rep.problems else 0
    out = {"ok": code == 0, **rep.to_dict()}  # as the other ops commands' summaries: a script checks ok
    if json_out:
        print_json(out)
    else:
        verb = "would remove" if dry_run else "removed"
        for it in rep.items:
            done = verb if dry_run or it.removed else "FAILED"
            typer.echo(f"{done:<12} {human_bytes(it.bytes):>10}  {it.kind:<15} {it.path}  ({it.reason})"
                       + (f": {it.error}" if it.error else ""))
        for p in rep.pinned:
            typer.echo(f"{'kept':<12} {'':>10}  {'pinned':<15} {p}  (named in {rep.pinned_by.get(p, 'a pin')})")
        for p in rep.problems:
            typer.echo(f"problem: {p}")
        total = out["bytes_planned"] if dry_run else out["bytes_freed"]
        typer.echo(f"{verb} {len(rep.items) - len(rep.failed)} folders, {human_bytes(total)}"
                   + (f"; {len(rep.failed)} could not be removed" if rep.failed else "")
                   + f"; kept the newest {len(rep.kept_cycles)} cycles' bundles and models")
    raise typer.Exit(code)
