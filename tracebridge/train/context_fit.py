"""Token-aware context fitting of conversation-window records (``data.fit_context``).

A conversation-window row (``tracebridge.export.views_conversation``: the conversation so far as
context, then its targets; ``data.to_sft_records`` makes it a prompt/completion record) of a realistic
session runs to ~22K characters. TRL cuts a sequence from its end at ``max_length`` and drops one
left with no trainable token, so a long context costs the whole row. Here, with the tokenizer and
chat template the trainer uses, a record whose prompt leaves no room within ``max_length`` for its
first target (SFT: the completion up to its first assistant message; DPO: the longer of chosen and
rejected) loses its oldest context messages, whole, by the export cap's rule
(``conversation_window._fit``): leading system messages stay, the context starts at a user turn, or
is the last user message then the latest messages from an assistant one on (a tool result never
loses its call, nor does one that opens the completion), and the completion is never touched. The
longest such context that fits is kept.
A record whose minimal context (the last user message alone) is over too is left as it is (TRL
drops it, counted in ``rows_dropped``); a record that fits is returned as the same object.
``messages`` records (no context/target split) are never changed.

Cheap: each distinct message object (the rows of one conversation share them,
``data._Normaliser``) is tokenized once, after the template's own rendering of it behind a one-word
user turn (one batched call); a record's length is estimated as its tools/system header plus its
messages' costs, which is exact for templates that put a special token between messages (ChatML:
ours). Real templates are often off (Qwen groups parallel tool results into one turn, Qwen3 renders
older assistant turns without thinking, DeepSeek-V3 keeps it in an answer after a tool result), so a
prompt is only cut where exact lengths (one application each) show that the kept context fits and the
next longer one, or the whole prompt, does not. The estimate is compared with exact lengths on the
first records and at every confirmation: once it is off, every record is measured exactly and the
estimate only picks where to look; until then it alone may leave a record as it is (it fits, or even
its minimal context is over). Lengths are counted with the template TRL tokenizes with: for SFT with
assistant-only loss, the training variant SFTTrainer swaps in for a template without generation markers.
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
# and the one a tool result is rendered behind too where the template refuses one after a user turn (gpt-oss)
CALL = {"role": "assistant", "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}
CALIBRATE = 4  # exact lengths that must match their estimates before an estimate alone leaves a record

Tails = list[list[dict[str, Any]]]


@dataclass
class FitReport:
    """What fitting did to a set of records."""

    fitted: int = 0  # records whose oldest context was dropped
    over: int = 0  # records over max_length even with their minimal context (left as they are)
    over_floor: int = 0  # the fewest tokens (estimated) one of those needs: a max_length that keeps it
    template_calls: int = 0  # template applications, the per-message batch counted as one
    exact_estimates: bool = True  # every estimate compared with an exact length matched it
    seconds: float = 0.0


class _Lengths:
    """Token lengths under a tokenizer's chat template: exact (one application) or estimated from
    per-message costs, each message object tokenized once."""

    def __init__(self, tokenizer: Any, template: str | None = None) -> None:
        self.tok, self.template, self.calls, self.checked, self.exact_estimates = tokenizer, template, 0, 0, True
        self._cost: dict[int, tuple[dict[str, Any], int]] = {}  # id -> (message, tokens); the message pins its id
        self._head: dict[tuple[Any, ...], tuple[list[dict[str, Any]], int]] = {}
        self._tools: dict[str, Any] = {}
        self._base = self.exact([PROBE])
        self._probe = self.exact([PROBE, PROBE]) - self._base

    @property
    def trusted(self) -> bool:
        """Whether an estimate alone may leave a record as it is (it fits, or its minimal context is over)."""
        return self.exact_estimates and self.checked >= CALIBRATE

    def _parsed(self, tools: Any) -> Any:
        if not isinstance(tools, str):
            return tools
        if tools not in self._tools:
            self._tools[tools] = json.loads(tools)  # as TRL passes them to the template
        return self._tools[tools]

    def _ids(self, msgs: list[Any], tools: Any = None) -> list[Any]:
        """Token ids of a conversation (or of a batch of them) under the template, as TRL tokenizes them."""
        self.calls += 1
        return self.tok.apply_chat_template(msgs, tools=self._parsed(tools), chat_template=self.template,
                                            tokenize=True, return_dict=True)["input_ids"]

    def exact(self, msgs: list[dict[str, Any]], tools: Any = None) -> int:
        """Tokens of ``msgs`` under the template, as TRL tokenizes them."""
        return len(self._ids(msgs, tools))

    def _costs(self, convs: list[list[dict[str, Any]]], base: int) -> list[int]:
        return [len(ids) - base for ids in self._ids(convs)] if convs else []

    def prime(self, messages: list[dict[str, Any]]) -> None:
        """Cost every message not seen yet, in one batched template call (two where the template refuses a
        tool result behind a user turn: then tool results are costed behind a call)."""
        from jinja2.exceptions import TemplateError

        new = list({id(m): m for m in messages if id(m) not in self._cost}.values())
        try:
            costs = self._costs([[PROBE, m] for m in new], self._base)
        except TemplateError:
            tool = [m["role"] == "tool" for m in new]
            plain = iter(self._costs([[PROBE, m] for m, t in zip(new, tool) if not t], self._base))
            results = iter(self._costs([[PROBE, CALL, m] for m, t in zip(new, tool) if t], self.exact([PROBE, CALL])))
            costs = [next(results) if t else next(plain) for t in tool]
        for m, n in zip(new, costs):
            self._cost[id(m)] = (m, n)

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
                max_length: int) -> tuple[str, list[dict[str, Any]] | int | None]:
    """``("fits", None)``, ``("fitted", shorter prompt)`` or ``("over", tokens its minimal context
    needs, estimated)`` for a prompt followed by the longest of ``tails``. Estimates pick where to look;
    a prompt is cut only where exact lengths show that the kept context fits and the next longer one
    (or the whole prompt) does not."""
    n_lead = next((i for i, m in enumerate(prompt) if m["role"] != "system"), len(prompt))
    lead, ctx = prompt[:n_lead], prompt[n_lead:]
    cands = _candidates(ctx)
    if any(t and t[0]["role"] == "tool" for t in tails):  # it answers the context's last call: that stays
        cands = [c for c in cands if c[-1] is ctx[-1]]
    ctxs = [ctx, *cands]  # longest first
    base = lengths.head(lead, tools) + max(lengths.cost(t) for t in tails)
    ests = [base + lengths.cost(c) for c in ctxs]
    if lengths.trusted and ests[0] <= max_length:
        return "fits", None
    exact: dict[int, int] = {}

    def length(i: int) -> int:
        if i not in exact:
            exact[i] = _longest(lengths, [*lead, *ctxs[i]], tails, tools)
            lengths.check(ests[i], exact[i])
        return exact[i]

    k = next((i for i, e in enumerate(ests) if e <= max_length), None)
    if k is None and lengths.trusted:  # even the minimal context is estimated over
        return "over", ests[-1]
    k = len(ctxs) - 1 if k is None else k
    while k < len(ctxs) and length(k) > max_length:  # estimated too low: a shorter context
        k += 1
    if k == len(ctxs):
        return "over", max(ests[-1], exact[len(ctxs) - 1])
    while k > 0 and length(k - 1) <= max_length:  # estimated too high: a longer context
        k -= 1
    return ("fits", None) if k == 0 else ("fitted", [*lead, *ctxs[k]])


def _fit_all(records: list[dict[str, Any]], tokenizer: Any, max_length: int,
             tails_of: Callable[[dict[str, Any]], Tails | None], what: str,
             template: str | None = None) -> tuple[list[dict[str, Any]], FitReport]:
    if not max_length:  # no truncation: nothing to fit
        return records, FitReport()
    t0, lengths, rep, out = time.perf_counter(), _Lengths(tokenizer, template), FitReport(), []
    todo = [(r, t) for r in records if (t := tails_of(r)) is not None]
    lengths.prime([m for r, tails in todo for m in (*r["prompt"], *(x for t in tails for x in t))])
    tails = {id(r): t for r, t in todo}
    for rec in records:
        status, got = ("skip", None) if id(rec) not in tails else \
            _fit_prompt(rec["prompt"], tails[id(rec)], rec.get("tools"), lengths, max_length)
        rep.fitted += status == "fitted"
        if status == "over":
            rep.over_floor = min(rep.over_floor or got, got)
            rep.over += 1
        out.append({**rec, "prompt": got} if status == "fitted" else rec)
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


def fit_sft_records(records: list[dict[str, Any]], tokenizer: Any, max_length: int,
                    assistant_only_loss: bool = False, what: str = "sft") -> tuple[list[dict[str, Any]], FitReport]:
    """SFT records (``data.to_sft_records``) fitted so that each prompt and its first target fit in
    ``max_length`` tokens (see the module docstring).

    Args:
        records: prompt/completion records (``messages`` ones are returned as they are).
        tokenizer: the trainer's tokenizer.
        max_length: the trainer's ``max_length`` (after the throughput levers).
        assistant_only_loss: the trainer's flag: with it, SFTTrainer tokenizes with the training variant of
            a chat template that has no ``{% generation %}`` markers, and lengths are counted with that.
        what: who fits, in the log line.

    Returns:
        The records, a fitted one as a new dict with a shorter ``prompt`` and every other the same
        object; and a ``FitReport``.
    """
    return _fit_all(records, tokenizer, max_length, _first_target, what,
                    _sft_template(tokenizer) if assistant_only_loss else None)


def _sft_template(tokenizer: Any) -> str | None:
    """The chat template SFTTrainer swaps in for assistant-only loss (as its ``__init__`` does); None = the
    tokenizer's own."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    return None if has_generation_markers(tokenizer.chat_template) else get_training_chat_template(tokenizer)


def fit_pref_records(records: list[dict[str, Any]], tokenizer: Any, max_length: int,
                     what: str = "dpo") -> tuple[list[dict[str, Any]], FitReport]:
    """Preference records (``data.to_pref_records``) fitted so that each prompt and the longer of its
    chosen and rejected fit in ``max_length`` tokens; as ``fit_sft_records`` otherwise."""
    return _fit_all(records, tokenizer, max_length,
                    lambda r: [r["chosen"], r["rejected"]] if r.get("prompt") else None, what)
