"""Simulator commands: ``collect`` runs a collection matrix of benchmark episodes into traces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracebridge.cli.app import (
    EXIT_LOCKED,
    app,
    config_errors,
    fail,
    make_out_dir,
    print_json,
    progress_bar,
)

LOCK = ".collect.lock"  # in the trace root, with its holder note (.collect.lock.holder) while a collection runs


class CollectLocked(RuntimeError):
    """Another collection into the same trace root is running (the message names it)."""


@app.command()
def collect(
    config: Annotated[Path, typer.Argument(help="A YAML under configs/collect/.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key.sub=value overrides.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Trace root (default: the config's out).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Run families × mixes × failures × seeds in the simulator and write schema-v2 traces.

    Prints the class balance (verdict shares, failure → recovery share, success rate); exits 1
    when a check of the config's ``checks`` block fails, 2 on a config error or an ``--out`` it
    refuses (before any episode runs), 3 while another collection into the same ``--out`` runs
    (named by its pid and command; nothing collected). A rerun into the same ``--out`` (after a kill, say) resumes: the
    episodes it finished are kept, not run again; those it left unfinished are run again, their
    partial runs moved to ``<out>/.collect.interrupted/`` and removed once their episodes are collected
    again (``--json``: ``interrupted_removed``, ``interrupted_left``). Every run is redacted as it is written
    (``capture.redact=true``, pass 1 at capture; session.json records it).
    """
    from tracebridge.config import load_config
    from tracebridge.ops.locks import run_lock
    from tracebridge.sim.collect import collect as run_collect
    from tracebridge.sim.config import CollectConfig
    from tracebridge.sim.resume import SettingsChanged

    with config_errors():
        cfg = load_config(CollectConfig, config, overrides or [])
    root = out or Path(cfg.out)
    make_out_dir(root)  # the folder, or one above it, a file: a NotADirectoryError traceback after the work
    try:  # one collection at a time into a root: two at once both passed the check below and wrote every episode twice
        with run_lock(root / LOCK, f"another collect into {root} is running", 0, CollectLocked):
            _check_out(root, cfg)
            with progress_bar("collect", cfg.name, json_out) as progress:
                summary = run_collect(cfg, str(out) if out else None, progress)
    except CollectLocked as exc:
        fail(f"{exc}; nothing was collected: try again when it ends", EXIT_LOCKED)
    except SettingsChanged as exc:  # before any episode ran: a usage error
        fail(str(exc), 2)
    if json_out:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)
    raise typer.Exit(0 if summary.passed else 1)


def _check_out(root: Path, cfg: object) -> None:
    """Refuse (exit 2) a trace root that already holds runs of the same episodes its collection
    ledger does not list (written by a collect that kept none, or copied in): a pass would write
    them twice. Those the ledger lists are resumed instead (``tracebridge.sim.resume``)."""
    from tracebridge.sim.collect import earlier_runs
    from tracebridge.sim.resume import read_ledger

    done, partial = earlier_runs(root, cfg)  # type: ignore[arg-type]
    listed = read_ledger(root)[0]
    done, partial = [d for d in done if Path(d).name not in listed], [d for d in partial if Path(d).name not in listed]
    if done:
        fail(f"--out {root}: already holds {len(done)} complete run(s) of these episodes (e.g. {done[0]})"
             + (f" and {len(partial)} incomplete run(s) (an interrupted collection)" if partial else "")
             + "; collecting again would write them twice. Use a new --out, or remove the folder to start over")


def _print_summary(s: object) -> None:
    from rich.console import Console
    from rich.table import Table

    d = s.to_dict()  # type: ignore[attr-defined]
    t = Table(title=f"tracebridge collect → {d['out']}", show_header=False)
    shares = d["verdict_shares"]
    rows = [
        ("episodes", f"{d['episodes']} in {d['seconds']:.1f} s ({d['episodes_per_s']:.1f}/s)"),
        ("verdicts continue / replan / end",
         f"{shares['continue']:.1%} / {shares['replan']:.1%} / {shares['end']:.1%}  ({sum(d['verdicts'].values())})"),
        ("expected verdicts (ground truth)", " / ".join(f"{v:.1%}" for v in d["expected_verdict_shares"].values())),
        ("verifier accuracy vs ground truth", f"{d['verifier_accuracy']:.1%}"),
        ("failure → recovery episodes", f"{d['recovery_share']:.1%} ({d['recovery_episodes']})"),
        ("success rate", f"{d['success_rate']:.1%}"),
        ("failure classes", ", ".join(f"{k}×{v}" for k, v in sorted(d["failure_classes"].items()))),
        ("event types missing", ", ".join(d["missing_event_types"]) or "none"),
        ("invalid outputs / crashed / capture errors", f"{d['invalid_outputs']} / {d['crashed']} / {d['capture_errors']}"),
    ]
    if d["resumed"] or d["set_aside"]:  # a rerun after an interruption: the rate is of the episodes run now
        resumed = (f"{d['resumed']} collected by an earlier pass, {d['episodes'] - d['resumed']} run now; "
                   f"{len(d['set_aside'])} interrupted run(s) moved to .collect.interrupted/")
        rows.insert(1, ("resumed", resumed))
    if d["interrupted_removed"] or d["interrupted_left"]:
        aside = (f"{len(d['interrupted_removed'])} run(s) removed (their episodes collected again), "
                 f"{len(d['interrupted_left'])} left (their episodes not collected since)")
        rows.insert(2 if d["resumed"] or d["set_aside"] else 1, (".collect.interrupted/", aside))
    for k, v in rows:
        t.add_row(k, v)
    con = Console()
    con.print(t)
    for fam, f in d["by_family"].items():
        con.print(f"  {fam}: {f['episodes']} episodes, success {f['success_rate']:.1%}, "
                  f"recovery {f['recovery_share']:.1%}")
    con.print("[green]PASS[/]" if s.passed else f"[red]FAIL[/]: {'; '.join(d['failed_checks'])}")  # type: ignore[attr-defined]
