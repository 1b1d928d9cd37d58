"""Report: results aggregation with paired differences and winners, manifest hashes, the HTML
page opened in headless Chromium with its plots present."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tracebridge.report import verify_report, write_report
from tracebridge.report.results import build_results


def fake_trial(tmp: Path, variant: str, seed: int, acc: np.ndarray, lr: float, fs: np.ndarray | None = None):
    """A run_trial-like result with per-item verifier values written where run_trial puts them."""
    n = len(acc)
    fs = np.zeros(n) if fs is None else fs
    items = {"accuracy": [acc.tolist(), [1.0] * n], "false_stop_rate": [fs.tolist(), [1.0] * n],
             "unnecessary_replan_rate": [[0.0] * n, [1.0] * n], "majority_accuracy": [[float(i % 3 == 0) for i in range(n)], [1.0] * n]}
    d = tmp / f"{variant}-{seed}-{lr}"
    d.mkdir(parents=True)
    (d / "eval_items.json").write_text(json.dumps({"role": "verifier", "item_ids": list(range(n)), "items": items}))
    curve = [{"phase": "sft", "step": s, "loss": 7.0 - 0.1 * s - seed * 0.01} for s in range(1, 30, 5)]
    if variant == "optimized":
        curve += [{"phase": "dpo", "step": s, "loss": 0.69 - 0.01 * s} for s in range(1, 10, 3)]
    return {"role": "verifier", "variant": variant, "seed": seed, "verifier/accuracy": float(acc.mean()),
            "eval_items_path": str(d / "eval_items.json"), "loss_curve": curve, "wall_s": 2.0, "model": "tiny",
            "bundle_id": "b" * 64, "config_hash": "c" * 64, "ablation": {"train.lr": lr}}


def trials(tmp: Path, uplift: int, false_stops: int = 0):
    rng = np.random.default_rng(0)
    out = []
    for seed in (0, 1):
        for lr in (1e-3, 3e-3):
            base = (rng.random(200) < 0.5).astype(float)
            better = base.copy()
            better[np.where(base == 0)[0][:uplift]] = 1.0
            fs = np.zeros(200)
            fs[:false_stops] = 1.0
            out += [fake_trial(tmp, "baseline", seed, base, lr), fake_trial(tmp, "optimized", seed, better, lr, fs)]
    return out


def small_report(tmp: Path, folder: Path) -> Path:
    """A verifier report of ``trials`` (uplift 20, 20 bootstrap draws) written to ``folder``: what the pull
    tests pull, replace and refuse."""
    write_report(trials(tmp / "t", uplift=20), folder, config={"roles": ["verifier"]}, wall_s=1.0, n_boot=20)
    return folder


def test_winner_needs_paired_uplift_and_no_guard_regression(tmp_path):
    res = build_results(trials(tmp_path / "a", uplift=20), n_boot=500)
    v = res["roles"]["verifier"]
    assert v["winner"] == "optimized", v["winner_reason"]
    assert v["comparison"]["accuracy"]["value"] == pytest.approx(0.10)
    assert v["comparison"]["accuracy"]["n"] == 800  # 4 matched trial pairs × 200 items
    assert v["variants"]["baseline"]["seeds"] == [0, 1]
    assert v["variants"]["baseline"]["metrics"]["uplift_vs_majority"]["n"] == 800
    assert res["roles"]["verifier"]["ablations"][0]["rows"] == ["0.001", "0.003"]
    none = build_results(trials(tmp_path / "b", uplift=0), n_boot=500)["roles"]["verifier"]
    assert none["winner"] is None and "no significant" in none["winner_reason"]
    guarded = build_results(trials(tmp_path / "c", uplift=20, false_stops=30), n_boot=500)["roles"]["verifier"]
    assert guarded["winner"] is None and "false_stop_rate" in guarded["winner_reason"]


def test_overrides_every_trial_shares_are_no_ablation(tmp_path):
    """``tracebridge train ... role=worker train.max_steps=4`` puts its overrides in every trial's
    ``ablation``: they used to make one 1×1 heatmap each (and a key × key grid of them)."""
    ts = trials(tmp_path, uplift=20)
    for t in ts:
        t["ablation"] |= {"role": "verifier", "train.max_steps": "4"}
    grids = build_results(ts, n_boot=50)["roles"]["verifier"]["ablations"]
    assert [g["key"] for g in grids] == ["train.lr"] and grids[0]["rows"] == ["0.001", "0.003"]


def test_manifest_stamps_and_verifies(tmp_path):
    man = write_report(trials(tmp_path / "t", uplift=20), tmp_path / "r", config={"roles": ["verifier"]},
                       wall_s=12.5, n_boot=300)
    assert man["bundle_id"] == "b" * 64 and man["seeds"] == [0, 1] and man["wall_s"] == 12.5
    assert man["config_hash"] and man["code_version"] and man["hardware"]["cpus"]
    # these trials recorded no `resources`: no GPU time, whatever GPUs the writing machine has
    assert man["sweep_id"] is None and man["gpu_hours"] == 0.0 and man["cost_estimate"]["usd"] == 0.0
    assert man["cluster"]["nodes"]["unknown"]["trials"] == 8
    assert {f["path"] for f in man["files"]} == {"results.json", "report.html"}
    assert man["winners"] == {"verifier": "optimized"}
    assert verify_report(tmp_path / "r") == []
    (tmp_path / "r" / "results.json").write_text("{}")
    assert "results.json was modified" in verify_report(tmp_path / "r")[0]


def test_report_html_renders_in_headless_chromium_with_its_plots(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")
    write_report(trials(tmp_path / "t", uplift=20), tmp_path / "r", n_boot=300)
    html = tmp_path / "r" / "report.html"
    assert "<script" not in html.read_text() and "http://" not in html.read_text().replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", html.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    for kind in ("metrics", "differences", "loss", "ablation"):
        assert f'data-kind="{kind}"' in dom, kind
    assert dom.count("<polyline") >= 4 and dom.count("<circle") >= 6 and "<rect" in dom
    assert "Winners" in dom and "optimized" in dom


def test_a_variants_wall_s_is_elapsed_first_start_to_last_end_and_the_sum_is_trial_wall_s(tmp_path):
    """Two trials of a variant side by side (0–10 s and 5–15 s): 15 s elapsed, 20 s of trial time.
    results.json used to write the 20 s sum as ``wall_s``, which reads as elapsed time."""
    ts = [t for t in trials(tmp_path, uplift=20) if t["ablation"]["train.lr"] == 1e-3]
    for t in ts:  # seed 0 runs 0–10 s, seed 1 runs 5–15 s
        start = 5 * t["seed"]
        t |= {"wall_s": 10.0, "started_at": f"2026-01-01T00:00:{start:02d}.000Z",
              "finished_at": f"2026-01-01T00:00:{start + 10:02d}.000Z"}
    block = build_results(ts, n_boot=50)["roles"]["verifier"]["variants"]["baseline"]
    assert (block["wall_s"], block["trial_wall_s"]) == (15.0, 20.0)
    assert "first start to last end" in block["wall_s_source"]
    del ts[0]["started_at"]  # a trial without a start: the span is unknown, the sum is still there
    block = build_results(ts, n_boot=50)["roles"]["verifier"]["variants"]["baseline"]
    assert block["wall_s"] is None and block["trial_wall_s"] == 20.0 and "unknown" in block["wall_s_source"]


def test_an_older_results_json_whose_wall_s_was_the_sum_reads_as_trial_time(tmp_path):
    from tracebridge.report.html import render_html
    from tracebridge.report.results import variant_wall

    res = build_results(trials(tmp_path, uplift=20), n_boot=50)
    for block in res["roles"]["verifier"]["variants"].values():
        block["wall_s"] = 8.0  # as an older results.json wrote it: the trials' seconds summed, nothing else
        del block["trial_wall_s"], block["wall_s_source"]
    elapsed, summed, source = variant_wall(res["roles"]["verifier"]["variants"]["baseline"])
    assert (elapsed, summed) == (None, 8.0) and "older results.json" in source
    page = render_html(res, {})
    assert "baseline: elapsed not known (an older results.json: its wall_s is" in page
    assert "8.000 s of trial time summed" in page
