"""Model-call spans → the ``llm`` block of a ``worker_action`` (pure), and the attribute helpers.

A model call's span holds the request and reply as flattened ``gen_ai.*`` attributes:
``gen_ai.prompt.N.{role, content, tool_calls.M.{id, name, arguments}, tool_call_id}``,
``gen_ai.completion.N.{role, content, finish_reason}``, ``gen_ai.request.{model, ...}``,
``gen_ai.request.functions.K.{name, description, parameters}`` (the tools offered; ``parameters`` a JSON
string; OpenLLMetry and LiteLLM write ``llm.request.functions.K.*``) and
``gen_ai.usage.{prompt_tokens, completion_tokens}`` (or ``input_tokens``/``output_tokens``).

LiteLLM's OpenTelemetry callback (what Agent Lightning's LLM proxy records, span ``litellm_request``) and
instrumentations that follow the newer GenAI semantic conventions write the messages as JSON instead:
``gen_ai.input.messages`` / ``gen_ai.output.messages`` (each message ``{role, parts: [{type: text, content}
| {type: tool_call, id, name, arguments} | {type: tool_call_response, id, response}], finish_reason}``,
LiteLLM adding OpenAI's ``tool_calls`` and ``tool_call_id``) and ``gen_ai.system_instructions``; LiteLLM
writes the reply's tool calls as ``gen_ai.completion.K.function_call.{name, arguments}`` (no id: ``call_K``,
until ``spans`` gives them the ids a later prompt shows for them). They are read where the flattened
``gen_ai.prompt.N`` / ``gen_ai.completion.N`` records are absent, and turned into the same OpenAI chat
messages.

Two instrumentations write the flattened shape, and both are read. AgentOps (what Agent Lightning's
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

import ast
from typing import Any

import orjson

from tracebridge.importers.agentlightning.semconv import Problems, _note, preview, semconv_messages
from tracebridge.importers.openclaw.content import MAX_TOKENS
from tracebridge.schema.canonical import canonical_json, sha256_json

MAX_GAP = 64  # how far past its records a numbered list may run (its gaps None)
MAX_TOKEN_IDS = 1 << 21  # ids per list: more than any model's context (a corrupt record)
MAX_TOKEN_ID = 1 << 32  # ids are vocabulary indices: beyond it (or negative) the record is corrupt
_OP_IN, _OP_OUT = "agentlightning.operation.input", "agentlightning.operation.output"  # a weave call's

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
              conv: list[Any], problems: Problems | None = None
              ) -> tuple[dict[str, Any], str, list[Any], list[str]]:
    """The ``llm`` block of a model-call span, its model, its prompt and the ids of its reply's tool calls
    that the span did not record (``call_K``, made up: LiteLLM records none); ``requests`` are its agentops
    ``tool_call.*`` child spans, ``conv`` the previous call's prompt + reply; what could not be read is added
    to ``problems``."""
    prompt = _prompt(attrs, conv, problems)
    completion = _completion(attrs, problems)
    request = unflatten(attrs, "gen_ai.request") or {}
    request = request if isinstance(request, dict) else {}
    model = str(request.get("model") or attrs.get("gen_ai.response.model") or "unknown")
    params = {k: v for k, v in request.items() if k not in ("model", "functions", "messages")}
    offered = offered_tools(numbered(attrs, "gen_ai.request.functions") or numbered(attrs, "llm.request.functions"))
    first = completion[0] if completion and isinstance(completion[0], dict) else {}
    response = _reply_text(first.get("content"))
    block = {"model": model, "rendered_prompt": canonical_json(prompt).decode(), "prompt_hash": sha256_json(prompt),
             "config_hash": sha256_json({"model": model, "params": params}), "params": params,
             "response": response, "usage": _usage(span, attrs)}
    if offered:
        block["toolset_hash"] = sha256_json(offered)
        if all(isinstance(t["function"].get("parameters", {}), dict) for t in offered):
            block["tools"] = offered  # not a schema cut short (an attribute length limit): rows would learn it
    made_up: list[str] = []
    calls = completion_calls(first, made_up) or completion_calls({"tool_calls": [
        {"id": a.get("tool.call.id"), "name": a.get("tool.name"), "arguments": a.get("tool.parameters")}
        for a in (r.get("attributes") or {} for r in requests)]}, made_up)
    if calls:
        block["tool_calls"] = calls
    return block, model, prompt, made_up


def _reply_text(content: Any) -> str | None:
    """The reply's text: a string, or the text parts of a list of them joined; None for anything else."""
    if isinstance(content, list) and content and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text") or "") for p in content)
    return content if isinstance(content, str) else None


