"""Reading trial folders for ``tracebridge report``: each ``trial.json`` checked before any report is
written, so a truncated file, an unknown role, a trial whose per-item values are gone or the same
trial given twice is one listed problem (``file: field: reason``), never a traceback or a silently
empty or double-counted table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracebridge.report.results import PRIMARY


def _items_problem(path: Path) -> str | None:
    """Why an ``eval_items.json`` cannot be pooled (None when it can)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"not readable JSON ({exc})"
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, dict):
        return "items: missing or not an object of metric -> [num, den]"
    for name, v in items.items():
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, list) for x in v) and len(v[0]) == len(v[1])):
            return f"items.{name}: must be [num, den], two lists of the same length"
    return None


def _result_problems(f: Path, r: dict[str, Any]) -> list[str]:
    """Field problems of one trial result; fixes ``eval_items_path`` to the folder's own file when
    the recorded one is gone (a trial folder copied off the cluster keeps the cluster's path)."""
    probs = []
    if r.get("role") not in PRIMARY:
        probs.append(f"{f}: result.role: {r.get('role')!r} is not a role (use one of {', '.join(PRIMARY)})")
    if not isinstance(r.get("variant"), str) or not r.get("variant"):
        probs.append(f"{f}: result.variant: {r.get('variant')!r} must be a non-empty string")
    if not isinstance(r.get("seed"), int) or isinstance(r.get("seed"), bool):
        probs.append(f"{f}: result.seed: {r.get('seed')!r} must be a whole number")
    if not isinstance(r.get("ablation") or {}, dict):
        probs.append(f"{f}: result.ablation: must be an object of key -> value")
    recorded = r.get("eval_items_path")
    items = Path(recorded) if isinstance(recorded, str) and Path(recorded).is_file() else f.parent / "eval_items.json"
    if not items.is_file():
        probs.append(f"{f}: result.eval_items_path: {recorded!r} is missing and so is {items} (the per-item "
                     "values the report pools); re-run the trial or leave its folder out")
    elif (why := _items_problem(items)) is not None:
        probs.append(f"{items}: {why}")
    else:
        r["eval_items_path"] = str(items)
    return probs


def load_trial_files(files: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``result`` of each ``trial.json``, and every problem found in them.

    Args:
        files: ``trial.json`` paths.

    Returns:
        ``(results, problems)``; ``problems`` lists each bad file as ``file: field: reason``
        (unreadable JSON, no ``result`` object, an unknown role, a non-string variant, a non-integer
        seed, missing or malformed ``eval_items.json``, the same role/variant/seed/ablation twice).
    """
    results, probs, seen = [], [], {}
    for f in files:
        try:
            r = json.loads(f.read_text(encoding="utf-8"))["result"]
            if not isinstance(r, dict):
                raise TypeError("result is not an object")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            probs.append(f"{f}: not a trial.json with a result object ({type(exc).__name__}: {exc})")
            continue
        bad = _result_problems(f, r)
        probs += bad
        if bad:
            continue
        key = (r["role"], r["variant"], r["seed"], json.dumps(r.get("ablation") or {}, sort_keys=True, default=str))
        if key in seen:
            probs.append(f"{f}: same role, variant, seed and ablation as {seen[key]} (counted twice it would "
                         "double its items); pass only one of them")
            continue
        seen[key] = f
        results.append(r)
    return results, probs
