"""Sweep config → trial specs (pure): resolve each variant's training recipe, expand
role × variant × ablation × seed, check every trial's config before any worker starts, and name
the sweep (``<name>-<config hash>-<bundle id>``, never a timestamp) and its submissions.
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from tracebridge.config import ConfigError, to_dict
from tracebridge.sweep.config import NON_IDENTITY, SweepConfig


def _override(k: str, v: Any) -> str:
    return f"{k}={v if isinstance(v, str) else json.dumps(v)}"


def resolve_recipes(cfg: SweepConfig) -> dict[str, dict[str, Any]]:
    """Each variant's resolved ``TrainConfig`` as a plain dict: the recipe YAML ← the model YAML ←
    ``overrides`` ← ``variant_overrides[variant]``. Shipped to trials as data, so workers never
    read the driver's config files.

    Raises:
        ConfigError: every problem of every variant's recipe at once.
    """
    from tracebridge.train.config import load_train_config

    out, problems = {}, []
    for variant in cfg.variants:
        ov = [_override(k, v) for k, v in {**cfg.overrides, **cfg.variant_overrides.get(variant, {})}.items()]
        try:
            tc = load_train_config(cfg.train_config, [*ov, f"variant={variant}"], cfg.model_config)
        except ConfigError as exc:
            problems += [f"recipe of {variant}: {p}{_set_by(cfg, variant, p)}" for p in exc.problems]
            continue
        out[variant] = to_dict(tc)
    if problems:
        raise ConfigError(problems, cfg.train_config)
    return out


def _set_by(cfg: SweepConfig, variant: str, problem: str) -> str:
    """Where the sweep set the key a recipe problem names (`` (set by overrides.train.lr)``), so the user
    looks there rather than in the recipe YAML the error is reported against; '' when the YAML set it."""
    for where, keys in ((f"variant_overrides.{variant}", cfg.variant_overrides.get(variant, {})),
                        ("overrides", cfg.overrides)):
        for key in keys:
            if re.match(rf"{re.escape(key)}[=:]", problem):
                return f" (set by {where}.{key})"
    return ""


def _set_by_ablation(cell: dict[str, Any], problem: str) -> str:
    """`` (set by ablations.train.lrr)`` when ``problem`` is about a key the trial's ablation ``cell`` set, so a
    misspelt or mistyped ablation names the sweep key the user wrote; '' otherwise."""
    key = next((k for k in cell if re.match(rf"{re.escape(k)}[=:]", problem)), None)
    return f" (set by ablations.{key})" if key else ""


def ablation_cells(cfg: SweepConfig) -> list[dict[str, Any]]:
    """Every combination of ablation values (``[{}]`` when there are no ablations)."""
    keys = sorted(cfg.ablations)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(cfg.ablations[k] for k in keys))]


def trial_id(role: str, variant: str, seed: int, ablation: dict[str, Any]) -> str:
    """A readable, unique, filesystem-safe trial name: ``verifier-optimized-s0-train.lr_0.003``."""
    parts = [role, variant, f"s{seed}", *(f"{k}_{v}" for k, v in sorted(ablation.items()))]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(parts))


def expand_grid(cfg: SweepConfig) -> list[dict[str, Any]]:
    """The trial specs, role × variant × ablation × seed, in a stable order."""
    specs = []
    for role, variant, cell, seed in itertools.product(cfg.roles, cfg.variants, ablation_cells(cfg), cfg.seeds):
        specs.append({"trial_id": trial_id(role, variant, seed, cell), "role": role, "variant": variant,
                      "seed": int(seed), "ablation": cell})
    return specs


def run_spec(spec: dict[str, Any], recipe_path: str) -> dict[str, Any]:
    """The ``run_trial`` spec of a grid spec: the variant's resolved recipe file, the cell's
    role/variant/seed, and its ablation values as dotted keys (so reports tabulate exactly them)."""
    return {"config": recipe_path, "role": spec["role"], "variant": spec["variant"], "seed": spec["seed"],
            **spec["ablation"]}


def trial_config(recipes: dict[str, dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any] | None:
    """The config a grid cell trains with, as a plain dict: its variant's resolved recipe with the cell's
    role, seed and ablation values set (what the trial records as ``trial_config.json`` on its node); the
    report lists it with a failed trial, whose node may be gone. None for a variant with no recipe."""
    from omegaconf import OmegaConf

    if spec.get("variant") not in recipes:
        return None
    cfg = OmegaConf.create(recipes[spec["variant"]])
    for k, v in {**(spec.get("ablation") or {}), "role": spec.get("role"), "seed": spec.get("seed")}.items():
        OmegaConf.update(cfg, k, v, merge=False)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def write_recipe(recipe: dict[str, Any], path: Path) -> Path:
    """Save a resolved recipe as the YAML ``run_trial`` reads."""
    from omegaconf import OmegaConf

    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(recipe), path)
    return path


def evaluation_of(recipe: dict[str, Any]) -> dict[str, Any]:
    """What decides a variant's evaluation items and scores (``tracebridge.eval.offline.evaluate_split``): the
    ``eval.*`` keys, ``data.eval_split``, ``data.max_eval_rows``, and the lengths its prompts are fitted to."""
    from tracebridge.config import load_config
    from tracebridge.eval.offline import fit_lengths
    from tracebridge.sweep.config import flat_keys
    from tracebridge.train.config import TrainConfig

    out = {f"eval.{k}": v for k, v in flat_keys(recipe.get("eval") or {}).items()}
    out.update({f"data.{k}": (recipe.get("data") or {}).get(k) for k in ("eval_split", "max_eval_rows")})
    with tempfile.TemporaryDirectory() as tmp:
        fit = fit_lengths(load_config(TrainConfig, write_recipe(recipe, Path(tmp) / "r.yaml")))
    out["prompt fit lengths (eval.max_length, else train/dpo.max_length, with data.fit_context)"] = list(fit)
    return out


def evaluation_problems(cfg: SweepConfig, recipes: dict[str, dict[str, Any]]) -> list[str]:
    """Evaluation settings the variants' recipes do not share (set by ``variant_overrides``): baseline and
    optimized are compared item by item, so they must be scored on the same items under the same settings;
    a split or row cap of one variant only showed in the report as items that do not pair, after training,
    and a generation length or fitted prompt length of one variant only was compared without a word."""
    if len(recipes) < 2:
        return []
    evals = {v: evaluation_of(r) for v, r in recipes.items()}
    first, *rest = list(evals)
    return [f"variant_overrides: {k} differs between the variants ({', '.join(f'{v} {evals[v].get(k)}' for v in evals)}); "
            "baseline and optimized are compared on the same evaluation: set it under overrides (every variant)"
            for k in evals[first] if any(evals[v].get(k) != evals[first][k] for v in rest)]


# The settings the sweep's report pools every trial's items with (``publish.report_intervals``): one for all
INTERVAL_KEYS = ("eval.n_boot", "eval.ci")


def interval_problems(cfg: SweepConfig, recipes: dict[str, dict[str, Any]], specs: list[dict[str, Any]]) -> list[str]:
    """Ablations of the report's bootstrap settings (``INTERVAL_KEYS``): the sweep's report computes every
    interval with one ``eval.n_boot`` and ``eval.ci``, so before, a sweep that ablated them was reported with
    the first variant's value only, its cells' other values shown nowhere; and they change no trained model,
    so each cell trained again for nothing. The fix named: one value under ``overrides``, and ``jobs/eval.py``
    with ``-- eval.n_boot=N eval.ci=C`` for the report under another."""
    seen: dict[str, set[Any]] = {k: set() for k in INTERVAL_KEYS}
    for s in specs:
        ev = (trial_config(recipes, s) or {}).get("eval") or {}
        for k in INTERVAL_KEYS:
            seen[k].add(json.dumps(ev.get(k.split(".", 1)[1]), default=str))
    return [f"ablations: {k} takes {len(v)} values ({', '.join(sorted(v))}; set by "
            f"{', '.join(f'ablations.{a}' for a in sorted(cfg.ablations) if k == a or k.startswith(a + '.'))}): "
            "the sweep's report computes every interval with one value, and it changes no trained model; set one "
            f"value (overrides.{k}=N) and get the report with another by jobs/eval.py ... -- {k}=N"
            for k, v in seen.items() if len(v) > 1]


def check_trials(cfg: SweepConfig, recipes: dict[str, dict[str, Any]], specs: list[dict[str, Any]]) -> list[str]:
    """Problems of the grid: the trials it trains against the budget (``shared.trained_trials``), evaluation settings the variants do not share
    (``evaluation_problems``), ablated report interval settings (``interval_problems``), and each distinct (role, variant,
    ablation) cell's config (unknown keys, bad values), found on the driver before any worker starts; a problem found in
    several cells is one line counting them."""
    from tracebridge.sweep.shared import trained_trials
    from tracebridge.train.config import load_train_config

    problems = evaluation_problems(cfg, recipes) + interval_problems(cfg, recipes, specs)
    # the trials the job trains, not the grid's cells: cells that train the same model train once (sweep.shared)
    trained = trained_trials(recipes, specs) if cfg.budget.max_trials and len(specs) > cfg.budget.max_trials else 0
    if trained > cfg.budget.max_trials:
        problems.append(f"budget.max_trials={cfg.budget.max_trials}: the grid would train {trained} trials, for its "
                        f"{len(specs)} grid cells (roles × variants × ablation cells × seeds; cells whose configs differ "
                        "only in keys their variant never reads train once); raise the cap or shrink the grid")
    cells: dict[str, list[str]] = {}  # each distinct problem -> the (role, variant, ablation) cells it is found in
    trials: dict[str, int] = {}  # ... and the grid's trials (seeds too) of those cells
    found: dict[tuple[str, ...], list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {v: str(write_recipe(r, Path(tmp) / f"{v}.yaml")) for v, r in recipes.items()}
        for s in specs:
            # values as JSON: a list or dict value (train.lora.target_modules) is no dict key
            key = (s["role"], s["variant"], json.dumps(s["ablation"], sort_keys=True, default=str))
            if key not in found:
                ov = [*(_override(k, v) for k, v in s["ablation"].items()), f"role={s['role']}"]
                try:
                    load_train_config(paths[s["variant"]], ov)
                    found[key] = []
                except ConfigError as exc:  # named with the sweep key that set it: the recipe YAML does not hold it
                    found[key] = list(dict.fromkeys(f"{p}{_set_by_ablation(s['ablation'], p)}" for p in exc.problems))
                    for p in found[key]:
                        cells.setdefault(p, []).append(s["trial_id"])
            for p in found[key]:
                trials[p] = trials.get(p, 0) + 1
    # each distinct problem once, with the cells it is in counted: a typo in an ablation key was one line per cell
    return problems + [f"{_where(cells[p], trials[p])}: {p}" for p in cells]


def _where(cells: list[str], trials: int) -> str:
    """``trial <id>`` of a problem found in one grid cell, else ``N grid cells (trial <first id> and N-1 more)``, with
    the grid's trials (its seeds) counted when they are more."""
    if len(cells) == 1 and trials == 1:
        return f"trial {cells[0]}"
    more = f" and {len(cells) - 1} more" if len(cells) > 1 else ""
    seeds = f"; {trials} trials with the seeds" if trials > len(cells) else ""
    return f"{len(cells)} grid cell{'s' if len(cells) > 1 else ''} (trial {cells[0]}{more}{seeds})"


