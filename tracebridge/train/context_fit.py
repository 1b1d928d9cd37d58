"""Token-aware context fitting of conversation-window records (``data.fit_context``).

A conversation-window row (``tracebridge.export.views_conversation``: the conversation so far as
context, then its targets; ``data.to_sft_records`` makes it a prompt/completion record) of a realistic
session runs to ~22K characters. TRL cuts a sequence from its end at ``max_length`` and drops one
left with no trainable token, so a long context costs the whole row. Here, with the tokenizer and
chat template the trainer uses, a record whose prompt leaves no room within ``max_length`` for its
first target (SFT: the completion up to its first assistant message; DPO: the longer of chosen and
rejected) loses its oldest context messages, whole, by the export cap's rule
(``views_conversation._fit``): leading system messages stay, the context starts at a user turn, or
is the last user message then the latest messages from an assistant one on (a tool result never
loses its call), and the completion is never touched. The longest such context that fits is kept.
A record whose minimal context (the last user message alone) is over too is left as it is (TRL
drops it, counted in ``rows_dropped``); a record that fits is returned as the same object.
``messages`` records (no context/target split) are never changed.

Cheap: each distinct message object (the rows of one conversation share them,
``data._Normaliser``) is tokenized once, after the template's own rendering of it behind a one-word
user turn (one batched call); a record's length is estimated as its tools/system header plus its
messages' costs, which is exact for templates that put a special token between messages (ChatML:
ours, Qwen's). The kept context is confirmed with one template application. The estimate is compared
with exact lengths on the first records and at every confirmation: once it is off, every record is
measured exactly (one application of the whole record) and the estimate only picks where to look.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

PROBE = {"role": "user", "content": "x", "tool_calls": None}  # the turn each message is rendered behind
CALIBRATE = 4  # records measured exactly before estimates alone decide that a record fits

Tails = list[list[dict[str, Any]]]


@dataclass
class FitReport:
    """What fitting did to a set of records."""

    fitted: int = 0  # records whose oldest context was dropped
    over: int = 0  # records over max_length even with their minimal context (left as they are)
    template_calls: int = 0  # template applications, the per-message batch counted as one
    exact_estimates: bool = True  # every estimate compared with an exact length matched it
    seconds: float = 0.0


class _Lengths:
    """Token lengths under a tokenizer's chat template: exact (one application) or estimated from
    per-message costs, each message object tokenized once."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok, self.calls, self.checked, self.exact_estimates = tokenizer, 0, 0, True
        self._cost: dict[int, tuple[dict[str, Any], int]] = {}  # id -> (message, tokens); the message pins its id
        self._head: dict[tuple[Any, ...], tuple[list[dict[str, Any]], int]] = {}
        self._tools: dict[str, Any] = {}
        self._base = self.exact([PROBE])
        self._probe = self.exact([PROBE, PROBE]) - self._base

    @property
    def trusted(self) -> bool:
        """Whether an estimate alone may say that a record fits."""
        return self.exact_estimates and self.checked >= CALIBRATE

    def _parsed(self, tools: Any) -> Any:
        if not isinstance(tools, str):
            return tools
        if tools not in self._tools:
            self._tools[tools] = json.loads(tools)  # as TRL passes them to the template
        return self._tools[tools]

    def exact(self, msgs: list[dict[str, Any]], tools: Any = None) -> int:
        """Tokens of ``msgs`` under the template, as TRL tokenizes them."""
        self.calls += 1
        out = self.tok.apply_chat_template(msgs, tools=self._parsed(tools), tokenize=True, return_dict=True)
        return len(out["input_ids"])

    def prime(self, messages: list[dict[str, Any]]) -> None:
        """Cost every message not seen yet, in one batched template call."""
        new = list({id(m): m for m in messages if id(m) not in self._cost}.values())
        if new:
            self.calls += 1
            out = self.tok.apply_chat_template([[PROBE, m] for m in new], tokenize=True, return_dict=True)
            for m, ids in zip(new, out["input_ids"]):
                self._cost[id(m)] = (m, len(ids) - self._base)

    def cost(self, msgs: list[dict[str, Any]]) -> int:
        """Estimated tokens ``msgs`` add to a conversation."""
        self.prime([m for m in msgs if id(m) not in self._cost])
        return sum(self._cost[id(m)][1] for m in msgs)

    def head(self, lead: list[dict[str, Any]], tools: Any) -> int:
        """Tokens of the header: the leading system messages and the tools listed with them."""
        key = (tools if isinstance(tools, str) else json.dumps(tools), *map(id, lead))
        if key not in self._head:
            self._head[key] = (lead, self.exact([*lead, PROBE], tools) - self._probe)
        return self._head[key][1]

    def check(self, estimate: int, exact: int) -> None:
        """Compare an estimate with the exact length; one miss and estimates only guide."""
        self.checked += 1
        if estimate != exact and self.exact_estimates:
            self.exact_estimates = False
            log.info("context fit: a record estimated at %d tokens has %d under the template; measuring every "
                     "record exactly from here", estimate, exact)


