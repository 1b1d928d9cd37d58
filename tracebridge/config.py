"""Config machinery shared by every command and job: OmegaConf structured configs.

A config is a dataclass schema (in ``tracebridge/<area>/config.py``) plus a YAML file of values
plus ``key.sub=value`` overrides. Struct mode is on: an unknown key is an error that names the
closest valid key. After merging, the dataclass's ``validate()`` (if any) returns every problem
at once and they are raised together as one ``ConfigError``.

A YAML file may name one base file with ``_base_: other.yaml`` (relative to itself): one level
of composition, base + named variant, and no more.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from tracebridge.schema.canonical import sha256_json

T = TypeVar("T")


class ConfigError(ValueError):
    """Every problem of a config, each as ``key=value: what is wrong; how to fix``."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        head = f"invalid config{f' {source}' if source else ''} ({len(problems)} problem(s)):"
        super().__init__("\n".join([head, *(f"  - {p}" for p in problems)]))


def _flat_keys(cfg: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(cfg, DictConfig):
        for k in cfg.keys():
            key = f"{prefix}{k}"
            out.append(key)
            try:
                child = cfg._get_node(k)  # noqa: SLF001 - no public way without resolving
            except Exception:  # pragma: no cover
                continue
            if isinstance(child, DictConfig):
                out.extend(_flat_keys(child, key + "."))
    return out


def _suggest(bad: str, base: DictConfig) -> str:
    keys = _flat_keys(base)
    match = difflib.get_close_matches(bad, keys, n=1, cutoff=0.5)
    if not match:  # try the last component against same-level keys
        leaf = bad.rsplit(".", 1)[-1]
        match = difflib.get_close_matches(leaf, [k.rsplit(".", 1)[-1] for k in keys], n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def _open_maps(cfg: DictConfig) -> None:
    """Lift struct mode from ``dict[str, X]`` fields: their keys are data (named entries), while
    dataclass nodes, including a map's dataclass values, still reject unknown keys."""
    for k in cfg.keys():
        node = cfg._get_node(k)  # noqa: SLF001 - no public way without resolving
        if isinstance(node, DictConfig):
            if node._metadata.object_type in (dict, None):  # noqa: SLF001
                OmegaConf.set_struct(node, False)
            _open_maps(node)


def read_yaml(path: str | Path) -> DictConfig:
    """Load a YAML config, applying its ``_base_`` (one level)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"{path}: no such config file"])
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml errors carry line/column
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError([f"{path}: top level must be a mapping"])
    base = cfg.pop("_base_", None)
    if base is not None:
        base_cfg = OmegaConf.load(path.parent / str(base))
        if isinstance(base_cfg, DictConfig) and "_base_" in base_cfg:
            raise ConfigError([f"{path}: base {base} has its own _base_; one level only"])
        cfg = OmegaConf.merge(base_cfg, cfg)
    return cfg  # type: ignore[return-value]


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
    layers: list[Any] = []
    problems: list[str] = []
    src = str(path) if path else None
    if path is not None:
        layers.append(read_yaml(path))
    bad = [o for o in overrides if "=" not in o or o.startswith("-")]
    for o in bad:
        problems.append(f"{o}: overrides are key=value (e.g. train.lr=1e-4), not flags")
    if overrides:
        layers.append(OmegaConf.from_dotlist([o for o in overrides if o not in bad]))
    merged = base
    for layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer)
        except (ConfigKeyError, ConfigAttributeError) as exc:
            key = getattr(exc, "full_key", None) or str(exc)
            problems.append(f"{key}: unknown key{_suggest(str(key), merged)}")
        except OmegaConfBaseException as exc:
            key = getattr(exc, "full_key", "?")
            problems.append(f"{key}: {str(exc).splitlines()[0]}")
    if problems:
        raise ConfigError(problems, src)
    obj = OmegaConf.to_object(merged)
    check = getattr(obj, "validate", None)
    if callable(check):
        found = check()
        if found:
            raise ConfigError(list(found), src)
    return obj  # type: ignore[return-value]


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
    "model": "tracebridge.train.config:ModelConfig",
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


def schema_for(path: str | Path) -> type[Any]:
    """Find the schema of a config file by the folder it lives in (configs/<kind>/x.yaml)."""
    import importlib

    kind = Path(path).resolve().parent.name
    if kind not in CONFIG_KINDS:
        raise ConfigError([f"{path}: no schema for configs/{kind}/ (known: {', '.join(sorted(CONFIG_KINDS))})"])
    mod, _, cls = CONFIG_KINDS[kind].partition(":")
    return getattr(importlib.import_module(mod), cls)
