"""The sweep driver on Ray Tune: build the Tuner (grid of specs, per-trial resources,
``RunConfig(storage_path, storage_filesystem, name=sweep id)`` with the storage bounded by the sweep's
``storage_io``, ``FailureConfig`` retries, actor reuse so trial workers keep torch/transformers
imported), or ``Tuner.restore`` an interrupted run of the same sweep under this attempt's trial limit,
retries and callbacks;
then collect each trial's final checkpoint into result dicts for the report.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import numbers
import re
import time
from pathlib import Path
from typing import Any

from tracebridge.sweep.budget import BudgetTimer, first_step
from tracebridge.sweep.config import SweepConfig
from tracebridge.sweep.trainable import INPUT_ERROR, TrialContext, tune_trial, unpack_checkpoint

log = logging.getLogger(__name__)


def trial_resources(cfg: SweepConfig) -> dict[str, float]:
    """What one Tune trial reserves. A Ray Train trial reserves only its driver (its workers
    are placed by the TorchTrainer)."""
    if cfg.resources.distributed:
        return {"cpu": 0.01}  # the trial only drives its TorchTrainer; Tune needs a non-empty request
    res = {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu}
    if cfg.resources.memory_gb:
        res["memory"] = cfg.resources.memory_gb * 2**30
    return res


def max_concurrent(cfg: SweepConfig, cluster: dict[str, float]) -> int | None:
    """Trials at once: the budget's cap, else cluster GPUs / GPUs per trial for GPU sweeps (None =
    as many as resources allow, e.g. while an autoscaler adds GPU nodes)."""
    if cfg.budget.max_concurrent:
        return cfg.budget.max_concurrent
    per_trial = cfg.resources.gpu * cfg.resources.workers
    if per_trial > 0 and cluster.get("GPU", 0) >= per_trial:
        return int(cluster["GPU"] // per_trial)
    if cfg.resources.distributed:
        per_cpu = cfg.resources.cpu * cfg.resources.workers
        return max(1, int(cluster.get("CPU", 1) // max(per_cpu, 1e-9)))
    return None


def limit_search(limit: int | None) -> Any:
    """Tune's grid generator capped at ``limit`` trials at once (None = no cap), keeping that cap when a
    resumed run loads the generator's saved state: Tune's ``BasicVariantGenerator.set_state`` would bring
    back the first attempt's ``max_concurrent`` with the rest of its state."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    class LimitedGrid(BasicVariantGenerator):
        def set_state(self, state: dict[str, Any]) -> None:
            keep = self.max_concurrent
            super().set_state(state)
            self.max_concurrent = keep

    return LimitedGrid(max_concurrent=limit or 0)


def attempt_retries(max_failures: int) -> Any:
    """A Tune callback giving each trial a resumed run restored ``max_failures`` retries in this attempt.

    Tune restores every trial with the ``max_failures`` of the attempt that created it and counts its
    failures over all attempts, so a resume that raised ``max_failures`` retried nothing more (and a trial
    that had used its retries got none). Before the first step (the restored trials are not started yet),
    each restored trial gets this attempt's retries on top of the failures it already had; trials created
    after take ``FailureConfig(max_failures)`` as on a first attempt. -1 stays unlimited.
    """
    from ray.tune import Callback

    class AttemptRetries(Callback):
        def __init__(self) -> None:
            self.seen = False

        def on_step_begin(self, iteration, trials, **info):
            if self.seen:
                return
            self.seen = True
            for t in trials:
                t.max_failures = -1 if max_failures < 0 else max_failures + t.num_failures
                t.invalidate_json_state()  # the saved experiment state says it too

    return AttemptRetries()