def identity_fields(cfg: SweepConfig) -> dict[str, Any]:
    """The sweep's fields that decide its results (all but ``NON_IDENTITY``)."""
    return {k: v for k, v in to_dict(cfg).items() if k not in NON_IDENTITY}


def config_digest(cfg: SweepConfig, recipes: dict[str, dict[str, Any]]) -> str:
    """sha256 of what decides the results: the sweep without its where/how-fast fields, plus the
    resolved recipes (so an edited configs/train YAML is a new sweep, never a wrong resume), less the
    keys added since sweeps existed while they keep their old behaviour (``identity.ADDED_KEYS``: an
    upgrade that adds a key keeps the id)."""
    from tracebridge.sweep.identity import digest

    return digest(identity_fields(cfg), recipes)


def sweep_id(cfg: SweepConfig, recipes: dict[str, dict[str, Any]], bundle_id: str) -> str:
    """``<name>-<config hash 12>-<bundle id 12>``: the Tune run name and the report folder."""
    return f"{cfg.name}-{config_digest(cfg, recipes)[:12]}-{bundle_id[:12]}"


def sweep_ids(cfg: SweepConfig, recipes: dict[str, dict[str, Any]], bundle_id: str) -> list[str]:
    """``sweep_id`` first, then the ids earlier versions gave the same config (``identity.older_digests``):
    the names ``submit --resume`` looks for."""
    from tracebridge.sweep.identity import older_digests

    ids = [sweep_id(cfg, recipes, bundle_id)]
    for d in older_digests(identity_fields(cfg), recipes):
        sid = f"{cfg.name}-{d[:12]}-{bundle_id[:12]}"
        if sid not in ids:
            ids.append(sid)
    return ids


