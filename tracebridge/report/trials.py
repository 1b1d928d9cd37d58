"""Reading trial folders for ``tracebridge report``: each ``trial.json`` checked before any report is
written, so a truncated file, an unknown role, a trial whose per-item values are gone or the same
trial given twice is one listed problem (``file: field: reason``), never a traceback or a silently
empty or double-counted table. A metric that is not a number (text, true/false, a list, infinity) is
such a problem too, never a value only ``results.json`` shows; null and NaN are "not measured" (what a
trial writes for a metric with no items or a phase that logged no loss). ``runs_wall`` tells the wall
time of the trials read, or that it is unknown. A trial that failed (``trial_failed.json``) is listed
with its error, never silently left out.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from tracebridge.report.results import PRIMARY


def _files(dirs: list[Path], name: str) -> list[Path]:
    """Each ``name`` file of ``dirs`` (a trial folder's own, else every one under a root), once each."""
    files = [p for d in dirs for p in ([d / name] if (d / name).is_file() else sorted(d.rglob(name)))]
    return list(dict.fromkeys(f.resolve() for f in files))  # a folder named twice (root and trial) counts once


def find_trials(dirs: list[Path]) -> tuple[list[Path], list[dict[str, Any]]]:
    """The ``trial.json`` files under ``dirs``, and the trials there that failed (a ``trial_failed.json``,
    which ``run_trial`` writes instead): ``{"trial_dir", "error"}`` each, with its role, variant and seed where
    the file gives them, so a report says which it lacks."""
    failed = []
    for f in _files(dirs, "trial_failed.json"):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            who = {k: rec[k] for k in ("role", "variant", "seed") if rec.get(k) is not None}
            error = str(rec.get("error"))
        except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError) as exc:
            who, error = {}, f"unreadable {f.name} ({type(exc).__name__})"
        failed.append({"trial_dir": str(f.parent), "error": error, **who})
    return _files(dirs, "trial.json"), failed


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


# ``role/metric``-like keys that hold words, not numbers: ``sft/prepared`` ("loaded", "stored", "")
TEXT_FIELDS = {"prepared"}


def _not_a_number(v: Any, measured: bool = False) -> str | None:
    """Why ``v`` is not a metric value (None when it is one); null and NaN mean "not measured",
    allowed unless ``measured``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "is not measured" if measured else None
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"{json.dumps(v, default=str)[:60]} is not a number"
    return f"{v} is not a finite number" if math.isinf(v) else None


def _metric_problems(f: Path, r: dict[str, Any]) -> list[str]:
    """Metrics of one trial result that are not numbers: ``role/metric``, ``sft/last_loss`` and the
    like, ``wall_s``, each ``loss_curve`` point's step and loss."""
    named = sorted(k for k in r if k == "wall_s" or ("/" in k and k.rsplit("/", 1)[1] not in TEXT_FIELDS))
    probs = [f"{f}: result.{k}: {why}; a metric is a number (null or NaN when not measured)"
             for k in named if (why := _not_a_number(r[k])) is not None]
    curve = r.get("loss_curve") or []
    if not isinstance(curve, list):
        return [*probs, f"{f}: result.loss_curve: must be a list of {{phase, step, loss}}"]
    for i, point in enumerate(curve):
        for k in ("step", "loss"):
            why = _not_a_number(point.get(k), k == "step") if isinstance(point, dict) else "is not an object"
            if why is not None:
                probs.append(f"{f}: result.loss_curve[{i}].{k}: {why}; plotted, it must be a number")
                break
    return probs


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
    probs += _metric_problems(f, r) + _time_problems(f, r)
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


def _when(v: Any) -> float | None:
    """A trial's ``started_at``/``finished_at`` timestamp as epoch seconds (None when absent or unreadable)."""
    try:
        return dt.datetime.fromisoformat(v).timestamp() if isinstance(v, str) else None
    except ValueError:
        return None


def _time_problems(f: Path, r: dict[str, Any]) -> list[str]:
    """``started_at``/``finished_at`` that are there but are not timestamps, or end before they start."""
    probs = [f"{f}: result.{k}: {r[k]!r} is not a timestamp (YYYY-MM-DDTHH:MM:SS.mmmZ)"
             for k in ("started_at", "finished_at") if r.get(k) is not None and _when(r[k]) is None]
    start, end = _when(r.get("started_at")), _when(r.get("finished_at"))
    if not probs and start is not None and end is not None and end < start:
        probs.append(f"{f}: result.finished_at: {r['finished_at']} is before started_at {r['started_at']}")
    return probs


def runs_wall(trials: list[dict[str, Any]]) -> tuple[float | None, str]:
    """The wall time the trials took together, in seconds, and where it comes from: first start to last
    end when every trial recorded ``started_at`` and ``finished_at``; the one trial's own ``wall_s``;
    else None (trials that ran side by side or one after another cannot be told apart)."""
    spans = [(a, b) for t in trials
             if (a := _when(t.get("started_at"))) is not None and (b := _when(t.get("finished_at"))) is not None]
    if trials and len(spans) == len(trials):
        return max(b for _, b in spans) - min(a for a, _ in spans), "the trials' started_at/finished_at: first start to last end"
    if len(trials) == 1 and _not_a_number(trials[0].get("wall_s"), measured=True) is None:
        return float(trials[0]["wall_s"]), "the one trial's own wall_s"
    return None, (f"unknown: {len(trials) - len(spans)} of {len(trials)} trials recorded no started_at/finished_at "
                  "(written before trials recorded them); trial_wall_s is the sum of the trials' own wall_s")


def interval_settings(files: list[Path], n_boot: int | None = None,
                      ci: float | None = None) -> tuple[int, float, list[str]]:
    """The bootstrap settings of a report of ``files``: ``n_boot`` and ``ci`` when given, else the trials'
    own (``config.eval.n_boot``/``ci`` of their ``trial.json``, so the report's intervals are the ones each
    ``trial.json`` holds), else 1000 and 0.95. Trials that differ in one and no value given for it is a
    problem naming the values and the option that settles it."""
    seen: dict[str, set[Any]] = {"n_boot": set(), "ci": set()}
    for f in files:
        try:
            ev = json.loads(f.read_text(encoding="utf-8")).get("config", {}).get("eval", {})
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            continue  # load_trial_files says what is wrong with the file
        for k, values in seen.items():
            if isinstance(ev, dict) and isinstance(ev.get(k), (int, float)) and not isinstance(ev.get(k), bool):
                values.add(ev[k])
    probs = [f"the trials were evaluated with different eval.{k} ({', '.join(map(str, sorted(v)))}): pass "
             f"--{k.replace('_', '-')} to choose the report's" for k, v in seen.items()
             if len(v) > 1 and {"n_boot": n_boot, "ci": ci}[k] is None]
    pick = lambda k, given, default: given if given is not None else (next(iter(seen[k])) if len(seen[k]) == 1 else default)
    return int(pick("n_boot", n_boot, 1000)), float(pick("ci", ci, 0.95)), probs
