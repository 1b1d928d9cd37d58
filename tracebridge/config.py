"""Config machinery shared by every command and job: OmegaConf structured configs.

A config is a dataclass schema (in ``tracebridge/<area>/config.py``) plus a YAML file of values
plus ``key.sub=value`` overrides. Struct mode is on: an unknown key is an error that names the
closest valid key; a value of the wrong type names the type the key takes, with an example. ``seeds.0=5``
sets one item of a list that has it; an index past the end is refused with the whole-list form. After
merging, the dataclass's ``validate()`` (if any) returns every problem at once, with every float key
holding NaN, and they are raised together as one ``ConfigError``.

A YAML file may name one base file with ``_base_: other.yaml`` (relative to itself): one level
of composition, base + named variant, and no more.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from tracebridge.config_words import (
    bool_problems,
    declared_type,
    key_words,
    strip_optional,
    type_problem,
    value_at,
    value_text,
)
from tracebridge.schema.canonical import sha256_json

T = TypeVar("T")


def problem_list(head: str, problems: list[str]) -> str:
    """``head (N problem(s)):`` then one ``  - problem`` line each: how an error listing every problem reads."""
    return "\n".join([f"{head} ({len(problems)} problem(s)):", *(f"  - {p}" for p in problems)])


class ConfigError(ValueError):
    """Every problem of a config, each as ``key=value: what is wrong; how to fix``."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        super().__init__(problem_list(f"invalid config{f' {source}' if source else ''}", problems))


def _flat_keys(cfg: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(cfg, DictConfig):
        for k in cfg:
            key = f"{prefix}{k}"
            out.append(key)
            try:
                child = cfg._get_node(k)  # omegaconf's private API: no public way without resolving
            # why: the keys feed a "did you mean" hint; a node that cannot be read is left out of it
            except Exception:  # noqa: BLE001, S112  # pragma: no cover
                continue
            if isinstance(child, DictConfig):
                out.extend(_flat_keys(child, key + "."))
    return out


def _suggest(bad: str, base: DictConfig) -> str:
    """A "did you mean" hint for the unknown key ``bad``: a key of the same block whose name is close
    (compared name to name: whole paths share their block's prefix, and ``split.bogus`` was close to
    ``split.ratios``), after a key elsewhere of the very name (``salt`` -> ``split.salt``), and before one
    elsewhere whose name is nearly the same."""
    keys = _flat_keys(base)
    parent, _, leaf = bad.rpartition(".")
    anywhere: dict[str, str] = {}
    for k in keys:
        anywhere.setdefault(k.rpartition(".")[2], k)
    if leaf in anywhere:  # the very name, in another block
        return f"; did you mean {anywhere[leaf]!r}?"
    siblings = {k.rpartition(".")[2]: k for k in keys if k.rpartition(".")[0] == parent}
    match = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)
    if match:
        return f"; did you mean {siblings[match[0]]!r}?"
    match = difflib.get_close_matches(leaf, list(anywhere), n=1, cutoff=0.8)
    return f"; did you mean {anywhere[match[0]]!r}?" if match else ""


def _open_maps(cfg: DictConfig) -> None:
    """Lift struct mode from ``dict[str, X]`` fields: their keys are data (named entries), while
    dataclass nodes, including a map's dataclass values, still reject unknown keys."""
    for k in cfg:
        node = cfg._get_node(k)  # omegaconf's private API (as _metadata): no public way without resolving
        if isinstance(node, DictConfig):
            if node._metadata.object_type in (dict, None):
                OmegaConf.set_struct(node, False)
            _open_maps(node)


def _read_mapping(path: Path, named_by: str = "") -> DictConfig:
    """One YAML file that must exist, parse and hold a mapping (``named_by``: who points at it)."""
    if not path.is_file():  # a folder was "no such config file", which sent the user looking for a typo
        raise ConfigError([f"{path}: {'a folder, not a' if path.is_dir() else 'no such'} config file{named_by}"])
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml errors carry line/column (duplicate keys included)
        raise ConfigError([f"{path}: not valid YAML{named_by}: {exc}"]) from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError([f"{path}: top level must be a mapping (key: value lines){named_by}"])
    return cfg


