"""``tracebridge report``: trial folders → results.json + report.html + manifest.json (failed trials listed
with their reasons), or ``--verify`` a report folder's hashes. Heavy imports live inside the function."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracebridge.cli.app import app, fail, out_dir_problem, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable summary.")]


def check_folders(dirs: list[Path], what: str) -> None:
    """Exit 2 naming each of ``dirs`` that does not exist or is a file: a path typed wrong is a usage error,
    not a report that fails its check (1), nor "no trial.json under" a folder that is not there."""
    bad = [f"{d} does not exist" if not d.exists() else f"{d} is a file, not a folder" for d in dirs if not d.is_dir()]
    if bad:
        fail(f"{what}: " + "; ".join(bad), problems=bad)


def _verify(report_dirs: list[Path], json_out: bool) -> None:
    """``report --verify``: check each report folder's manifest hashes; exit 1 on any problem."""
    from tracebridge.report import verify_report

    check_folders(report_dirs, "report --verify: no such report folder")
    probs = [p for d in report_dirs for p in verify_report(d)]
    if json_out:
        print_json({"ok": not probs, "problems": probs})
    else:
        typer.echo("\n".join(probs) or "report verifies")
    raise typer.Exit(1 if probs else 0)


@app.command()
def report(
    trial_dirs: Annotated[list[Path], typer.Argument(help="Trial folders (with trial.json), or roots to search.")],
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("report"),
    verify: Annotated[bool, typer.Option("--verify", help="Only verify the manifest of the report folder(s) given.")] = False,
    n_boot: Annotated[int | None, typer.Option(help="Bootstrap resamples (>= 100); default: the trials' eval.n_boot.")] = None,
    ci: Annotated[float | None, typer.Option(help="Interval coverage in [0.5, 1); default: the trials' eval.ci.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write results.json + report.html + manifest.json from trial folders (failed trials are listed with their
    reasons); with ``--verify``, check a report folder's hashes. Intervals use the trials' own ``eval.n_boot``
    and ``eval.ci`` (1000 and 0.95 when they recorded none) unless ``--n-boot``/``--ci`` say otherwise. Exit 1
    on a problem found or when any trial failed (the report of the finished trials and of the failures is written,
    as ``train`` exits 1 for a failed trial), 2 for a folder that does not exist, trial folders that cannot make a
    report or trials evaluated with different settings and no option choosing one."""
    from tracebridge.report import write_report
    from tracebridge.report.trials import (
        find_trials,
        interval_settings,
        load_trial_files,
        runs_wall,
    )

    if verify:
        _verify(trial_dirs, json_out)
    bad = ([f"--n-boot {n_boot}: use >= 100 resamples"] if n_boot is not None and n_boot < 100 else []) + (
        [f"--ci {ci}: must be in [0.5, 1)"] if ci is not None and not 0.5 <= ci < 1 else [])
    if bad:
        fail("; ".join(bad), problems=bad)
    check_folders(trial_dirs, "report: no such trial folder")
    files, failed = find_trials(trial_dirs)
    if not files and not failed:  # trials that all failed still make a report: of their failures (exit 1)
        fail(f"no trial.json under {', '.join(map(str, trial_dirs))} (nor a failed trial's trial_failed.json)",
             failed=failed)
    trials, probs = load_trial_files(files)
    n_boot, ci, differ = interval_settings(files, n_boot, ci)
    probs += differ
    if problem := out_dir_problem(out):
        probs.append(problem)
    if probs:
        fail(f"{len(probs)} problem(s) in the trial folders, no report written:\n  " + "\n  ".join(probs),
             problems=probs)
    wall_s, wall_source = runs_wall(trials)
    manifest = write_report(trials, out, config={"trials": [str(f) for f in files]}, wall_s=wall_s,
                            wall_source=wall_source, failed=failed, n_boot=n_boot, ci=ci)
    summary = {"report": str(out / "report.html"), "trials": len(trials), "winners": manifest.get("winners"),
               "report_id": manifest["report_id"], "wall_s": wall_s, "wall_s_source": wall_source, "failed": failed,
               "failed_trials": len(failed)}
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"{summary['report']}  ({len(trials)} trials finished, {len(failed)} failed)  "
                   f"winners: {summary['winners']}")
        for f in failed:  # listed in results.json failed_trials, with no result
            typer.echo(f"failed trial {f['trial_dir']}: {f['error']}", err=True)
        if wall_s is None and trials:
            typer.echo(f"wall time {wall_source}", err=True)
    if failed or not trials:  # as `train` and a sweep: the report is written, and a trial failed (or none ran)
        raise typer.Exit(1)
