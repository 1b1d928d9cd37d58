"""Each view's column types over all of its rows and splits (``features.json``) and the bundle's dataset
card (``README.md``), so every split of a view loads in one ``datasets.load_dataset`` call.

``datasets`` types a JSON call by the first rows of its first file, then casts every other file to
that: a label only test rows hold (a reaction or a correction on a test run), a key that is null
in every train row and a float in test, or a reward component only some triplets have, failed the
load of all splits at once. The export now walks each run's rows as it serialises them
(``RowTyper.rows_type``), folds their types per view in run order (``merge``: a key absent from a row is null
there, int and float make float, anything else that differs is ``Json``, as are a tool's ``parameters``
schema and a call's ``arguments`` object), and writes the union as
``datasets`` features: ``features.json`` (``Features.from_dict`` of ``features.json[view]``) and
the card's ``dataset_info``, whose ``configs`` name each view's split files.
``load_dataset(bundle, "worker_sft")`` then loads every split with one schema.

Types are ``"null"``, ``"bool"``, ``"int64"``, ``"float64"``, ``"string"``, ``"json"``,
``("list", T)`` and ``("struct", ((key, T), ...))`` (keys in first-seen order: the same for any
number of export workers, as the rows are).
"""

from __future__ import annotations

from typing import Any

import yaml

NULL, JSON = "null", "json"
_SCALARS = {str: "string", bool: "bool", int: "int64", float: "float64"}
_INT64 = 1 << 63
_STR = {str}
# a tool's JSON Schema (``agentlightning/messages`` tools) and a call's arguments (``views.json_strings=false``):
# their keys are data, so a struct of the union of every tool's would load each with every other's as nulls
_OPEN = frozenset(("parameters", "arguments"))
Type = Any  # str | tuple[str, Any]


class RowTyper:
    """Types rows (``rows_type``) with each distinct type held once (``intern``) and each merge of two
    types made once (``merge`` memoised by identity): a view's rows have a few shapes, repeated.
    One per process (the export's own, or each worker's); its tables grow with the distinct shapes only."""

    def __init__(self) -> None:
        self._interned: dict[Type, Type] = {}
        self._merged: dict[tuple[int, int], Type] = {}

    def intern(self, t: Type) -> Type:
        """The one object of type ``t``."""
        return self._interned.setdefault(t, t)

    def merge(self, a: Type, b: Type) -> Type:
        """``merge(a, b)``, interned and memoised."""
        if a is b or b is NULL or a is None:
            return b if a is None else a
        key = (id(a), id(b))
        hit = self._merged.get(key)
        if hit is None:
            hit = self._merged[key] = self.intern(merge(a, b))
        return hit

    def row_type(self, value: Any, memo: dict[int, Type]) -> Type:
        """The type of one JSON value. ``memo`` maps ``id`` of dicts and lists already typed (a run's
        conversation rows share their message objects); valid while those objects are alive."""
        t = type(value)
        if t is str:
            return "string"
        if value is None:
            return NULL
        if t is dict or t is list:
            hit = memo.get(id(value))
            if hit is None:
                hit = memo[id(value)] = self._dict_type(value, memo) if t is dict else self._list_type(value, memo)
            return hit
        if t is int and not -_INT64 <= value < _INT64:  # Arrow holds no wider integer
            return JSON
        return _SCALARS.get(t, JSON)

    def _dict_type(self, value: dict[Any, Any], memo: dict[int, Type]) -> Type:
        rt = self.row_type
        return self.intern(("struct", tuple(zip(map(str, value), [
            "string" if type(v) is str else JSON if type(v) is dict and k in _OPEN else rt(v, memo)
            for k, v in value.items()]))))

    def _list_type(self, value: list[Any], memo: dict[int, Type]) -> Type:
        # a conversation row's messages are mostly typed already (earlier rows hold them): their
        # distinct types are gathered at C speed, and only the new ones walked
        if set(map(type, value)) == _STR:  # event ids, tool masks
            return self.intern(("list", "string"))
        known = dict.fromkeys(map(memo.get, map(id, value)))  # first-seen order: the same in every process
        elem: Type = NULL
        if None in known:
            del known[None]
            for v in value:
                if id(v) not in memo:
                    elem = self.merge(elem, self.row_type(v, memo))
        for k in known:
            elem = self.merge(elem, k)
        return self.intern(("list", elem))

    def rows_type(self, rows: list[dict[str, Any]], memo: dict[int, Type]) -> Type:
        """The merged type of ``rows`` (None for none)."""
        out: Type = None
        for r in rows:
            out = self.merge(out, self.row_type(r, memo))
        return out