def read_yaml(path: str | Path) -> DictConfig:
    """Load a YAML config, applying its ``_base_`` (one level).

    Raises:
        ConfigError: the file or its base is missing, not YAML or not a mapping; a base with a base.
    """
    path = Path(path)
    cfg = _read_mapping(path)
    base = cfg.pop("_base_", None)
    if base is not None:
        base_cfg = _read_mapping(path.parent / str(base), f" (the _base_ of {path})")
        if "_base_" in base_cfg:
            raise ConfigError([f"{path}: base {base} has its own _base_; one level only"])
        try:
            cfg = OmegaConf.merge(base_cfg, cfg)
        except (OmegaConfBaseException, TypeError) as exc:
            raise ConfigError([f"{path}: cannot merge onto its base {base}: {str(exc).splitlines()[0]}"]) from exc
    return cfg  # type: ignore[return-value]


def _parse_override(o: str) -> tuple[Any, str | None]:
    """``key.sub=value`` as a one-key config layer, or the problem with it (never both)."""
    if "=" not in o or o.startswith("-"):
        return None, f"{o}: overrides are key=value (e.g. train.lr=1e-4), not flags"
    key = o.split("=", 1)[0]
    if any(not part.strip() for part in key.split(".")):
        return None, f"{o}: key {key!r} is empty or has an empty part; write key.sub=value (e.g. train.lr=1e-4)"
    try:
        return OmegaConf.from_dotlist([o]), None
    except (yaml.YAMLError, OmegaConfBaseException) as exc:  # an unclosed [ or {, a bad ${...}
        return None, (f"{o}: the value is not valid YAML ({str(exc).splitlines()[0]}); "
                      "close its brackets or quote it")


def _index_at(schema: Any, merged: DictConfig, key: str) -> int | None:
    """Where the dotted ``key`` indexes a list (``seeds.0``: 1): the first all-digit part whose parent
    the schema declares a list, or that is a list in the config so far; None for a plain key."""
    parts = key.split(".")
    for i in range(1, len(parts)):
        if parts[i].isdigit():
            tp, _ = strip_optional(declared_type(schema, parts[:i]))
            if typing.get_origin(tp) in (list, tuple) or isinstance(_select(merged, parts[:i]), ListConfig):
                return i
    return None


def _select(cfg: DictConfig, parts: list[str]) -> Any:
    """The node at ``parts`` (None where there is none), without resolving interpolations."""
    try:
        return OmegaConf.select(cfg, ".".join(parts), throw_on_missing=False)
    except OmegaConfBaseException:
        return None


def _set_item(schema: Any, merged: DictConfig, what: str, layer: Any, at: int) -> str | None:
    """Apply an index override (``seeds.0=5``) to ``merged`` in place; the problem with it, or None.

    An item that exists is set (its type checked as the list's items are); an index past the end,
    or a list that is null, is refused with the whole-list form (``seeds=[0,5]``)."""
    key = what.split("=", 1)[0]
    parts = key.split(".")
    value = value_at(layer, parts)[1]
    name, idx = ".".join(parts[:at]), int(parts[at])
    current = _select(merged, parts[:at])
    items = OmegaConf.to_container(current) if isinstance(current, ListConfig) else None
    if items is None or idx >= len(items):
        whole = [*(items or []), value] if at == len(parts) - 1 else []
        has = f"has {len(items)} item(s)" if items is not None else "is null"
        shown = "[" + ",".join(value_text(v) for v in whole) + "]" if whole else "[a,b]"
        return (f"{key}={value_text(value)}: {name} {has}, so there is no item {idx} to set; "
                f"set the whole list instead, e.g. {name}={shown}")
    try:
        OmegaConf.update(merged, key, value, merge=True)
    except (OmegaConfBaseException, TypeError) as exc:
        words = key_words(declared_type(schema, parts), key)
        item = key_words(declared_type(schema, parts[:at + 1]), ".".join(parts[:at + 1]))
        why = (f"expected {words[0]}, e.g. {words[1]}" if words else
               f"{'.'.join(parts[:at + 1])} is one item ({item[0]}), not a group of keys; e.g. {item[1]}" if item
               else str(exc).splitlines()[0])
        return f"{key}={value_text(value)}: {why}"
    return None


