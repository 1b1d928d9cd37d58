"""Pure helpers for OpenClaw message content: content blocks, usage and cost, tool arguments.

Content is a string or a list of blocks (``text``, ``thinking``, ``toolCall``, ``image``). Image
data is never copied into traces: an image becomes a placeholder with its media type, size and
a short content hash. Encrypted reasoning (``thinkingSignature``) is dropped. These run once per
row on the import's hot path, so they avoid per-call allocations where they can.
"""

from __future__ import annotations

import hashlib
import operator
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson


def image_placeholder(block: dict[str, Any]) -> dict[str, Any]:
    """An image block without its data: media type, approximate bytes, sha256 prefix."""
    data = block.get("data")
    out: dict[str, Any] = {"type": "image", "mimeType": block.get("mimeType") or block.get("mediaType")}
    if isinstance(data, str):
        out["bytes"] = len(data) * 3 // 4
        out["sha256"] = hashlib.sha256(data.encode("utf-8", "replace")).hexdigest()[:16]
    elif isinstance(block.get("url"), str):
        out["url"] = block["url"]
    return out


_NONE: tuple[Any, ...] = ()
# ``SessionMapper.wrong(field, kind, why)``: a value of the wrong type, counted as drift ``<field>:<kind>`` and
# listed as ``file:line: field: why``; without one (tests, other callers) it is only counted
Wrong = Callable[[str, str, str], None] | None


def _wrong(drift: Counter[str], wrong: Wrong, field: str, kind: str, why: str) -> None:
    if wrong is not None:
        wrong(field, kind, why)
    else:
        drift[f"{field}:{kind}"] += 1


def _text_block(b: dict[str, Any], i: int, drift: Counter[str], where: str, wrong: Wrong) -> str | None:
    """The text of a text block whose ``text`` is no string: a number as its text (kept), else None (the
    block goes to the other blocks, kept whole); either way counted and listed."""
    t = b.get("text")
    if type(t) is int or type(t) is float:
        _wrong(drift, wrong, f"{where}.content.text", "number_as_text", f"content[{i}].text is the number {t!r}: "
               "kept as its text")
        return str(t)
    _wrong(drift, wrong, f"{where}.content.text", "not_a_string", f"content[{i}].text is {t!r}, not a string: "
           "the block is kept whole under other_content, with no text")
    return None


def split_content(content: Any, drift: Counter[str], where: str,
                  wrong: Wrong = None) -> tuple[str, str, Any, Any, Any]:
    """Split message content into (text, thinking, tool calls, images, other blocks).

    Parts that are absent are empty strings / empty tuples (no allocation on the common path);
    unknown block types are kept in ``other`` and counted as drift, and so is null content and a text
    block whose text is no string (a number is kept as its text; see ``Wrong``).
    """
    if type(content) is str:
        return content, "", _NONE, _NONE, _NONE
    if content is None:
        _wrong(drift, wrong, f"{where}.content", "null", "null or missing: the message has no content")
        return "", "", _NONE, _NONE, _NONE
    if type(content) is not list:
        _wrong(drift, wrong, f"{where}.content", "not_a_list", f"{content!r:.80} is no string or list of blocks: "
               "kept as its text")
        return str(content), "", _NONE, _NONE, _NONE
    if len(content) == 1:  # the common case: one text block
        b = content[0]
        if type(b) is dict and b.get("type") == "text":
            t = b.get("text")
            if type(t) is str:
                return t, "", _NONE, _NONE, _NONE
    text = thinking = ""
    calls: Any = _NONE
    images: Any = _NONE
    other: Any = _NONE
    for i, b in enumerate(content):
        kind = b.get("type") if type(b) is dict else None
        if kind == "text":
            t = b.get("text")
            if type(t) is not str:
                t = _text_block(b, i, drift, where, wrong)
                if t is None:
                    other = [b] if other is _NONE else other + [b]
                    continue
            text = f"{text}\n{t}" if text else t
        elif kind == "toolCall":
            calls = [b] if calls is _NONE else calls + [b]
        elif kind == "thinking":
            t = b.get("thinking")
            if type(t) is str and t:
                thinking = f"{thinking}\n{t}" if thinking else t
        elif kind == "image":
            images = [image_placeholder(b)] if images is _NONE else images + [image_placeholder(b)]
        elif type(b) is str:
            text = f"{text}\n{b}" if text else b
        else:
            drift[f"{where}.content:{kind if type(b) is dict else 'non_object_block'}"] += 1
            other = [b] if other is _NONE else other + [b]
    return text, thinking, calls, images, other


def tool_args(value: Any) -> dict[str, Any]:
    """Tool-call arguments as an object (JSON strings parsed, anything else wrapped)."""
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {"_raw": value}
        return parsed if isinstance(parsed, dict) else {"_raw": parsed}
    return {"_raw": value}


MAX_TOKENS = 2**32  # per call and field: larger counts are corrupt (and would overflow int64 sums)


def _num(value: Any, field: str = "", wrong: Wrong = None) -> float:
    t = type(value)
    if (t is int or t is float) and 0 < value <= MAX_TOKENS:
        return value
    if wrong is not None and value is not None and value != 0:  # 0 and absent lose nothing
        wrong(f"message.assistant.usage.{field}", "invalid", f"{value!r:.80} is no count in 0..{MAX_TOKENS}: read as 0")
    return 0


# The fields of an OpenClaw usage (pi-ai's ``Usage``: all always written), read in one C call.
_USAGE_FIELDS = operator.itemgetter("input", "output", "cacheRead", "cacheWrite", "cost")


def usage_of(usage: Any, wrong: Wrong = None) -> tuple[int, int, float]:
    """(input tokens incl. cache reads/writes, output tokens, cost in USD) of an OpenClaw usage; a value
    that is no count (or cost) is read as 0, and given ``wrong``, counted and listed (see ``Wrong``)."""
    if type(usage) is not dict:
        if usage is not None and wrong is not None:
            wrong("message.assistant.usage", "not_an_object", f"{usage!r:.80} is no object: no tokens, no cost")
        return 0, 0, 0.0
    try:
        inp, out, cr, cw, cost = _USAGE_FIELDS(usage)  # once per model turn: one call, not five gets
    except KeyError:
        g = usage.get
        inp, out, cr, cw, cost = g("input"), g("output"), g("cacheRead", 0), g("cacheWrite", 0), g("cost")
    if (type(inp) is int and type(out) is int and type(cr) is int and type(cw) is int
            and (inp | out | cr | cw) >= 0 and inp + out + cr + cw <= MAX_TOKENS):  # the common case
        tokens_in, tokens_out = inp + cr + cw, out
    else:
        inp, out, cr, cw = (_num(inp, "input", wrong), _num(out, "output", wrong), _num(cr, "cacheRead", wrong),
                            _num(cw, "cacheWrite", wrong))
        tokens_in, tokens_out = int(inp + cr + cw), int(out)
    if type(cost) is dict:
        total = cost.get("total")
        if type(total) is float and not total < 0:  # the common case
            return tokens_in, tokens_out, total
        total = _num(total, "cost.total", wrong) if total is not None else sum(_num(v) for v in cost.values())
    else:
        total = _num(cost, "cost", wrong)
    return tokens_in, tokens_out, float(total)
