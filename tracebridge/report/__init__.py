"""Reports: trial results → ``results.json`` + single-file ``report.html`` (inline SVG plots) +
``manifest.json`` (sweep id, bundle_id, resolved config + hash, code version, model, seeds, the
cluster nodes the trials ran on, the driver's hardware, wall time, GPU-hours and cost estimate,
result file hashes), and the winner per role.

``write_report(trials, out_dir, config=..., wall_s=...)`` is the one call a sweep makes after its
trials: ``trials`` are the dicts ``tracebridge.train.trial.run_trial`` returned (their
``eval_items_path`` must be readable).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracebridge.report.manifest import build_manifest, verify_report

__all__ = ["verify_report", "write_report"]


def write_report(trials: list[dict[str, Any]], out_dir: str | Path, config: dict[str, Any] | None = None,
                 wall_s: float | None = None, bundle_id: str | None = None, n_boot: int = 1000, ci: float = 0.95,
                 title: str = "TraceBridge report", sweep_id: str | None = None,
                 prices: dict[str, float] | None = None, submission_id: str | None = None,
                 wall_source: str | None = None, failed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write ``results.json``, ``report.html`` and ``manifest.json`` into ``out_dir``.

    Args:
        trials: results of ``run_trial``.
        out_dir: report folder (created).
        config: the resolved config that produced the trials (sweep or train config as a dict).
        wall_s: wall time of the whole run; None when unknown (written as null, never a made-up 0).
        wall_source: where ``wall_s`` came from, or why it is unknown (``manifest.wall_s_source``).
        bundle_id: the bundle trained on (default: taken from the trials).
        n_boot, ci: bootstrap settings.
        title: page title.
        sweep_id: the sweep stamped into the manifest (default: ``config["sweep_id"]``).
        prices: USD/h per instance type for the cost estimate (a sweep's ``window.prices``;
            default: ``tracebridge.cluster.config.DEFAULT_PRICES``).
        submission_id: the Ray job (sweep id + attempt) writing the report, stamped into the manifest so
            ``pull <submission id>`` can tell its report from an earlier attempt's; None outside a Ray job.
        failed: the trials that failed (``trial_id`` or ``trial_dir``, ``error``; role, variant, seed where
            known), listed in results.json ``failed_trials`` with their reason and on the page.

    Returns:
        The manifest (also written).
    """
    from tracebridge.report.html import render_html
    from tracebridge.report.results import build_results

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = build_results(trials, n_boot, ci, failed)
    rpath = out / "results.json"
    rpath.write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    # the page shows a provisional stamp (everything but its own hash); manifest.json is the record
    stamp = build_manifest(out, [rpath], config or {}, trials, wall_s, bundle_id, sweep_id, prices, submission_id,
                           wall_source, failed)
    hpath = out / "report.html"
    hpath.write_text(render_html(results, stamp, title), encoding="utf-8")
    manifest = build_manifest(out, [rpath, hpath], config or {}, trials, wall_s, bundle_id, sweep_id, prices,
                              submission_id, wall_source, failed)
    manifest["winners"] = {r: b.get("winner") for r, b in results["roles"].items()}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return manifest