def load_config(schema: type[T], path: str | Path | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Build a typed config: schema defaults ← YAML ← ``key=value`` overrides.

    Args:
        schema: the dataclass type.
        path: YAML file of values (optional).
        overrides: ``key.sub=value`` strings, applied last.

    Returns:
        An instance of ``schema``.

    Raises:
        ConfigError: listing every problem (unknown keys with a suggestion, bad types,
            the schema's own ``validate()`` findings).
    """
    base = OmegaConf.structured(schema)
    OmegaConf.set_struct(base, True)
    _open_maps(base)
    src = str(path) if path else None
    # each YAML key and each override is merged alone, so every problem is found and named
    layers: list[tuple[str, Any]] = []
    if path is not None:
        yaml_cfg = read_yaml(path)
        layers += [(str(k), OmegaConf.masked_copy(yaml_cfg, [k])) for k in yaml_cfg]
    problems: list[str] = []
    for o in overrides:
        layer, problem = _parse_override(o)
        if problem:
            problems.append(problem)
        else:
            layers.append((o, layer))
    merged = _merged_at_once(schema, base, layers) if not problems else None
    if merged is not None:
        layers = []
    else:
        merged = base
    for what, layer in layers:
        at = _index_at(schema, merged, what.split("=", 1)[0]) if "=" in what else None
        if at is not None:  # seeds.0=5: one item of a list, which a merge cannot set
            problem = _set_item(schema, merged, what, layer, at)
            problems += [problem] if problem else []
            continue
        if bad := bool_problems(schema, layer):  # a whole number for true/false: OmegaConf takes any as true
            problems += bad
            continue
        merged = _merge_layer(schema, merged, what, layer, problems)
    if problems:
        raise ConfigError(problems, src)
    try:
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:  # interpolations are resolved here: ${missing.key}
        raise ConfigError([f"{getattr(exc, 'full_key', None) or '?'}: {str(exc).splitlines()[0]}"], src) from exc
    found = _checked(obj)
    if found:
        raise ConfigError(found, src)
    return obj  # type: ignore[return-value]


def _merged_at_once(schema: type, base: Any, layers: list[tuple[str, Any]]) -> Any:
    """``base`` with every layer merged in one ``OmegaConf.merge`` (the same as merging them one after another, with
    one copy of the config instead of one per layer: 0.77 -> ~0.3 s a recipe of a dozen overrides), or None when a
    layer needs the one-by-one path: a list item (``seeds.0=5``), a whole number for a bool, or any merge error (each
    problem is then found and named layer by layer)."""
    for what, layer in layers:
        key = what.split("=", 1)[0] if "=" in what else ""
        if any(p.isdigit() for p in key.split(".")[1:]) or bool_problems(schema, layer):
            return None
    try:
        return OmegaConf.merge(base, *(layer for _, layer in layers))
    except (OmegaConfBaseException, TypeError, ValueError):
        return None


def _merge_layer(schema: type, merged: Any, what: str, layer: Any, problems: list[str]) -> Any:
    """``merged`` with ``layer`` merged in, or, when that fails, with each key of a block of keys merged
    alone, so that every problem of a YAML block is named: merged whole, the first one (``train.lr: fast``)
    hid the others (a misspelt ``train.max_step`` beside it). Problems are appended to ``problems``."""
    try:
        return OmegaConf.merge(merged, layer)
    except (ConfigKeyError, ConfigAttributeError) as exc:
        key = getattr(exc, "full_key", None) or what
        first = f"{key}: unknown key{_suggest(str(key), merged)}"
    except (OmegaConfBaseException, TypeError) as exc:  # TypeError: a list merged with a mapping
        plain = type_problem(schema, what, exc, layer)
        first = plain or f"{getattr(exc, 'full_key', None) or what}: {str(exc).splitlines()[0]}"
    parts = _split_block(layer) if "=" not in what else []
    if len(parts) < 2:
        problems.append(first)
        return merged
    for part in parts:
        merged = _merge_layer(schema, merged, what, part, problems)
    return merged


def _split_block(layer: Any) -> list[Any]:
    """A one-path YAML layer (``{train: {lr: .., max_steps: ..}}``) as one layer per key of its innermost
    block of two or more keys; ``[]`` when it holds a single value."""
    path: list[str] = []
    node = layer
    while isinstance(node, DictConfig) and len(node) == 1:
        key = next(iter(node))
        path.append(str(key))
        node = node._get_node(key)
    if not isinstance(node, DictConfig) or len(node) < 2:
        return []
    out = []
    for key in node:
        value: Any = OmegaConf.masked_copy(node, [key])
        for name in reversed(path):
            value = OmegaConf.create({name: value})
        out.append(value)
    return out


def _checked(obj: Any) -> list[str]:
    """The problems of a loaded config: its schema's checks, and each float that is not finite (NaN
    passes every range check, no comparison with it being true, and inf every lower bound:
    train.lr=inf trained to a NaN model); a key the checks named keeps their line."""
    check, bad = getattr(obj, "validate", None), _nonfinite_keys(obj)
    try:
        found = list(check() or []) if callable(check) else []
    except (OverflowError, ValueError):  # a check that does arithmetic on inf (int(inf)): the scan names it
        if not bad:
            raise
        found = []
    return found + [f"{k}={v}: {'not a number' if v == 'nan' else 'not finite'}; give a finite number"
                    for k, v in bad if not any(f"{k}={v}" in p for p in found)]


def _nonfinite_keys(value: Any, key: str = "") -> list[tuple[str, str]]:
    """(dotted key, ``nan``/``inf``/``-inf``) of each float of ``value`` (a config dataclass, or a map or list
    in one) that is not finite."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(key, str(value))]
    items: Any = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value)) \
        if dataclasses.is_dataclass(value) and not isinstance(value, type) else value.items() \
        if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    return [kv for name, v in items for kv in _nonfinite_keys(v, f"{key}.{name}" if key else str(name))]


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict of a config dataclass (resolved), for manifests and hashing."""
    if dataclasses.is_dataclass(cfg):
        return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def config_hash(cfg: Any) -> str:
    """sha256 of the canonical JSON of the resolved config."""
    return sha256_json(to_dict(cfg))


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML text (what ``tracebridge config show`` prints)."""
    return OmegaConf.to_yaml(OmegaConf.create(to_dict(cfg)))


