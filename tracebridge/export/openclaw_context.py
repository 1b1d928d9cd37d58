"""What an OpenClaw session showed its model, for ``views_conversation``: the ``user`` messages
pi-coding-agent's ``convertToLlm`` (badlogic/pi-mono ``packages/coding-agent/src/core/messages.ts``)
makes of a compaction, a branch summary, an extension message (OpenClaw's runtime context labelled,
and turn-scoped) and a ``!`` shell run; and the
transcript's tree over a run's events, which a branched session's rows walk (``buildSessionContext``
builds a prompt from the leaf up, so only a target's ancestors are its context)."""

from __future__ import annotations

from typing import Any

from tracebridge.export.views import payload
from tracebridge.export.views_worker import _text

# How pi-coding-agent's convertToLlm (messages.ts) wraps a compaction summary and a branch summary for the model.
COMPACTION_PREFIX = "The conversation history before this point was compacted into the following summary:\n\n<summary>\n"
COMPACTION_SUFFIX = "\n</summary>"
BRANCH_SUMMARY_PREFIX = "The following is a summary of a branch that this conversation came back from:\n\n<summary>\n"
BRANCH_SUMMARY_SUFFIX = "</summary>"
# How OpenClaw's convertToLlm labels a runtime-context carrier (openclaw/openclaw
# packages/agent-core/src/harness/messages.ts, labelRuntimeContextContent): between a header and a
# footer line, a footer inside the text escaped; a carrier written in the older envelope (between
# ``<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>`` markers) keeps its bytes.
RUNTIME_CONTEXT_HEADER = "OpenClaw runtime context:"
RUNTIME_CONTEXT_FOOTER = "End OpenClaw runtime context."
RUNTIME_CONTEXT_FOOTER_ESCAPED = "[[RUNTIME_CONTEXT_FOOTER_ESCAPED]]"
LEGACY_RUNTIME_CONTEXT_BEGIN = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>"


def bash_text(obs: dict[str, Any]) -> str:
    """A ``!`` shell run as the model read it (pi-coding-agent's ``bashExecutionToText``)."""
    text = f"Ran `{obs.get('command')}`\n"
    text += f"```\n{obs['output']}\n```" if obs.get("output") else "(no output)"
    if obs.get("cancelled"):
        text += "\n\n(command cancelled)"
    elif isinstance(obs.get("exitCode"), int) and obs["exitCode"] != 0:
        text += f"\n\nCommand exited with code {obs['exitCode']}"
    if obs.get("truncated") and obs.get("fullOutputPath"):
        text += f"\n\n[Output truncated. Full output: {obs['fullOutputPath']}]"
    return text


def runtime_context_text(text: str) -> str:
    """A runtime-context carrier's text as OpenClaw's ``convertToLlm`` labels it for the model."""
    if LEGACY_RUNTIME_CONTEXT_BEGIN in text:
        return text
    body = text.replace(RUNTIME_CONTEXT_FOOTER, RUNTIME_CONTEXT_FOOTER_ESCAPED)
    return f"{RUNTIME_CONTEXT_HEADER}\n{body}\n{RUNTIME_CONTEXT_FOOTER}"


def _extension_text(obs: dict[str, Any]) -> str | None:
    """An extension message's ``user`` text: none when ``excludeFromContext``; a runtime-context
    carrier's labelled (``runtime_context_text``) unless it holds images (upstream then passes its
    blocks as they are); any other's content as it is (an operator's system update too)."""
    if obs.get("excludeFromContext") is True:
        return None
    text = _text(obs.get("content"))
    if text and obs.get("context") == "runtime" and not obs.get("images"):
        return runtime_context_text(text)
    return text or None


def turn_scoped(ev: dict[str, Any]) -> bool:
    """Whether an observation's context lasts only for its own user turn (OpenClaw's runtime context:
    upstream drops it from the context of later user turns)."""
    obs = payload(ev).get("observation")
    return isinstance(obs, dict) and obs.get("turn_scoped") is True


def context_text(ev: dict[str, Any]) -> str | None:
    """The ``user`` message the model read for an ``env_observation`` that upstream's ``convertToLlm`` puts in
    its context (a branch summary; an extension message, whatever its ``display``, and a ``!`` shell
    run, each unless ``excludeFromContext``), else None: labels, session names, delivery mirrors,
    injected notes and context-free commands are transcript-only."""
    p = payload(ev)
    src = p.get("source")
    if not isinstance(src, str):
        return None
    obs = p.get("observation") if isinstance(p.get("observation"), dict) else {}
    if src.startswith("openclaw.custom_message:"):
        return _extension_text(obs)
    if src == "openclaw.bash_execution":
        return None if obs.get("excludeFromContext") else bash_text(obs)
    if src == "openclaw.branch_summary" and obs.get("summary"):
        return BRANCH_SUMMARY_PREFIX + _text(obs["summary"]) + BRANCH_SUMMARY_SUFFIX
    return None


def transcript_tree(events: list[dict[str, Any]]) -> tuple[list[int], list[list[int]]]:
    """The transcript's tree over a run's events, by position: each node's parent (``len(events)``
    for a root) and the children of each (the roots last), in file order.

    An assistant row's calls, output and error (ids ``<action id>.<k>``) are part of its action, not
    nodes. A tool result follows the result of the same action before it, else the action: the
    writer chains a turn's results, the trace parents each to its call."""
    n = len(events)
    pos: dict[str, int] = {}
    up = [n] * n
    kids: list[list[int]] = [[] for _ in range(n + 1)]
    owner: dict[int, int] = {}  # a part's action
    last_result: dict[int, int] = {}  # an action's latest result so far
    for i, ev in enumerate(events):
        eid, pid = str(ev.get("event_id")), ev.get("parent_event_id")
        pos[eid] = i
        p = pos.get(pid) if isinstance(pid, str) else None
        if p is not None and eid.startswith(pid + "."):
            owner[i] = owner.get(p, p)
            continue
        if p is not None and p in owner:
            action = p = owner[p]
            if ev.get("event_type") == "worker_tool_result":
                p, last_result[action] = last_result.get(action, action), i
        up[i] = n if p is None else p
        kids[up[i]].append(i)
    return up, kids