def token_ids(attrs: dict[str, Any], problems: Problems | None = None) -> dict[str, list[int]]:
    """The token ids a call's spans recorded, where Agent Lightning's adapters look for them: its own
    instrumentation's ``prompt_token_ids`` / ``response_token_ids`` (from a vLLM reply), the weave tracer's
    ``agentlightning.operation.output.*``, and LiteLLM's provider payload (``raw_gen_ai_request``:
    ``llm.<provider>.prompt_token_ids``, ``.response_token_ids`` or ``.choices``, Python reprs). A value
    that is not a list of at most ``MAX_TOKEN_IDS`` integers in [0, ``MAX_TOKEN_ID``) is left out and added
    to ``problems``: ids that are not the call's would train on text it never saw."""
    raw = sorted(k for k in attrs if k.startswith("llm.") and k.count(".") == 2)
    found = {"prompt_token_ids": ["prompt_token_ids", f"{_OP_OUT}.prompt_token_ids",
                                  *(k for k in raw if k.endswith(".prompt_token_ids"))],
             "response_token_ids": ["response_token_ids", f"{_OP_OUT}.response_token_ids.0",
                                    f"{_OP_OUT}.choices.0.token_ids",
                                    f"{_OP_OUT}.choices.0.provider_specific_fields.token_ids",
                                    *(k for k in raw if k.endswith((".response_token_ids", ".choices")))]}
    out = {}
    for name, keys in found.items():
        for key in keys:
            value = _first_choice_ids(attrs.get(key)) if key.startswith("llm.") and key.endswith(".choices") \
                else attrs.get(key)
            if value is None:
                continue
            ids = _ids(value)
            if ids is None:
                _note(problems, key, f"not a list of at most {MAX_TOKEN_IDS} token ids (integers in "
                                     f"[0, {MAX_TOKEN_ID})): {preview(value)}")
            elif name not in out:
                out[name] = ids
    return out


def _literal(value: Any) -> Any:
    """A JSON or Python-literal string decoded (LiteLLM writes lists as their ``str``); else as it is."""
    value = maybe_json(value)
    if isinstance(value, str) and value[:1] == "[":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
    return value


def _ids(value: Any) -> list[int] | None:
    """A list of token ids (the first of a list of lists: one per choice), else None."""
    value = _literal(value)
    if isinstance(value, list) and value and isinstance(value[0], list):
        value = value[0]
    ok = isinstance(value, list) and 0 < len(value) <= MAX_TOKEN_IDS and all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < MAX_TOKEN_ID for i in value)
    return value if ok else None


def _first_choice_ids(choices: Any) -> Any:
    choices = _literal(choices)
    first = choices[0] if isinstance(choices, list) and choices else None
    return first.get("token_ids") if isinstance(first, dict) else None


