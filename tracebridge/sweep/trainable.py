"""The per-trial function Ray Tune runs: fetch the bundle on this node, resume from the trial's
last checkpoint, call ``tracebridge.train.trial.run_trial``, and report losses, checkpoints and the
final metrics to Tune (``tune.report(..., checkpoint=Checkpoint.from_directory(tmp))``).

Checkpoint layout (what ``resolve_resume`` reads back): ``<phase>/checkpoint-N`` (+ ``sft/final``
for a DPO checkpoint). The final checkpoint holds ``result.json`` (the trial's returned dict),
``trial.json``, ``eval_items.json``, ``quarantine.jsonl`` and, with ``keep_models``, ``model/`` (and, for a
trial that ran DPO, ``ref_model/``: the SFT model DPO started from, the reference of ``reward_margin``).
Ray imports happen inside the functions; the packing helpers are plain file operations.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracebridge.export.config import StorageConfig

log = logging.getLogger(__name__)
INPUT_ERROR = "input_error"  # the metric a trial whose inputs cannot train ends with (no checkpoint, no retry)

FINAL_FILES = ("trial.json", "eval_items.json", "quarantine.jsonl")
MARKER = "tracebridge_checkpoint.json"


@dataclass
class TrialContext:
    """What every trial of a sweep shares (pickled with the trainable; small)."""

    sweep_id: str
    bundle_uri: str
    bundle_id: str
    work_root: str
    recipes: dict[str, dict[str, Any]]
    keep_models: bool = True
    storage: str = ""
    workers: int = 1
    cpu: float = 1.0
    gpu: float = 0.0
    max_failures: int = 2
    distributed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    storage_io: StorageConfig | None = None  # the sweep's: bounds the bundle fetch, Ray Train's storage


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a folder by hard links (same filesystem) or bytes (across filesystems)."""
    shutil.copytree(src, dst, copy_function=_link_or_copy, dirs_exist_ok=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def pack_checkpoint(checkpoint_dir: Path, out: Path, phase: str, step: int) -> Path:
    """Lay out a training checkpoint so a retried trial can resume from it."""
    checkpoint_dir = Path(checkpoint_dir)
    _link_tree(checkpoint_dir, out / phase / checkpoint_dir.name)
    final_sft = checkpoint_dir.parent.parent / "sft" / "final"
    if phase == "dpo" and final_sft.is_dir():
        _link_tree(final_sft, out / "sft" / "final")
    (out / MARKER).write_text(json.dumps({"kind": "train", "phase": phase, "step": step,
                                          "path": f"{phase}/{checkpoint_dir.name}"}))
    return out


def pack_final(result: dict[str, Any], work: Path, out: Path, keep_model: bool) -> Path:
    """Lay out the final checkpoint: the result, the per-item eval values and (optionally) the model."""
    out.mkdir(parents=True, exist_ok=True)
    for name in FINAL_FILES:
        if (work / name).is_file():
            _link_or_copy(str(work / name), str(out / name))
    for key, name in (("checkpoint_dir", "model"), ("ref_checkpoint_dir", "ref_model")):
        if keep_model and result.get(key) and Path(result[key]).is_dir():
            _link_tree(Path(result[key]), out / name)
    (out / "result.json").write_text(json.dumps(result, default=str))
    (out / MARKER).write_text(json.dumps({"kind": "final"}))
    return out


def unpack_checkpoint(ckpt_dir: Path) -> tuple[str, Path | dict[str, Any] | None]:
    """What a restored checkpoint holds: ``("final", result)``, ``("train", resume_from)`` or
    ``("none", None)``."""
    marker = Path(ckpt_dir) / MARKER
    if not marker.is_file():
        return "none", None
    meta = json.loads(marker.read_text())
    if meta["kind"] == "final":
        return "final", json.loads((Path(ckpt_dir) / "result.json").read_text())
    return "train", Path(ckpt_dir) / meta["path"]


def scalar_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The numbers and labels of a trial result that Tune can log (no lists or nested dicts)."""
    return {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool)) or v is None}


def _ledger(work: Path, event: str, **kw: Any) -> None:
    """Append to the trial's attempt log (which pid ran it, whether it resumed)."""
    work.mkdir(parents=True, exist_ok=True)
    with (work / "attempts.jsonl").open("a") as fh:
        fh.write(json.dumps({"event": event, "pid": os.getpid(), "time": time.time(), **kw}) + "\n")


def make_reporter(report: Callable[..., None], checkpoint_cls: Any, rank: int = 0,
                  losses: bool = True) -> Callable[[dict], None]:
    """The ``on_report`` callback of ``run_trial`` for Tune (or Ray Train): losses as metrics,
    checkpoints as Tune checkpoints (rank 0 only), the final dict skipped (reported after packing).

    Args:
        losses: report logged losses too. Ray Train's ``report`` is a collective across ranks
            (~2 s each on CPU), so the Train path reports only checkpoints and the end, and logs losses.
    """

    def on_report(d: dict[str, Any]) -> None:
        if "role" in d:  # the final result: reported with its checkpoint by the caller
            return
        metrics = {"phase": d.get("phase"), "step": d.get("step")}
        if "loss" in d:
            if losses:
                report({**metrics, "loss": d["loss"]})
            else:
                log.info("%s step %s loss %.4f", d.get("phase"), d.get("step"), d["loss"])
        elif "checkpoint_dir" in d:
            if rank != 0:
                report(metrics)
                return
            with tempfile.TemporaryDirectory(prefix="tb-ckpt-") as tmp:
                pack_checkpoint(Path(d["checkpoint_dir"]), Path(tmp), d["phase"], int(d["step"]))
                report(metrics, checkpoint=checkpoint_cls.from_directory(tmp))

    return on_report


def run_one(spec: dict[str, Any], ctx: TrialContext, report: Callable[..., None], checkpoint_cls: Any,
            restored: Path | None, rank: int = 0, losses: bool = True, world: int = 1) -> dict[str, Any]:
    """One trial on this worker: bundle, resume point, ``run_trial``, final report. Shared by the
    Tune function and the Ray Train worker loop (``world`` = its number of workers: the trial's
    ``resources.gpus`` counts every worker's GPUs, its ``node`` is rank 0's)."""
    from tracebridge.sweep.grid import run_spec, write_recipe
    from tracebridge.sweep.storage import ensure_bundle
    from tracebridge.train.trial import run_trial

    root = Path(ctx.work_root)
    work = root / "trials" / spec["trial_id"] / (f"rank{rank}" if rank else "")
    kind, payload = unpack_checkpoint(restored) if restored else ("none", None)
    _ledger(work, "start", resumed=kind, attempt_of=spec["trial_id"],
            resume_from=payload.relative_to(restored).as_posix() if kind == "train" else None)
    if kind == "final":  # finished before an interruption: report it again, train nothing
        result = payload
    else:
        # hashed once here; the fetch bounded by the sweep's storage_io
        bundle, manifest = ensure_bundle(ctx.bundle_uri, root / "bundles", ctx.bundle_id, ctx.storage_io)
        recipe = write_recipe(ctx.recipes[spec["variant"]], work / "recipe.yaml")
        result = run_trial(run_spec(spec, str(recipe)), bundle, work, make_reporter(report, checkpoint_cls, rank, losses),
                           resume_from=payload if kind == "train" else None, manifest=manifest)
        result["trial_id"] = spec["trial_id"]
        if world > 1 and isinstance(result.get("resources"), dict):
            res = result["resources"]
            res.update(gpus=res.get("gpus", 0.0) * world, workers=world)
    _ledger(work, "done")
    metrics = {**scalar_metrics(result), "final": True}
    if rank != 0:
        report(metrics)
        return result
    with tempfile.TemporaryDirectory(prefix="tb-final-") as tmp:
        if kind == "final":
            shutil.copytree(restored, tmp, dirs_exist_ok=True)
        else:
            pack_final(result, work, Path(tmp), ctx.keep_models)
        report(metrics, checkpoint=checkpoint_cls.from_directory(tmp))
    return result


def tune_trial(config: dict[str, Any], ctx: TrialContext) -> None:
    """The Ray Tune function trainable (one grid cell; ``config = {"spec": ...}``)."""
    from ray import tune

    from tracebridge.train.common import TrialInputError

    _threads(ctx)
    spec = config["spec"]
    if ctx.distributed:
        _run_with_train(spec, ctx)
        return
    ckpt = tune.get_checkpoint()
    report = placed(tune.report)
    try:
        with tempfile.TemporaryDirectory(prefix="tb-restore-") as tmp:
            restored = Path(ckpt.to_directory(tmp)) if ckpt else None
            run_one(spec, ctx, report, tune.Checkpoint, restored)
    except TrialInputError as exc:  # a retry (FailureConfig) would only pay for the same failure again
        report(input_error(spec, exc))


def placed(report: Callable[..., None], world: int = 1) -> Callable[..., None]:
    """``report`` with where the trial runs added to every metrics dict (``gpus`` = this worker's ×
    ``world``, ``gpu_type``, ``node``): Tune keeps a failed trial's last reported metrics, so its GPU time
    (``gpus`` × Tune's ``time_total_s``) is counted in the report's GPU-hours and cost
    (``tune_run.collect_results``), not only the finished trials'."""
    from tracebridge.train.placement import trial_placement

    where = trial_placement()
    extra = {"gpus": float(where.get("gpus") or 0.0) * world, "gpu_type": where.get("gpu_type"),
             "node": where.get("node")}

    def report_placed(metrics: dict[str, Any], **kw: Any) -> None:
        report({**metrics, **extra}, **kw)

    return report_placed


def input_error(spec: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """The final metrics of a trial whose inputs cannot train (``TrialInputError``): reported, not
    raised, so neither Tune's nor Ray Train's FailureConfig retries it."""
    log.error("trial %s: %s (not retried: the same inputs fail the same way)", spec["trial_id"], exc)
    return {"final": True, INPUT_ERROR: f"{type(exc).__name__}: {exc}"}


def _threads(ctx: TrialContext) -> None:
    """One torch thread per reserved CPU (Ray sets OMP_NUM_THREADS for trials; torch needs it too)."""
    try:
        import torch

        torch.set_num_threads(max(1, int(ctx.cpu)))
    except ImportError:  # pragma: no cover - the train extra is installed where trials run
        pass


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train worker loop (TorchTrainer): every rank trains, rank 0 checkpoints; inputs that
    cannot train end it with ``input_error`` on every rank (``report`` is a collective)."""
    import ray.train

    from tracebridge.train.common import TrialInputError

    ctx: TrialContext = config["ctx"]
    _threads(ctx)
    rank, world = ray.train.get_context().get_world_rank(), ray.train.get_context().get_world_size()
    ckpt = ray.train.get_checkpoint()
    report = placed(ray.train.report, world)
    try:
        with tempfile.TemporaryDirectory(prefix="tb-restore-") as tmp:
            restored = Path(ckpt.to_directory(tmp)) if ckpt else None
            run_one(config["spec"], ctx, report, ray.train.Checkpoint, restored, rank, losses=False, world=world)
    except TrialInputError as exc:
        report(input_error(config["spec"], exc))


def _run_with_train(spec: dict[str, Any], ctx: TrialContext) -> None:
    """A trial as a Ray Train run (multi-GPU): TorchTrainer with ScalingConfig, named after the
    trial (no timestamp) on the sweep's storage, so a retried trial resumes its Train run."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer

    from tracebridge.sweep.storage import join, tune_storage

    callbacks = []
    try:
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())
    except (ImportError, RuntimeError):  # pragma: no cover - older Ray
        pass
    storage_path, fs = tune_storage(join(ctx.storage, ctx.sweep_id, "_train"), ctx.storage_io)  # bounded, as Tune's
    trainer = TorchTrainer(
        train_loop, train_loop_config={"spec": spec, "ctx": ctx},
        scaling_config=ray.train.ScalingConfig(num_workers=ctx.workers, use_gpu=ctx.gpu > 0,
                                               resources_per_worker={"CPU": ctx.cpu, "GPU": ctx.gpu}),
        run_config=ray.train.RunConfig(name=spec["trial_id"], storage_path=storage_path, storage_filesystem=fs,
                                       failure_config=ray.train.FailureConfig(max_failures=max(ctx.max_failures, 0)),
                                       callbacks=callbacks))
    result = trainer.fit()
    if result.checkpoint is None:  # inputs that cannot train: train_loop's input_error reached Tune
        return  # through TuneReportCallback (Result.metrics only holds checkpointed reports); no retry
    with tempfile.TemporaryDirectory(prefix="tb-final-") as tmp:
        result.checkpoint.to_directory(tmp)
        res = json.loads((Path(tmp) / "result.json").read_text())
        tune.report({**scalar_metrics(res), "final": True}, checkpoint=tune.Checkpoint.from_directory(tmp))
