"""Offline evaluation of a role model on a split of its views: predictions → per-item metric
values (``tracebridge.eval.metrics``) → bootstrap estimates (``tracebridge.eval.stats``).

Verifier verdicts use ``eval.verifier_method``: ``likelihood`` (default; ranks the three
``verdict: X`` continuations by log-probability, robust for tiny models that cannot yet produce
the whole reply format) or ``generate`` (greedy reply parsed with ``schema/roles.py``; an
unparseable reply counts as wrong). The verifier is also scored against the majority-class
baseline of the training split (paired difference ``uplift_vs_majority``).

Long prompts: with ``eval.fit_context`` (default: as ``data.fit_context``), a prompt whose reference
reply does not fit in ``eval.max_length`` (0 = ``train.max_length``; pairs: ``dpo.max_length`` and
their longer answer) loses its oldest context messages by the rule the role was trained with
(``tracebridge.train.context_fit``), so the model is evaluated on the context it would have been
trained on; worker replies are scored against the prompt the model was shown (``eval_worker``), a plan
against its task's tools. Prompts are batched by length within ``eval.max_batch_tokens`` padded tokens
either way, and scoring keeps only the continuation's logits, which bounds memory (``predict``).
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
from tracebridge.train.config import EvalConfig, TrainConfig

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


def row_id(row: dict[str, Any], index: int) -> str:
    """A row's item id, ``<run_id>#<index within the evaluated rows>`` (``#<index>`` without a run id):
    unique within an evaluation (one run gives many rows) and the same for every variant evaluated on
    the same rows, so the report pairs variants by id (``tracebridge.report.results``)."""
    return f"{row['meta'].get('run_id') or ''}#{index}"


def worker_points(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]], dict[str, Any], Any, Any]]:
    """Every assistant turn of the rows as ``(id, prompt, reference, tools, scored_tools)``, deduplicated
    (id ``<row_id>/<turn>`` of its first row):
    ``tools`` is what the model is shown, ``scored_tools`` what its call is checked against (the
    exported schemas, ``meta.exported_tools``, where a ``behaviour.tool_schemas`` policy changed them)."""
    seen, out = set(), []
    for n, r in enumerate(rows):
        msgs = r["messages"]
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            key = json.dumps([msgs[:i + 1], r.get("tools")], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            out.append((f"{row_id(r, n)}/{i}", msgs[:i], m, r.get("tools"),
                        r["meta"].get("exported_tools", r.get("tools"))))
    return out


def fit_prompts(tok: Any, prompts: list[list[dict[str, Any]]], refs: list[dict[str, Any]], tools: list[Any],
                max_length: int, counts: dict[str, int]) -> list[list[dict[str, Any]]]:
    """The prompts, each whose reference reply does not fit in ``max_length`` tokens after it with its
    oldest context dropped (``context_fit``; 0 = as they are); adds ``prompts``, ``fitted``, ``over``
    (over even with their minimal context, evaluated as they are) and ``refused`` to ``counts``.

    The reference is rendered only to count: the model never sees it. A reference the chat template
    refuses (Llama 3's allows one tool call a message; an exported turn may hold parallel calls) leaves
    its prompt as it is, counted in ``refused``, rather than failing the evaluation.

    No room is left for ``max_new_tokens``: fitting reproduces the context the role trained on (prompt and
    reference within ``train.max_length``); reserving the generation budget would cut more context than
    training did. The model's own position limit is ``predict``'s concern."""
    if not max_length:
        return prompts
    from jinja2.exceptions import TemplateError

    from tracebridge.train.context_fit import FitReport, fit_sft_records

    recs = [{"prompt": p, "completion": [r], "tools": t} for p, r, t in zip(prompts, refs, tools)]
    refused = 0
    try:
        fitted, rep = fit_sft_records(recs, tok, max_length, what="eval")
    except TemplateError:  # one at a time, to find the references the template refuses
        fitted, rep = [], FitReport()
        for rec in recs:
            try:
                (got,), one = fit_sft_records([rec], tok, max_length, what="eval")
            except TemplateError as e:
                got, one, refused = rec, FitReport(), refused + 1
                log.debug("eval: the chat template refuses a reference (%s): its prompt is evaluated as it is", e)
            fitted.append(got)
            rep.fitted, rep.over = rep.fitted + one.fitted, rep.over + one.over
        log.warning("eval: the chat template refuses %d of %d reference replies: their prompts are evaluated as "
                    "they are", refused, len(recs))
    for k, n in (("prompts", len(recs)), ("fitted", rep.fitted), ("over", rep.over), ("refused", refused)):
        counts[k] = counts.get(k, 0) + n
    return [r["prompt"] for r in fitted]


def eval_planner(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: EvalConfig, max_length: int = 0,
                 counts: dict[str, int] | None = None) -> tuple[list[str], Items]:
    """Planner metrics on SFT rows, each scored against its last assistant turn (prompts fitted to
    ``max_length``: ``fit_prompts``). The tools a plan may use are the task's, read from the whole row
    (a fitted prompt may have lost the user turn that lists them).

    Returns:
        The item ids (``row_id``) and the per-item ``{metric: (nums, dens)}``.
    """
    whole, refs = map(list, zip(*(_prompt_and_ref(r) for r in rows))) if rows else ([], [])
    prompts = fit_prompts(tok, whole, refs, [None] * len(rows), max_length, {} if counts is None else counts)
    replies = P.generate_replies(model, tok, prompts, max_new_tokens=cfg.max_new_tokens,
                                 batch_size=cfg.batch_size, max_batch_tokens=cfg.max_batch_tokens)
    # the tool mask is the task's (labels.tool_mask, else the row's first user turn), shown or not
    per = [M.planner_item(rep, ref["content"], next((m["content"] for m in pr if m["role"] == "user"), ""),
                          r["meta"].get("labels") or {})
           for rep, ref, pr, r in zip(replies, refs, whole, rows)]
    return [row_id(r, i) for i, r in enumerate(rows)], collect(per)


def eval_worker(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: EvalConfig, max_length: int = 0,
                counts: dict[str, int] | None = None) -> tuple[list[str], Items]:
    """Worker metrics on every distinct assistant turn of the rows (see ``worker_points``; prompts
    fitted to ``max_length``: ``fit_prompts``).

    A reply is scored against the prompt the model was shown, fitted or not: ``arg_grounding`` asks
    whether an argument could be read from the context, and a value only the dropped context held
    could not; ``error_recurrence`` asks whether the model repeats a failed call it could see, and one
    dropped with the oldest context was not there to avoid. Scoring against the whole prompt would
    credit grounding the model never had and blame repeats it could not know of. Both variants of a
    trial are evaluated on the same fitted prompts, so their paired differences stay like for like.

    Returns:
        The item ids (``<row_id>/<turn>``) and the per-item ``{metric: (nums, dens)}``.
    """
    pts = worker_points(rows)
    prompts = fit_prompts(tok, [p[1] for p in pts], [p[2] for p in pts], [p[3] for p in pts], max_length,
                          {} if counts is None else counts)
    replies = P.generate_replies(model, tok, prompts, tools=[p[3] for p in pts], max_new_tokens=cfg.max_new_tokens,
                                 batch_size=cfg.batch_size, max_batch_tokens=cfg.max_batch_tokens)
    failed = M.failed_tool_calls(rows)  # by run: ids of tool results that failed (OpenClaw isError)
    per = [M.worker_item(rep, ref, prompt, scored, failed.get(pid.rpartition("#")[0], ()))
           for rep, prompt, (pid, _, ref, _, scored) in zip(replies, prompts, pts)]
    return [p[0] for p in pts], collect(per)


def predict_verdicts(model: Any, tok: Any, prompts: list[list[dict[str, Any]]], cfg: EvalConfig) -> list[str | None]:
    """Verdicts for verifier prompts by ``cfg.verifier_method``."""
    if cfg.verifier_method == "likelihood":
        return list(P.verdict_by_likelihood(model, tok, prompts, roles.VERDICTS, cfg.batch_size, cfg.max_batch_tokens))
    out: list[str | None] = []
    for reply in P.generate_replies(model, tok, prompts, max_new_tokens=24, batch_size=cfg.batch_size,
                                    max_batch_tokens=cfg.max_batch_tokens):
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


def eval_verifier(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: EvalConfig, majority: str | None,
                  max_length: int = 0, counts: dict[str, int] | None = None) -> tuple[list[str], Items, dict[str, Any]]:
    """Verifier metrics on SFT rows, verdicts predicted by ``cfg.verifier_method`` (prompts fitted to
    ``max_length``: ``fit_prompts``).

    Args:
        majority: the training split's majority verdict; when given, it is scored on the same items
            as ``majority_accuracy`` (the baseline of ``uplift_vs_majority``).

    Returns:
        The item ids (``row_id``), the per-item ``{metric: (nums, dens)}``, and
        extras: verdict counts ``predicted`` and ``expected`` (plus ``majority_verdict``).
    """
    prompts, refs = map(list, zip(*(_prompt_and_ref(r) for r in rows))) if rows else ([], [])
    expected = [M.expected_verdict(ref["content"], r["meta"].get("labels")) for ref, r in zip(refs, rows)]
    prompts = fit_prompts(tok, prompts, refs, [None] * len(rows), max_length, {} if counts is None else counts)
    preds = predict_verdicts(model, tok, prompts, cfg)
    items = collect([M.verifier_item(p, e) for p, e in zip(preds, expected)])
    extra: dict[str, Any] = {"predicted": dict(Counter(str(p) for p in preds)), "expected": dict(Counter(expected))}
    if majority:
        items["majority_accuracy"] = collect([M.verifier_item(majority, e) for e in expected])["accuracy"]
        extra["majority_verdict"] = majority
    return [row_id(r, i) for i, r in enumerate(rows)], items, extra


def eval_preferences(model: Any, tok: Any, rows: list[dict[str, Any]], cfg: EvalConfig,
                     ref_model: Any = None, beta: float = 0.1) -> Items:
    """``pref_accuracy`` (and ``reward_margin`` when a reference model is given) on pairs."""
    pol = P.pair_logprobs(model, tok, rows, cfg.batch_size, cfg.max_batch_tokens)
    ref = P.pair_logprobs(ref_model, tok, rows, cfg.batch_size, cfg.max_batch_tokens) if ref_model is not None \
        else [(None, None)] * len(rows)
    return collect([M.preference_item(c, r, rc, rr, beta) for (c, r), (rc, rr) in zip(pol, ref)])


def evaluate_offline(model: Any, tok: Any, role: str, sft_rows: list[dict[str, Any]], pref_rows: list[dict[str, Any]],
                     cfg: EvalConfig, train_rows: list[dict[str, Any]] | None = None, ref_model: Any = None,
                     beta: float = 0.1, seed: int = 0, max_length: int = 0, pref_max_length: int = 0) -> OfflineResult:
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
        max_length, pref_max_length: tokens a prompt and its reference (a pair's prompt and longer
            answer) may take before the prompt's oldest context is dropped (0 = never; ``fit_prompts``);
            what fitting did is ``extra["fit_context"]``.
    """
    res, counts = OfflineResult(role), {}
    if role == "planner":
        res.item_ids, res.items = eval_planner(model, tok, sft_rows, cfg, max_length, counts)
    elif role == "worker":
        res.item_ids, res.items = eval_worker(model, tok, sft_rows, cfg, max_length, counts)
    else:
        maj = majority_verdict(train_rows) if train_rows else None
        res.item_ids, res.items, res.extra = eval_verifier(model, tok, sft_rows, cfg, maj, max_length, counts)
    for k, (num, den) in list(res.items.items()):
        res.estimates[k] = bootstrap(num, den, cfg.n_boot, cfg.ci, seed)
    if "majority_accuracy" in res.items:
        res.estimates["uplift_vs_majority"] = paired_difference(res.items["accuracy"], res.items["majority_accuracy"],
                                                                cfg.n_boot, cfg.ci, seed)
    if pref_rows:
        if pref_max_length:
            from tracebridge.train.context_fit import fit_pref_records

            pref_rows, rep = fit_pref_records(pref_rows, tok, pref_max_length, what="eval pairs")
            counts.update(pairs=len(pref_rows), pairs_fitted=rep.fitted, pairs_over=rep.over)
        pref = eval_preferences(model, tok, pref_rows, cfg, ref_model, beta)
        for k, (num, den) in pref.items():
            res.items[k] = (num, den)
            res.estimates[k] = bootstrap(num, den, cfg.n_boot, cfg.ci, seed)
        res.extra["pair_ids"] = [row_id(r, i) for i, r in enumerate(pref_rows)]
    if max_length or pref_max_length:
        res.extra["fit_context"] = {"max_length": max_length, "pref_max_length": pref_max_length, **counts}
    return res


def fit_lengths(cfg: TrainConfig) -> tuple[int, int]:
    """``(max_length, pref_max_length)`` evaluation fits prompts to (``evaluate_offline``): ``eval.max_length``,
    else what the role trained at (``train``/``dpo.max_length``); ``(0, 0)`` when ``eval.fit_context`` (None:
    ``data.fit_context``) is off."""
    if not (cfg.data.fit_context if cfg.eval.fit_context is None else cfg.eval.fit_context):
        return 0, 0
    return cfg.eval.max_length or cfg.train.max_length, cfg.eval.max_length or cfg.dpo.max_length


def evaluate_split(model: Any, tok: Any, cfg: TrainConfig, data: Any, ref_model: Any = None) -> tuple[OfflineResult, dict[str, Any]]:
    """Evaluate a role model on ``data.eval_split`` of its bundle data (``train.data.RoleData``): the role's
    SFT rows (worker: recovery rows too) and preference pairs, each capped at ``data.max_eval_rows``,
    prompts fitted by ``fit_lengths``. The same rows and prompts for a trial, ``tracebridge eval`` and a
    sweep's re-evaluation, so their numbers compare.

    Returns:
        The result and its flat metrics (``OfflineResult.flat``, plus ``<role>/eval_rows`` and, when
        prompts were fitted, ``<role>/eval_prompts_fitted``).
    """
    split = cfg.data.eval_split
    sft = data.split(data.sft, split) + (data.split(data.recovery_sft, split) if cfg.role == "worker" else [])
    pref = data.split(data.pref, split)
    if cfg.data.max_eval_rows:
        sft, pref = sft[:cfg.data.max_eval_rows], pref[:cfg.data.max_eval_rows]
    res = evaluate_offline(model, tok, cfg.role, sft, pref, cfg.eval, data.split(data.sft, "train"), ref_model,
                           cfg.dpo.beta, cfg.seed, *fit_lengths(cfg))
    flat: dict[str, Any] = {**res.flat(), f"{cfg.role}/eval_rows": len(res.item_ids)}
    fit = res.extra.get("fit_context")
    if fit:
        flat[f"{cfg.role}/eval_prompts_fitted"] = fit.get("fitted", 0) + fit.get("pairs_fitted", 0)
    return res, flat
