"""One trial, start to finish: config → verify bundle → role data → behaviour policy → (curate) →
SFT → (DPO) → offline eval (→ closed loop) → ``trial.json``. The single entry point that Ray Tune trials,
``jobs/train_role.py`` and ``tracebridge train`` call; importable without Ray.

Work-dir layout: ``sft/checkpoint-N``, ``sft/final``, ``dpo/checkpoint-N``, ``dpo/final``,
``quarantine.jsonl``, ``eval_items.json`` (per-item metric values, for paired comparisons),
``trial.json`` (the returned metrics + resolved config + data counts + the rows the behaviour
policy changed), or ``trial_failed.json`` (role, variant, seed, error) when the trial failed. A trial that
starts again in the same folder first removes the earlier run's ``trial.json`` and ``eval_items.json``.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracebridge.config import config_hash, to_dict
from tracebridge.schema.canonical import ts_from_epoch_ms
from tracebridge.train.config import TrainConfig, Variant, load_train_config
from tracebridge.train.model_config import model_path_problem
from tracebridge.train.resume_config import write_trial_config

log = logging.getLogger(__name__)

Reporter = Callable[[dict[str, Any]], None]
SPEC_KEYS = {"role", "variant", "seed", "overrides", "config", "model"}
TRIAL_KEYS = ("role", "variant", "seed")  # what names a trial: never one of its ablation values
RESULT_FILES = ("trial.json", "eval_items.json")  # written when a trial ends; removed when it starts again
FAILED_FILE = "trial_failed.json"  # written instead when it fails


def spec_overrides(spec: dict[str, Any]) -> list[str]:
    """``key=value`` overrides of a trial spec: its ``overrides`` (dict or list) plus any dotted
    top-level keys (Tune parameter spaces), then role/variant/seed."""
    out: list[str] = []
    ov = spec.get("overrides") or {}
    items = ov.items() if isinstance(ov, dict) else (o.split("=", 1) for o in ov)
    extra = ((k, v) for k, v in spec.items() if "." in k)
    for k, v in [*items, *extra]:
        out.append(f"{k}={v if isinstance(v, str) else json.dumps(v)}")
    out += [f"{k}={spec[k]}" for k in ("role", "variant", "seed") if k in spec]
    unknown = [k for k in spec if k not in SPEC_KEYS and "." not in k]
    if unknown:
        from tracebridge.config import ConfigError

        raise ConfigError([f"spec.{k}: unknown trial spec key (known: {', '.join(sorted(SPEC_KEYS))} "
                           "or dotted config keys)" for k in unknown])
    return out


def spec_ablation(spec: dict[str, Any]) -> dict[str, Any]:
    """The config keys a spec changes (its ``overrides`` and dotted keys), for ablation tables.

    ``role``, ``variant`` and ``seed`` are left out, whether given as spec keys or as overrides
    (``tracebridge train CONFIG variant=optimized``): they are what a report groups and pairs trials by,
    and as ablation values a baseline and an optimized trial trained in separate commands never paired."""
    ov = spec.get("overrides") or {}
    pairs = ov.items() if isinstance(ov, dict) else (o.split("=", 1) for o in ov)
    out = {**dict(pairs), **{k: v for k, v in spec.items() if "." in k}}
    return {k: v for k, v in out.items() if k not in TRIAL_KEYS}


def _callback(on_report: Reporter | None, phase: str) -> list[Any]:
    if on_report is None:
        return []
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                on_report({"phase": phase, "step": state.global_step, "loss": float(logs["loss"])})

        def on_save(self, args, state, control, **kw):
            on_report({"phase": phase, "step": state.global_step,
                       "checkpoint_dir": str(Path(args.output_dir) / f"checkpoint-{state.global_step}")})

    return [_Report()]


def resolve_resume(resume_from: Path | None, sft_max_steps: int = -1) -> dict[str, Path | None]:
    """Where to pick up: ``{"sft": ckpt, "sft_final": dir, "dpo": ckpt}`` from a checkpoint
    folder (``.../sft/checkpoint-N``) or the work dir of an earlier attempt. An SFT checkpoint at
    ``sft_max_steps`` (when > 0) beside ``sft/final`` is a finished SFT: its ``final`` is taken, as
    transformers, resumed at its last step, trains one step past ``max_steps``."""
    from tracebridge.train.common import find_last_checkpoint

    out: dict[str, Path | None] = {"sft": None, "sft_final": None, "dpo": None}
    if resume_from is None:
        return out
    p = Path(resume_from)
    if p.name.startswith("checkpoint-"):
        phase, work = p.parent.name, p.parent.parent
        out[phase] = p
    else:
        work = p
        out["dpo"] = find_last_checkpoint(work / "dpo")
        out["sft"] = find_last_checkpoint(work / "sft")
    finished = out["sft"] is not None and 0 < sft_max_steps <= checkpoint_step(out["sft"])
    saved = final_saved(work / "sft" / "final")
    if saved and (out["dpo"] is not None or out["sft"] is None or finished):
        out["sft"], out["sft_final"] = None if finished else out["sft"], work / "sft" / "final"
    elif finished and not p.name.startswith("checkpoint-"):  # its final not saved whole: SFT trains up to
        out["sft"] = find_last_checkpoint(work / "sft", below=sft_max_steps)  # max_steps again, not one past
    return out


def final_saved(final: Path) -> bool:
    """Whether a ``final`` folder was saved whole: its model's config and its tokenizer, which is written after
    the weights, config and chat template last (``tokenizer_config.json``, then its vocabulary). A trial killed
    while saving it leaves a folder without them, which resuming took for a finished SFT: DPO then failed to
    load it on every try; SFT resumes from its checkpoint before ``max_steps`` instead (a warning says so)."""
    if not final.is_dir():
        return False
    whole = all((final / n).is_file() for n in ("config.json", "tokenizer_config.json")) and any(
        (final / n).is_file() for n in ("tokenizer.json", "vocab.json", "vocab.txt", "tokenizer.model"))
    if not whole:
        log.warning("%s: left incomplete (killed while saving?); not resumed from", final)
    return whole


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a ``checkpoint-N`` folder was saved at (its N)."""
    return int(checkpoint.name.rsplit("-", 1)[-1])


