"""What names a sweep: the config fields that decide its results, made stable across versions.

A sweep id hashes the sweep's identity fields and its resolved recipes. Each release that adds a
``TrainConfig`` key with a default changes every resolved recipe, so without care an upgrade gives an
interrupted sweep a new id and ``submit --resume`` starts it over. ``ADDED_KEYS`` lists the keys added
after sweeps existed, in the order they came, each with the value that behaves as the versions before
it did; a key at that value is left out of the hash, so the id is the one the oldest version gave.
``sweep_ids`` also gives the ids the versions in between gave the same config (which hashed the
keys they knew), so ``--resume`` finds a sweep started by any of them.

A key added without such a value (``eval.max_batch_tokens``: batching by length has no old
equivalent) changes ids once; ``differences`` lets ``--resume`` name it instead of starting afresh.
"""

from __future__ import annotations

import copy
from typing import Any

from tracebridge.schema.canonical import sha256_json
from tracebridge.sweep.config import flat_keys

# (commit that added the keys, {recipe key: the value that behaves as before it}), oldest first.
ADDED_KEYS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("caa769c", {"data.max_pref_rows": 0}),
    ("acc4e71", {"data.prepared_cache": None, "train.dataset_num_proc": 0, "dpo.dataset_num_proc": 0}),
    ("66cb36e", {"behaviour.system_prompt": None, "behaviour.system_prompt_mode": "replace",
                 "behaviour.tool_schemas": "full", "behaviour.response": "as_is"}),
    ("a1eeadb", {"data.fit_context": False}),
    ("a8cbf51", {"data.max_rows_dropped": 1.0}),
    ("a0c03e8", {"train.max_grad_norm": 1.0, "dpo.max_grad_norm": 1.0}),
    ("dpo.label_smoothing", {"dpo.label_smoothing": 0.0}),  # TRL's default, which every sweep before it trained with
    ("train.optim", {f"{r}.{k}": v for r in ("train", "dpo") for k, v in (  # transformers' defaults, trained with before
        ("optim", "adamw_torch_fused"), ("adam_beta1", 0.9), ("adam_beta2", 0.999), ("adam_epsilon", 1e-8),
        ("neftune_noise_alpha", None))}),
)
LEGACY: dict[str, Any] = {k: v for _, keys in ADDED_KEYS for k, v in keys.items()}
_MISSING = object()


def _get(tree: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def _drop(tree: dict[str, Any], key: str) -> None:
    *parents, last = key.split(".")
    for part in parents:
        tree = tree.get(part) if isinstance(tree, dict) else None
    if isinstance(tree, dict):
        tree.pop(last, None)


def _at_legacy(recipes: dict[str, dict[str, Any]], key: str) -> bool:
    """Every recipe has ``key`` at its old-behaviour value (or lacks it, as an older version's did)."""
    return all(_is_legacy(key, _get(r, key)) for r in recipes.values())


def _is_legacy(key: str, value: Any) -> bool:
    """``value`` is absent or the old-behaviour value of ``key`` (``True`` is not ``1.0`` here)."""
    old = LEGACY[key]
    return value is _MISSING or (value == old and isinstance(value, bool) == isinstance(old, bool))


def identity(sweep: dict[str, Any], recipes: dict[str, dict[str, Any]], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The document a sweep id hashes: ``sweep`` (its identity fields) and ``recipes``, with every
    ``ADDED_KEYS`` key at its old-behaviour value left out, except those in ``keep`` (hashed as given)."""
    out = copy.deepcopy(recipes)
    for key in LEGACY:
        if key not in keep and _at_legacy(recipes, key):
            for r in out.values():
                _drop(r, key)
    return {"sweep": sweep, "recipes": out}


def digest(sweep: dict[str, Any], recipes: dict[str, dict[str, Any]]) -> str:
    """sha256 of the sweep's ``identity``: the hash in its id."""
    return sha256_json(identity(sweep, recipes))


def older_digests(sweep: dict[str, Any], recipes: dict[str, dict[str, Any]]) -> list[str]:
    """The hashes the versions between ``ADDED_KEYS`` entries gave this config (newest first): the
    version after entry ``j`` hashed the keys of entries up to ``j`` whatever their value; it can have
    run this config only when the keys added after it are at their old-behaviour values."""
    out = []
    for j in range(len(ADDED_KEYS), 0, -1):
        later = [k for _, keys in ADDED_KEYS[j:] for k in keys]
        if all(_at_legacy(recipes, k) for k in later):
            kept = tuple(k for _, keys in ADDED_KEYS[:j] for k in keys)
            out.append(sha256_json(identity(sweep, recipes, kept)))
    return out


def differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two identity documents (``{"sweep", "recipes"}``), as
    ``key: stored X, now Y``; a key the stored sweep lacks counts as its old-behaviour value when
    ``ADDED_KEYS`` has one (an older version behaved so), else as absent."""
    a, b = flat_keys(stored), flat_keys(current)
    lines = []
    for key in sorted(set(a) | set(b)):
        recipe_key = key.split(".", 2)[2] if key.startswith("recipes.") and key.count(".") >= 2 else ""
        old, new = a.get(key, _MISSING), b.get(key, _MISSING)
        if old is _MISSING and recipe_key in LEGACY:
            if _is_legacy(recipe_key, new):
                continue
            shown = f"absent (an older version; behaves as {LEGACY[recipe_key]!r})"
        else:
            shown = "absent" if old is _MISSING else repr(old)
        if old != new:
            lines.append(f"{key}: stored {shown}, now {'absent' if new is _MISSING else repr(new)}")
    return lines
