"""What an offline evaluation's numbers depend on besides the model and the bundle, so that
``tracebridge eval`` on a trial's checkpoint can say where its settings differ from the trial's
(``trial.json``'s resolved config) and which overrides reproduce the trial's numbers.

Batching (``eval.batch_size``, ``eval.max_batch_tokens``) and the training recipe do not change what is
scored; the fitted lengths do (``offline.fit_lengths``: ``data.fit_context``, ``eval.fit_context``,
``eval.max_length``, ``train.max_length``, ``dpo.max_length``), as do the split, the row cap, the
behaviour policy, the bootstrap seed and the ``eval.*`` scoring keys.
"""

from __future__ import annotations

import logging
from typing import Any

from tracebridge.train.config import TrainConfig

log = logging.getLogger(__name__)

PROMPTS_FIT, PAIRS_FIT = "prompts fitted to (tokens, 0 = as they are)", "pairs fitted to (tokens, 0 = as they are)"
# the config keys each derived setting comes from (named in the overrides that reproduce a trial)
SOURCES = {PROMPTS_FIT: ("data.fit_context", "eval.fit_context", "eval.max_length", "train.max_length"),
           PAIRS_FIT: ("data.fit_context", "eval.fit_context", "eval.max_length", "dpo.max_length")}
NOT_SCORED = ("batch_size", "max_batch_tokens", "fit_context", "max_length")


def _flat(prefix: str, d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(f"{prefix}.{k}", v) if isinstance(v, dict) and v else {f"{prefix}.{k}": v})
    return out


def eval_settings(cfg: TrainConfig) -> dict[str, Any]:
    """``{setting: value}`` of everything in ``cfg`` that changes an evaluation's numbers."""
    from tracebridge.config import to_dict
    from tracebridge.eval.offline import fit_lengths

    ev = {k: v for k, v in to_dict(cfg.eval).items() if k not in NOT_SCORED}
    if not cfg.eval.closed_loop.enabled:
        ev["closed_loop"] = {"enabled": False}
    ml, pml = fit_lengths(cfg)
    return {"role": cfg.role, "seed": cfg.seed, "data.eval_split": cfg.data.eval_split,
            "data.max_eval_rows": cfg.data.max_eval_rows, "dpo.beta": cfg.dpo.beta, PROMPTS_FIT: ml, PAIRS_FIT: pml,
            **_flat("behaviour", to_dict(cfg.behaviour)), **_flat("eval", ev)}


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def trial_differences(trial_config: dict[str, Any], cfg: TrainConfig) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Where ``cfg`` evaluates differently from a trial whose resolved config is ``trial_config``.

    Returns:
        ``{setting: {"trial": .., "this run": ..}}`` and the ``key=value`` overrides that set the trial's
        values; both empty when the settings agree or the trial's config cannot be read (an older schema).
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from tracebridge.config import to_dict

    try:
        trial = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainConfig), trial_config))
    except (OmegaConfBaseException, TypeError, ValueError) as exc:
        log.debug("the trial's config cannot be compared (%s)", exc)
        return {}, []
    mine, theirs = eval_settings(cfg), eval_settings(trial)  # type: ignore[arg-type]
    diffs = {k: {"trial": theirs.get(k), "this run": mine.get(k)} for k in {*mine, *theirs}
             if mine.get(k) != theirs.get(k)}
    raw_t, raw_m = _flat("", to_dict(trial)), _flat("", to_dict(cfg))
    keys: list[str] = []
    for k in sorted(diffs):
        for src in SOURCES.get(k, (k,)):
            if src not in keys and raw_t.get(f".{src}") != raw_m.get(f".{src}"):
                keys.append(src)
    return dict(sorted(diffs.items())), [f"{k}={_value(raw_t.get(f'.{k}'))}" for k in keys]


def fit_note(who: str, fit: dict[str, Any] | None, trained_fitted: bool) -> str | None:
    """The line saying what ``eval.fit_context`` did (``extra.fit_context`` of an evaluation), prompts
    and pairs apart, each of its total, or None when it fitted nothing."""
    if not fit or not (fit.get("fitted") or fit.get("pairs_fitted")):
        return None
    what = [f"{fit.get(k, 0)} of {fit.get(n, 0)} {name}" for k, n, name in
            (("fitted", "prompts", "prompts"), ("pairs_fitted", "pairs", "pairs")) if fit.get(n)]
    to = f"{fit.get('max_length')} tokens" + (f" (pairs: {fit.get('pref_max_length')})"
                                              if fit.get("pairs") and fit.get("pref_max_length") != fit.get("max_length") else "")
    line = f"note: {who}: eval fitted {' and '.join(what)} to {to} by dropping their oldest context messages " \
           "(eval.fit_context), " + ("as training fitted its rows (data.fit_context)" if trained_fitted else
                                     "though training did not fit its rows (data.fit_context=false): TRL cut them at "
                                     "max_length or dropped them")
    over = [f"{fit[k]} {name}" for k, name in (("over", "prompts"), ("pairs_over", "pairs")) if fit.get(k)]
    if over:
        line += f"; {' and '.join(over)} are over even with their last user message alone (evaluated as they are)"
    if fit.get("refused"):
        line += f"; {fit['refused']} prompts as they are: the chat template refuses their reference reply"
    return line
