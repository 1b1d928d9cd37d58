"""Operations commands: ``shadow-cycle``, ``review``, ``gate``, ``promote``, ``rollback`` and the
``ops`` group (``install-schedule``, ``policy``, ``monthly-review``, ``weekly``, ``phase2-report``;
``canary-status`` is in ``tracebridge.cli.ops_canary``).

Every command takes ``--json`` and exits 1 when what it checks fails (2 on bad input).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.cli.app import (
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    app,
    config_errors,
    fail,
    out_dir_problem,
    print_json,
    sigterm_as_interrupt,
    step_command,
    utc_option,
)

ops_app = typer.Typer(no_args_is_help=True, help="Operations: schedules, policy state, cadence reports.")
app.add_typer(ops_app, name="ops")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable summary.")]
Overrides = Annotated[list[str] | None, typer.Argument(help="key.sub=value config overrides.")]
OPS_CONFIG = Path("configs/ops/shadow.yaml")
GATE_CONFIG = Path("configs/gates/default.yaml")
CANARY_CONFIG = Path("configs/ops/canary.yaml")
MONTHLY_CONFIG = Path("configs/ops/monthly.yaml")


def _ops_config(path: Path | None, overrides: list[str] | None = None) -> Any:
    from tracebridge.config import load_config
    from tracebridge.ops.config import OpsConfig

    if path in (OPS_CONFIG, CANARY_CONFIG, MONTHLY_CONFIG) and not path.exists():
        path = None  # the default file is optional: schema defaults
    with config_errors():
        return load_config(OpsConfig, path, overrides or [])


def config_name(path: Path | None, overrides: list[str] | None) -> str:
    """How a message names a command's config: its file, and whether key=value overrides were given."""
    return f"{path}{' with the overrides given' if overrides else ''}"


def _agreeing_config(path: Path | None, overrides: list[str] | None, keys: tuple[str, ...]) -> Any:
    """``_ops_config``, or exit 2 before any work when a config of its ``agree_with`` names another place
    for one of ``keys`` (what the command reads; ``tracebridge.ops.agreement``)."""
    from tracebridge.config import ConfigError
    from tracebridge.ops.agreement import disagreements

    cfg = _ops_config(path, overrides)
    problems = []
    for other in cfg.agree_with:
        try:
            problems += disagreements(cfg, config_name(path, overrides), other, keys)
        except ConfigError as exc:
            problems += [f"agree_with: {p} (paths are from the working folder; agree_with=[] skips the check)"
                         for p in exc.problems]
    if problems:
        fail("\n".join(problems))
    return cfg


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for h in header:
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*r)
    Console(width=160).print(t)


def _mark(status: str | bool) -> str:
    s = {True: "pass", False: "fail"}.get(status, status) if isinstance(status, bool) else status
    return {"pass": "[green]PASS[/]", "fail": "[red]FAIL[/]", "not exercised": "[yellow]NOT EXERCISED[/]"}.get(str(s), str(s))


# --------------------------------------------------------------------------- canary gates


