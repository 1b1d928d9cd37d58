"""The report manifest: what produced the results and hashes of every result file, so a pulled
report can be verified. Fields: report_id, created_at, sweep_id, submission_id (the Ray job, i.e. the
attempt ``<sweep id>-a<N>``, that wrote the report; null outside a Ray job; absent from manifests
written before it was recorded), bundle_id (null when the trials trained on several), bundle_ids (the
bundles the trials trained on), config (resolved) +
config_hash, code_version (git sha, or the package version), model, seeds, trials, cluster (the
nodes the trials ran on: GPU type, GPUs, trials, GPU-hours; and the driver's host), hardware (the
driver's machine, which wrote the report), wall_s (null when unknown) and wall_s_source (where it came
from, or why it is unknown), trial_wall_s, failed_trial_wall_s, gpu_hours (Σ trial GPUs × trial
wall s / 3600, over all of a retried trial's attempts (``held_s``), the failed trials' included: they held
their GPUs too), gpu_hours_failed (their share),
cost_estimate ({usd, usd_failed, per_gpu_hour, source}; usd null + reason when a GPU type has
no price), files [{path, sha256, bytes}].
"""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

from tracebridge.report.cost import (
    cluster_nodes,
    cost_estimate,
    distinct_runs,
    trial_gpu_hours,
    trial_held_s,
)
from tracebridge.schema.canonical import sha256_bytes, sha256_json, utc_now

_HEX64 = re.compile(r"[0-9a-f]{64}")


def code_version(repo: Path | None = None) -> str:
    """``git:<sha>[+dirty]`` of the checkout, else ``tracebridge-<version>``."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        return f"git:{sha}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"tracebridge-{version('tracebridge')}"
        except PackageNotFoundError:
            return "unknown"


def hardware() -> dict[str, Any]:
    """CPU/GPU description of this machine (the driver's, not the trials' nodes)."""
    hw: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": os.cpu_count()}
    try:
        import torch

        hw["torch"] = torch.__version__
        hw["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            hw["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return hw


def file_entry(path: Path, root: Path) -> dict[str, Any]:
    """``{path, sha256, bytes}`` of a file, ``path`` relative to ``root``."""
    data = path.read_bytes()
    return {"path": str(path.relative_to(root)), "sha256": sha256_bytes(data), "bytes": len(data)}


def report_id(man: dict[str, Any]) -> str:
    """The id a manifest's content gives: its files, config hash, bundle, and the submission that wrote it
    when it records one (so manifests written before that field keep their id)."""
    ident = {"files": man.get("files"), "config_hash": man.get("config_hash"), "bundle": man.get("bundle_id")}
    if man.get("submission_id"):
        ident["submission"] = man["submission_id"]
    return sha256_json(ident)


def build_manifest(out_dir: Path, files: list[Path], config: dict[str, Any], trials: list[dict[str, Any]],
                   wall_s: float | None, bundle_id: str | None = None, sweep_id: str | None = None,
                   prices: dict[str, float] | None = None, submission_id: str | None = None,
                   wall_source: str | None = None, failed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The manifest of a report folder (pure apart from hashing ``files`` and asking git).

    Args:
        sweep_id: the sweep (default: ``config["sweep_id"]``, None outside sweeps).
        submission_id: the Ray job (sweep id + attempt) writing the report; None outside a Ray job.
        prices: USD/h per instance type for ``cost_estimate`` (a sweep's ``window.prices``;
            default: ``tracebridge.cluster.config.DEFAULT_PRICES``).
        wall_s, wall_source: the run's wall time (None: unknown) and where it came from (default: timed
            by the command that ran the trials; "unknown" when ``wall_s`` is None).
        failed: the failed trials; the GPU time their last report recorded (``wall_s``, ``resources``)
            counts in ``gpu_hours``, ``cost_estimate`` and the nodes (``gpu_hours_failed``,
            ``failed_trial_wall_s``, ``cost_estimate.usd_failed``: their share).
    """
    from tracebridge.cluster.config import DEFAULT_PRICES

    hw = hardware()
    bundles = sorted({str(t["bundle_id"]) for t in [*trials, *(failed or [])] if t.get("bundle_id")})
    bundle = bundle_id or (bundles[0] if len(bundles) == 1 else None)  # trials of several bundles: none of them
    failed = failed or []
    runs, failed_runs = distinct_runs(trials), distinct_runs(failed)  # a run shared by grid cells counts once
    trial_wall = sum(float(t.get("wall_s") or 0.0) for t in runs)
    table = "window.prices" if prices is not None else "tracebridge.cluster.config.DEFAULT_PRICES"
    man = {
        "created_at": utc_now(), "sweep_id": sweep_id or config.get("sweep_id"), "submission_id": submission_id,
        "bundle_id": bundle, "bundle_ids": bundles,
        "config": config, "config_hash": sha256_json(config),
        "code_version": code_version(), "model": sorted({str(t.get("model")) for t in trials}),
        "seeds": sorted({t.get("seed") for t in trials if t.get("seed") is not None}),
        "trials": [{"role": t.get("role"), "variant": t.get("variant"), "seed": t.get("seed"),
                    "config_hash": t.get("config_hash"), "ablation": t.get("ablation") or {},
                    "wall_s": t.get("wall_s"), "held_s": t.get("held_s"), "attempts": t.get("attempts"),
                    "node": (t.get("resources") or {}).get("node"),
                    "gpus": (t.get("resources") or {}).get("gpus"),
                    **({"trained_as": t["trained_as"]} if t.get("trained_as") else {})} for t in trials],
        "cluster": {"nodes": cluster_nodes([*runs, *(f for f in failed_runs if f.get("resources"))]),
                    "driver": socket.gethostname()},
        "hardware": hw, "wall_s": wall_s, "trial_wall_s": trial_wall,
        "failed_trial_wall_s": sum(trial_held_s(f) for f in failed_runs),
        "wall_s_source": wall_source or ("timed by the command that ran the trials" if wall_s is not None else "unknown"),
        "gpu_hours": sum(trial_gpu_hours(t) for t in [*runs, *failed_runs]),
        "gpu_hours_failed": sum(trial_gpu_hours(f) for f in failed_runs),
        "cost_estimate": cost_estimate(runs, DEFAULT_PRICES if prices is None else prices, table, failed_runs),
        "files": [file_entry(p, out_dir) for p in files],
    }
    man["report_id"] = report_id(man)
    return man


