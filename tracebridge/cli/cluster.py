"""Cluster commands: ``submit``, ``status``, ``logs [--follow]``, ``stop``, ``list`` (Ray Jobs API;
the local head by default); ``pull`` is in ``tracebridge.cli.cluster_pull``. ``window`` (an
ephemeral GPU cluster: up → submit → wait → pull → down, within hours / dollars) lives in
``tracebridge.cli.cluster_window`` and uses the helpers here. Heavy imports live inside the functions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from tracebridge.cli.app import (
    EXIT_INTERRUPTED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    app,
    check_out_dir,
    config_errors,
    fail,
    print_json,
    sigterm_as_interrupt,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable summary.")]
ClusterOpt = Annotated[str, typer.Option(
    "--cluster", help="local (the running local head) | configs/cluster/*.yaml | dashboard URL.")]
ClusterSetOpt = Annotated[list[str] | None, typer.Option(
    "--cluster-set", metavar="KEY=VALUE",
    help="Override a key of the cluster config (repeatable), e.g. request_timeout_s=5 wait_patience_s=600.")]
ExitCodes = {"SUCCEEDED": 0, "PENDING": 0, "RUNNING": 0, "FAILED": 1, "STOPPED": 1}


def _project_root() -> Path:
    """The working dir shipped with jobs: the cwd when it holds jobs/sweep.py, else this checkout."""
    cwd = Path.cwd()
    return cwd if (cwd / "jobs" / "sweep.py").is_file() else Path(__file__).resolve().parents[2]


def _plan(config: Path, overrides: list[str], cluster: Any, root: Path, spec: str | None = None) -> Any:
    """``plan_sweep``, exiting 3 (try again later) when the sweep is fine but its bundle's storage (or,
    on a local head, its own storage) could not be reached, rather than 2 (a config to fix). ``spec``: the
    ``--cluster`` given, which the job's config then records as its ``cluster`` (``cluster_override``)."""
    from tracebridge.cluster.submit import plan_sweep
    from tracebridge.export.storage import StorageUnreachable
    from tracebridge.sweep.config import cluster_override

    try:
        return plan_sweep(config, [*overrides, *([cluster_override(spec, root)] if spec else [])], cluster, root)
    except StorageUnreachable as exc:
        fail(str(exc), EXIT_UNREACHABLE)