def apply_attempt_on_restore(tuner: Any, cfg: SweepConfig, limit: int | None, callbacks: list[Any],
                             sweep: str) -> None:
    """Make the restored ``tuner`` run under this attempt's settings, not those its first attempt pickled
    with its TuneConfig and RunConfig (``Tuner.restore`` brings both back): at most ``limit`` trials at once
    (this attempt's ``budget.max_concurrent`` or the cluster it now runs on; trials the earlier attempt
    had started are resumed as resources allow, the limit caps the ones started after), ``cfg.max_failures``
    retries per trial (``attempt_retries``) and this attempt's ``callbacks``. A change is logged.

    Raises:
        RuntimeError: a Tuner without the local state this reads (a Ray Client tuner).
    """
    from dataclasses import replace

    inner = getattr(tuner, "_local_tuner", None)
    if inner is None or not hasattr(inner, "_tune_config") or not hasattr(inner, "_run_config"):
        raise RuntimeError(f"sweep {sweep}: cannot apply this attempt's settings to a restored Tune run on this Ray")
    old, run = inner._tune_config, inner._run_config
    before = getattr(old.search_alg, "max_concurrent", old.max_concurrent_trials) or None
    if before != limit:
        log.info("sweep %s: trials at once %s (the earlier attempt: %s)", sweep, limit or "no cap", before or "no cap")
    inner._tune_config = replace(old, max_concurrent_trials=None, search_alg=limit_search(limit))
    retries = run.failure_config.max_failures if run.failure_config is not None else 0
    if retries != cfg.max_failures:
        log.info("sweep %s: max_failures %d (the earlier attempt: %d)", sweep, cfg.max_failures, retries)
    run = copy.copy(run)  # not replace(): RunConfig.__post_init__ would check the restored paths again
    run.failure_config = (replace(run.failure_config, max_failures=cfg.max_failures) if run.failure_config
                          is not None else _failure_config(cfg.max_failures))
    run.callbacks = [*callbacks, attempt_retries(cfg.max_failures)]
    inner._run_config = run


def _failure_config(max_failures: int) -> Any:
    from ray import tune

    return tune.FailureConfig(max_failures=max_failures)


def progress_callback(total: int) -> Any:
    """A Tune callback that logs one line per trial event (start, loss, done, retry, error), with the
    trials finished and failed so far: a trial that ended with an input error (``INPUT_ERROR``) or an
    error after its last try counts as failed, never as finished."""
    from ray.tune import Callback

    class ProgressLog(Callback):
        def __init__(self) -> None:
            self.done, self.failed = 0, 0

        def counts(self) -> str:
            return f"{self.done} finished, {self.failed} failed of {total}"

        def on_trial_start(self, iteration, trials, trial, **info):
            log.info("trial %s started", _name(trial))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if "loss" in result:
                log.info("trial %s %s step %s loss %.4f", _name(trial), result.get("phase"), result.get("step"),
                         result["loss"])

        def on_trial_complete(self, iteration, trials, trial, **info):
            # a trial whose inputs cannot train ends normally, with the reason as a metric: a failure
            error = (trial.last_result or {}).get(INPUT_ERROR)
            if error:
                self.failed += 1
                log.warning("trial %s failed: %s (%s)", _name(trial), error, self.counts())
            else:
                self.done += 1
                log.info("trial %s finished (%s)", _name(trial), self.counts())

        def on_trial_recover(self, iteration, trials, trial, **info):
            log.warning("trial %s failed (try %d), retried from its last checkpoint", _name(trial), trial.num_failures)

        def on_trial_error(self, iteration, trials, trial, **info):
            self.failed += 1
            log.warning("trial %s failed after %d tries (%s)", _name(trial), trial.num_failures, self.counts())

    return ProgressLog()


def _name(trial: Any) -> str:
    return trial.config.get("spec", {}).get("trial_id", trial.trial_id)


CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN")


