"""The optimization smoke of the shadow cycle: baseline vs optimized on the fixed replay bundle.

``mode=local`` runs ``tracebridge train CONFIG role=R --variants baseline,optimized`` on this host
(the tiny CPU profile by default) in a child process; ``mode=cluster`` runs
``tracebridge submit SWEEP bundle=... --cluster C --wait --json`` and reads the pulled report
(the bundle is a local path: use it with ``cluster: local`` (an embedded Ray head); remote
clusters get their bundles through storage, as in the weekly window). Either way
the report's ``results.json`` gives the uplift: the paired difference optimized − baseline of
the configured metric (``role/metric``), with its bootstrap interval, oriented by the metric's direction
(``HIGHER_IS_BETTER``): for a lower-is-better metric (``worker/error_recurrence``) it is baseline −
optimized, so a positive uplift is always a gain and the review's ``uplift > min_uplift`` means better. The report (results,
HTML, manifest) is copied into the artifact bundle; checkpoints stay in the work dir.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracebridge.eval.metrics import metric_direction
from tracebridge.ops.cycle import Ctx, StepFailed

REPORT_FILES = ("results.json", "report.html", "manifest.json")


def uplift_from_results(results: dict[str, Any], metric: str) -> dict[str, Any]:
    """``{metric, higher_is_better, baseline, optimized, uplift, lo, hi, n, winner}`` from a report's results.json.

    ``uplift`` (and its interval ``lo``..``hi``) is oriented by the metric's direction: optimized − baseline
    where higher is better, baseline − optimized where lower is, so a gain is always positive.

    Raises:
        StepFailed: the metric's direction is unknown, or the role or metric is not in the results.
    """
    hib = metric_direction(metric)
    if hib is None:
        raise StepFailed(f"shadow.optimize.metric={metric}: no known direction (role/name with a name of "
                         f"tracebridge.eval.metrics.HIGHER_IS_BETTER)")
    role, _, name = metric.partition("/")
    block = (results.get("roles") or {}).get(role)
    if not block:
        raise StepFailed(f"results.json has no role {role!r} (roles: {sorted(results.get('roles') or {})})")
    variants = block.get("variants") or {}
    vals = {v: ((variants.get(v) or {}).get("metrics") or {}).get(name, {}).get("value")
            for v in ("baseline", "optimized")}
    diff = (block.get("comparison") or {}).get(name)
    if diff is None or diff.get("value") is None:
        if None in vals.values():
            raise StepFailed(f"results.json has no {metric} for both variants: {vals}")
        diff = {"value": vals["optimized"] - vals["baseline"], "lo": None, "hi": None, "n": None}
    lo, hi = diff.get("lo"), diff.get("hi")
    if not hib:  # the gain is the fall of the metric: negate, and the interval's ends swap
        lo, hi = (None if hi is None else -hi), (None if lo is None else -lo)
    return {"metric": metric, "higher_is_better": hib, "baseline": vals["baseline"], "optimized": vals["optimized"],
            "uplift": diff["value"] if hib else -diff["value"], "lo": lo, "hi": hi, "n": diff.get("n"),
            "winner": block.get("winner"), "winner_reason": block.get("winner_reason")}


def _report_dir(doc: dict[str, Any], fallback: Path) -> Path:
    rep = doc.get("report") or doc.get("report_dir")
    if isinstance(rep, str):
        p = Path(rep)
        return p.parent if p.suffix == ".html" else p
    return fallback


def optimize_smoke(ctx: Ctx, run_cli: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Run the smoke per ``shadow.optimize`` and return the uplift and the report's place."""
    oc = ctx.shadow.optimize
    bundle = ctx.outputs["replay"]["bundle_dir"]
    out = ctx.work / "optimize" / ctx.bundle.name
    if oc.mode == "local":
        args = ["train", oc.train_config, f"role={oc.role}", *oc.overrides, "--bundle", bundle, "--out", str(out),
                "--variants", "baseline,optimized", "--json"]
        doc = run_cli(ctx, "optimize", args)
    else:
        doc = run_cli(ctx, "optimize", ["submit", oc.sweep_config, f"bundle={bundle}", *oc.overrides,
                                        "--cluster", oc.cluster, "--wait", "--out", str(out), "--json"])
    rdir = _report_dir(doc, out / "report")
    if not (rdir / "results.json").is_file():
        raise StepFailed(f"{rdir}: no results.json after the {oc.mode} run", {"summary": doc})
    dst = ctx.bundle / "optimize"
    dst.mkdir(exist_ok=True)
    for name in REPORT_FILES:
        if (rdir / name).is_file():
            shutil.copy2(rdir / name, dst / name)
    up = uplift_from_results(json.loads((rdir / "results.json").read_text()), oc.metric)
    return {"uplift": up, "mode": oc.mode, "report": "optimize/results.json", "failed_trials": doc.get("failed", []),
            "rows_dropped": _rows_per_trial(doc, "rows_dropped"), "rows_fitted": _rows_per_trial(doc, "rows_fitted"),
            "work_dir": str(out)}


def _rows_per_trial(doc: dict[str, Any], what: str) -> dict[str, dict[str, int]]:
    """Per trial and recipe, the trial result ``<recipe>/<what>`` where not 0: rows TRL dropped as longer
    than max_length (``rows_dropped``, so a review sees an uplift measured on a fraction of the replay
    rows) or rows trained with their oldest context dropped to fit it (``rows_fitted``, data.fit_context)."""
    out: dict[str, dict[str, int]] = {}
    for t in doc.get("trials") or []:
        got = {k.split("/")[0]: v for k, v in t.items() if k.endswith(f"/{what}") and v}
        if got:
            out[f"{t.get('role')}-{t.get('variant')}-s{t.get('seed')}"] = got
    return out
