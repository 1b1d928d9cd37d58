"""Aggregate trial results (the dicts ``run_trial`` returns, with their ``eval_items.json``) into
``results.json``: per role and variant, metrics with bootstrap intervals over the pooled test
items of all seeds; baseline vs optimized as paired differences (same seed, same ablation
values, items paired by item id; ``comparison_problems`` lists pairs whose item sets differ, left out,
and ``comparison_notes`` old ``eval_items.json`` paired by position); the winner per role; ablation
grids; per variant, ``wall_s`` (elapsed, first trial start to last trial end), ``wall_s_source`` and
``trial_wall_s`` (the trials' own seconds summed); per role ``trial_notes`` (trials whose loss went NaN or that
evaluated no item); the trials that failed (``failed_trials``, each with its
status and reason, counted per role and variant). Pure apart from reading the items.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from tracebridge.eval.metrics import HIGHER_IS_BETTER
from tracebridge.eval.stats import Estimate, bootstrap, decide_winner, paired_difference

# the metric a role's winner is decided on, and the metrics that must not regress
PRIMARY = {"planner": "plan_validity", "worker": "action_match", "verifier": "accuracy"}
GUARDED = {"planner": ["replan_rate", "cl_success"],
           "worker": ["tool_call_validity", "error_recurrence", "cl_success"],
           "verifier": ["false_stop_rate", "unnecessary_replan_rate", "cl_success"]}
NOT_POOLED = {"uplift_vs_majority"}
PAIR_METRICS = {"pref_accuracy", "reward_margin"}  # scored per preference pair (ids: extra.pair_ids)
TRIAL_KEYS = ("role", "variant", "seed")  # name a trial (tracebridge.train.trial.TRIAL_KEYS), never an ablation


def load_items(result: dict[str, Any]) -> dict[str, Any]:
    """The per-item values of a trial (``eval_items.json``), with closed-loop metrics as ``cl_*`` and
    ``ids``: each metric's item ids (``item_ids``; pairs: ``extra.pair_ids``; closed loop: its own)."""
    path = result.get("eval_items_path")
    if not path or not Path(path).is_file():
        return {"items": {}, "item_ids": [], "ids": {}}
    data = json.loads(Path(path).read_text())
    pair_ids = (data.get("extra") or {}).get("pair_ids")
    data["ids"] = {k: pair_ids if k in PAIR_METRICS else data.get("item_ids") for k in data.get("items") or {}}
    cl = data.get("closed_loop") or {}
    for k, v in (cl.get("items") or {}).items():
        name = k if k.startswith("cl_") else f"cl_{k}"
        data["items"][name], data["ids"][name] = v, cl.get("item_ids")
    return data


def ablation_values(result: dict[str, Any]) -> dict[str, Any]:
    """A trial's ablation values, less ``role``/``variant``/``seed``: a ``trial.json`` written before
    ``spec_ablation`` left them out holds the overrides ``tracebridge train ... variant=optimized`` gave."""
    return {k: v for k, v in (result.get("ablation") or {}).items() if k not in TRIAL_KEYS}


