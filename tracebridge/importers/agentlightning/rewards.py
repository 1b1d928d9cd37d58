"""A span's reward, read as Agent Lightning's ``get_reward_value`` reads it (``emit_reward``'s
``agentlightning.reward.N``, the deprecated AgentOps ``@reward`` output, an 0.2 annotation's
``reward``), and the reward attributes that hold no finite number, as problem lines."""

from __future__ import annotations

import math
from typing import Any

from tracebridge.importers.agentlightning.llm_calls import maybe_json, unflatten
from tracebridge.importers.agentlightning.semconv import Problems, preview

ANNOTATION = "agentlightning.annotation"
_AGENTOPS_OUTPUT = ("agentops.task.output", "agentops.entity.output")  # the deprecated ``@reward`` decorator


def _number(v: Any) -> bool:
    """A reward value: a finite number (not a bool: ``True`` is no score, NaN or inf no training signal)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def reward_problems(name: str, attrs: dict[str, Any]) -> Problems:
    """The reward attributes of a span whose value is no finite number (a string, a bool, NaN, inf, an
    object), as (attribute, reason): ``reward_of`` leaves them out. The AgentOps decorator's ``null``
    (no reward) is none."""
    out: Problems = []
    dims = unflatten(attrs, "agentlightning.reward")
    for i, d in enumerate(dims if isinstance(dims, list) else [] if dims is None else [dims]):
        value = d.get("value") if isinstance(d, dict) else d
        if not _number(value):
            out.append((f"agentlightning.reward.{i}.value", f"not a finite number: {preview(value)}"))
    for key in _AGENTOPS_OUTPUT:
        output = maybe_json(attrs.get(key))
        if isinstance(output, dict) and output.get("type") == "reward" and output.get("value") is not None \
                and not _number(output["value"]):
            out.append((key, f"value not a finite number: {preview(output['value'])}"))
    legacy = attrs.get("reward") if name == ANNOTATION else None
    if legacy is not None and not _number(legacy):
        out.append(("reward", f"not a finite number: {preview(legacy)}"))
    return out


def reward_of(name: str, attrs: dict[str, Any]) -> tuple[float, dict[str, float]] | None:
    """(primary reward, all dimensions) of a span, read as Agent Lightning's ``get_reward_value`` reads it:
    ``agentlightning.reward.N.{name, value}`` (``emit_reward``; the first is the primary), else an AgentOps
    output ``{"type": "reward", "value": v}``, else an annotation's ``reward`` attribute (0.2); None when
    the span holds no numeric reward."""
    dims = unflatten(attrs, "agentlightning.reward")
    if isinstance(dims, list) and dims and isinstance(dims[0], dict):
        values = {str(d.get("name", i)): float(d["value"]) for i, d in enumerate(dims)
                  if isinstance(d, dict) and _number(d.get("value"))}
        first = dims[0].get("value")
        return (float(first), values) if _number(first) else None
    for key in _AGENTOPS_OUTPUT:
        out = maybe_json(attrs.get(key))
        if isinstance(out, dict) and out.get("type") == "reward":
            return (float(out["value"]), {"primary": float(out["value"])}) if _number(out.get("value")) else None
    legacy = attrs.get("reward") if name == ANNOTATION else None
    return (float(legacy), {"primary": float(legacy)}) if _number(legacy) else None