def merge(a: Type, b: Type) -> Type:
    """One type that holds values of both ``a`` and ``b`` (``None`` is no type yet)."""
    if a is None:
        return b
    if b is None or b == NULL or a == b:
        return a
    if a == NULL:
        return b
    if JSON in (a, b):
        return JSON
    if {a, b} == {"int64", "float64"}:
        return "float64"
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0]:
        if a[0] == "list":
            return ("list", merge(a[1], b[1]))
        fields = dict(a[1])
        for k, t in b[1]:
            fields[k] = merge(fields[k], t) if k in fields else t
        return ("struct", tuple(fields.items()))
    return JSON


def to_features(t: Type) -> dict[str, Any]:
    """A row type as ``datasets.Features.to_dict()`` writes features (``Features.from_dict`` reads it)."""
    if t is None or not (isinstance(t, tuple) and t[0] == "struct"):
        return {}
    return {k: _feature(v) for k, v in t[1]}


def _feature(t: Type) -> dict[str, Any]:
    if t == JSON or (isinstance(t, tuple) and t[0] == "struct" and (
            not t[1] or any(k == "_type" for k, _ in t[1]))):  # Arrow has no empty struct; datasets reads _type
        return {"_type": "Json"}
    if isinstance(t, str):
        return {"dtype": t, "_type": "Value"}
    if t[0] == "list":
        return {"feature": _feature(t[1]), "_type": "List"}
    return {k: _feature(v) for k, v in t[1]}


def _yaml_feature(f: dict[str, Any]) -> dict[str, Any]:
    """One feature of ``to_features`` as a card's ``dataset_info`` writes it (``Features._to_yaml_list``)."""
    kind = f.get("_type")
    if kind == "Value":
        return {"dtype": f["dtype"]}
    if kind == "Json":
        return {"dtype": "json"}
    if kind == "List":
        inner = _yaml_feature(f["feature"])
        return {"list": inner.get("dtype", inner.get("struct", inner)) if len(inner) == 1 else inner}
    return {"struct": [{"name": k, **_yaml_feature(v)} for k, v in f.items()]}


def config_name(file_key: str) -> str:
    """A view's card config name: its file key with ``_`` for ``/`` (``worker_recovery_cases_sft``,
    ``agentlightning_triplets``)."""
    return file_key.replace("/", "_")


def dataset_card(views: dict[str, dict[str, str]], features: dict[str, dict[str, Any]],
                 rows: dict[str, dict[str, int]]) -> str:
    """The bundle's ``README.md``: a ``datasets`` card whose YAML names each view's split files
    (``configs``) and column types (``dataset_info``), then how to load it.

    Args:
        views: file key → split → path of its file in the bundle (views with rows only).
        features: file key → ``to_features`` of its rows.
        rows: file key → split → rows.
    """
    configs, info = [], []
    for view, splits in views.items():
        name = config_name(view)
        configs.append({"config_name": name, "data_files": [{"split": s, "path": p} for s, p in splits.items()]})
        info.append({"config_name": name,
                     "features": [{"name": k, **_yaml_feature(v)} for k, v in features.get(view, {}).items()]})
    head = yaml.safe_dump({"configs": configs, "dataset_info": info}, sort_keys=False)
    key = "worker_sft" if "worker_sft" in views else next(iter(views), "worker_sft")  # the example's view
    table = [f"| {config_name(k)} | " + " | ".join(str(rows.get(k, {}).get(s, 0)) for s in _SPLITS) + " |"
             for k in views]
    return _CARD.format(head=head.rstrip(), config=config_name(key), view=key, table="\n".join(table))


_SPLITS = ("train", "validation", "test")
_CARD = """---
{head}
---

# TraceBridge export bundle

Views of agent traces in TRL formats, one config per view; `manifest.json` lists every file with its
sha256. Load every split of a view at once:

```python
from datasets import load_dataset

ds = load_dataset("path/to/this/bundle", "{config}")
```

or, naming the files yourself, with the view's features from `features.json`:

```python
import json
from datasets import Features, load_dataset

features = Features.from_dict(json.load(open("features.json"))["{view}"])
ds = load_dataset("json", data_files={{"train": ..., "test": ...}}, features=features)
```

| config | train | validation | test |
|---|---|---|---|
{table}
"""
