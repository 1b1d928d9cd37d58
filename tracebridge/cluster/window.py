"""Ephemeral GPU windows: ``ray up CLUSTER.yaml`` → ``ray dashboard`` port-forward → submit the
sweep → wait with progress → pull the report → ``ray down``, and ``ray down`` in EVERY outcome:
success, failure, Ctrl-C, SIGTERM, and the budget watchdog (hours, or dollars through the price
table: head + every worker type at its ``max_workers``, a worst-case hourly rate).

``plan_window`` is pure (the ``--dry-run`` output); ``run_window`` does the I/O through the
``ray`` executable on PATH and the Jobs API.
"""

from __future__ import annotations

import logging
import math
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.cluster.config import WindowConfig

log = logging.getLogger(__name__)


class BudgetExceeded(RuntimeError):
    """The window's hour or dollar cap was reached."""


class Interrupted(RuntimeError):
    """Ctrl-C or SIGTERM."""


@dataclass
class WindowPlan:
    """What a window will do and cost at most."""

    cluster_yaml: str
    cluster_name: str
    node_types: list[dict[str, Any]]
    hourly_usd: float
    base_usd: float
    cap_hours: float
    max_usd: float
    max_usd_estimate: float
    unpriced: list[str]
    head_type: str = ""
    commands: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The plan as a plain dict (the ``plan`` of the window's outcome)."""
        return asdict(self)


def node_rows(launcher: dict[str, Any], prices: dict[str, float]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per node type of a launcher YAML: instance type, count at most, USD/h each (None = not in the table)."""
    head = launcher.get("head_node_type")
    rows, unpriced = [], []
    for name, nt in (launcher.get("available_node_types") or {}).items():
        nc = nt.get("node_config") or {}
        instance = nc.get("InstanceType") or nc.get("machineType") or nc.get("machine_type") or name
        count = 1 if name == head else int(nt.get("max_workers", launcher.get("max_workers", 0)) or 0)
        price = prices.get(instance)
        if price is None:
            unpriced.append(f"{name} ({instance})")
        rows.append({"node_type": name, "instance": instance, "max_count": count, "usd_per_hour": price,
                     "min_count": 1 if name == head else int(nt.get("min_workers", 0) or 0),
                     "gpus": (nt.get("resources") or {}).get("GPU", 0)})
    return rows, unpriced


def budget_problems(max_hours: float, max_usd: float) -> list[str]:
    """What is wrong with a window's budget. NaN compares false with everything, so an hours cap of NaN
    would never be reached and a dollar cap of NaN never apply: the window would run unbounded; a cap of
    0 hours or less would tear the cluster down as soon as it is up."""
    problems = []
    if not (math.isfinite(max_hours) and max_hours > 0):
        problems.append(f"--max-hours {max_hours:g}: must be a finite number of hours > 0, e.g. --max-hours 4")
    if not (math.isfinite(max_usd) and max_usd >= 0):
        problems.append(f"--max-usd {max_usd:g}: must be a finite number of dollars >= 0 (0 = no dollar cap), "
                        "e.g. --max-usd 50")
    return problems


def plan_window(cluster_yaml: Path, launcher: dict[str, Any], cfg: WindowConfig, max_hours: float,
                max_usd: float, ray: str = "ray") -> WindowPlan:
    """The window's steps and budget (pure): the worst-case rate (head + every worker type at
    ``max_workers``), the base rate (head + ``min_workers``), and the most the window can cost
    (``min(max_usd, worst case × max_hours)``). Instances missing from the price table are listed
    in ``unpriced`` (they bill at the dearest known price in the watchdog).

    Raises:
        tracebridge.config.ConfigError: a budget the watchdog cannot enforce (``budget_problems``)."""
    from tracebridge.config import ConfigError

    if problems := budget_problems(max_hours, max_usd):
        raise ConfigError(problems)
    rows, unpriced = node_rows(launcher, cfg.prices)
    hourly = sum((r["usd_per_hour"] or 0.0) * r["max_count"] for r in rows)
    base = sum((r["usd_per_hour"] or 0.0) * r["min_count"] for r in rows)
    worst = hourly * max_hours
    y = str(cluster_yaml)
    cmds = [f"{ray} up -y --no-config-cache {y}", f"{ray} dashboard --port {cfg.dashboard_port} {y}  (background)",
            f"submit sweep to http://127.0.0.1:{cfg.dashboard_port}",
            "wait (watchdog: hours, and dollars from the autoscaler's node counts)",
            f"pull report into {cfg.reports_dir}/<sweep id>", f"{ray} down -y {y}  (always)"]
    return WindowPlan(y, str(launcher.get("cluster_name", "")), rows, round(hourly, 4), round(base, 4), max_hours,
                      max_usd, round(min(worst, max_usd) if max_usd > 0 else worst, 2), unpriced,
                      str(launcher.get("head_node_type", "")), cmds)


class Watchdog:
    """The budget watchdog: wall hours since the window started, and dollars accrued at the
    current hourly rate (observed from the autoscaler's node counts, else assumed worst case)."""

    def __init__(self, cap_hours: float, max_usd: float, rate: float, start: float | None = None) -> None:
        self.start = start or time.time()
        self.deadline = self.start + cap_hours * 3600
        self.max_usd, self.rate, self.spent = max_usd, rate, 0.0
        self._last = self.start

    def remaining(self) -> float:
        """Seconds left before the hours cap (negative once it has passed)."""
        return self.deadline - time.time()

    def observe(self, rate: float) -> None:
        """Accrue at the old rate until now, then bill at ``rate`` (USD/h)."""
        self._accrue()
        self.rate = rate

    def _accrue(self) -> None:
        now = time.time()
        self.spent += self.rate * (now - self._last) / 3600
        self._last = now

    def reason(self) -> str | None:
        """Why the window must end now (None while within budget)."""
        self._accrue()
        if time.time() >= self.deadline:
            return f"hours cap reached ({(self.deadline - self.start) / 3600:.4g} h)"
        if self.max_usd > 0 and self.spent >= self.max_usd:
            return f"dollar cap reached (${self.spent:.2f} of ${self.max_usd:.2f}, billing ${self.rate:.2f}/h)"
        return None

    def check(self) -> None:
        """Raises:
            BudgetExceeded: the cap has passed."""
        why = self.reason()
        if why:
            raise BudgetExceeded(why)


def billed_rate(status: dict[str, Any] | None, rows: list[dict[str, Any]], head_type: str) -> float | None:
    """USD/h of the nodes the autoscaler reports (active, idle, pending, launching), the head
    included; None when the status has no autoscaler report. Unknown node types bill at the
    dearest known price (pure)."""
    rep = (status or {}).get("autoscaler_report") or {}
    if not rep:
        return None
    counts: dict[str, int] = {}
    for d in (rep.get("active_nodes") or {}, rep.get("idle_nodes") or {}, rep.get("pending_launches") or {}):
        for t, n in d.items():
            counts[t] = counts.get(t, 0) + int(n)
    for p in rep.get("pending_nodes") or []:
        counts[p[1]] = counts.get(p[1], 0) + 1
    counts.setdefault(head_type, 1)
    price = {r["node_type"]: r["usd_per_hour"] or 0.0 for r in rows}
    dearest = max(price.values(), default=0.0)
    return sum(price.get(t, dearest) * n for t, n in counts.items())


def run_until(cmd: list[str], watchdog: Watchdog, timeout_s: float, what: str) -> None:
    """Run ``cmd`` to completion unless the watchdog or ``timeout_s`` ends it first.

    Raises:
        BudgetExceeded: the cap passed while it ran (the command is killed).
        RuntimeError: it failed or timed out.
    """
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    end = time.time() + timeout_s
    try:
        while proc.poll() is None:
            watchdog.check()
            if time.time() > end:
                raise RuntimeError(f"{what} timed out after {timeout_s:.0f}s")
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode})")