def ablation_of(result: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A trial's ablation values as sorted ``(key, JSON of the value)`` pairs: hashable whatever the
    values are (a list of ``train.lora.target_modules``, a dict); ``()`` for none."""
    return tuple(sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in ablation_values(result).items()))


def _pool(parts: list[tuple[list[float], list[float]]]) -> tuple[list[float], list[float]]:
    return [x for p in parts for x in p[0]], [x for p in parts for x in p[1]]


def _clean(v: Any) -> Any:
    """NaN/inf → None, recursively (strict JSON)."""
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _variant_block(trials: list[dict[str, Any]], items: list[dict[str, Any]], n_boot: int, ci: float) -> dict[str, Any]:
    metrics = sorted({k for it in items for k in it["items"]} - NOT_POOLED)
    out: dict[str, Any] = {"seeds": sorted({t.get("seed") for t in trials}), "trials": len(trials), "metrics": {}}
    for m in metrics:
        num, den = _pool([it["items"][m] for it in items if m in it["items"]])
        out["metrics"][m] = bootstrap(num, den, n_boot, ci).to_dict()
    both = [it["items"] for it in items if {"accuracy", "majority_accuracy"} <= it["items"].keys()]
    if both:  # paired on the items that scored both (a trial may lack one of them)
        a = _pool([it["accuracy"] for it in both])
        b = _pool([it["majority_accuracy"] for it in both])
        out["metrics"]["uplift_vs_majority"] = paired_difference(a, b, n_boot, ci).to_dict()
    out.update(_variant_wall(trials))
    return out


def _variant_wall(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """A variant's times: ``wall_s``, the elapsed span from its first trial's start to its last
    trial's end (None when a trial recorded no start or end), where that came from, and
    ``trial_wall_s``, the trials' own seconds summed (larger than the span when trials ran side by side)."""
    from tracebridge.report.cost import distinct_runs
    from tracebridge.report.trials import runs_wall  # trials.py imports this module

    wall, source = runs_wall(trials)
    return {"wall_s": wall, "wall_s_source": source,  # a run shared by grid cells: its seconds once
            "trial_wall_s": sum(float(t.get("wall_s") or 0.0) for t in distinct_runs(trials))}


def variant_wall(block: dict[str, Any]) -> tuple[float | None, float | None, str]:
    """``(elapsed_s, trial_s, source)`` of a variant block of results.json, old files included.

    A file written before the elapsed span was recorded has no ``trial_wall_s`` and its ``wall_s`` is
    the trials' own seconds summed: read as ``trial_s``, with the elapsed span unknown (None)."""
    if "trial_wall_s" in block:
        return block.get("wall_s"), block.get("trial_wall_s"), str(block.get("wall_s_source") or "")
    return None, block.get("wall_s"), "an older results.json: its wall_s is the trials' seconds summed"


def _unique(ids: Any, n: int) -> bool:
    return isinstance(ids, list) and len(ids) == n and len({json.dumps(i, default=str) for i in ids}) == n


def pair_by_id(a: dict[str, Any], b: dict[str, Any], m: str) -> tuple[tuple[list, list] | None, str | None, str | None]:
    """Metric ``m`` of trial items ``a`` (optimized) and ``b`` (baseline) as ``(a, b_aligned)``, ``b``'s
    items put in ``a``'s order by item id, and ``(values, note, problem)``: ``values`` None when the
    two cannot be paired (``problem`` says why); ``note`` when they were paired by position (old
    ``eval_items.json`` whose ids repeat, or none: allowed only when both sides have the same id list)."""
    (an, ad), (bn, bd) = a["items"][m], b["items"][m]
    ai, bi = (a.get("ids") or {}).get(m), (b.get("ids") or {}).get(m)
    if _unique(ai, len(an)) and _unique(bi, len(bn)):
        ka, kb = [json.dumps(i, default=str) for i in ai], [json.dumps(i, default=str) for i in bi]
        if set(ka) != set(kb):
            return None, None, (f"different items ({len(set(kb) - set(ka))} only in baseline, "
                                f"{len(set(ka) - set(kb))} only in optimized)")
        at = {k: j for j, k in enumerate(kb)}
        return ((an, ad), ([bn[at[k]] for k in ka], [bd[at[k]] for k in ka])), None, None
    if ai == bi and len(an) == len(bn):
        return ((an, ad), (bn, bd)), "item ids not unique (an older eval_items.json): paired by position", None
    return None, None, "item ids neither unique nor the same list: cannot pair the items"


def _where(t: dict[str, Any]) -> str:
    return f"seed {t.get('seed')}" + "".join(f", {k}={v}" for k, v in sorted(ablation_values(t).items()))


def unpaired(base: list[tuple[dict, dict]], opt: list[tuple[dict, dict]]) -> list[str]:
    """One line per optimized trial that has no baseline trial of the same seed and ablation values:
    left out of the comparison, which must say so rather than compare nothing in silence."""
    key = lambda t: (t.get("seed"), ablation_of(t))
    have = {key(t) for t, _ in base}
    seeds = sorted({str(t.get("seed")) for t, _ in base})
    return [f"optimized {_where(t)}: no baseline trial with the same seed and ablation values (baseline seeds: "
            f"{', '.join(seeds) or 'none'}) (left out of the comparison)" for t, _ in opt if key(t) not in have]


def compare_variants(base: list[tuple[dict, dict]], opt: list[tuple[dict, dict]], n_boot: int,
                     ci: float) -> tuple[dict[str, Estimate], list[str], list[str]]:
    """Paired differences optimized − baseline over trials matched by seed and ablation values, the
    items of each matched pair paired by item id (``pair_by_id``); a pair trained on different bundles
    (``bundle_id``) is not compared: its eval rows differ whatever their ids.

    Returns:
        ``(differences, notes, problems)``: notes name the pairs compared by position; problems the
        optimized trials with no baseline partner (``unpaired``), the pairs of different bundles, and the
        pairs left out of a metric's difference because their items could not be paired.
    """
    key = lambda t: (t.get("seed"), ablation_of(t))
    bmap = {key(b): (b, it) for b, it in base}

    def bundles(t: dict[str, Any]) -> tuple[Any, Any] | None:  # (its, its baseline's) when they differ
        ours, theirs = t.get("bundle_id"), bmap[key(t)][0].get("bundle_id")
        return (ours, theirs) if ours and theirs and ours != theirs else None

    # trials of different bundles were scored on different eval rows, whatever their item ids say
    other = [f"optimized {_where(t)}: trained and evaluated on bundle {str(b[0])[:12]}, its baseline on "
             f"{str(b[1])[:12]} (left out of the comparison)" for t, _ in opt if key(t) in bmap and (b := bundles(t))]
    pairs = [(_where(t), it, bmap[key(t)][1]) for t, it in opt if key(t) in bmap and not bundles(t)]
    out: dict[str, Estimate] = {}
    said: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (kind, trial, text) → metrics
    metrics = sorted({k for _, a, b in pairs for k in a["items"] if k in b["items"]} - NOT_POOLED - {"majority_accuracy"})
    for m in metrics:
        a, b = [], []
        for where, x, y in pairs:
            if m not in x["items"] or m not in y["items"]:
                continue
            got, note, problem = pair_by_id(x, y, m)
            if note or problem:
                said[("note" if note else "problem", where, note or problem)].append(m)
            if got:
                a.append(got[0])
                b.append(got[1])
        if a:
            out[m] = paired_difference(_pool(a), _pool(b), n_boot, ci)
    lines = [(k, f"{w}: {t}: {', '.join(ms)}" + ("" if k == "note" else " (left out of the comparison)"))
             for (k, w, t), ms in said.items()]
    return out, [x for k, x in lines if k == "note"], unpaired(base, opt) + other + [x for k, x in lines if k == "problem"]


def ablation_grids(role: str, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean primary metric per ablation value × variant (one key) or value × value (two keys).

    Only keys that take at least two values are ablations: an override every trial shares (``tracebridge
    train ... role=worker train.max_steps=4``, a sweep's fixed ``overrides``) has nothing to compare.
    """
    values: dict[str, set[str]] = defaultdict(set)
    for t in trials:
        for k, v in ablation_values(t).items():
            values[k].add(str(v))
    keys = sorted(k for k, vs in values.items() if len(vs) > 1)
    metric = f"{role}/{PRIMARY[role]}"
    grids = []
    for k in keys:
        cells: dict[tuple[str, str], list[float]] = defaultdict(list)
        for t in trials:
            ab = ablation_values(t)
            if k in ab and isinstance(t.get(metric), (int, float)) and not math.isnan(t[metric]):
                cells[(str(ab[k]), t["variant"])].append(float(t[metric]))
        rows = sorted({r for r, _ in cells}, key=lambda s: (len(s), s))
        cols = sorted({c for _, c in cells})
        grids.append({"role": role, "key": k, "metric": metric, "rows": rows, "cols": cols,
                      "values": [[(sum(cells[(r, c)]) / len(cells[(r, c)])) if cells.get((r, c)) else None
                                  for c in cols] for r in rows]})
    if len(keys) >= 2:
        k1, k2 = keys[:2]
        cells = defaultdict(list)
        for t in trials:
            ab = ablation_values(t)
            if k1 in ab and k2 in ab and isinstance(t.get(metric), (int, float)) and not math.isnan(t[metric]):
                cells[(str(ab[k1]), str(ab[k2]))].append(float(t[metric]))
        rows, cols = sorted({r for r, _ in cells}), sorted({c for _, c in cells})
        grids.append({"role": role, "key": f"{k1} × {k2}", "metric": metric, "rows": rows, "cols": cols,
                      "values": [[(sum(cells[(r, c)]) / len(cells[(r, c)])) if cells.get((r, c)) else None
                                  for c in cols] for r in rows]})
    return grids


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def trial_notes(role: str, variants: dict[str, list[tuple[dict, dict]]]) -> list[str]:
    """What a reader must know of a role's finished trials before trusting its tables and plots: a logged loss that
    is NaN or infinite (the model diverged; the loss plot has no point there and its metrics measure that model),
    and a trial with no evaluated item (``<role>/eval_rows`` 0: it adds nothing to the metrics). Before, both were
    silent: the loss line just stopped, and the trial was left out of the pooled items without a word."""
    out = []
    for v, pairs in sorted(variants.items()):
        for t, it in pairs:
            curve = [p for p in t.get("loss_curve") or [] if isinstance(p, dict)]
            bad = [p for p in curve if not _finite(p.get("loss"))]
            if bad:
                out.append(f"{v} {_where(t)}: {bad[0].get('phase')} loss not finite (NaN or inf) from step "
                           f"{bad[0].get('step')} ({len(bad)} of {len(curve)} logged losses): the model diverged, "
                           "its metrics measure that model")
            if not any(num for num, _ in (it.get("items") or {}).values()):
                out.append(f"{v} {_where(t)}: no evaluated item ({role}/eval_rows {t.get(f'{role}/eval_rows', 0)}): "
                           "it adds nothing to the metrics")
    return out


def _refuse_diverged_winner(block: dict[str, Any], variants: dict[str, list[tuple[dict, dict]]]) -> None:
    """No winner is called for a variant one of whose trials diverged (a logged loss NaN or infinite): its metrics
    measure a broken model, and a promotion must not follow from them. The reason names the trials."""
    won = block.get("winner")
    diverged = [_where(t) for t, _ in variants.get(won, ()) if won
                and any(not _finite(p.get("loss")) for p in t.get("loss_curve") or [] if isinstance(p, dict))]
    if diverged:
        block["winner"] = None
        block["winner_reason"] = (f"{won} would win ({block['winner_reason']}), but its trial(s) "
                                  f"{'; '.join(diverged)} diverged (loss not finite): no winner is called on a "
                                  "diverged model (trial_notes)")


def failed_entries(failed: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The failed trials as results.json lists them: ``status`` "failed", ``reason`` (the error), ``error_type``
    and ``error_message`` (read off a ``"Type: message"`` reason when the trial gave none), the trial's id (a
    sweep's) or folder (``tracebridge report``'s), and its role, variant, seed, ablation and ``config`` (the
    config it trained with: a sweep's) where known."""
    keep = ("trial_id", "trial_dir", "role", "variant", "seed", "ablation", "error_type", "error_message", "config")
    out = []
    for f in failed or []:
        entry = {**{k: f[k] for k in keep if f.get(k) is not None}, "status": "failed",
                 "reason": str(f.get("error") or f.get("reason") or "unknown")}
        name, sep, msg = entry["reason"].partition(": ")
        if "error_type" not in entry and sep and name.isidentifier():
            entry.update(error_type=name, error_message=msg)
        out.append(entry)
    return out


def _note_failed(block: dict[str, Any], failed: list[dict[str, Any]]) -> None:
    """Count a role's failed trials into its block (per variant too) and say so next to its winner: a winner
    read off the trials that finished must not look like the whole grid's."""
    block["failed_trials"] = len(failed)
    for v, vb in block["variants"].items():
        vb["failed"] = sum(f.get("variant") == v for f in failed)
    if failed:
        block["winner_reason"] = (f"{block['winner_reason']}; {len(failed)} trial(s) of this role failed and are "
                                  "left out (results.json failed_trials)")


def build_results(trials: list[dict[str, Any]], n_boot: int = 1000, ci: float = 0.95,
                  failed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``results.json`` content from trial result dicts (see the module docstring); ``failed`` (``trial_id``
    or ``trial_dir``, ``error``, role, variant, seed where known) are listed in ``failed_trials`` with their
    reason, counted per role and variant, and each finished trial says ``status`` "finished"."""
    failed_list = failed_entries(failed)
    by_role: dict[str, dict[str, list[tuple[dict, dict]]]] = defaultdict(lambda: defaultdict(list))
    for t in trials:
        by_role[t["role"]][t["variant"]].append((t, load_items(t)))
    roles: dict[str, Any] = {}
    for role, variants in sorted(by_role.items()):
        block: dict[str, Any] = {"primary": PRIMARY[role], "guarded": GUARDED[role], "variants": {}}
        for v, pairs in sorted(variants.items()):
            block["variants"][v] = _variant_block([p[0] for p in pairs], [p[1] for p in pairs], n_boot, ci)
        if "baseline" in variants and "optimized" in variants:
            diffs, notes, problems = compare_variants(variants["baseline"], variants["optimized"], n_boot, ci)
            block["comparison"] = {k: e.to_dict() for k, e in diffs.items()}
            block["comparison_notes"], block["comparison_problems"] = notes, problems
            primary = diffs.get(PRIMARY[role], Estimate(float("nan"), float("nan"), float("nan"), 0))
            guards = {g: diffs[g] for g in GUARDED[role] if g in diffs}
            for g in set(GUARDED[role]) - set(guards):  # measured by the baseline, absent from optimized
                n_b = block["variants"]["baseline"]["metrics"].get(g, {}).get("n", 0)
                n_a = block["variants"]["optimized"]["metrics"].get(g, {}).get("n", 0)
                if n_b and not n_a:
                    guards[g] = Estimate(float("nan"), float("nan"), float("nan"), n_b, 0, n_b)
            hib = {g: HIGHER_IS_BETTER.get(g.removeprefix("cl_"), True) for g in guards}
            verdict = decide_winner(primary, guards, hib)
            block["winner"], block["winner_reason"] = verdict.winner, verdict.reason
            _refuse_diverged_winner(block, variants)
            if problems:  # a difference over mis-matched items decides nothing
                block["winner"] = None
                block["winner_reason"] = (("nothing was compared; " if not primary.n else "")
                                          + f"the variants' trials or items do not pair: {'; '.join(problems)}")
        else:
            block["winner"], block["winner_reason"] = None, "needs both baseline and optimized trials"
        block["ablations"] = ablation_grids(role, [p[0] for ps in variants.values() for p in ps])
        block["trial_notes"] = trial_notes(role, variants)
        _note_failed(block, [f for f in failed_list if f.get("role") == role])
        roles[role] = block
    slim = [{**t, "status": "finished"} for t in trials]
    return _clean({"roles": roles, "trials": slim, "failed_trials": failed_list, "n_boot": n_boot, "ci": ci,
                   "counts": {"finished": len(trials), "failed": len(failed_list)}})
