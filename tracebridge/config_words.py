"""What a config key takes, in words: the type a schema declares at a dotted key, and a value of
the wrong type named with what the key expects and an example (``seeds=a: expected a list of
integers, e.g. seeds=[0,1]``). Used by ``tracebridge.config`` when a merge refuses a value."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any

import yaml
from omegaconf import OmegaConf

# A scalar type's words: (one value, many values, an example value, an example list).
_SCALAR_WORDS: dict[Any, tuple[str, str, str, str]] = {
    int: ("an integer", "integers", "3", "[0,1]"),
    float: ("a number", "numbers", "0.5", "[0.1,0.5]"),
    str: ("a string", "strings", "text", "[a,b]"),
    bool: ("true or false", "true/false values", "true", "[true,false]"),
}


def declared_type(schema: Any, parts: list[str]) -> Any:
    """The type the schema declares at the dotted path ``parts`` (None where it cannot be told)."""
    tp = schema
    for part in parts:
        tp, _ = strip_optional(tp)
        if dataclasses.is_dataclass(tp):
            try:
                hints = typing.get_type_hints(tp)
            # why: a hint that cannot be resolved only costs the plain wording; OmegaConf's stays
            except Exception:  # noqa: BLE001  # pragma: no cover
                return None
            tp = hints.get(part)
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) in (list, tuple) and part.isdigit() and typing.get_args(tp):
            tp = typing.get_args(tp)[0]  # an item of the list (seeds.0)
        else:
            return None
    return tp


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """``Optional[X]`` → ``(X, True)``; any other type → ``(type, False)``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def key_words(tp: Any, key: str) -> tuple[str, str] | None:
    """What a key of type ``tp`` takes, in words, and an example ``key=value``; None for ``Any``."""
    tp, optional = strip_optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    words: tuple[str, str] | None = None
    if tp in _SCALAR_WORDS:
        words = (_SCALAR_WORDS[tp][0], f"{key}={_SCALAR_WORDS[tp][2]}")
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        names = [m.name for m in tp]
        words = (f"one of {', '.join(names)}", f"{key}={names[0]}")
    elif origin in (list, tuple) and args and args[0] in _SCALAR_WORDS:
        words = (f"a list of {_SCALAR_WORDS[args[0]][1]}", f"{key}={_SCALAR_WORDS[args[0]][3]}")
    elif origin in (list, tuple):
        words = ("a list", f"{key}=[...]")
    elif origin is dict and args:
        inner = key_words(args[1], f"{key}.NAME")
        words = (f"a mapping of names to values ({inner[0]} each)" if inner else "a mapping of names to values",
                 inner[1] if inner else f"{key}.NAME=value")
    elif dataclasses.is_dataclass(tp):
        fields = [f.name for f in dataclasses.fields(tp)]
        first = key_words(declared_type(tp, fields[:1]), f"{key}.{fields[0]}") if fields else None
        words = (f"a group of keys ({', '.join(fields)})", first[1] if first else f"{key}.KEY=value")
    if words and optional:
        return f"{words[0]} or null", words[1]
    return words


def value_at(layer: Any, parts: list[str]) -> tuple[bool, Any]:
    """The value a one-key layer holds at ``parts``: ``(found, value)``."""
    node: Any = OmegaConf.to_container(layer)
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def value_text(value: Any) -> str:
    """A value as it would be typed after ``key=``: ``zero``, ``5``, ``[a, b]``, ``null``."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip()


def type_problem(schema: Any, what: str, exc: Exception, layer: Any) -> str | None:
    """A value of the wrong type (a scalar for a list, text for an integer, ...) in plain words:
    ``key=value: expected a list of integers, e.g. seeds=[0,1]``; None where the key's type is unknown.

    The key is the deepest one OmegaConf blamed that the layer sets (a list is named whole)."""
    blamed = str(getattr(exc, "full_key", None) or "").split("[", 1)[0] or what.split("=", 1)[0]
    parts = blamed.split(".")
    if any(p.isdigit() for p in parts):
        parts = parts[:next(i for i, p in enumerate(parts) if p.isdigit())]
    # OmegaConf may blame the block (``train``) for one key inside it (``train: {lora: 5}``): go down to it
    found, value = value_at(layer, parts)
    while found and isinstance(value, dict) and len(value) == 1:
        parts.append(str(next(iter(value))))
        found, value = value_at(layer, parts)
    for n in range(len(parts), 0, -1):
        found, value = value_at(layer, parts[:n])
        key = ".".join(parts[:n])
        words = key_words(declared_type(schema, parts[:n]), key) if found else None
        if words:
            shown = value_text(value)
            # YAML reads {a:1} (no space) as the key "a:1" with no value
            colon = "; in {a: 1} put a space after each colon" if "': null" in shown or ":" in key else ""
            return f"{key}={shown}: expected {words[0]}, e.g. {words[1]}{colon}"
    return None


def bool_problems(schema: Any, layer: Any) -> list[str]:
    """``key=N: expected true or false`` for each true/false key of ``schema`` that ``layer`` gives a whole number
    other than 0 or 1: OmegaConf reads any as true, so ``train.packing=2`` (or a sweep's ``[1, 2]`` ablation,
    two trials alike) passed without a word."""
    out: list[str] = []

    def walk(node: Any, parts: list[str]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*parts, str(k)])
        elif isinstance(node, int) and not isinstance(node, bool) and node not in (0, 1) \
                and strip_optional(declared_type(schema, parts))[0] is bool:
            out.append(f"{'.'.join(parts)}={node}: expected true or false, e.g. {'.'.join(parts)}=true")

    walk(OmegaConf.to_container(layer, resolve=False), [])
    return out
