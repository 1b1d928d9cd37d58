"""Cadence commands of the ``ops`` group: ``install-schedule``, ``monthly-review``, ``weekly``."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from tracebridge.cli.app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    check_out_dir,
    fail,
    print_json,
    sigterm_as_interrupt,
    step_command,
)
from tracebridge.cli.ops import (
    MONTHLY_CONFIG,
    JsonOpt,
    Overrides,
    _agreeing_config,
    ops_app,
)


@ops_app.command("install-schedule")
def install_schedule(
    kind: Annotated[str, typer.Option(help="systemd (user timers) | cron.")] = "systemd",
    install: Annotated[bool, typer.Option("--install", help="Install instead of printing.")] = False,
    enable: Annotated[bool, typer.Option("--enable", help="systemd: also run systemctl --user enable --now.")] = False,
    workdir: Annotated[Path | None, typer.Option(help="Checkout the jobs run in (default: cwd).")] = None,
    bin_: Annotated[str | None, typer.Option("--bin", help="tracebridge executable (default: next to python).")] = None,
    unit_dir: Annotated[Path, typer.Option(help="Where systemd user units go.")] = Path("~/.config/systemd/user"),
    json_out: JsonOpt = False,
) -> None:
    """Print (default) or install the daily/weekly/monthly schedule from infra/systemd or infra/cron;
    exit 2 on a bad --workdir/--bin or a program the install needs missing (``crontab``; ``systemctl`` with
    --enable: nothing written), 1 when installing or enabling fails."""
    import subprocess

    from tracebridge.ops.schedule import (
        CRON_MISSING,
        SYSTEMCTL_MISSING,
        MissingProgram,
        ScheduleError,
        cron_lines,
        default_bin,
        enable_commands,
        install_cron,
        install_systemd,
        require_program,
        systemd_units,
    )

    wd = (workdir or Path.cwd()).resolve()
    exe = bin_ or default_bin()
    if kind not in ("systemd", "cron"):
        fail(f"--kind {kind}: use systemd or cron")
    if install and kind == "systemd":  # a file there or above it: was a FileExistsError traceback, exit 1
        check_out_dir(unit_dir.expanduser(), "--unit-dir")
    try:  # a relative or unsafe --workdir/--bin, a checkout without infra/, a missing program: nothing written yet
        files = systemd_units(wd / "infra", str(wd), exe) if kind == "systemd" else \
            {"crontab": cron_lines(wd / "infra", str(wd), exe)}
        if install and kind == "cron":
            require_program("crontab", CRON_MISSING)
        elif install and enable:  # else the units were written, then systemctl was a FileNotFoundError traceback
            require_program("systemctl", SYSTEMCTL_MISSING)
    except ScheduleError as exc:
        fail(str(exc))
    written: list[str] = []
    try:
        if install and kind == "systemd":
            written = [str(p) for p in install_systemd(files, unit_dir.expanduser())]
        elif install:
            install_cron(files["crontab"])
            written = ["crontab"]
    except MissingProgram as exc:  # gone since the check above: still a setup error, the crontab untouched
        fail(str(exc))
    except ScheduleError as exc:
        fail(str(exc), EXIT_FAILED)
    cmds = enable_commands() if kind == "systemd" else []
    if install and enable and kind == "systemd":
        for c in cmds:
            res = subprocess.run(c, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                fail(f"{' '.join(c)}: {res.stderr.strip()}", EXIT_FAILED)
    if json_out:
        print_json({"kind": kind, "installed": written, "files": files, "enable": [" ".join(c) for c in cmds]})
        return
    if not install:
        for name, text in files.items():
            typer.echo(f"# ---- {name}\n{text}")
    for w in written:
        typer.echo(f"installed {w}")
    if kind == "systemd" and not enable:
        typer.echo("enable with:\n  " + "\n  ".join(" ".join(c) for c in cmds))


def _last_month() -> str:
    first = dt.datetime.now(dt.UTC).replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


@ops_app.command("monthly-review")
def monthly_review(
    config: Annotated[Path | None, typer.Option(help="Ops config with the monthly block.")] = MONTHLY_CONFIG,
    overrides: Overrides = None,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: last month).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for monthly-<YYYY-MM>.json and .md.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Reaction distribution drift, unmapped emojis and proposed mapping changes for a month; exit 2
    when monthly.ledger does not exist, 1 (the report still written) when no ledger row of the month or
    the one before could be used. A rule with fewer than monthly.min_rows ledger rows in one of its months
    (``rules``: "needs 2 months of at least 5 ledger rows, has 1: ...") is not evaluated and proposes
    nothing; that alone does not change the exit."""
    import orjson

    from tracebridge.capture.writer import write_atomic
    from tracebridge.ops.agreement import MONTHLY_KEYS
    from tracebridge.ops.artifacts import check_input_files
    from tracebridge.ops.monthly import monthly_review as do_review
    from tracebridge.ops.monthly_page import to_markdown

    cfg = _agreeing_config(config, overrides, MONTHLY_KEYS).monthly
    if out is not None:  # a file there, or above it: was a NotADirectoryError traceback after the review
        check_out_dir(out)
    try:  # the ledger is the review's input: a missing one would review an empty month (the mapping
        check_input_files([("monthly.ledger", cfg.ledger)])  # may be absent: the built-in defaults)
    except ValueError as exc:
        fail(f"{config}: {exc}")
    try:
        rep = do_review(cfg.ledger, cfg.mapping, month or _last_month(), cfg.min_count, cfg.drift_alpha, cfg.min_rows)
    except ValueError as exc:
        fail(str(exc))
    md, m = to_markdown(rep), rep["month"]
    files = {"json": str(out / f"monthly-{m}.json"), "markdown": str(out / f"monthly-{m}.md")} if out else None
    if files is not None:  # atomic: a crash never leaves a half report beside a whole one
        out.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        write_atomic(Path(files["json"]), orjson.dumps(rep, option=orjson.OPT_INDENT_2))
        write_atomic(Path(files["markdown"]), md.encode())
    if json_out:  # with where the report went, as feedback audit gives it (the written JSON is the report alone)
        print_json({**rep, "files": files})
    else:
        sys.stdout.write(md)
    if rep["problem"]:
        typer.echo(f"error: {rep['problem']}", err=True)
        raise typer.Exit(EXIT_FAILED)