def keep_credentials_out_of_trial_runtime_env() -> None:
    """Ray Tune copies the driver's AWS credentials into every trial actor's ``runtime_env``
    (``ray.tune.execution.class_cache``), and Ray's runtime-env agent logs that env in plain text
    (``session_*/logs/runtime_env_agent.log``) and shows it in the dashboard. Trials take
    credentials from their node's environment instead (the instance role of a cloud node, or the
    shell that started a local head), as every other process on the cluster does."""
    try:
        from ray.tune.execution import class_cache
    except ImportError:  # pragma: no cover - a Ray without that module propagates nothing
        return
    propagated = getattr(class_cache, "ENV_VARS_TO_PROPAGATE", None)
    if isinstance(propagated, set):
        propagated.difference_update(CREDENTIAL_VARS)


def run_exists(uri: str, path: str, fs: Any) -> bool:
    """Whether Tune's state of a run is at ``uri`` (``Tuner.can_restore`` on ``path`` in ``fs``), with a
    storage failure named as our own copies name theirs.

    Raises:
        tracebridge.export.storage.StorageUnreachable: the storage did not answer (a timeout, a refused or
            cut connection) within the tries of ``fs`` (``storage_io``).
        tracebridge.export.storage.StorageError: any other I/O failure (a permission refused).
    """
    from ray import tune

    from tracebridge.export.storage import StorageError, StorageUnreachable

    try:
        return tune.Tuner.can_restore(path, storage_filesystem=fs)
    except OSError as exc:
        err = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        # pyarrow's S3 reports every network failure as AWS Error NETWORK_CONNECTION
        unreachable = isinstance(exc, (TimeoutError, ConnectionError)) or "NETWORK_CONNECTION" in str(exc)
        raise (StorageUnreachable if unreachable else StorageError)(
            f"look-up of the Tune run at {uri} failed: {err}") from exc


def build_tuner(cfg: SweepConfig, ctx: TrialContext, specs: list[dict[str, Any]], callbacks: list[Any]) -> Any:
    """A new Tuner, or the restored one when this sweep's run exists on storage (finished trials
    are kept, unfinished and errored ones continue from their last checkpoint). Tune reaches the
    storage through ``tune_storage``'s filesystem, bounded by ``cfg.storage_io``.

    Raises:
        tracebridge.export.storage.StorageError: as ``run_exists``.
    """
    import ray
    from ray import tune

    from tracebridge.sweep.storage import join, tune_storage

    keep_credentials_out_of_trial_runtime_env()
    trainable = tune.with_resources(tune.with_parameters(tune_trial, ctx=ctx), trial_resources(cfg))
    storage_path, fs = tune_storage(cfg.storage, cfg.storage_io)
    exp_path = join(storage_path, ctx.sweep_id)
    limit = max_concurrent(cfg, ray.cluster_resources())
    if run_exists(join(cfg.storage, ctx.sweep_id), exp_path, fs):
        log.info("resuming sweep %s from %s", ctx.sweep_id, join(cfg.storage, ctx.sweep_id))
        tuner = tune.Tuner.restore(exp_path, trainable, resume_unfinished=True, resume_errored=True,
                                   storage_filesystem=fs)
        apply_attempt_on_restore(tuner, cfg, limit, callbacks, ctx.sweep_id)
        return tuner
    # no time_budget_s: Tune would mark the trials it stops as finished (budget.BudgetTimer interrupts instead)
    tc = tune.TuneConfig(reuse_actors=True, search_alg=limit_search(limit),
                         trial_dirname_creator=lambda t: t.config["spec"]["trial_id"],
                         trial_name_creator=lambda t: t.config["spec"]["trial_id"])
    rc = tune.RunConfig(name=ctx.sweep_id, storage_path=storage_path, storage_filesystem=fs,
                        failure_config=_failure_config(cfg.max_failures),
                        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                        callbacks=callbacks, verbose=0)
    return tune.Tuner(trainable, param_space={"spec": tune.grid_search(specs)}, tune_config=tc, run_config=rc)