# what ends a window early: Ctrl-C, SIGTERM (a supervisor, `timeout`), SIGHUP (the terminal or SSH session it
# ran in closed; its default action killed the process before `ray down`, leaving the GPUs billing)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def teardown(cluster_yaml: str, ray: str, forwarder: subprocess.Popen | None, timeout_s: float) -> dict[str, Any]:
    """Stop the port-forward and ``ray down`` the cluster, with Ctrl-C/SIGTERM ignored meanwhile
    (a second Ctrl-C must not leave GPUs running)."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    try:
        if forwarder is not None and forwarder.poll() is None:
            forwarder.terminate()
            try:
                forwarder.wait(10)
            except subprocess.TimeoutExpired:
                forwarder.kill()
        try:
            rc = subprocess.run([ray, "down", "-y", cluster_yaml], stdin=subprocess.DEVNULL, timeout=timeout_s,
                                check=False).returncode
        except subprocess.TimeoutExpired:
            rc = -1
        if rc != 0:
            log.error("`ray down -y %s` failed (exit %s): check the cloud console for running nodes", cluster_yaml, rc)
        return {"down_exit_code": rc}
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_window(plan: WindowPlan, cfg: WindowConfig, work: Callable[[Watchdog], dict[str, Any]],
               ray: str | None = None) -> dict[str, Any]:
    """Bring the cluster up, run ``work`` (connect, submit, wait, pull) under the watchdog, and
    always tear down.

    Args:
        work: given the watchdog once the cluster is up and forwarded; returns its summary (with
            ``budget_stop`` when the watchdog stopped its job: the outcome is then ``budget``) and raises on
            failure.

    Returns:
        ``{"outcome": succeeded|failed|interrupted|budget, "error", "steps", "wall_s", "cost_usd_max",
        "down_exit_code", "down_ok", ...}``, with ``teardown_error`` when ``ray down`` failed (the outcome is the
        sweep's; the command exits non-zero all the same).
    """
    ray = ray or shutil.which("ray") or "ray"
    t0 = time.time()
    dog = Watchdog(plan.cap_hours, plan.max_usd, plan.base_usd, t0)
    out: dict[str, Any] = {"outcome": "failed", "error": None, "steps": [], "plan": plan.to_dict()}
    forwarder = None
    old = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, h in old.items():
        if h != signal.SIG_IGN:  # one the process was started ignoring stays so (nohup: outlive the terminal)
            signal.signal(s, _raise_interrupt)
    try:
        out["steps"].append("up")
        run_until([ray, "up", "-y", "--no-config-cache", plan.cluster_yaml], dog, cfg.up_timeout_s, "ray up")
        out["steps"].append("forward")
        forwarder = subprocess.Popen([ray, "dashboard", "--port", str(cfg.dashboard_port), plan.cluster_yaml],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        out["steps"].append("work")
        out.update(work(dog))
        out["outcome"] = "succeeded" if out.get("ok") else "budget" if out.get("budget_stop") else "failed"
    except BudgetExceeded as exc:
        out.update(outcome="budget", error=str(exc))
    except (Interrupted, KeyboardInterrupt) as exc:
        out.update(outcome="interrupted", error=f"interrupted ({exc or 'SIGINT'})")
    except Exception as exc:  # noqa: BLE001 - any failure still tears down; the error is reported
        out.update(outcome="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        # the old handlers come back only after the teardown: restored before it, a SIGTERM or SIGHUP in
        # between killed the process with the cluster up (a signal meanwhile is ignored: we are ending)
        for s in old:
            signal.signal(s, signal.SIG_IGN)
        out["steps"].append("down")
        out.update(teardown(plan.cluster_yaml, ray, forwarder, cfg.down_timeout_s))
        for s, h in old.items():
            signal.signal(s, h)
        out["down_ok"] = out["down_exit_code"] == 0
        if not out["down_ok"]:  # the sweep's outcome stands, but GPUs may still bill: the command fails
            out["teardown_error"] = (f"`{ray} down -y {plan.cluster_yaml}` failed (exit {out['down_exit_code']}): "
                                     "its nodes may still be running and billing; run it again, and check the "
                                     "cloud console")
        out["wall_s"] = round(time.time() - t0, 2)
        dog.observe(dog.rate)
        out["cost_usd_accrued"] = round(dog.spent, 4)
        out["cost_usd_max"] = round(plan.hourly_usd * out["wall_s"] / 3600, 4)
    log.info("window %s: %s after %.0fs (at most $%.2f)", plan.cluster_name, out["outcome"], out["wall_s"],
             out["cost_usd_max"])
    return out


def load_launcher(path: Path) -> dict[str, Any]:
    """A cluster launcher YAML as a dict.

    Raises:
        tracebridge.config.ConfigError: missing or not a mapping.
    """
    import yaml

    from tracebridge.config import ConfigError

    if not Path(path).is_file():
        raise ConfigError([f"{path}: no such cluster launcher YAML"])
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict) or "available_node_types" not in data:
        raise ConfigError([f"{path}:1:available_node_types: not a Ray cluster launcher YAML"])
    return data


def sweep_work(plan: WindowPlan, sweep: Any, cluster: Any, working_dir: Path, cfg: WindowConfig, attempt: int = 1,
               on_log: Callable[[str], None] | None = None) -> Callable[[Watchdog], dict[str, Any]]:
    """The window's work for a planned sweep: wait for the forwarded Jobs API, submit, wait (the
    job is stopped at the cap), pull and verify the report.

    Args:
        sweep: a ``tracebridge.cluster.submit.SweepPlan``.
        cluster: the ``ClusterConfig`` (kind remote, forwarded address, window token file).
    """
    from tracebridge.cluster.client import ClusterError, cluster_status, connect, read_token, wait
    from tracebridge.cluster.outcome import failed_outcome
    from tracebridge.cluster.submit import Target, never_started_report, pull_report, submit_sweep

    def work(dog: Watchdog) -> dict[str, Any]:
        end = time.time() + cfg.connect_timeout_s
        while True:
            dog.check()
            try:
                client = connect(cluster.address, read_token(cluster), cluster.request_timeout_s)
                break
            except ClusterError as exc:
                if time.time() > end:
                    raise RuntimeError(f"Jobs API at {cluster.address} did not answer: {exc}") from exc
                time.sleep(1.0)
        target = Target(cluster, cluster.address, client)
        sub = submit_sweep(target, sweep, attempt, working_dir)

        def over_budget() -> str | None:
            rate = billed_rate(cluster_status(client), plan.node_types, plan.head_type)
            dog.observe(plan.hourly_usd if rate is None else rate)  # no autoscaler report: assume worst case
            return dog.reason()

        info = wait(client, sub["submission_id"], cfg.poll_s, on_log, should_stop=over_budget,
                    patience_s=cluster.wait_patience_s, pending_timeout_s=cluster.pending_timeout_s)
        res: dict[str, Any] = {"submission": sub, "status": info["status"], "ok": info["status"] == "SUCCEEDED"}
        if info["never_started"]:
            return {**res, "error": never_started_report(target, info)["message"]}
        if info.get("stopped_because"):  # the report of the trials that finished before the cap, and the rest
            res.update(failed_outcome(client, sweep, info, Path(cfg.reports_dir)), budget_stop=True)
            res["error"] = (f"{info['stopped_because']}; job {sub['submission_id']} stopped (its Tune state saved: "
                            f"`tracebridge submit {sweep.config_path} ... --resume` continues it)"
                            + (f"; the finished trials' report: {res['report']}" if res.get("report") else ""))
            return res
        if res["ok"]:
            pulled = pull_report(sub["report_uri"], Path(cfg.reports_dir) / sweep.sweep_id, sweep.cfg.storage_io,
                                 sweep.expect(sub["submission_id"]))
            res.update(report=pulled["report_html"], report_problems=pulled["problems"],
                       ok=not pulled["problems"])
        else:  # why, and the report of the trials that finished (before: outcome "failed", error None, no report)
            res.update(failed_outcome(client, sweep, info, Path(cfg.reports_dir)))
            res["error"] = failure_line(res, sweep.trials)
        return res

    return work


def failure_line(res: dict[str, Any], trials: int) -> str:
    """The window's ``error`` for a sweep job that ended without succeeding (``res``: its status, submission,
    ``failed_outcome``): why it stopped before training, else its failed trials, else Ray's message."""
    sub, status = res["submission"]["submission_id"], res["status"]
    if res.get("error"):
        return f"job {sub} {status}: it stopped before training: {res['error']}"
    if res.get("failures"):
        first = res["failures"][0]
        return (f"job {sub} {status}: {len(res['failures'])} of {trials} trials failed (first: "
                f"{first.get('trial_id')}: {first.get('error')})"
                + (f"; the others' report: {res['report']}" if res.get("report") else ""))
    return f"job {sub} {status}: {(str(res.get('message') or '').splitlines() or ['no message'])[0]}"