def resume_problem(resume_from: Path) -> str | None:
    """Why ``tracebridge train --resume`` cannot continue from a path (None when it can): a trial
    folder or one of its ``sft``/``dpo`` ``checkpoint-N`` folders is needed, else the trial would
    silently start over."""
    p = Path(resume_from)
    fix = "give an earlier trial folder (runs/<role>-<variant>-s<seed>) or its sft/ or dpo/ checkpoint-N"
    if not p.is_dir():
        return f"--resume {p}: no such folder; {fix}"
    if p.name.startswith("checkpoint-"):
        if p.parent.name not in ("sft", "dpo") or not (p / "trainer_state.json").is_file():
            return f"--resume {p}: not a complete sft/ or dpo/ checkpoint (no trainer_state.json); {fix}"
        return None
    if not any(resolve_resume(p).values()):
        return f"--resume {p}: holds no sft/ or dpo/ checkpoint-N and no sft/final to continue from; {fix}"
    return None


def select_train_rows(data: Any, cfg: TrainConfig) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The SFT rows of the train split: raw (baseline) or curated with the recovery rows the SFT rows
    do not already hold (optimized; ``data.new_recovery_rows``: ``recovery_in_sft`` counts the others)."""
    from tracebridge.train.data import curate, new_recovery_rows

    rows = data.split(data.sft, "train")
    report: dict[str, int] = {"in": len(rows), "out": len(rows)}
    if Variant(cfg.variant).curates:
        recovery = data.split(data.recovery_sft, "train")
        added = new_recovery_rows(rows, recovery)
        rows, report = curate(rows + added, cfg.data)
        report["recovery_in_sft"] = len(recovery) - len(added)
    if cfg.data.max_train_rows and len(rows) > cfg.data.max_train_rows:
        rows = random.Random(cfg.seed).sample(rows, cfg.data.max_train_rows)
    return rows, report


def _load_final(path: Path, cfg: TrainConfig) -> tuple[Any, Any]:
    from dataclasses import replace

    from tracebridge.train.models import build_model_and_tokenizer

    mc = replace(cfg.model, init="pretrained", path=str(path), chat_template="native")
    return build_model_and_tokenizer(mc)


def _write_quarantine(work: Path, data: Any) -> None:
    with (work / "quarantine.jsonl").open("w") as fh:
        for q in data.quarantined:
            fh.write(json.dumps(q.to_dict()) + "\n")


def run_trial(spec: dict[str, Any], bundle_dir: Path, work_dir: Path, on_report: Reporter | None = None,
              resume_from: Path | None = None, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train and evaluate one role/variant/seed on a bundle.

    Args:
        spec: ``{"role", "variant", "seed"}`` plus optional ``"config"`` (a configs/train YAML;
            default: schema defaults = the tiny CPU profile), ``"model"`` (a configs/model YAML
            replacing the model block) and overrides, either as ``"overrides": {"train.lr": 1e-4}``
            (or a ``["train.lr=1e-4"]`` list) or as dotted top-level keys (``"train.lora.r": 16``).
            Keys are ``TrainConfig`` paths: ``train.*`` (SFT), ``dpo.*``, ``data.*``, ``behaviour.*``
            (prompt/tool/response policy, ``tracebridge.train.behaviour``), ``eval.*``, ``model.*``.
        bundle_dir: an export bundle (manifest verified first unless ``data.verify_bundle=false``).
        work_dir: this trial's folder (checkpoints, final models, eval items, trial.json).
        on_report: called with ``{"phase", "step", "loss"}`` on every logged step, with
            ``{"phase", "step", "checkpoint_dir"}`` after every checkpoint, and finally with the
            returned dict. Ray Tune passes its ``tune.report`` wrapper here.
        resume_from: a ``checkpoint-N`` folder or an earlier attempt's work dir.
        manifest: the bundle's manifest as the caller has just verified it
            (``tracebridge.sweep.storage.ensure_bundle``): used instead of hashing every file again.

    Returns:
        Flat metrics: ``'<role>/<metric>'`` (+ ``_lo``/``_hi`` bootstrap bounds), ``'sft/first_loss'``,
        ``'sft/last_loss'`` (and ``dpo/*``), ``'train/tokens_per_s'``, ``'wall_s'`` (and ``started_at``,
        ``finished_at``: UTC timestamps of the trial's start and end), plus
        ``'loss_curve'`` (``[{phase, step, loss}]``), ``'checkpoint_dir'`` (final model folder,
        loadable with ``model.init=pretrained``), ``'eval_items_path'``, ``'trial_dir'``, ``role``,
        ``variant``, ``seed``, ``config_hash``, ``bundle_id``, ``ablation`` (``spec_ablation``),
        ``resources`` (where it ran: node, GPUs given, GPU type; ``tracebridge.train.placement``).

    Raises:
        tracebridge.config.ConfigError: bad spec or config.
        tracebridge.train.data.BundleError: bundle fails verification, has no rows for the role, or
            none in the evaluated split (raised before training).
    """
    t0 = time.time()
    cfg = load_train_config(spec.get("config"), spec_overrides(spec), spec.get("model"))
    from tracebridge.train.prepared import prepared_cache_problem

    # before a trial folder: transformers would say less, or nothing
    if why := model_path_problem(cfg.model) or prepared_cache_problem(cfg.data.prepared_cache):
        from tracebridge.config import ConfigError

        raise ConfigError([why], spec.get("config"))
    cfg.model.seed = cfg.seed
    from tracebridge.train.common import seed_everything
    from tracebridge.train.data import BundleError, verify_bundle_dir

    seed_everything(cfg.seed, cfg.threads)
    if manifest is None:
        manifest = verify_bundle_dir(bundle_dir) if cfg.data.verify_bundle else {}
    from tracebridge.train.behaviour import describe, load_policed_data

    # every split: evaluated under the trained policy
    data, behaviour = load_policed_data(bundle_dir, cfg.role, cfg.behaviour)
    if behaviour:
        log.info("behaviour %s: changed %s", describe(cfg.behaviour), behaviour)
    if why := eval_split_problem(bundle_dir, cfg, data):  # fail before any training, not after it
        raise BundleError(why)
    # only now: a bad bundle or an empty split must not leave an empty trial folder behind
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    for name in (*RESULT_FILES, FAILED_FILE):  # an earlier run's result must not pass for this run's
        (work / name).unlink(missing_ok=True)
    write_trial_config(work, to_dict(cfg))  # what a later --resume of this folder compares
    _write_quarantine(work, data)
    # The rows live as long as the trial and hold no cycles: frozen, no collection during training
    # rescans them (a full collection over a 2000-session bundle's worker rows takes ~3 s).
    gc.freeze()
    try:
        return _run_loaded(spec, cfg, data, manifest, work, on_report, resume_from, t0, behaviour)
    except Exception as exc:
        _write_failure(work, cfg, exc, t0)
        raise
    finally:
        gc.unfreeze()


