"""Model-call spans → the ``llm`` block of a ``worker_action`` (pure), and the attribute helpers.

A model call's span holds the request and reply as flattened ``gen_ai.*`` attributes:
``gen_ai.prompt.N.{role, content, tool_calls.M.{id, name, arguments}, tool_call_id}``,
``gen_ai.completion.N.{role, content, finish_reason}``, ``gen_ai.request.{model, ...}``,
``gen_ai.request.functions.K.{name, description, parameters}`` (the tools offered; ``parameters`` a JSON
string; OpenLLMetry and LiteLLM write ``llm.request.functions.K.*``) and
``gen_ai.usage.{prompt_tokens, completion_tokens}`` (or ``input_tokens``/``output_tokens``).

Two instrumentations write them, and both shapes are read. AgentOps (what Agent Lightning's
``AgentOpsTracer`` installs; agentops 0.4.21) writes the request and reply as ``gen_ai.prompt.N.*`` /
``gen_ai.completion.N.*`` but each tool call of the reply as a child span ``tool_call.<name>``
(``tool.name``, ``tool.parameters``, ``tool.call.id``): that is part of the model call (kind
``llm_tool_call``), not a tool that ran. OpenLLMetry (``opentelemetry-instrumentation-openai``,
older agentops) writes them as ``gen_ai.completion.N.tool_calls.M.*``. A prompt message the
instrumentation could not read (an OpenAI message object appended to the conversation as is, which
agentops skips) is taken from the previous call's prompt and reply when the prompt continues that
conversation, else recorded as ``null``.

The tools offered are kept in OpenAI's ``tools`` format (``llm.tools``, each ``parameters`` in its recorded
key order; their hash is ``llm.toolset_hash``) when every schema could be read; the arguments of tool
calls stay the strings the model returned (rows keep their bytes).
"""

from __future__ import annotations

from typing import Any

import orjson

from tracebridge.importers.openclaw.content import MAX_TOKENS
from tracebridge.schema.canonical import canonical_json, sha256_json

MAX_GAP = 64  # how far past its records a numbered list may run (its gaps None)

def unflatten(attrs: dict[str, Any], prefix: str) -> Any:
    """Nested dict/list of the attributes under ``prefix.`` (numeric keys become list indices)."""
    tree = _tree(attrs, prefix)
    return _listify(tree) if tree else None


def numbered(attrs: dict[str, Any], prefix: str) -> list[Any]:
    """The records ``prefix.N.*`` as a list indexed by N: None where an N is missing (a gap is kept, not
    closed up), keys that are no number (``gen_ai.prompt.prompt_filter_results``) left out. The list
    ends at (records found + ``MAX_GAP``): an index of 10**12 must not build a list that long."""
    tree = _tree(attrs, prefix)
    found = {int(k): _listify(v) for k, v in tree.items() if k.isdigit()}
    return [found.get(i) for i in range(min(max(found) + 1, len(found) + MAX_GAP))] if found else []


def _tree(attrs: dict[str, Any], prefix: str) -> dict[str, Any]:
    cut = len(prefix) + 1
    tree: dict[str, Any] = {}
    for key in sorted(k for k in attrs if k.startswith(prefix + ".")):
        node = tree
        parts = key[cut:].split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = attrs[key]
    return tree


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def maybe_json(value: Any) -> Any:
    """A string that holds a JSON object or list, decoded; anything else as it is."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _amount(value: Any, limit: float) -> float:
    """A usage attribute (tokens, cost) as a number in [0, limit]; 0 for anything else (a string, a
    list, NaN, a negative or absurd value), which would otherwise fail the whole rollout."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= limit:
        return 0
    return value