def verify_report(out_dir: Path) -> list[str]:
    """Problems of a report folder (empty when it verifies): a path that escapes the folder
    (``..``, absolute, backslash, NUL, a symlink out), a missing or changed file, a file the
    manifest does not list, or a manifest whose ``report_id`` does not match its content."""
    import orjson

    from tracebridge.export.bundle import BundleError, safe_relpath

    out_dir = Path(out_dir)
    mpath = out_dir / "manifest.json"
    if not mpath.is_file():
        return [f"{mpath}: missing"]
    try:
        man = orjson.loads(mpath.read_bytes())
    except orjson.JSONDecodeError as exc:
        return [f"{mpath}: not a report manifest (not JSON: {exc})"]
    files = man.get("files") if isinstance(man, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        what = "no JSON object" if not isinstance(man, dict) else "files: missing" if "files" not in man \
            else "files: not a list of {path, sha256} objects"
        return [f"{mpath}: not a report manifest ({what})"]
    probs = []
    root = out_dir.resolve()
    for i, f in enumerate(files):
        try:
            rel = safe_relpath(f.get("path"), f"{mpath}:files[{i}].path")
        except BundleError as exc:
            probs.append(str(exc))
            continue
        p = out_dir / rel
        if not p.resolve().is_relative_to(root):
            probs.append(f"{mpath}:files[{i}].path: {rel} escapes the report folder (symlink)")
        elif not p.is_file():
            probs.append(f"{mpath}:files[{i}].path: {rel} is missing")
        elif not (isinstance(f.get("sha256"), str) and _HEX64.fullmatch(f["sha256"])):  # was "rel was modified"
            probs.append(f"{mpath}:files[{i}].sha256: {f.get('sha256')!r} is not a sha256 hex digest (64 of 0-9a-f), "
                         f"so {rel} cannot be checked")
        elif sha256_bytes(p.read_bytes()) != f.get("sha256"):
            probs.append(f"{mpath}:files[{i}].sha256: {rel} was modified")
    if man.get("report_id") != report_id(man):
        probs.append(f"{mpath}:report_id: does not match the manifest's files, config_hash, bundle_id and "
                     "submission_id")
    if man.get("config_hash") != sha256_json(man.get("config")):
        probs.append(f"{mpath}:config_hash: does not match the manifest's config")
    listed = {f.get("path") for f in files if isinstance(f.get("path"), str)} | {"manifest.json"}  # a list: refused above
    probs += [f"{out_dir}/{e}: not listed in the manifest" for e in
              sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if not p.is_dir())
              if e not in listed]
    return probs