@app.command()
def gate(
    traces: Annotated[Path | None, typer.Option(help="Trace root of the canary period (arms from labels).")] = None,
    samples: Annotated[Path | None, typer.Option(help="JSONL of per-session samples instead of traces.")] = None,
    config: Annotated[Path, typer.Option(help="Gate config (configs/gates/*.yaml).")] = GATE_CONFIG,
    overrides: Overrides = None,
    since: Annotated[str | None, typer.Option(help="--traces only: runs started at/after this ISO timestamp (UTC if no offset).")] = None,
    baseline_policy: Annotated[str | None, typer.Option(help="Policy id of the baseline (default: from labels).")] = None,
    candidate_policy: Annotated[str | None, typer.Option(help="Policy id of the candidate (default: from labels).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the gate report here (input of promote --report).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Gate the canary slice against baseline: quality, cost, latency; exit 1 unless every gate passes."""
    from tracebridge.config import load_config
    from tracebridge.ops.config import GateConfig
    from tracebridge.ops.gates import evaluate_gates, write_gate_report
    from tracebridge.ops.samples import NOT_SAMPLES, collect_from_traces, load_samples_file
    from tracebridge.schema.canonical import format_ts

    if (traces is None) == (samples is None):
        fail("give exactly one of --traces ROOT or --samples FILE")
    if traces is not None and not traces.is_dir():
        fail(f"--traces {traces}: no such trace root (a folder of runs)")
    if samples is not None and not samples.is_file():
        fail(f"--samples {samples}: {'a folder' if samples.is_dir() else 'no such file'} (JSONL of per-session samples)")
    if samples is not None and since is not None:
        fail("--since filters runs by their start time: it applies to --traces only")
    if out is not None and out.is_dir():
        fail(f"--out {out}: is a folder; give the report's file name (e.g. {out / 'gate.json'})")
    if out is not None and not out.exists() and (problem := out_dir_problem(out)):  # was a traceback after the gate
        fail(problem)
    since_ts = format_ts(utc_option("--since", since)) if since is not None else None  # compared with start times as text
    with config_errors():  # only the default file may be absent (schema defaults); a named one that is missing is a typo
        cfg = load_config(GateConfig, None if config == GATE_CONFIG and not config.exists() else config,
                          overrides or [])
    ss = collect_from_traces(traces, since_ts) if traces is not None else load_samples_file(samples)  # type: ignore[arg-type]
    if samples is not None and not any(ss.by_arm.values()) and all(  # another file, or an empty one: exit 2, as
            s["reason"].startswith(NOT_SAMPLES) for s in ss.skipped):  # elsewhere (rows of bad values fail the gate)
        fail(f"--samples {samples}: " + (f"none of its {ss.read} lines is a per-session sample (first: "
             f"{ss.skipped[0]['where']}: {ss.skipped[0]['reason']})" if ss.skipped else "no line in it (JSONL of "
             "per-session samples, one object a line)"))
    try:
        policies = ss.policies({"baseline": baseline_policy, "candidate": candidate_policy})
    except ValueError as exc:
        fail(str(exc))
    rep = evaluate_gates(ss, cfg, policies)
    if out is not None:
        write_gate_report(rep, out)
    if json_out:  # the skipped sessions' places and reasons, as the text lists them (the report keeps counts)
        print_json({**rep.to_dict(), "report_path": str(out) if out else None, "skipped": ss.skipped[:50]})
    else:
        _table(f"tracebridge gate: {policies['candidate']} vs {policies['baseline']} (report {rep.report_id})",
               ["gate", "status", "candidate", "baseline", "threshold", "evidence"],
               [[c.name, _mark(c.status), str(c.candidate), str(c.baseline), c.threshold, c.reason]
                for c in rep.checks])
        for s in ss.skipped[:20]:
            typer.echo(f"skipped {s['where']}: {s['reason']}")
        if len(ss.skipped) > 20:  # the 20 listed read as all of them
            typer.echo(f"... and {len(ss.skipped) - 20} more skipped ({len(ss.skipped)} in all; --json lists 50)")
        typer.echo(f"{'PASS' if rep.passed else 'FAIL'}" + (f"; report written to {out}" if out else ""))
    raise typer.Exit(0 if rep.passed else 1)


# --------------------------------------------------------------------------- promotion


def _state(config: Path | None, state: Path | None, **details: Any) -> Any:
    """The policy state of ``--state`` (else the config's ``promotion.state_dir``); exit 2 with ``details`` (the
    command's own ``--json`` fields) when that path is a file: a usage error, not a history that fails its check."""
    from tracebridge.ops.promotion import PolicyState, PromotionError

    cfg = _ops_config(config) if state is None or (config is not None and config.exists()) else None
    st = PolicyState(state if state is not None else Path(cfg.promotion.state_dir),
                     **({"lock_timeout_s": cfg.promotion.lock_timeout_s} if cfg is not None else {}))
    try:
        st.check_root()
    except PromotionError as exc:
        fail(str(exc), 2, **details)
    return st


@app.command()
def promote(
    report: Annotated[Path, typer.Option("--report", help="Gate report written by tracebridge gate --out.")],
    config: Annotated[Path | None, typer.Option(help="Ops config with the promotion block (the canary's).")] = CANARY_CONFIG,
    state: Annotated[Path | None, typer.Option(help="Policy state folder (overrides the config).")] = None,
    allow_stale: Annotated[bool, typer.Option(help="Accept a report gated against another baseline.")] = False,
    note: Annotated[str, typer.Option(help="Free text stored in the record.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Make the gated candidate the active policy (needs a gate pass); record it atomically. Exit 1 when
    refused (the gate failed; a stale or used report), 2 when --report is no gate report (not JSON: its line), 3
    when another change held the policy lock past promotion.lock_timeout_s (nothing changed: try again)."""
    from tracebridge.ops.promotion import NotAGateReport, PolicyLocked, PromotionError
    from tracebridge.ops.promotion import promote as do_promote

    if not report.is_file():  # a missing input is a usage error (README "Exit codes"), not a refused gate
        what = f"{report}: {'a folder' if report.is_dir() else 'no such file'}"
        fail(f"--report {what} (the gate report of tracebridge gate --out)", 2, promoted=False, reason=what)
    st = _state(config, state, promoted=False, reason="policy state path is not a folder")
    require = not allow_stale and (state is not None or _ops_config(config).promotion.require_baseline_match)
    try:
        rec = do_promote(st, report, require_baseline_match=require, note=note)
    except NotAGateReport as exc:  # bad input (was exit 1, as if a gate had refused it)
        fail(str(exc), 2, promoted=False, reason=str(exc))
    except PolicyLocked as exc:  # try again later (was exit 1, as if the gate report had been refused)
        fail(str(exc), EXIT_LOCKED, promoted=False, reason=str(exc))
    except PromotionError as exc:
        fail(str(exc), 1, promoted=False, reason=str(exc))
    if json_out:
        print_json({"promoted": True, "record": rec})
    else:
        typer.echo(f"promoted {rec['active_policy']} (previous {rec['previous_policy']}, record {rec['seq']}, "
                   f"report {rec['report_id']}); rollback: tracebridge rollback --state {st.root}")


@app.command()
def rollback(
    config: Annotated[Path | None, typer.Option(help="Ops config with the promotion block (the canary's).")] = CANARY_CONFIG,
    state: Annotated[Path | None, typer.Option(help="Policy state folder (overrides the config).")] = None,
    note: Annotated[str, typer.Option(help="Why (stored in the record).")] = "",
    allow_missing: Annotated[bool, typer.Option(help="Roll back to a policy whose folder (an absolute path id) is gone.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Restore the policy that was active before the current one, at once; exit 1 when there is none, or when
    its id is a folder that no longer exists (--allow-missing rolls back anyway), 3 when another change held the
    policy lock past promotion.lock_timeout_s (nothing changed: try again)."""
    from tracebridge.ops.promotion import PolicyLocked, PromotionError
    from tracebridge.ops.promotion import rollback as do_rollback

    st = _state(config, state, rolled_back=False, reason="policy state path is not a folder")
    try:
        rec = do_rollback(st, note=note, allow_missing=allow_missing)
    except PolicyLocked as exc:
        fail(str(exc), EXIT_LOCKED, rolled_back=False, reason=str(exc))
    except PromotionError as exc:
        fail(str(exc), 1, rolled_back=False, reason=str(exc))
    if json_out:
        print_json({"rolled_back": True, "record": rec})
    else:
        typer.echo(f"rolled back to {rec['active_policy']} (was {rec['previous_policy']}, record {rec['seq']})")


@ops_app.command("policy")
def policy(
    config: Annotated[Path | None, typer.Option(help="Ops config with the promotion block (the canary's).")] = CANARY_CONFIG,
    state: Annotated[Path | None, typer.Option(help="Policy state folder (overrides the config).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the active policy and verify the promotion history; exit 1 if it is inconsistent. A torn last
    line (a change killed mid-append) is shown as a note: it never took effect."""
    from tracebridge.ops.promotion import (
        PromotionError,
        active_outside_history,
        active_record,
        read_history,
        torn_tail,
        verify_history,
    )

    st = _state(config, state)
    try:
        hist = read_history(st)
    except PromotionError as exc:
        fail(str(exc), 1, active=None, records=None, problems=[str(exc)])
    torn = torn_tail(st)  # not a problem (it never took effect), but never silent: a change died
    problems = verify_history(hist)
    try:
        active = active_record(st)
    except PromotionError as exc:  # a folder blocks every change; a damaged file with no history cannot be repaired
        active = None
        problems.append(f"{exc}" + (" (repaired from the history by the next change)" if hist and st.active_path.is_file()
                                    else "; promote and rollback refuse until it is fixed"))
    if lost := active_outside_history(st, hist):  # history lost or cut: nothing repairs it, every change refuses
        problems.append(lost)
    elif hist and active is not None and active != hist[-1]:
        problems.append(f"{st.active_path}: differs from the last history record (repaired by the next change)")
    missing = None if st.root.is_dir() else (f"{st.root}: no policy state there (no promotion yet, or a mistyped "
                                             "--state / promotion.state_dir)")
    if json_out:
        print_json({"active": active, "records": len(hist), "problems": problems, "ok": not problems, "torn": torn,
                    "state_dir": str(st.root), "note": missing})
    else:
        typer.echo(f"active: {active.get('active_policy') if active else 'none'}; {len(hist)} records"
                   + (f"\nnote: {missing}" if missing else ""))
        for h in hist[-10:]:  # .get: a damaged record is listed as a problem below, not a crash here
            typer.echo(f"  {h.get('seq')!s:>4} {h.get('at')} {h.get('action')!s:<8} "
                       f"{h.get('previous_policy')} -> {h.get('active_policy')}")
        for p in problems:
            typer.echo(f"problem: {p}")
        if torn:
            typer.echo(f"note: {torn}")
    raise typer.Exit(1 if problems else 0)


# --------------------------------------------------------------------------- review


@app.command()
def review(
    days: Annotated[int | None, typer.Option(help="Days reviewed (default: review.days of the config).")] = None,
    config: Annotated[Path | None, typer.Option(help="Ops config (artifacts_dir, review block).")] = OPS_CONFIG,
    artifacts: Annotated[Path | None, typer.Option(help="Artifact folder (overrides the config).")] = None,
    now: Annotated[str | None, typer.Option(help="End of the window, ISO UTC (default: now).")] = None,
    overrides: Overrides = None,
    json_out: JsonOpt = False,
) -> None:
    """The 3-day review of the shadow cycles: pass, fail or not exercised per criterion with evidence;
    exit 1 unless every criterion passes."""
    from tracebridge.ops.review import review as do_review

    cfg = _ops_config(config, [*(overrides or []), *([f"review.days={days}"] if days is not None else [])])
    root = artifacts or Path(cfg.artifacts_dir)
    if root.exists() and not root.is_dir():
        fail(f"{root}: not a folder (artifacts_dir / --artifacts: the shadow cycles' artifact folder)")
    end = utc_option("--now", now) if now else None
    if end is not None:
        try:
            end - dt.timedelta(days=cfg.review.days)  # type: ignore[operator]
        except OverflowError:
            fail(f"--now {now}: too early for a {cfg.review.days}-day window (it would start before year 1)")
    rep = do_review(root, cfg.review, end, cfg.shadow.work_dir)
    if json_out:
        print_json(rep.to_dict())
    else:
        _table(f"tracebridge review --days {cfg.review.days} ({root}; {len(rep.cycles)} cycles in window)",
               ["criterion", "result", "evidence"], [[ln.criterion, _mark(ln.status), ln.evidence] for ln in rep.lines])
        by = {st: ", ".join(ln.criterion for ln in rep.lines if ln.status == st) for st in ("fail", "not exercised")}
        typer.echo("PASS: phase 1 exit criteria met" if rep.passed else "FAIL" + (f": {by['fail']} failed" if by["fail"] else "")
                   + (f" ({by['not exercised']} not exercised: nothing in the window shows them met)" if by["not exercised"] else ""))
    raise typer.Exit(0 if rep.passed else 1)


# --------------------------------------------------------------------------- shadow cycle


@app.command("shadow-cycle")
def shadow_cycle(
    config: Annotated[Path, typer.Option(help="Ops config (configs/ops/shadow.yaml).")] = OPS_CONFIG,
    overrides: Overrides = None,
    bin_: Annotated[str | None, typer.Option("--bin", help="tracebridge executable the steps call.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """One daily shadow cycle → artifacts/phase1-shadow/<UTC timestamp>/; exit 1 if a step failed,
    3 if another cycle is running, 130 when interrupted (Ctrl-C, SIGTERM: its child steps are stopped), 2
    before it on a setup its steps would fail on (an input path such as shadow.sources that is not there)."""
    from tracebridge.ops.cycle import CycleLocked, run_cycle
    from tracebridge.ops.shadow_steps import STEPS

    if not config.exists():
        fail(f"{config}: no such config")
    cfg = _ops_config(config, overrides)
    cli = step_command(bin_)
    try:
        with sigterm_as_interrupt():
            man = run_cycle(cfg, STEPS, cli, config_name=config_name(config, overrides))
    except CycleLocked as exc:
        fail(str(exc), EXIT_LOCKED)
    except ValueError as exc:  # a setup error found before anything is written
        fail(f"{config}: {exc}", 2)
    except KeyboardInterrupt as exc:
        fail(f"shadow cycle interrupted ({exc or 'SIGINT'}): its running steps were stopped and the lock released; "
             "its artifacts folder has no manifest.json (the review lists it as crashed)", EXIT_INTERRUPTED)
    if json_out:
        print_json({k: man[k] for k in ("cycle_id", "path", "status", "uplift", "integrity", "feedback", "retention")}
                   | {"steps": {n: {k: r[k] for k in ("status", "reason", "duration_s")} for n, r in man["steps"].items()}})
    else:
        _table(f"tracebridge shadow-cycle → {man['path']}", ["step", "status", "needs", "s", "reason"],
               [[n, _mark("pass" if r["status"] == "ok" else "fail" if r["status"] == "failed" else r["status"]),
                 ", ".join(r["needs"]), f"{r['duration_s']:.1f}", r["reason"][:200]] for n, r in man["steps"].items()])
        for n, r in man["steps"].items():  # a passed step's caveat, whole (the table cuts it)
            if r["status"] == "ok" and r["reason"]:
                typer.echo(f"note ({n}): {r['reason']}")
        up, opt = man.get("uplift") or {}, man["steps"].get("optimize") or {}
        typer.echo(f"{man['status'].upper()}; " + (f"uplift {up.get('metric')}: {up.get('uplift')}" if up else
                   f"no uplift (optimize {opt.get('status', 'absent')}: {opt.get('reason') or 'no figure'})"))
        ret = man["retention"]
        if ret.get("enabled"):  # the cycle's last step: what it pruned (tracebridge shadow-prune lists it)
            typer.echo(f"retention: removed {ret.get('removed', 0)} folders, {ret.get('bytes_freed', 0)} bytes"
                       + "".join(f"; {ret[k]} {k}" for k in ("failed", "error") if ret.get(k)))
            for p in ret.get("problems") or []:  # e.g. nothing pruned until a pin config is fixed: disk grows
                typer.echo(f"retention problem: {p}")
    raise typer.Exit(0 if man["status"] == "ok" else 1)