def _write_failure(work: Path, cfg: TrainConfig, exc: Exception, t0: float) -> None:
    """``trial_failed.json``: which trial failed, when and why, so the folder says why it holds no result."""
    (work / FAILED_FILE).write_text(json.dumps(
        {"role": cfg.role, "variant": cfg.variant, "seed": cfg.seed, "config_hash": config_hash(cfg),
         "error": f"{type(exc).__name__}: {exc}", "started_at": ts_from_epoch_ms(t0 * 1000),
         "failed_at": ts_from_epoch_ms(time.time() * 1000)}, indent=2, sort_keys=True))


def eval_split_problem(bundle_dir: Path, cfg: TrainConfig, data: Any) -> str | None:
    """Why a role's rows of ``data`` cannot be evaluated (its eval split holds none) and the fix that can
    work for this bundle, or None when they can; ``train`` and ``eval`` both ask before a model loads."""
    if data.split(data.sft, cfg.data.eval_split):
        return None
    by_split = data.counts()["sft"]
    msg = (f"{bundle_dir}: role {cfg.role} has no rows in split {cfg.data.eval_split!r} to evaluate on "
           f"(rows by split: {by_split}); ")
    other = next((s for s in ("validation", "test") if by_split.get(s) and s != cfg.data.eval_split), None)
    if other:
        return msg + f"export more runs or set data.eval_split={other}"
    return msg + ("the export puts all runs of a goal family (or, for split.by_goal_sources, of a family and "
                  "goal) in one split: export runs of more families or goals, or set split.assign")