# Which schema a YAML under configs/<kind>/ uses, for ``tracebridge config show``.
# Values are "module:Class"; areas add themselves here.
CONFIG_KINDS: dict[str, str] = {
    "model": "tracebridge.train.model_config:ModelConfig",
    "train": "tracebridge.train.config:TrainConfig",
    "collect": "tracebridge.sim.config:CollectConfig",
    "ops": "tracebridge.ops.config:OpsConfig",
    "gates": "tracebridge.ops.config:GateConfig",
    "sweep": "tracebridge.sweep.config:SweepConfig",
    "cluster": "tracebridge.cluster.config:ClusterConfig",
    "export": "tracebridge.export.config:ExportConfig",
    "storage": "tracebridge.export.config:StorageConfig",
    "import": "tracebridge.importers.config:ImportConfig",
    "feedback": "tracebridge.feedback.config:FeedbackConfig",
}


def schema_for(path: str | Path, kind: str | None = None) -> type[Any]:
    """The schema of a config file: ``kind`` (a key of ``CONFIG_KINDS``), else the folder it lives in
    (configs/<kind>/x.yaml).

    Raises:
        ConfigError: no such file (or a folder), an unknown ``kind``, or a file kept outside a
            configs/<kind>/ folder with no ``kind`` given; each names the valid kinds.
    """
    import importlib

    p, kinds = Path(path), ", ".join(sorted(CONFIG_KINDS))
    if not p.is_file():  # checked first: the kind was guessed from the folder of a path that is not there
        raise ConfigError([f"{path}: {'a folder, not a' if p.is_dir() else 'no such'} config file"])
    if kind is not None and kind not in CONFIG_KINDS:
        raise ConfigError([f"--kind {kind}: no such kind of config; one of {kinds}"])
    folder = p.resolve().parent.name
    if kind is None and folder not in CONFIG_KINDS:
        why = f"its folder {folder}/ names no kind of config (configs/<kind>/); say which it is with --kind, one of {kinds}"
        raise ConfigError([f"{path}: {why}"])
    mod, _, cls = CONFIG_KINDS[kind or folder].partition(":")
    return getattr(importlib.import_module(mod), cls)