def mlflow_callbacks(cfg: SweepConfig, sweep: str) -> list[Any]:
    """The MLflow logger callback (file store under the storage) when enabled and installed."""
    if not cfg.mlflow:
        return []
    try:
        import mlflow  # noqa: F401
        from ray.air.integrations.mlflow import MLflowLoggerCallback
    except ImportError:
        log.warning("mlflow=true but mlflow is not installed; logging to Tune storage only")
        return []
    from tracebridge.sweep.storage import join

    return [MLflowLoggerCallback(tracking_uri=join(cfg.storage, "mlflow"), experiment_name=sweep)]


def collect_results(grid: Any, local: Path, unfinished: str = "did not finish (budget or interruption)"
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each trial's final result (with ``eval_items_path`` pointing at a local copy) and the
    trials that did not finish; ``unfinished`` is the error of one that stopped without an error
    of its own (before its first or its final checkpoint)."""
    results, failures = [], []
    for r in grid:
        # a trial stopped before it started has no config in its result: its folder is named by its id
        tid = (r.config or {}).get("spec", {}).get("trial_id") or (Path(r.path).name if r.path else "?")
        input_error = (r.metrics or {}).get(INPUT_ERROR)
        if r.error is not None or input_error or r.checkpoint is None:
            failures.append({"trial_id": tid, **error_fields(input_error, r.error, unfinished), **ran(r.metrics),
                             **held(r)})
            continue
        d = Path(r.checkpoint.to_directory(str(local / tid)))
        kind, res = unpack_checkpoint(d)
        if kind != "final":
            failures.append({"trial_id": tid, **error_fields(None, None, unfinished)})
            continue
        res.update(eval_items_path=str(d / "eval_items.json"), checkpoint_uri=r.checkpoint.path,
                   model_dir=str(d / "model") if (d / "model").is_dir() else None, **held(r))
        results.append(res)
    return results, failures


ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the first line of a trial's error


def error_fields(input_error: str | None, error: BaseException | None, unfinished: str,
                 kind: str = "not_finished") -> dict[str, str]:
    """A failed trial's ``error`` (the whole text: Ray's traceback for a raised error), ``error_type`` and
    ``error_message``: the exception's class and message (a Ray error's ``cause``, the trial's own exception,
    not Ray's wrapper), an input error's (``"TrialInputError: ..."``), or ``kind`` with ``unfinished`` for a
    trial that stopped without an error of its own."""
    if input_error:
        name, sep, msg = str(input_error).partition(": ")
        typed = bool(sep) and name.isidentifier()
        return {"error": str(input_error), "error_type": name if typed else "TrialInputError",
                "error_message": msg if typed else str(input_error)}
    if error is not None:
        cause = getattr(error, "cause", None) or error
        return {"error": ANSI.sub("", str(error)), "error_type": type(cause).__name__,
                "error_message": ANSI.sub("", str(cause)) or repr(cause)}
    return {"error": unfinished, "error_type": kind, "error_message": unfinished}


def ran(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """What a failed trial's last reported metrics say about the time it held its resources:
    ``wall_s`` (Tune's ``time_total_s``: at least that, the time since its last report is not in it) and
    ``resources`` (``gpus``, ``gpu_type``, ``node``: ``trainable.placed``); empty for a trial that
    reported nothing (it failed at once, or never started)."""
    m = metrics or {}
    out: dict[str, Any] = {}
    if isinstance(m.get("time_total_s"), (int, float)):
        out["wall_s"] = float(m["time_total_s"])
    if "gpus" in m:
        out["resources"] = {"gpus": m.get("gpus"), "gpu_type": m.get("gpu_type"), "node": m.get("node")}
    return out


def held(r: Any) -> dict[str, Any]:
    """The seconds a trial held its resources over all its attempts, as its reports tell (``held_s``), and
    how many attempts reported (``attempts``): each attempt's ``time_since_restore`` at its last report,
    summed. A retried trial's own ``wall_s`` is its last attempt's, and Tune's ``time_total_s`` goes back
    to the checkpoint it resumed from (to 0 for an attempt that started over), so both miss what the
    lost attempts ran; an attempt's time after its last report is not known (a lower bound). Empty when
    Tune kept no reported rows."""
    df = getattr(r, "metrics_dataframe", None)
    if df is None or df.empty or not {"time_since_restore", "iterations_since_restore"} <= set(df.columns):
        return {}
    total, attempts, last, prev = 0.0, 0, 0.0, None
    for since, it in zip(df["time_since_restore"], df["iterations_since_restore"]):
        if not (isinstance(since, numbers.Real) and isinstance(it, numbers.Real)) or math.isnan(since) or math.isnan(it):
            continue  # a row without Tune's timing
        if prev is None or it <= prev:  # the count starts again at 1: a new attempt
            total, attempts = total + last, attempts + 1
        last, prev = float(since), it
    return {"held_s": total + last, "attempts": attempts} if attempts else {}


def not_started(specs: list[dict[str, Any]], trials: list[dict[str, Any]], failures: list[dict[str, Any]],
                why: str) -> list[dict[str, Any]]:
    """A failure, with ``why`` as its error, for each spec with neither a result nor a failure: a trial
    Tune never created (the budget or an interruption stopped the run before its grid generator got to it,
    e.g. under ``budget.max_concurrent``, which creates a trial only when one finishes)."""
    seen = {t["trial_id"] for t in trials} | {f["trial_id"] for f in failures}
    return [{"trial_id": s["trial_id"], **error_fields(None, None, why, "not_run")} for s in specs
            if s["trial_id"] not in seen]


def run_sweep(cfg: SweepConfig, ctx: TrialContext, grid_specs: list[dict[str, Any]],
              no_dpo_roles: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Run (or resume) the grid, each group of cells that train the same model as one trial (``shared``; the
    bundle's ``no_dpo_roles``); return ``{"trials", "failures"}`` (one per cell), ``"wall_s"``, ``"trained"``, ``"shared"``."""
    from tracebridge.sweep.shared import describe, fan_out, share_trials

    specs, members = share_trials(ctx.recipes, grid_specs, no_dpo_roles)
    if members:
        log.info("%d of %d grid cells train: %s (their configs differ only in keys that trial never reads)",
                 len(specs), len(grid_specs), describe(members))
    t0 = time.time()
    started = first_step()
    tuner = build_tuner(cfg, ctx, specs,
                        [progress_callback(len(specs)), started, *mlflow_callbacks(cfg, ctx.sweep_id)])
    with BudgetTimer(cfg.budget.max_hours, ready=lambda: started.done) as budget:
        grid = tuner.fit()
    unfinished = (f"not finished within budget.max_hours={cfg.budget.max_hours:g}; `tracebridge submit ... "
                  "--resume` continues it from its last checkpoint" if budget.fired else "did not finish (interrupted)")
    trials, failures = collect_results(grid, Path(ctx.work_root) / "results", unfinished)
    failures += not_started(specs, trials, failures, unfinished if budget.fired else "not run")
    by_id = {s["trial_id"]: s for s in specs}  # the report lists a failed trial's role, variant and seed
    failures = [{**{k: v for k, v in by_id.get(f["trial_id"], {}).items() if k != "trial_id"}, **f} for f in failures]
    trials, failures = fan_out(trials, failures, members)
    order = {s["trial_id"]: i for i, s in enumerate(grid_specs)}
    trials.sort(key=lambda t: order.get(t.get("trial_id"), 1 << 30))
    log.info("sweep %s: %d of %d trials finished, %d failed, in %.1fs", ctx.sweep_id, len(trials), len(grid_specs),
             len(failures), time.time() - t0)
    return {"trials": trials, "failures": failures, "wall_s": time.time() - t0, "trained": len(specs),
            "shared": {tid: [m["trial_id"] for m in group] for tid, group in members.items()}}


def attempts(work_root: Path) -> dict[str, list[dict[str, Any]]]:
    """Per trial, the attempt log its runs appended (start/done events with pid and resume kind)."""
    out = {}
    for f in sorted((Path(work_root) / "trials").glob("*/attempts.jsonl")):
        out[f.parent.name] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out