def _run_loaded(spec: dict[str, Any], cfg: TrainConfig, data: Any, manifest: dict[str, Any], work: Path,
                on_report: Reporter | None, resume_from: Path | None, t0: float,
                behaviour: dict[str, int]) -> dict[str, Any]:
    rows, curation = select_train_rows(data, cfg)
    model, tok, phases = _train(cfg, data, rows, work, on_report, resolve_resume(resume_from, cfg.train.max_steps))
    result = _evaluate(cfg, data, model, tok, phases, work)
    end = time.time()
    result.update(_summary(cfg, phases, manifest, work, end - t0))
    result["ablation"] = spec_ablation(spec)
    # rows of the role's views left out by the bundle check (quarantine.jsonl: where and why), said where
    # the results are read: a count in trial.json's data block alone went unseen
    result["data/read"], result["data/quarantined"] = data.read, len(data.quarantined)
    # when the trial ran, so `tracebridge report` can tell the wall time of trials that ran side by side
    result["started_at"], result["finished_at"] = ts_from_epoch_ms(t0 * 1000), ts_from_epoch_ms(end * 1000)
    (work / "trial.json").write_text(json.dumps(
        {"result": result, "config": to_dict(cfg), "data": data.counts(), "curation": curation,
         "behaviour": behaviour, "phases": {k: v.to_dict() for k, v in phases.items() if hasattr(v, "to_dict")}},
        indent=2, sort_keys=True, default=str))
    if on_report:
        on_report(result)
    return result


