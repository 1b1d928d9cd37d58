"""Re-evaluating a finished sweep's checkpoints: find each trial's final checkpoint on storage
(``<storage>/<sweep id>/<trial id>/checkpoint_*`` with a ``final`` marker), load its saved model and
evaluate it again on the bundle's split with changed eval settings (``eval.*``, ``data.eval_split``).
A DPO trial's checkpoint keeps its reference (``ref_model/``, the SFT model), so ``reward_margin`` is
re-evaluated as the trial evaluated it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from tracebridge.export.config import StorageConfig
from tracebridge.sweep.trainable import MARKER

log = logging.getLogger(__name__)

EVAL_PREFIXES = ("eval.", "data.eval_split", "data.max_eval_rows", "threads")


def final_checkpoints(exp_uri: str, cfg: StorageConfig | None = None) -> dict[str, str]:
    """``{trial_id: checkpoint URI}``: the latest final checkpoint of each trial of a Tune run.

    Raises:
        tracebridge.export.storage.StorageUnreachable: the storage still fails after ``cfg.retry.attempts``
            tries of a request (bounded by ``cfg.request_timeout_s``).
    """
    from tracebridge.export.storage import retry_io
    from tracebridge.sweep.storage import _fs, _retry, is_local, local_path

    fs, root = _fs(exp_uri, cfg)
    retry, what = _retry(cfg), f"look-up of the checkpoints under {exp_uri}"
    out: dict[str, str] = {}
    for marker in sorted(retry_io(lambda: fs.glob(f"{root.rstrip('/')}/*/checkpoint_*/{MARKER}"), what, retry,
                                  exp_uri, fs)):
        if json.loads(retry_io(partial(fs.cat_file, marker), what, retry, exp_uri, fs)).get("kind") != "final":
            continue
        ckpt = marker.rsplit("/", 1)[0]
        trial = ckpt.rsplit("/", 2)[-2]
        out[trial] = str(local_path(ckpt)) if is_local(exp_uri) else f"{exp_uri.split('://')[0]}://{ckpt}"
    return out


def check_eval_overrides(overrides: list[str], recipes: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Problems of the re-evaluation overrides: only evaluation settings may change (anything else
    would need retraining), and, given the sweep's resolved ``recipes``, each must load onto every
    one of them, so a mistyped key or a bad value is refused on the driver, not in every Ray task."""
    from tracebridge.config import ConfigError, load_config
    from tracebridge.sweep.grid import write_recipe
    from tracebridge.train.config import TrainConfig

    problems = [f"{o}: only eval.*, data.eval_split, data.max_eval_rows or threads can change at re-evaluation"
                for o in overrides if not o.split("=", 1)[0].startswith(EVAL_PREFIXES)]
    if problems or not recipes:
        return problems
    with tempfile.TemporaryDirectory() as tmp:
        for variant, recipe in recipes.items():
            try:
                load_config(TrainConfig, str(write_recipe(recipe, Path(tmp) / f"{variant}.yaml")), overrides)
            except ConfigError as exc:
                problems += [p for p in exc.problems if p not in problems]
    return problems


def reevaluate(ckpt_dir: Path, bundle_dir: Path, overrides: list[str], out: Path) -> dict[str, Any]:
    """Evaluate a final checkpoint's model again; returns a trial result dict for the report
    (metrics, role/variant/seed/ablation of the original trial, ``eval_items_path``).

    Raises:
        FileNotFoundError: the checkpoint has no saved model (the sweep ran with keep_models=false).
    """
    from tracebridge.config import load_config
    from tracebridge.eval.offline import evaluate_split
    from tracebridge.sweep.grid import write_recipe
    from tracebridge.train.behaviour import load_policed_data
    from tracebridge.train.common import seed_everything
    from tracebridge.train.config import TrainConfig
    from tracebridge.train.models import build_model_and_tokenizer

    ckpt_dir, out = Path(ckpt_dir), Path(out)
    if not (ckpt_dir / "model" / "config.json").is_file():
        raise FileNotFoundError(f"{ckpt_dir}/model: no saved model (was the sweep run with keep_models=false?)")
    trial = json.loads((ckpt_dir / "trial.json").read_text())
    original = json.loads((ckpt_dir / "result.json").read_text())
    recipe = write_recipe(trial["config"], out / "recipe.yaml")
    cfg = load_config(TrainConfig, str(recipe), overrides)
    seed_everything(cfg.seed, cfg.threads)
    def load(name: str) -> tuple[Any, Any]:
        return build_model_and_tokenizer(replace(cfg.model, init="pretrained", path=str(ckpt_dir / name),
                                                 chat_template="native"))

    model, tok = load("model")
    ref = load("ref_model") if (ckpt_dir / "ref_model" / "config.json").is_file() else None
    if ref is None and "dpo/steps" in original:  # a checkpoint packed before ref_model/ was kept
        log.warning("%s: no ref_model/ (the SFT model DPO started from): reward_margin is not re-evaluated", ckpt_dir)
    data = load_policed_data(bundle_dir, cfg.role, cfg.behaviour)[0]  # the policy the model trained under
    res, flat = evaluate_split(model, tok, cfg, data, ref[0] if ref else None)  # the trial's reference, as it did
    out.mkdir(parents=True, exist_ok=True)
    items = out / "eval_items.json"
    items.write_text(json.dumps({"role": cfg.role, "item_ids": res.item_ids, "items": res.items, "extra": res.extra},
                                default=str))
    # the training's times: results.json's per-variant elapsed span and summed trial time come from them
    keep = ("role", "variant", "seed", "ablation", "trial_id", "config_hash", "bundle_id", "model", "wall_s",
            "started_at", "finished_at", "loss_curve", "checkpoint_dir", "resources")
    return {**{k: original.get(k) for k in keep}, **flat,
            "eval_items_path": str(items), "reevaluated_with": overrides}
