"""Behaviour policies: the prompt, tool and response policy a role's rows are put under before a
trial trains and evaluates on them (``TrainConfig.behaviour``; every key is a ``behaviour.*``
override, so phase 2 and sweeps ablate them like any other key).

* prompt policy (``system_prompt``, ``system_prompt_mode``): the system turn the model sees;
* tool policy (``tool_schemas``): the exported schemas, only each tool's name and description, or
  no ``tools`` field at all;
* response policy (``response``): ``calls_only`` empties the prose of every assistant turn that
  carries tool calls (the model's earlier turns in a context included: they were the policy's
  replies too); answers without tool calls are kept.

``run_trial`` applies them to the SFT, recovery and preference rows of every split right after
loading, so offline evaluation puts the model under the policy it was trained with. The
transforms are pure: they build new rows, lists and messages and never mutate the loaded ones
(equal messages of a role's views are one shared object, ``tracebridge.train.data.read_view``);
a message shared by many rows becomes one shared new message. The defaults return the data
unchanged (the same objects), so records and prepared-cache keys stay bit-identical. Where a
row's system turn is added or dropped, its ``meta.labels.context_messages`` (conversation
windows) moves with it. Where the tool policy changes what the model is shown, the row keeps the
exported schemas in ``meta.exported_tools``: the worker metrics score a call against those
(``tracebridge.eval.offline``), so every policy is scored on the same benchmark.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

from tracebridge.train.config import BehaviourConfig
from tracebridge.train.data import RoleData

Row = dict[str, Any]
Message = dict[str, Any]


def is_default(cfg: BehaviourConfig) -> bool:
    """True when the policy leaves every row as exported."""
    return cfg.system_prompt is None and cfg.tool_schemas == "full" and cfg.response == "as_is"


def describe(cfg: BehaviourConfig, width: int = 48) -> str:
    """The non-default keys as ``key=value`` (``as exported`` for the default), for reports; a
    system prompt is quoted and cut to ``width`` characters."""
    default = BehaviourConfig()
    sp = cfg.system_prompt or ""
    shown = {"system_prompt": repr(sp if len(sp) <= width else sp[:width - 1] + "…")}
    changed = [f"{f.name}={shown.get(f.name, getattr(cfg, f.name))}" for f in dataclasses.fields(cfg)
               if getattr(cfg, f.name) != getattr(default, f.name)]
    if cfg.system_prompt is None:  # the mode means nothing without a prompt
        changed = [c for c in changed if not c.startswith("system_prompt_mode=")]
    return ", ".join(changed) or "as exported"


def tool_names_only(tools: Any) -> Any:
    """``tools`` with each entry cut to its name and description (OpenAI function format or plain);
    a JSON string stays a JSON string."""
    as_text = isinstance(tools, str)
    entries = json.loads(tools) if as_text else tools
    out = []
    for t in entries or []:
        if isinstance(t, dict) and isinstance(t.get("function"), dict):
            f = t["function"]
            out.append({**{k: v for k, v in t.items() if k != "function"},
                        "function": {k: f[k] for k in ("name", "description") if k in f}})
        elif isinstance(t, dict):
            out.append({k: t[k] for k in ("type", "name", "description") if k in t})
        else:
            out.append(t)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"), sort_keys=True) if as_text else out


class _Rewriter:
    """One policy over many rows: each distinct message (by object) and tools value is rewritten
    once, so rows that shared a message share its rewritten form."""

    def __init__(self, cfg: BehaviourConfig) -> None:
        self.cfg = cfg
        self.counts: Counter[str] = Counter()
        self._system = {"role": "system", "content": cfg.system_prompt} if cfg.system_prompt else None
        self._msgs: dict[tuple[str, int], tuple[Message, Message]] = {}  # -> (original kept alive, rewritten)
        self._tools: dict[Any, Any] = {}

    def _once(self, kind: str, m: Message, make: Any) -> Message:
        key = (kind, id(m))
        hit = self._msgs.get(key)
        if hit is None:
            hit = self._msgs[key] = (m, make(m))
        return hit[1]

    def system(self, msgs: list[Message]) -> tuple[list[Message], int]:
        """``msgs`` under the prompt policy, and how many messages were added (+1) or dropped (-1)."""
        sp, first = self.cfg.system_prompt, msgs[0] if msgs and msgs[0].get("role") == "system" else None
        if sp is None:
            return msgs, 0
        if first is None:
            return (msgs, 0) if self._system is None else ([self._system, *msgs], 1)
        if self._system is None:  # replace with '': no system turn
            return msgs[1:], -1
        if self.cfg.system_prompt_mode == "replace":
            return [self._system, *msgs[1:]], 0
        merged = self._once("system", first, lambda m: {**m, "content": f"{sp}\n\n{m.get('content') or ''}"})
        return [merged, *msgs[1:]], 0

    def responses(self, msgs: list[Message]) -> list[Message]:
        """``msgs`` with the prose of tool-call turns emptied (``response=calls_only``)."""
        if self.cfg.response != "calls_only":
            return msgs
        out = [self._once("reply", m, lambda m: {**m, "content": ""})
               if m.get("role") == "assistant" and m.get("tool_calls") and m.get("content") else m for m in msgs]
        return msgs if all(a is b for a, b in zip(out, msgs)) else out

    def tools(self, tools: Any) -> Any:
        key = tools if isinstance(tools, str) else id(tools)
        if key not in self._tools:
            self._tools[key] = (tools, tool_names_only(tools))
        return self._tools[key][1]

    def row(self, row: Row) -> Row:
        """A new row under the policy (the same object when nothing changes)."""
        out, meta = dict(row), dict(row.get("meta") or {})
        conv = "messages" if "messages" in row else "prompt"
        msgs, shift = self.system(row[conv])
        if msgs is not row[conv]:
            out[conv] = msgs
            self.counts["system_prompt"] += 1
        if shift and conv == "messages" and isinstance((meta.get("labels") or {}).get("context_messages"), int):
            meta["labels"] = {**meta["labels"], "context_messages": meta["labels"]["context_messages"] + shift}
        replies = {k: self.responses(out[k]) for k in ("messages", "prompt", "chosen", "rejected") if k in out}
        if any(v is not out[k] for k, v in replies.items()):
            out.update(replies)
            self.counts["response"] += 1
        if self.cfg.tool_schemas != "full" and "tools" in row:
            meta["exported_tools"] = row["tools"]
            if self.cfg.tool_schemas == "none":
                del out["tools"]
            else:
                out["tools"] = self.tools(row["tools"])
            self.counts["tool_schemas"] += 1
        if meta != (row.get("meta") or {}):
            out["meta"] = meta
        if any(out.get(k) is not row.get(k) for k in {*out, *row}):
            self.counts["rows"] += 1
            return out
        return row


def apply_behaviour_rows(rows: list[Row], cfg: BehaviourConfig) -> tuple[list[Row], dict[str, int]]:
    """``rows`` (SFT or preference view rows) under the behaviour policy ``cfg``.

    Returns:
        The new rows (the input list itself under the default policy) and counts of the rows each
        axis changed (``system_prompt``, ``tool_schemas``, ``response``; ``rows`` = changed at all).
    """
    if is_default(cfg):
        return rows, {}
    rw = _Rewriter(cfg)
    return [rw.row(r) for r in rows], dict(rw.counts)


def apply_behaviour(data: RoleData, cfg: BehaviourConfig) -> tuple[RoleData, dict[str, int]]:
    """A role's rows of every split (SFT, recovery SFT, preference pairs) under ``cfg``.

    Returns:
        New ``RoleData`` (``data`` itself under the default policy) and what changed, as
        ``apply_behaviour_rows`` counts it, over all three lists.
    """
    if is_default(cfg):
        return data, {}
    rw = _Rewriter(cfg)  # one rewriter: the views share their messages
    new = dataclasses.replace(data, sft=[rw.row(r) for r in data.sft],
                              recovery_sft=[rw.row(r) for r in data.recovery_sft], pref=[rw.row(r) for r in data.pref])
    return new, dict(rw.counts)


def load_policed_data(bundle_dir: Any, role: str, cfg: BehaviourConfig) -> tuple[RoleData, dict[str, int]]:
    """A role's bundle data (``data.load_role_data``) under ``cfg``: what ``run_trial`` trains and
    evaluates on. ``tracebridge eval`` and a sweep's re-evaluation load through this too, so a model
    trained under a policy is evaluated under it there as well (not on the rows as exported).

    Raises:
        tracebridge.train.data.BundleError: as ``load_role_data``.
    """
    from tracebridge.train.data import load_role_data

    return apply_behaviour(load_role_data(bundle_dir, role), cfg)
