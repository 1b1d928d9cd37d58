"""Grid cells that train the same model, trained once: a baseline runs no DPO and no curation
(``tracebridge.train.trial``), so in a sweep that ablates ``dpo.*`` keys (or the optimized variant's curation
keys) every ablation cell's baseline of a role and seed trained the same model again, once per cell; so did the
optimized variant of a role whose bundle holds no preference pairs (no DPO runs).

``share_trials`` groups the grid's specs by what decides their results (``result_config``) and gives each group
of more than one cell one trial to train, named after the keys it shares (``verifier-baseline-s0-dpo.beta_shared``)
and trained with its first cell's values; ``fan_out`` gives each cell of the group a copy of that trial's result
(or failure) under the cell's own ``trial_id`` and ablation values, with ``trained_as`` naming the trial that
trained it, so the report pairs every optimized cell with its baseline as before and counts the shared trial's
time once (``tracebridge.report.cost.distinct_runs``). Pure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHARED = "shared"  # the value a shared trial's id gives each key its cells differ in


def roles_without_pairs(bundle_dir: Path) -> frozenset[str]:
    """The roles whose preference view has no file in the bundle (``train.data.view_files``): their optimized
    variant runs no DPO either (curated SFT only, ``train.trial``), so it never reads ``dpo.*``."""
    from tracebridge.train.data import ROLE_VIEWS, view_files

    return frozenset(r for r, (_, _, pref) in ROLE_VIEWS.items() if not pref or not view_files(Path(bundle_dir), pref))


class _Keys:
    """A plain config dict read as attributes (``cfg.eval.max_length``), as the typed config is; a key that is not
    there raises KeyError."""

    def __init__(self, tree: dict[str, Any]) -> None:
        self._tree = tree

    def __getattr__(self, name: str) -> Any:
        v = self._tree[name]
        return _Keys(v) if isinstance(v, dict) else v


def result_config(config: dict[str, Any], no_dpo_roles: frozenset[str] = frozenset()) -> dict[str, Any]:
    """What of a trial's resolved config (``grid.trial_config``) decides its results: all of it but the keys its
    variant never reads (a variant without DPO, or any variant of a role in ``no_dpo_roles``: ``dpo.*`` and
    ``data.max_pref_rows``, less the preference-pair fit length evaluation takes from ``dpo.max_length``; without
    curation: ``data.dedup``, ``data.recovery_weight``, ``data.feedback_weight``)."""
    from omegaconf import OmegaConf

    from tracebridge.eval.offline import fit_lengths
    from tracebridge.train.config import TrainConfig, Variant

    out = json.loads(json.dumps(config, default=str))
    variant = Variant(out.get("variant"))
    data = out.setdefault("data", {})
    if not variant.runs_dpo or out.get("role") in no_dpo_roles:
        try:  # a resolved recipe holds every key: read as it is (building the typed config took 0.25 s a cell)
            cfg: Any = _Keys(out)
            fit_lengths(cfg)
        except (KeyError, TypeError):  # a partial config: its schema's defaults fill it in
            cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainConfig), config))
        out["eval pairs fit length"] = fit_lengths(cfg)[1]  # dpo.max_length, when evaluation fits to it
        out.pop("dpo", None)
        data.pop("max_pref_rows", None)
    if not variant.curates:
        for k in ("dedup", "recovery_weight", "feedback_weight"):
            data.pop(k, None)
    return out


def share_trials(recipes: dict[str, dict[str, Any]], specs: list[dict[str, Any]],
                 no_dpo_roles: frozenset[str] = frozenset()) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The specs to train, and per shared trial the grid cells it stands for (``no_dpo_roles``: the bundle's
    ``roles_without_pairs``; the sweep and its re-evaluation pass the same, so they name the same shared trials).

    Returns:
        ``(train_specs, members)``: ``train_specs`` in the grid's order (a cell that shares with none keeps its
        spec); ``members[trial_id]`` the specs of the cells a shared trial trained for (two or more).
    """
    from tracebridge.sweep.grid import trial_config, trial_id

    groups: dict[str, list[dict[str, Any]]] = {}
    for s in specs:
        cfg = trial_config(recipes, s)
        key = json.dumps(result_config(cfg, no_dpo_roles) if cfg is not None else s, sort_keys=True, default=str)
        groups.setdefault(key, []).append(s)
    train, members = [], {}
    taken = {s["trial_id"] for s in specs}
    for group in groups.values():
        first = group[0]
        if len(group) == 1:
            train.append(first)
            continue
        cell = {k: (v if all(json.dumps(m["ablation"].get(k), default=str) == json.dumps(v, default=str)
                              for m in group) else SHARED) for k, v in first["ablation"].items()}
        tid = trial_id(first["role"], first["variant"], first["seed"], cell)
        while tid in taken:  # never another cell's name
            tid += "_"
        taken.add(tid)
        train.append({**first, "trial_id": tid})
        members[tid] = group
    return train, members


def trained_trials(recipes: dict[str, dict[str, Any]], specs: list[dict[str, Any]],
                   no_dpo_roles: frozenset[str] = frozenset()) -> int:
    """How many trials the grid ``specs`` train (``share_trials``: cells that train the same model train once): what
    ``budget.max_trials`` caps and ``submit`` reports beside the grid's cells. Without the bundle's ``no_dpo_roles``
    (the driver checks before reading it) it is the most the job trains. A cell whose config does not load (its
    problems are reported) counts as one trial of its own."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return len(share_trials(recipes, specs, no_dpo_roles)[0])
    except (OmegaConfBaseException, ValueError):
        return len(specs)


def fan_out(trials: list[dict[str, Any]], failures: list[dict[str, Any]],
            members: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each shared trial's result (or failure) as one per grid cell it trained for: the cell's ``trial_id`` and
    ``ablation``, ``trained_as`` the shared trial's id. Other entries, and cells that already have an entry of
    their own (a sweep started before sharing, resumed), are kept as they are."""
    have = {r.get("trial_id") for r in [*trials, *failures]}

    def spread(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            group = members.get(r.get("trial_id"))
            if not group:
                out.append(r)
                continue
            out += [{**r, "trial_id": m["trial_id"], "ablation": dict(m["ablation"]), "trained_as": r["trial_id"]}
                    for m in group if m["trial_id"] not in have]
        return out

    return spread(trials), spread(failures)


def describe(members: dict[str, list[dict[str, Any]]]) -> str:
    """One log line's worth: which shared trials stand for how many cells."""
    return "; ".join(f"{tid} for {len(group)} cells" for tid, group in members.items())