def _usage(span: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    ins = attrs.get("gen_ai.usage.prompt_tokens", attrs.get("gen_ai.usage.input_tokens", 0))
    outs = attrs.get("gen_ai.usage.completion_tokens", attrs.get("gen_ai.usage.output_tokens", 0))
    start, end = span.get("start_time"), span.get("end_time")
    latency = max(0.0, (end - start) * 1000.0) if isinstance(start, (int, float)) and isinstance(end, (int, float)) else 0.0
    return {"input_tokens": int(_amount(ins, MAX_TOKENS)), "output_tokens": int(_amount(outs, MAX_TOKENS)),
            "cost_usd": float(_amount(attrs.get("gen_ai.usage.cost"), MAX_TOKENS)), "latency_ms": latency}


def weave_llm_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a model call that Agent Lightning's weave tracer recorded (the client call's input
    and output, flattened: ``agentlightning.operation.input.{messages, tools, model, ...}`` and
    ``agentlightning.operation.output.{id, model, choices, usage}``) with the ``gen_ai.*`` records they hold
    added, so the call reads like any other; the weave tracer writes None as ``"null"``, left out."""
    out = dict(attrs)
    for key, value in attrs.items():
        if value == "null" or not key.startswith((_OP_IN + ".", _OP_OUT + ".")):
            continue
        rest = key.split(".", 3)[3]
        head, _, tail = rest.partition(".")
        if key.startswith(_OP_IN + "."):
            new = {"messages": f"gen_ai.prompt.{tail}",
                   "tools": f"gen_ai.request.functions.{tail.replace('.function.', '.', 1)}"}.get(
                head, f"gen_ai.request.{rest}")
        elif head == "choices":
            new = f"gen_ai.completion.{tail.replace('.message.', '.', 1)}"
        elif head in ("id", "model", "usage"):
            new = f"gen_ai.usage.{tail}" if head == "usage" else f"gen_ai.response.{head}"
        else:
            continue
        out.setdefault(new, value)
    return out


def prompt_messages(attrs: dict[str, Any], problems: Problems | None = None) -> list[Any]:
    """The call's prompt as recorded: the ``gen_ai.prompt.N`` messages (which win: the JSON attributes are
    then not read), else ``gen_ai.system_instructions`` + ``gen_ai.input.messages`` as OpenAI chat messages
    (None for a record that could not be read, with the reason added to ``problems``)."""
    flat = [_decoded(m) for m in numbered(attrs, "gen_ai.prompt")]
    if flat:
        return flat
    key = "gen_ai.system_instructions"
    system = maybe_json(attrs.get(key))
    if isinstance(system, list) and all(isinstance(p, dict) and "role" not in p for p in system):
        system = [{"role": "system", "parts": system}]  # the conventions' shape: a list of parts
    head = ([{"role": "system", "content": system}] if isinstance(system, str) and system else
            semconv_messages(system, key, problems) if isinstance(system, list) else [])
    if system is not None and not isinstance(system, (str, list)):
        _note(problems, key, f"neither text nor a JSON list of parts or messages: {preview(system)}")
        head = [None]
    return [*head, *_json_messages(attrs, "gen_ai.input.messages", problems)]


def _json_messages(attrs: dict[str, Any], key: str, problems: Problems | None) -> list[Any]:
    """The JSON messages attribute ``key`` as OpenAI chat messages; ``[None]`` (a message that could not be
    read: the call gives no row) when it is present but no JSON list, such as a value cut short."""
    raw = attrs.get(key)
    if raw is None:
        return []
    value = maybe_json(raw)
    if isinstance(value, list):
        return semconv_messages(value, key, problems)
    why = "not a JSON list"
    if isinstance(raw, str) and raw[:1] in "{[" and value is raw:
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            why = f"not valid JSON ({exc}; {len(raw)} characters: cut short?)"
    _note(problems, key, f"{why}: {preview(raw)}")
    return [None]


def _completion(attrs: dict[str, Any], problems: Problems | None = None) -> list[Any]:
    """The reply records ``gen_ai.completion.N`` (with LiteLLM's ``function_call`` records as the first
    record's tool calls), else ``gen_ai.output.messages``."""
    completion = numbered(attrs, "gen_ai.completion")
    first = completion[0] if completion and isinstance(completion[0], dict) else {}
    calls = [{"id": None, **c["function_call"]} for c in completion
             if isinstance(c, dict) and isinstance(c.get("function_call"), dict)]
    if "content" in first or first.get("tool_calls"):
        return completion
    if calls:  # litellm: the K-th tool call of the reply as ``gen_ai.completion.K.function_call``, no id
        return [{**first, "tool_calls": calls}]
    return _json_messages(attrs, "gen_ai.output.messages", problems) or completion


def reply_of(attrs: dict[str, Any]) -> tuple[str | None, list[tuple[str, Any]]]:
    """A call's reply as recorded on its span: its text, and its tool calls as (name, decoded arguments);
    ids left out (LiteLLM records none). Two spans of one call agree on it."""
    completion = _completion(attrs)
    first = completion[0] if completion and isinstance(completion[0], dict) else {}
    return _reply_text(first.get("content")), [(c["name"], maybe_json(c["arguments"])) for c in completion_calls(first)]


def _prompt(attrs: dict[str, Any], conv: list[Any], problems: Problems | None) -> list[Any]:
    """The prompt messages (``prompt_messages``); a ``gen_ai.prompt.N`` record the instrumentation left out is
    taken from ``conv`` (the previous call's prompt + reply) when the prompt so far is that conversation, else
    left None. A JSON message that could not be read stays None: it was recorded, not left out."""
    prompt = prompt_messages(attrs, problems)
    if not numbered(attrs, "gen_ai.prompt"):
        return prompt
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


def completion_calls(completion: dict[str, Any], made_up: list[str] | None = None) -> list[dict[str, Any]]:
    """The tool calls of a ``gen_ai.completion.N`` record (or a prompt's assistant message) as ``{id, name,
    arguments}`` (arguments as recorded: the string the model returned, so rows can keep its bytes; ``{}``
    when absent); calls without a name are left out, a call without an id gets ``call_K`` (added to
    ``made_up``)."""
    out = []
    for i, c in enumerate(completion.get("tool_calls") or []):
        fn = c.get("function") if isinstance(c, dict) and isinstance(c.get("function"), dict) else c
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            continue
        args = fn.get("arguments")
        cid = str(c.get("id") or f"call_{i}")
        if not c.get("id") and made_up is not None:
            made_up.append(cid)
        out.append({"id": cid, "name": fn["name"], "arguments": {} if args is None else args})
    return out