@ops_app.command("weekly")
def weekly(
    config: Annotated[Path, typer.Option(help="Ops config with the weekly block.")] = Path("configs/ops/weekly.yaml"),
    overrides: Overrides = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; run nothing.")] = False,
    bin_: Annotated[str | None, typer.Option("--bin", help="tracebridge executable for the steps.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Export last week's runs, push the bundle, sweep it in a GPU window; exit 0 without doing anything when this
    window's run already finished ok (weekly.min_interval_h: status skipped, the reason printed), 1 if a step fails,
    3 if another weekly run holds <bundles_dir>/.weekly.lock, 130 when interrupted (Ctrl-C, SIGTERM:
    the running step's process group is stopped)."""
    from tracebridge.ops.agreement import WEEKLY_KEYS
    from tracebridge.ops.weekly import WeeklyLocked, run_weekly

    cfg = _agreeing_config(config, overrides, WEEKLY_KEYS).weekly
    exe = step_command(bin_)
    try:
        with sigterm_as_interrupt():
            man = run_weekly(cfg, Path(cfg.artifacts_dir), exe, dry_run=dry_run)
    except ValueError as exc:  # a wrong path, found before anything ran
        fail(f"{config}: {exc}", 2)
    except WeeklyLocked as exc:  # nothing was started: try again once the holder has finished
        fail(str(exc), EXIT_LOCKED)
    except KeyboardInterrupt as exc:
        fail(f"weekly run interrupted ({exc or 'SIGINT'}): its running step was stopped; "
             "no manifest was written", EXIT_INTERRUPTED)
    if json_out:
        print_json(man)
    elif man.get("skip"):  # this window's run already finished ok: said, not a failure (cron mails no false alarm)
        typer.echo(f"{'would skip' if dry_run else 'SKIPPED'}: {man['skip']}")
    else:
        typer.echo(f"window: {man['since']} .. {man['until']}, from {man['window_start']}")
        for line in man["plan"]:
            typer.echo(("plan: " if dry_run else "") + line)
        fb = man["feedback"]
        typer.echo(f"feedback labels: joined from {fb['ledger']}" if fb["labels"] else f"feedback labels: none ({fb['note']})")
        for name, st in man["steps"].items():
            typer.echo(f"{name}: {st['status']}" + (f" ({st.get('reason')})" if st.get("reason") else ""))
        if not dry_run:
            typer.echo(f"{man['status'].upper()}; manifest {man.get('manifest')}")
    raise typer.Exit(0 if dry_run or man["status"] in ("ok", "skipped") else 1)


@ops_app.command("phase2-report")
def phase2_report(
    config: Annotated[Path | None, typer.Option(help="Ops config with the phase2 block.")] = Path("configs/ops/phase2.yaml"),
    overrides: Overrides = None,
    bundle: Annotated[Path | None, typer.Option(help="Bundle (default: phase2.bundle, else the replay bundle).")] = None,
    from_manifest: Annotated[Path | None, typer.Option(help="Re-run a report from its manifest.json and compare.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Phase-2 ablation over the fixed replay set naming a winner policy; exit 1 without a clear
    winner (or, with --from-manifest, when the numbers do not reproduce), 3 when another phase2-report
    holds <out_dir>/.phase2.lock (nothing trained nor written: try again)."""
    from tracebridge.ops import phase2 as p2
    from tracebridge.ops.agreement import PHASE2_KEYS
    from tracebridge.ops.locks import read_holder
    from tracebridge.train.data import BundleError

    cfg = _agreeing_config(config, overrides, PHASE2_KEYS)
    out = Path(cfg.phase2.out_dir)
    check_out_dir(out, "phase2.out_dir")  # a file there: a FileExistsError traceback once the bundle was checked
    try:
        if from_manifest is not None:
            res = p2.reproduce(from_manifest, out)
            if json_out:
                print_json(res)
            else:
                typer.echo(f"{'REPRODUCED' if res['reproduced'] else 'DIFFERENT'}: {res['rerun']} "
                           f"numbers {res['numbers_sha256'][:16]} vs {res['expected'][:16]}")
            raise typer.Exit(0 if res["reproduced"] else 1)
        src = bundle or (Path(cfg.phase2.bundle) if cfg.phase2.bundle else p2.latest_replay_bundle(cfg.shadow.work_dir))
        if src is None:
            fail(f"no bundle: give --bundle, set phase2.bundle, or run a shadow cycle first ({cfg.shadow.work_dir}/replay)")
        man = p2.phase2_report(cfg.phase2, src, out)
    except (ValueError, BundleError) as exc:
        fail(str(exc), 2)
    except p2.Phase2Locked as exc:  # a cron and a manual run at once: the second trains nothing
        lock = out / p2.PHASE2_LOCK
        fail(str(exc), EXIT_LOCKED, lock=str(lock), holder=read_holder(lock))
    if json_out:
        print_json(man)
    else:
        sys.stdout.write((Path(man["path"]) / "report.md").read_text())
        typer.echo(f"report: {man['path']}  (reproduce: tracebridge ops phase2-report --from-manifest "
                   f"{man['path']}/manifest.json)")
    raise typer.Exit(0 if man["winner"] else 1)