def _echo_log(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _cluster_fail(exc: Exception) -> NoReturn:
    """Exit 3 (try again later) when the head did not answer, else 2 (a refused token, an unknown
    job, a job spec the cluster rejects: a retry would get the same answer)."""
    from tracebridge.cluster.client import ClusterUnreachable

    fail(str(exc), EXIT_UNREACHABLE if isinstance(exc, ClusterUnreachable) else EXIT_USAGE)


def _open(cluster: str | Any, sets: list[str] | None = None, start: bool = False) -> Any:
    """The ``Target`` of a ``--cluster`` spec (with its ``--cluster-set`` overrides) or a ``ClusterConfig``:
    a bad spec or override exits 2, a cluster that refuses us 2, one that does not answer 3 (as does a
    local head that failed to start for a reason a later try may not meet; one that cannot start here
    until something is fixed, e.g. its port taken or no ``ray``, is 2)."""
    from tracebridge.cluster.client import ClusterError
    from tracebridge.cluster.config import cluster_from_spec
    from tracebridge.cluster.submit import open_cluster

    if isinstance(cluster, str):
        with config_errors():
            cluster = cluster_from_spec(cluster, list(sets or []))
    try:
        return open_cluster(cluster, start=start)
    except ClusterError as exc:
        _cluster_fail(exc)


def _ask(cluster: str, sets: list[str] | None, call: Any, *args: Any) -> Any:
    """``call(client, *args)`` on the ``--cluster`` target (``_open``); a ``ClusterError`` it raises exits
    as ``_cluster_fail`` says (3 when the head did not answer, else 2)."""
    from tracebridge.cluster.client import ClusterError

    client = _open(cluster, sets).client
    try:
        return call(client, *args)
    except ClusterError as exc:
        _cluster_fail(exc)


def _wait_and_pull(target: Any, plan: Any, sub_id: str, out: Path) -> dict[str, Any]:
    """Wait for the submitted job ``sub_id`` (its log on stderr; stopped when it stays PENDING past the
    cluster's ``pending_timeout_s``) and pull its report once it SUCCEEDED: the fields ``submit`` adds to its
    summary (``status``; ``never_started`` with what the driver asked for and the cluster has, or the job's
    ``message``, failed trials and, when it stopped before any trial, its ``error``; ``report``, ``report_problems``, ``storage_unreachable``).
    A job that FAILED (or was stopped) after some trials finished pushed their report: it is pulled too (before,
    only a SUCCEEDED job's was, and a sweep with one failed trial of twelve left the other eleven's report on
    storage, out of reach once the local head it ran on was stopped).

    Raises:
        ClusterError: the head refused a request or stopped answering (``wait``).
    """
    from tracebridge.cluster.client import wait
    from tracebridge.cluster.outcome import failed_outcome, pull_job_report
    from tracebridge.cluster.submit import never_started_report

    info = wait(target.client, sub_id, target.cfg.wait_poll_s, _echo_log, patience_s=target.cfg.wait_patience_s,
                pending_timeout_s=target.cfg.pending_timeout_s)
    res: dict[str, Any] = {"status": info["status"]}
    if info["never_started"]:
        res.update(never_started=True, **never_started_report(target, info))
    elif info["status"] != "SUCCEEDED":  # why: the job's message and its failed trials; the others' report
        res.update(failed_outcome(target.client, plan, info, out))
    else:
        res.update(pull_job_report(plan, sub_id, out))
    return res


def _resume_attempt(client: Any, plan: Any) -> tuple[int, dict[str, Any] | None]:
    """The attempt ``--resume`` submits, ``plan`` pointed at the sweep it continues (an earlier version may
    have named this config otherwise), and the job of its latest attempt when that one SUCCEEDED (nothing is
    left to resume: none is sent); the cluster's jobs are listed once for both. Exit 2 naming the keys that
    differ when only other sweeps of the bundle are known."""
    from tracebridge.cluster.client import list_jobs
    from tracebridge.cluster.resume import choose_sweep, succeeded_job
    from tracebridge.cluster.submit import next_attempt

    jobs = list_jobs(client)
    with config_errors():
        plan.pin(choose_sweep(plan, {j["sweep_id"] for j in jobs}))
    return next_attempt(jobs, plan.sweep_id)[0], succeeded_job(jobs, plan.sweep_id)


def _counted(plan: Any) -> str:
    """``N trials`` or, when cells share a trained model, ``N trials for M grid cells`` (``trials`` counts cells)."""
    n = plan.trained_trials
    return f"{n} trials" if n == plan.trials else f"{n} trials for {plan.trials} grid cells"


def _already_succeeded(plan: Any, job: dict[str, Any]) -> dict[str, Any]:
    """``submit --resume``'s summary for a sweep whose latest attempt SUCCEEDED: nothing sent, the job named,
    and how to get its report or train it again (before: a new attempt was sent, retraining nothing)."""
    sub_id, n = job["submission_id"], job["attempt"] if isinstance(job["attempt"], int) else 1
    message = (f"sweep {plan.sweep_id} already succeeded (attempt {n}, job {sub_id}): nothing to resume, nothing "
               f"sent; `tracebridge pull {sub_id}` brings its report; to run it again as a new attempt, submit "
               f"{plan.config_path} without --resume and with --attempt {n + 1}")
    return {"submission_id": sub_id, "created": False, "status": "ALREADY_SUCCEEDED", "sweep_id": plan.sweep_id,
            "bundle_id": plan.bundle_id, "config_hash": plan.config_hash, "report_uri": plan.report_uri,
            "attempt": n, "trials": plan.trials, "message": message}


def _submit_on(ccfg: Any, plan: Any, root: Path, keep: bool, wait_: bool, attempt: int | None,
               out: Path) -> dict[str, Any]:
    """Open the cluster (starting the local head if need be), submit ``plan`` as ``attempt`` (None: the
    next, ``--resume``), wait and pull when asked or when the head is ours, and stop a head this call
    started unless ``keep``, whatever happens (an error, Ctrl-C, SIGTERM); return ``submit``'s summary."""
    from tracebridge.cluster.client import ClusterError
    from tracebridge.cluster.submit import close_cluster, submit_sweep

    target = _open(ccfg, start=True)
    try:
        if attempt is None:
            attempt, done = _resume_attempt(target.client, plan)
            if done is not None:
                summary = _already_succeeded(plan, done)
                typer.echo(summary["message"], err=True)
                return summary
        sub = submit_sweep(target, plan, attempt, root)
        must_wait = wait_ or (target.head is not None and target.head.started and not keep)
        summary: dict[str, Any] = {**sub, "status": "SUBMITTED" if sub["created"] else "ALREADY_SUBMITTED"}
        # progress on stderr even under --json (stdout holds only the JSON document): a sweep takes hours
        typer.echo(f"{'submitted' if sub['created'] else 'already submitted'} {sub['submission_id']} "
                   f"({_counted(plan)}) to {target.address}", err=True)
        if must_wait:
            summary.update(_wait_and_pull(target, plan, sub["submission_id"], out))
    except ClusterError as exc:
        _cluster_fail(exc)
    finally:
        close_cluster(target, keep)
    return summary


@app.command()
def submit(
    config: Annotated[Path, typer.Argument(help="A configs/sweep YAML (inside the working dir).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key.sub=value overrides (bundle=..., seeds=[0,1]).")] = None,
    cluster: Annotated[str | None, typer.Option(help="Override the config's cluster: local | configs/cluster/*.yaml | URL.")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the local head running (and return once submitted).")] = False,
    wait_: Annotated[bool, typer.Option("--wait", help="Wait for the job (implied for a local head without --keep).")] = False,
    attempt: Annotated[int | None, typer.Option(min=1, help="Attempt number (the submission id's suffix, from 1; "
                                                "default 1). A new attempt of a sweep that succeeded is asked this way.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Submit the next attempt of this sweep (resumes its Tune run); "
                                         "a sweep whose latest attempt succeeded is left as it is.")] = False,
    out: Annotated[Path, typer.Option(help="Where the report is pulled (<out>/<sweep id>).")] = Path("reports"),
    cluster_set: ClusterSetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Submit a sweep as a Ray job (submission id = sweep id + attempt: a retried submit never
    starts a second run); wait, pull and verify the report. Exit 0 when it succeeded (or was submitted,
    with --keep and no --wait; or, with --resume, had already succeeded: nothing is sent), 1 if the job or
    the report fails, 2 for a bad config, flag or cluster spec, 3 when the cluster or storage cannot be
    reached, 130 when interrupted."""
    from tracebridge.cluster.submit import resolve_cluster
    from tracebridge.sweep.config import load_sweep_config

    ov, root = list(overrides or []), _project_root()
    if resume and attempt is not None:  # before: --attempt was dropped without a word
        fail(f"--resume and --attempt {attempt} conflict: --resume picks the attempt (the running one, or one past "
             "the last); give one of them")
    check_out_dir(out)  # the report is pulled there after the sweep: a file in the way would show hours later
    with config_errors():
        ccfg = resolve_cluster(cluster, load_sweep_config(str(config), ov).cluster, list(cluster_set or []))
        plan = _plan(config, ov, ccfg, root, cluster)
    try:
        with sigterm_as_interrupt():  # and SIGHUP: a closed terminal stops the head it started
            summary = _submit_on(ccfg, plan, root, keep, wait_, None if resume else attempt or 1, out)
    except KeyboardInterrupt as exc:
        fail(f"submit interrupted ({exc or 'SIGINT'}): a local head it started was stopped, and its job with it "
             "(unless --keep); a job on a head it did not start goes on (`tracebridge list`, `stop ID`); "
             f"`tracebridge submit {config} ... --resume` continues the sweep {plan.sweep_id}", EXIT_INTERRUPTED)
    if json_out:
        print_json(summary)
    else:
        for f in summary.get("failures") or []:
            typer.echo(f"failed trial {f.get('trial_id')}: {f.get('error')}", err=True)
        if summary.get("never_started"):
            typer.echo(f"error: {summary['message']}", err=True)
        elif summary.get("error"):  # the job stopped before any trial ran: its own reason
            typer.echo(f"error: the job stopped before training: {summary['error']}", err=True)
        typer.echo(f"{summary['submission_id']}: {summary['status']}"
                   + (f"  report: {summary['report']}" if summary.get("report") else ""))
    bad = summary["status"] in ("FAILED", "STOPPED") or summary.get("never_started") or \
        bool(summary.get("report_problems")) or \
        (summary["status"] == "SUCCEEDED" and not summary.get("report"))
    again = summary.get("storage_unreachable") or summary.get("report_changing")  # try again later: `pull`
    raise typer.Exit(EXIT_UNREACHABLE if again else 1 if bad else 0)


@app.command()
def status(
    submission_id: Annotated[str, typer.Argument(help="The job's submission id (see `tracebridge list`).")],
    cluster: ClusterOpt = "local",
    cluster_set: ClusterSetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Status of a job; exit 1 when it FAILED or was STOPPED, 2 for an unknown job (or a head that refuses
    the token), 3 when the head does not answer. A sweep job that FAILED or was STOPPED also gives why, from
    its summary line: ``failures`` (each failed trial and its error) and, when it stopped before any trial,
    ``error`` (before: only Ray's message, the last 20,000 characters of its log)."""
    from tracebridge.cluster.client import job_info
    from tracebridge.cluster.outcome import failed_job

    def ask(client: Any, sub_id: str) -> dict[str, Any]:
        info = job_info(client, sub_id)
        if info["status"] in ("FAILED", "STOPPED") and info["metadata"].get("tracebridge") == "sweep":
            info.update({k: v for k, v in failed_job(client, sub_id).items() if k != "report_pushed"})
        return info

    info = _ask(cluster, cluster_set, ask, submission_id)
    if json_out:
        print_json(info)
    else:
        for f in info.get("failures") or []:
            typer.echo(f"failed trial {f.get('trial_id')}: {f.get('error')}", err=True)
        if info.get("error"):
            typer.echo(f"error: the job stopped before training: {info['error']}", err=True)
        typer.echo(f"{submission_id}: {info['status']}  {_short(info['message'] or '', submission_id)}")
    raise typer.Exit(ExitCodes.get(info["status"], 0))


def _short(message: str, submission_id: str, limit: int = 300) -> str:
    """Ray's job message on one line: a failed job's holds the last 20,000 characters of its log, which
    buried the status line (``--json`` keeps it whole; ``logs`` prints the log)."""
    first = message.strip().split("\n", 1)[0]
    if len(first) <= limit and first == message.strip():
        return first
    return f"{first[:limit]} ... ({len(message)} characters; `tracebridge logs {submission_id}` prints the log)"


@app.command()
def logs(
    submission_id: Annotated[str, typer.Argument(help="The job's submission id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    cluster: ClusterOpt = "local",
    cluster_set: ClusterSetOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document: {submission_id, logs} (with "
                                           "--follow, once the job ended: and its status, message).")] = False,
) -> None:
    """Print a job's driver log (``--follow``: stream it until the job ends, however long it runs;
    exit 1 if it failed, 2 for an unknown job, 3 if the head stops answering for the cluster's
    ``wait_patience_s``)."""
    from tracebridge.cluster.client import ClusterError, wait
    from tracebridge.cluster.client import logs as job_logs

    target = _open(cluster, cluster_set)
    try:
        if not follow:
            text = job_logs(target.client, submission_id)
            if json_out:
                print_json({"submission_id": submission_id, "logs": text})
            else:
                sys.stdout.write(text)
            raise typer.Exit(0)
        stream = None if json_out else (lambda t: (sys.stdout.write(t), sys.stdout.flush()))
        info = wait(target.client, submission_id, 1.0, stream, patience_s=target.cfg.wait_patience_s)
        if json_out:
            print_json({"submission_id": submission_id, "status": info["status"], "message": info.get("message"),
                        "logs": job_logs(target.client, submission_id)})
    except ClusterError as exc:
        _cluster_fail(exc)
    raise typer.Exit(ExitCodes.get(info["status"], 0))


@app.command()
def stop(
    submission_id: Annotated[str, typer.Argument(help="The job's submission id.")],
    cluster: ClusterOpt = "local",
    cluster_set: ClusterSetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop a job (its Tune run saves state; `submit --resume` continues it); exit 1 if it was not running,
    2 for an unknown job, 3 when the head does not answer."""
    from tracebridge.cluster.client import stop as stop_job

    stopped = _ask(cluster, cluster_set, stop_job, submission_id)
    if json_out:  # ok/exit_code (and error) as every command's failures carry them under --json
        print_json({"submission_id": submission_id, "stop_requested": stopped, "ok": stopped,
                    "exit_code": 0 if stopped else 1,
                    **({} if stopped else {"error": f"{submission_id}: was not running"})})
    else:
        typer.echo(f"{submission_id}: {'stop requested' if stopped else 'was not running'}")
    raise typer.Exit(0 if stopped else 1)


@app.command("list")
def list_cmd(
    cluster: ClusterOpt = "local",
    everything: Annotated[bool, typer.Option("--all", help="Also jobs not submitted by tracebridge.")] = False,
    cluster_set: ClusterSetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Jobs on the cluster (sweep id, attempt, status); exit 2 when no local head runs (or the head refuses
    the token), 3 when it does not answer."""
    from tracebridge.cluster.client import list_jobs

    jobs = _ask(cluster, cluster_set, list_jobs, everything)
    if json_out:
        print_json(jobs)
        return
    for j in jobs:
        typer.echo(f"{j['submission_id']:60s} {j['status']:10s} attempt {j['attempt'] or '-'}")


@app.command("stop-head")
def stop_head_cmd(
    cluster: ClusterOpt = "local",
    force: Annotated[bool, typer.Option("--force", help="Stop it even while jobs run on it (they end with it).")] = False,
    cluster_set: ClusterSetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop the local Ray head that `submit --keep` left running: only its own processes (`ray stop` would
    stop every Ray head on this machine). Refused while jobs run on it unless --force (`stop ID` first lets
    a sweep save its state); exit 1 when no head runs there, 2 for a remote cluster (not ours to stop)."""
    from tracebridge.cluster.client import TERMINAL, ClusterError, connect, list_jobs, read_token
    from tracebridge.cluster.config import cluster_from_spec
    from tracebridge.cluster.head import running_head, state_path, stop_head

    with config_errors():
        cfg = cluster_from_spec(cluster, list(cluster_set or []))
    if cfg.kind != "local":
        fail(f"--cluster {cluster}: a remote cluster is not stopped from here (`ray down CLUSTER.yaml`, or let "
             "`tracebridge window` tear it down)")
    head = running_head(cfg)
    if head is None:
        fail(f"no local Ray head is running (state_dir={cfg.state_dir}: {state_path(cfg)})", 1, stopped=False)
    try:
        live = [j["submission_id"] for j in list_jobs(connect(head.address, read_token(cfg, head.token_file),
                                                              cfg.request_timeout_s), True)
                if j["status"] not in TERMINAL]
    except ClusterError as exc:
        _cluster_fail(exc)
    if live and not force:
        fail(f"the local Ray head at {head.address} runs {len(live)} job(s): {', '.join(live)}; `tracebridge stop "
             "ID` each (a sweep saves its state for `submit --resume`), or pass --force to end them with the head", 1,
             stopped=False, address=head.address, pid=head.pid, jobs_running=live)
    stop_head(head)
    if json_out:
        print_json({"stopped": True, "address": head.address, "pid": head.pid, "jobs_ended": live})
    else:
        typer.echo(f"stopped the local Ray head at {head.address} (pid {head.pid})"
                   + (f"; jobs ended with it: {', '.join(live)}" if live else ""))