def _train(cfg: TrainConfig, data: Any, rows: list[dict[str, Any]], work: Path, on_report: Reporter | None,
           resume: dict[str, Path | None]) -> tuple[Any, Any, dict[str, Any]]:
    from tracebridge.train.data import to_pref_records, to_sft_records
    from tracebridge.train.dpo import run_dpo
    from tracebridge.train.models import build_model_and_tokenizer
    from tracebridge.train.sft import run_sft

    phases: dict[str, Any] = {}
    if resume["sft_final"] is not None:
        model, tok = _load_final(resume["sft_final"], cfg)
        log.info("resuming after SFT from %s", resume["sft_final"])
    else:
        model, tok = build_model_and_tokenizer(cfg.model)
        model, phases["sft"] = run_sft(model, tok, to_sft_records(rows), cfg.train, work / "sft", cfg.seed,
                                       resume["sft"], _callback(on_report, "sft"), cfg.data.prepared_cache,
                                       cfg.data.fit_context, cfg.data.max_rows_dropped)
    pref = data.split(data.pref, "train")
    if cfg.data.max_pref_rows and len(pref) > cfg.data.max_pref_rows:
        pref = random.Random(cfg.seed).sample(pref, cfg.data.max_pref_rows)
    if Variant(cfg.variant).runs_dpo and pref:
        import copy

        from tracebridge.train.common import unpatch_forward

        phases["ref_model"] = copy.deepcopy(unpatch_forward(model)).eval()
        phases["ref_dir"] = resume["sft_final"] or work / "sft" / "final"  # saved: a re-evaluation's reference
        model, phases["dpo"] = run_dpo(model, tok, to_pref_records(pref), cfg.dpo, work / "dpo", cfg.seed,
                                       resume["dpo"], _callback(on_report, "dpo"), cfg.data.prepared_cache,
                                       cfg.data.fit_context, cfg.data.max_rows_dropped)
    elif Variant(cfg.variant).runs_dpo:
        log.info("%s has no preference view rows in train: optimized = curated SFT only", cfg.role)
    return model, tok, phases


def _evaluate(cfg: TrainConfig, data: Any, model: Any, tok: Any, phases: dict[str, Any], work: Path) -> dict[str, Any]:
    from tracebridge.eval.offline import evaluate_split

    res, out = evaluate_split(model, tok, cfg, data, phases.get("ref_model"))
    items = {"role": cfg.role, "item_ids": res.item_ids, "items": res.items, "extra": res.extra}
    if cfg.eval.closed_loop.enabled:
        from tracebridge.eval.closed_loop import evaluate_closed_loop

        cl = evaluate_closed_loop(model, tok, cfg)
        out.update(cl.flat())
        items["closed_loop"] = {"item_ids": cl.item_ids, "items": cl.items}
    (work / "eval_items.json").write_text(json.dumps(items, default=str))
    return out


def _summary(cfg: TrainConfig, phases: dict[str, Any], manifest: dict[str, Any], work: Path,
             wall: float) -> dict[str, Any]:
    from tracebridge.train.placement import trial_placement

    out: dict[str, Any] = {"role": cfg.role, "variant": cfg.variant, "seed": cfg.seed,
                           "config_hash": config_hash(cfg), "bundle_id": manifest.get("bundle_id"),
                           "model": cfg.model.name, "trial_dir": str(work),
                           "eval_items_path": str(work / "eval_items.json"), "wall_s": wall, "loss_curve": [],
                           "resources": trial_placement()}
    tokens, runtime = 0, 0.0
    for name in ("sft", "dpo"):
        r = phases.get(name)
        if r is None:
            continue
        out[f"{name}/first_loss"], out[f"{name}/last_loss"] = r.first_loss, r.last_loss
        out[f"{name}/steps"] = r.global_step
        # rows TRL dropped (no trainable token left within max_length): a trial that trained on a
        # fraction of its rows must say so where its results are read, not only in a log line
        out[f"{name}/rows"], out[f"{name}/rows_dropped"] = r.rows, r.rows_dropped
        out[f"{name}/rows_fitted"] = r.rows_fitted  # data.fit_context: trained with their oldest context dropped
        if getattr(r, "prepared", ""):
            out[f"{name}/prepared"] = r.prepared  # data.prepared_cache: loaded from another trial, or stored
        out["loss_curve"] += [{"phase": name, **p} for p in r.loss_curve]
        out["checkpoint_dir"] = r.checkpoint_dir
        out["train/peak_memory_bytes"] = max(out.get("train/peak_memory_bytes", 0), r.peak_memory_bytes)
        tokens, runtime = tokens + r.tokens, runtime + r.train_runtime_s
    out.setdefault("checkpoint_dir", str(work / "sft" / "final"))
    if "dpo" in phases:  # the model DPO started from: the reference of reward_margin (sweep re-evaluation)
        out["ref_checkpoint_dir"] = str(phases["ref_dir"])
    out["train/tokens_per_s"] = tokens / runtime if runtime else 0.0
    return out