def resolve_sweep_id(cfg: SweepConfig, recipes: dict[str, dict[str, Any]], bundle_id: str) -> str:
    """The id a job runs under: the config's pinned ``sweep_id`` (``submit --resume`` sets it to a sweep an
    earlier version started) when it is one of ``sweep_ids``, else ``sweep_id``.

    Raises:
        ConfigError: a pinned id this config and bundle never had (another sweep's run would be resumed).
    """
    ids = sweep_ids(cfg, recipes, bundle_id)
    if cfg.sweep_id and cfg.sweep_id not in ids:
        raise ConfigError([(f"sweep_id={cfg.sweep_id}: not an id this config and bundle have had "
                           f"({', '.join(ids)}); leave it '' (submit --resume sets it)")])
    return cfg.sweep_id or ids[0]


def submission_id(sid: str, attempt: int) -> str:
    """The Ray job id of an attempt: a retried submit of the same attempt is refused by Ray."""
    return f"{sid}-a{attempt}"


def load_checked(config: str, overrides: list[str]) -> tuple[SweepConfig, dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Load a sweep config, resolve its recipes and expand its grid, checking every trial.

    Returns:
        ``(cfg, recipes, specs)``.

    Raises:
        ConfigError: listing every problem at once, before any worker starts.
    """
    from tracebridge.sweep.config import load_sweep_config

    cfg = load_sweep_config(config, overrides)
    recipes = resolve_recipes(cfg)
    specs = expand_grid(cfg)
    problems = check_trials(cfg, recipes, specs)
    if problems:
        raise ConfigError(problems, config)
    return cfg, recipes, specs