def _candidates(ctx: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Shorter contexts by the export cap's rule, longest first: from each later user turn; then the
    last user message and the latest messages from each assistant one after it; then that message alone."""
    users = [i for i, m in enumerate(ctx) if m["role"] == "user"]
    if not users:
        return []
    last = users[-1]
    out = [ctx[i:] for i in users if i > 0]
    out += [[ctx[last], *ctx[i:]] for i in range(last + 2, len(ctx)) if ctx[i]["role"] == "assistant"]
    out.append([ctx[last]])
    kept, size = [], len(ctx)
    for c in out:  # each candidate holds a subset of the one before: an equal length is the same context
        if len(c) < size:
            kept.append(c)
            size = len(c)
    return kept


def _longest(lengths: _Lengths, prompt: list[dict[str, Any]], tails: Tails, tools: Any) -> int:
    return max(lengths.exact([*prompt, *t], tools) for t in tails)


def _fit_prompt(prompt: list[dict[str, Any]], tails: Tails, tools: Any, lengths: _Lengths,
                max_length: int) -> tuple[str, list[dict[str, Any]] | None]:
    """``("fits", None)``, ``("fitted", shorter prompt)`` or ``("over", None)`` for a prompt followed
    by the longest of ``tails``."""
    n_lead = next((i for i, m in enumerate(prompt) if m["role"] != "system"), len(prompt))
    lead, ctx = prompt[:n_lead], prompt[n_lead:]
    base = lengths.head(lead, tools) + max(lengths.cost(t) for t in tails)
    estimate, exact = base + lengths.cost(ctx), None
    if not lengths.trusted:
        exact = _longest(lengths, prompt, tails, tools)
        lengths.check(estimate, exact)
    if (estimate if exact is None else exact) <= max_length:
        return "fits", None
    cands = _candidates(ctx)
    ests = [base + lengths.cost(c) for c in cands]
    k = next((i for i, e in enumerate(ests) if e <= max_length), None)
    if k is None:  # even the minimal context is estimated over: measured unless estimates are trusted
        k = -1 if lengths.trusted else len(cands) - 1
    while 0 <= k < len(cands):
        n = _longest(lengths, [*lead, *cands[k]], tails, tools)
        lengths.check(ests[k], n)
        if n != ests[k] and exact is None:  # the estimate said the whole prompt is over: make sure
            exact = _longest(lengths, prompt, tails, tools)
            if exact <= max_length:
                return "fits", None
        if n > max_length:
            k += 1  # estimated too low: a shorter context
            continue
        while k > 0 and not lengths.trusted:  # estimates that were ever off: a longer context may fit too
            longer = _longest(lengths, [*lead, *cands[k - 1]], tails, tools)
            lengths.check(ests[k - 1], longer)
            if longer > max_length:
                break
            k = k - 1
        return "fitted", [*lead, *cands[k]]
    return "over", None


def _fit_all(records: list[dict[str, Any]], tokenizer: Any, max_length: int,
             tails_of: Callable[[dict[str, Any]], Tails | None], what: str) -> tuple[list[dict[str, Any]], FitReport]:
    if not max_length:  # no truncation: nothing to fit
        return records, FitReport()
    t0, lengths, rep, out = time.perf_counter(), _Lengths(tokenizer), FitReport(), []
    todo = [(r, t) for r in records if (t := tails_of(r)) is not None]
    lengths.prime([m for r, tails in todo for m in (*r["prompt"], *(x for t in tails for x in t))])
    tails = {id(r): t for r, t in todo}
    for rec in records:
        status, prompt = ("skip", None) if id(rec) not in tails else \
            _fit_prompt(rec["prompt"], tails[id(rec)], rec.get("tools"), lengths, max_length)
        rep.fitted += status == "fitted"
        rep.over += status == "over"
        out.append(rec if prompt is None else {**rec, "prompt": prompt})
    rep.template_calls, rep.exact_estimates = lengths.calls, lengths.exact_estimates
    rep.seconds = time.perf_counter() - t0
    log.info("%s: fitted %d of %d records to max_length=%d by dropping their oldest context; %d over it even "
             "with their minimal context (%d template calls, %.2f s)", what, rep.fitted, len(records), max_length,
             rep.over, rep.template_calls, rep.seconds)
    return out, rep


def _first_target(rec: dict[str, Any]) -> Tails | None:
    if "prompt" not in rec or not rec["prompt"]:
        return None
    j = next((i for i, m in enumerate(rec["completion"]) if m["role"] == "assistant"), None)
    return None if j is None else [rec["completion"][:j + 1]]


def fit_sft_records(records: list[dict[str, Any]], tokenizer: Any,
                    max_length: int) -> tuple[list[dict[str, Any]], FitReport]:
    """SFT records (``data.to_sft_records``) fitted so that each prompt and its first target fit in
    ``max_length`` tokens (see the module docstring).

    Args:
        records: prompt/completion records (``messages`` ones are returned as they are).
        tokenizer: the trainer's tokenizer, its chat template the one the trainer applies.
        max_length: the trainer's ``max_length`` (after the throughput levers).

    Returns:
        The records, a fitted one as a new dict with a shorter ``prompt`` and every other the same
        object; and a ``FitReport``.
    """
    return _fit_all(records, tokenizer, max_length, _first_target, "sft")


def fit_pref_records(records: list[dict[str, Any]], tokenizer: Any,
                     max_length: int) -> tuple[list[dict[str, Any]], FitReport]:
    """Preference records (``data.to_pref_records``) fitted so that each prompt and the longer of its
    chosen and rejected fit in ``max_length`` tokens; as ``fit_sft_records`` otherwise."""
    return _fit_all(records, tokenizer, max_length,
                    lambda r: [r["chosen"], r["rejected"]] if r.get("prompt") else None, "dpo")
