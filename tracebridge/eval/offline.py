"""Offline evaluation of a role model on a split of its views: predictions → per-item metric
values (``tracebridge.eval.metrics``) → bootstrap estimates (``tracebridge.eval.stats``).

Verifier verdicts use ``eval.verifier_method``: ``likelihood`` (default; ranks the three
``verdict: X`` continuations by log-probability, robust for tiny models that cannot yet produce
the whole reply format) or ``generate`` (greedy reply parsed with ``schema/roles.py``; an
unparseable reply counts as wrong). The verifier is also scored against the majority-class
baseline of the training split (paired difference ``uplift_vs_majority``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tracebridge.eval import metrics as M
from tracebridge.eval import predict as P
from tracebridge.eval.stats import Estimate, bootstrap, paired_difference
from tracebridge.schema import roles
from tracebridge.train.config import EvalConfig

log = logging.getLogger(__name__)

Items = dict[str, tuple[list[float], list[float]]]


@dataclass
class OfflineResult:
    """Per-item values (for paired comparisons) and their estimates, per metric."""

    role: str
    items: Items = field(default_factory=dict)
    estimates: dict[str, Estimate] = field(default_factory=dict)
    item_ids: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, float]:
        """``{'role/metric': value, 'role/metric_lo': .., 'role/metric_hi': ..}``."""
        out: dict[str, float] = {}
        for k, e in self.estimates.items():
            out[f"{self.role}/{k}"] = e.value
            out[f"{self.role}/{k}_lo"], out[f"{self.role}/{k}_hi"] = e.lo, e.hi
        return out


def collect(per_item: list[dict[str, M.NumDen]]) -> Items:
    """Column-wise ``{metric: (nums, dens)}`` from per-item dicts (missing = not counted)."""
    keys = sorted({k for d in per_item for k in d})
    return {k: ([d.get(k, (0.0, 0.0))[0] for d in per_item], [d.get(k, (0.0, 0.0))[1] for d in per_item])
            for k in keys}


def _prompt_and_ref(row: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    msgs = row["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    return msgs[:last], msgs[last]


def worker_points(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]], dict[str, Any], Any, Any]]:
    """Every assistant turn of the rows as ``(id, prompt, reference, tools, scored_tools)``, deduplicated:
    ``tools`` is what the model is shown, ``scored_tools`` what its call is checked against (the
    exported schemas, ``meta.exported_tools``, where a ``behaviour.tool_schemas`` policy changed them)."""
    seen, out = set(), []
    for r in rows:
        msgs = r["messages"]
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            key = json.dumps([msgs[:i + 1], r.get("tools")], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            out.append((f"{r['meta'].get('run_id')}#{i}", msgs[:i], m, r.get("tools"),
                        r["meta"].get("exported_tools", r.get("tools"))))
    return out


def eval_planner(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: EvalConfig) -> tuple[list[str], Items]:
    """Planner metrics on SFT rows, each scored against its last assistant turn.

    Returns:
        The item ids (run ids, else row indices) and the per-item ``{metric: (nums, dens)}``.
    """
    prompts, refs = zip(*(_prompt_and_ref(r) for r in rows)) if rows else ((), ())
    replies = P.generate_replies(model, tok, list(prompts), max_new_tokens=cfg.max_new_tokens,
                                 batch_size=cfg.batch_size)
    per = [M.planner_item(rep, ref["content"], next((m["content"] for m in pr if m["role"] == "user"), ""),
                          r["meta"].get("labels") or {})
           for rep, ref, pr, r in zip(replies, refs, prompts, rows)]
    return [r["meta"].get("run_id", str(i)) for i, r in enumerate(rows)], collect(per)


def eval_worker(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: EvalConfig) -> tuple[list[str], Items]:
    """Worker metrics on every distinct assistant turn of the rows (see ``worker_points``).

    Returns:
        The item ids (``<run_id>#<turn>``) and the per-item ``{metric: (nums, dens)}``.
    """
    pts = worker_points(rows)
    replies = P.generate_replies(model, tok, [p[1] for p in pts], tools=[p[3] for p in pts],
                                 max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    per = [M.worker_item(rep, ref, prompt, scored) for rep, (_, prompt, ref, _, scored) in zip(replies, pts)]
    return [p[0] for p in pts], collect(per)


def predict_verdicts(model: Any, tok: Any, prompts: list[list[dict[str, Any]]], cfg: EvalConfig) -> list[str | None]:
    """Verdicts for verifier prompts by ``cfg.verifier_method``."""
    if cfg.verifier_method == "likelihood":
        return list(P.verdict_by_likelihood(model, tok, prompts, roles.VERDICTS, cfg.batch_size))
    out: list[str | None] = []
    for reply in P.generate_replies(model, tok, prompts, max_new_tokens=24, batch_size=cfg.batch_size):
        try:
            out.append(roles.parse_verifier_reply(reply).verdict)
        except roles.ParseError:
            out.append(None)
    return out


def majority_verdict(train_rows: list[dict[str, Any]]) -> str:
    """The most common expected verdict of the training rows (ties: roles.VERDICTS order)."""
    counts = Counter(M.expected_verdict(_prompt_and_ref(r)[1]["content"], r["meta"].get("labels"))
                     for r in train_rows)
    return max(roles.VERDICTS, key=lambda v: (counts.get(v, 0), -roles.VERDICTS.index(v)))


def eval_verifier(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: EvalConfig,
                  majority: str | None) -> tuple[list[str], Items, dict[str, Any]]:
    """Verifier metrics on SFT rows, verdicts predicted by ``cfg.verifier_method``.

    Args:
        majority: the training split's majority verdict; when given, it is scored on the same items
            as ``majority_accuracy`` (the baseline of ``uplift_vs_majority``).

    Returns:
        The item ids (run ids, else row indices), the per-item ``{metric: (nums, dens)}``, and
        extras: verdict counts ``predicted`` and ``expected`` (plus ``majority_verdict``).
    """
    prompts, refs = zip(*(_prompt_and_ref(r) for r in rows)) if rows else ((), ())
    expected = [M.expected_verdict(ref["content"], r["meta"].get("labels")) for ref, r in zip(refs, rows)]
    preds = predict_verdicts(model, tok, list(prompts), cfg)
    items = collect([M.verifier_item(p, e) for p, e in zip(preds, expected)])
    extra: dict[str, Any] = {"predicted": dict(Counter(str(p) for p in preds)), "expected": dict(Counter(expected))}
    if majority:
        items["majority_accuracy"] = collect([M.verifier_item(majority, e) for e in expected])["accuracy"]
        extra["majority_verdict"] = majority
    return [r["meta"].get("run_id", str(i)) for i, r in enumerate(rows)], items, extra


def eval_preferences(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: EvalConfig,
                     ref_model: Any = None, beta: float = 0.1) -> Items:
    """``pref_accuracy`` (and ``reward_margin`` when a reference model is given) on pairs."""
    pol = P.pair_logprobs(model, tok, rows, cfg.batch_size)
    ref = P.pair_logprobs(ref_model, tok, rows, cfg.batch_size) if ref_model is not None else [(None, None)] * len(rows)
    return collect([M.preference_item(c, r, rc, rr, beta) for (c, r), (rc, rr) in zip(pol, ref)])


def evaluate_offline(model: Any, tok: Any, role: str, sft_rows: list[dict[str, Any]], pref_rows: list[dict[str, Any]],
                     cfg: EvalConfig, train_rows: list[dict[str, Any]] | None = None, ref_model: Any = None,
                     beta: float = 0.1, seed: int = 0) -> OfflineResult:
    """Evaluate a role model on its test rows.

    Args:
        model, tok: the trained model and tokenizer.
        role: planner | worker | verifier.
        sft_rows: the split's SFT-view rows (worker: recovery SFT rows too).
        pref_rows: the split's preference pairs ([] for none).
        cfg: eval config (method, batch, bootstrap).
        train_rows: the training split's SFT rows (verifier majority baseline).
        ref_model: the pre-DPO model, for the DPO reward margin.
        beta: DPO beta of the reward margin.
        seed: bootstrap seed.
    """
    res = OfflineResult(role)
    if role == "planner":
        res.item_ids, res.items = eval_planner(model, tok, sft_rows, cfg)
    elif role == "worker":
        res.item_ids, res.items = eval_worker(model, tok, sft_rows, cfg)
    else:
        maj = majority_verdict(train_rows) if train_rows else None
        res.item_ids, res.items, res.extra = eval_verifier(model, tok, sft_rows, cfg, maj)
    for k, (num, den) in list(res.items.items()):
        res.estimates[k] = bootstrap(num, den, cfg.n_boot, cfg.ci, seed)
    if "majority_accuracy" in res.items:
        res.estimates["uplift_vs_majority"] = paired_difference(res.items["accuracy"], res.items["majority_accuracy"],
                                                                cfg.n_boot, cfg.ci, seed)
    if pref_rows:
        pref = eval_preferences(model, tok, pref_rows, cfg, ref_model, beta)
        for k, (num, den) in pref.items():
            res.items[k] = (num, den)
            res.estimates[k] = bootstrap(num, den, cfg.n_boot, cfg.ci, seed)
        res.extra["pair_ids"] = [r["meta"].get("run_id", str(i)) for i, r in enumerate(pref_rows)]
    return res