def llm_block(span: dict[str, Any], attrs: dict[str, Any], requests: list[dict[str, Any]],
               conv: list[Any]) -> tuple[dict[str, Any], str, list[Any]]:
    """The ``llm`` block of a model-call span; ``requests`` are its agentops ``tool_call.*`` child spans,
    ``conv`` the previous call's prompt + reply."""
    prompt = _prompt(attrs, conv)
    completion = numbered(attrs, "gen_ai.completion")
    request = unflatten(attrs, "gen_ai.request") or {}
    request = request if isinstance(request, dict) else {}
    model = str(request.get("model") or attrs.get("gen_ai.response.model") or "unknown")
    params = {k: v for k, v in request.items() if k not in ("model", "functions", "messages")}
    offered = offered_tools(numbered(attrs, "gen_ai.request.functions") or numbered(attrs, "llm.request.functions"))
    first = completion[0] if completion and isinstance(completion[0], dict) else {}
    response = first.get("content") if isinstance(first.get("content"), str) else None
    block = {"model": model, "rendered_prompt": canonical_json(prompt).decode(), "prompt_hash": sha256_json(prompt),
             "config_hash": sha256_json({"model": model, "params": params}), "params": params,
             "response": response, "usage": _usage(span, attrs)}
    if offered:
        block["toolset_hash"] = sha256_json(offered)
        if all(isinstance(t["function"].get("parameters", {}), dict) for t in offered):
            block["tools"] = offered  # not a schema cut short (an attribute length limit): rows would learn it
    calls = completion_calls(first) or completion_calls({"tool_calls": [
        {"id": a.get("tool.call.id"), "name": a.get("tool.name"), "arguments": a.get("tool.parameters")}
        for a in (r.get("attributes") or {} for r in requests)]})
    if calls:
        block["tool_calls"] = calls
    return block, model, prompt


def _usage(span: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    ins = attrs.get("gen_ai.usage.prompt_tokens", attrs.get("gen_ai.usage.input_tokens", 0))
    outs = attrs.get("gen_ai.usage.completion_tokens", attrs.get("gen_ai.usage.output_tokens", 0))
    start, end = span.get("start_time"), span.get("end_time")
    latency = max(0.0, (end - start) * 1000.0) if isinstance(start, (int, float)) and isinstance(end, (int, float)) else 0.0
    return {"input_tokens": int(_amount(ins, MAX_TOKENS)), "output_tokens": int(_amount(outs, MAX_TOKENS)),
            "cost_usd": float(_amount(attrs.get("gen_ai.usage.cost"), MAX_TOKENS)), "latency_ms": latency}


def _prompt(attrs: dict[str, Any], conv: list[Any]) -> list[Any]:
    """The ``gen_ai.prompt.N`` messages; a missing N is taken from ``conv`` (the previous call's prompt
    + reply) when the prompt so far is that conversation, else left None."""
    prompt = [_decoded(m) for m in numbered(attrs, "gen_ai.prompt")]
    for i, m in enumerate(prompt):
        if m is None and i < len(conv) and prompt[:i] == conv[:i]:
            prompt[i] = conv[i]
    return prompt


def _decoded(message: Any) -> Any:
    """agentops writes a list of content parts as a JSON string: the list again, as the call sent it."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str) and content.startswith("[{"):
        parts = maybe_json(content)
        if isinstance(parts, list) and all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in parts):
            return {**message, "content": parts}
    return message


def offered_tools(functions: Any) -> list[dict[str, Any]]:
    """The tools a call offered (``gen_ai.request.functions.K.{name, description, parameters}``) in OpenAI's
    ``tools`` format, so the hash of a call's toolset is that of the ``tools`` list the agent passed.
    ``parameters`` is decoded keeping its key order (the order the model saw the properties in)."""
    out = []
    for f in functions if isinstance(functions, list) else []:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            continue
        fn: dict[str, Any] = {"name": f["name"]}
        if f.get("description") is not None:
            fn["description"] = f["description"]
        params = maybe_json(f.get("parameters"))
        if params is not None and params != "null":
            fn["parameters"] = params
        out.append({"type": "function", "function": fn})
    return out


def completion_calls(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of a ``gen_ai.completion.N`` record as ``{id, name, arguments}`` (arguments as
    recorded: the string the model returned, so rows can keep its bytes; ``{}`` when absent); calls
    without a name are left out."""
    out = []
    for i, c in enumerate(completion.get("tool_calls") or []):
        fn = c.get("function") if isinstance(c, dict) and isinstance(c.get("function"), dict) else c
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            continue
        args = fn.get("arguments")
        out.append({"id": str(c.get("id") or f"call_{i}"), "name": fn["name"], "arguments": {} if args is None else args})
    return out
