"""report.html with hostile strings from trial folders, and ``tracebridge report`` on bad trial
folders: every problem listed (file: field: reason), exit 2, no traceback, no report written."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.report import write_report
from tracebridge.report.results import build_results

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(1)</script>"


class _Live(HTMLParser):
    """Collects elements and attributes that would run script."""

    def __init__(self) -> None:
        super().__init__()
        self.live: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("img", "script", "iframe") or any(k.startswith("on") for k, _ in attrs):
            self.live.append(tag)


def trial_dir(root: Path, name: str, variant: str = "baseline", seed: int = 0, **result) -> Path:
    """A trial folder as run_trial leaves it: trial.json + eval_items.json."""
    d = root / name
    d.mkdir(parents=True)
    acc = (np.arange(20) % 2).astype(float).tolist()
    items = {"accuracy": [acc, [1.0] * 20], "majority_accuracy": [[0.0] * 20, [1.0] * 20]}
    (d / "eval_items.json").write_text(json.dumps({"role": "verifier", "item_ids": list(range(20)), "items": items}))
    r = {"role": "verifier", "variant": variant, "seed": seed, "eval_items_path": str(d / "eval_items.json"),
         "wall_s": 1.0, "model": "tiny", "loss_curve": [{"phase": "sft", "step": 1, "loss": 1.0}], **result}
    (d / "trial.json").write_text(json.dumps({"result": r}))
    return d


def test_hostile_strings_stay_text_in_report_html(tmp_path):
    hostile = {"ablation": {IMG: SCRIPT}, "model": SCRIPT, "bundle_id": IMG, "config_hash": SCRIPT,
               "resources": {"node": IMG, "gpu_type": SCRIPT, "gpus": 1}}
    a = trial_dir(tmp_path / "t", f"a{SCRIPT.replace('/', '_')}", variant="baseline" + IMG, **hostile)
    b = trial_dir(tmp_path / "t", "b", variant="optimized", ablation={IMG: SCRIPT})
    trials = [json.loads((d / "trial.json").read_text())["result"] for d in (a, b)]
    write_report(trials, tmp_path / "r", config={"note": IMG, "path": str(a)}, n_boot=100, title=SCRIPT)
    page = (tmp_path / "r" / "report.html").read_text()
    parser = _Live()
    parser.feed(page)
    assert parser.live == [] and IMG not in page and "<script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text


def test_report_lists_every_bad_trial_folder(tmp_path):
    trial_dir(tmp_path, "ok")
    trial_dir(tmp_path, "dup")  # same role, variant, seed and ablation as ok/
    (trial_dir(tmp_path, "torn") / "trial.json").write_text('{"result": {"role": "verif')
    trial_dir(tmp_path, "role", seed=1, role="critic")
    trial_dir(tmp_path, "seed", seed="a")
    (trial_dir(tmp_path, "noitems", seed=2) / "eval_items.json").unlink()
    (trial_dir(tmp_path, "baditems", seed=3) / "eval_items.json").write_text('{"items": ')
    res = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    out = res.output
    assert "6 problem(s)" in out, out
    for needle in ("trial.json: same role, variant, seed and ablation", "torn/trial.json: not a trial.json",
                   "result.role: 'critic'", "result.seed: 'a'", "noitems/trial.json: result.eval_items_path",
                   "baditems/eval_items.json: not readable JSON"):
        assert needle in out, needle
    assert not (tmp_path / "rep").exists()
    res = CliRunner().invoke(app, ["report", str(tmp_path / "ok"), "--out", str(tmp_path / "ok" / "trial.json")])
    assert res.exit_code == 2 and "is a file" in res.output


def test_report_finds_items_of_a_moved_trial_folder(tmp_path):
    d = trial_dir(tmp_path, "moved", eval_items_path="/cluster/runs/gone/eval_items.json")
    res = CliRunner().invoke(app, ["report", str(d), str(tmp_path), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["trials"] == 1  # the folder named twice counts once
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert results["roles"]["verifier"]["variants"]["baseline"]["metrics"]["accuracy"]["n"] == 20


def test_a_trial_without_a_metric_does_not_break_the_results(tmp_path):
    a, b = trial_dir(tmp_path, "a"), trial_dir(tmp_path, "b", variant="optimized")
    trial_dir(tmp_path, "c", seed=1)
    c2 = trial_dir(tmp_path, "d", variant="optimized", seed=1)
    items = json.loads((c2 / "eval_items.json").read_text())
    del items["items"]["accuracy"]
    (c2 / "eval_items.json").write_text(json.dumps(items))
    trials = [json.loads((d / "trial.json").read_text())["result"] for d in (a, b, tmp_path / "c", c2)]
    res = build_results(trials, n_boot=100)["roles"]["verifier"]
    assert res["comparison"]["accuracy"]["n"] == 20  # the pair that has it on both sides
    assert res["variants"]["optimized"]["metrics"]["uplift_vs_majority"]["n"] == 20


@pytest.mark.parametrize("field, value, says", [
    ("verifier/accuracy", "high", 'result.verifier/accuracy: "high" is not a number'),
    ("verifier/accuracy", True, "result.verifier/accuracy: true is not a number"),
    ("sft/last_loss", [1.0], "result.sft/last_loss: [1.0] is not a number"),
    ("dpo/first_loss", float("inf"), "result.dpo/first_loss: inf is not a finite number"),
    ("wall_s", "long", 'result.wall_s: "long" is not a number'),
    ("loss_curve", [{"phase": "sft", "step": 1, "loss": "x"}], 'result.loss_curve[0].loss: "x" is not a number'),
    ("loss_curve", [{"phase": "sft", "loss": 1.0}], "result.loss_curve[0].step: is not measured"),
    ("started_at", "yesterday", "result.started_at: 'yesterday' is not a timestamp"),
])
def test_a_metric_that_is_not_a_number_is_a_problem_naming_file_and_metric(tmp_path, field, value, says):
    trial_dir(tmp_path, "ok", variant="optimized")
    bad = trial_dir(tmp_path, "bad", **{field: value})
    res = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{bad / 'trial.json'}: {says}" in json.loads(res.stdout)["error"], res.output
    assert not (tmp_path / "rep").exists()  # nothing plotted, nothing written


def test_not_measured_metrics_and_text_fields_are_accepted(tmp_path):
    trial_dir(tmp_path, "a", **{"verifier/false_stop_rate": float("nan"), "dpo/last_loss": None,
                               "sft/prepared": "loaded"})
    trial_dir(tmp_path, "b", variant="optimized")
    res = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 0, res.output


def _report(tmp_path, *args) -> tuple[dict, dict, str]:
    res = CliRunner().invoke(app, ["report", *map(str, args), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), json.loads((tmp_path / "rep" / "manifest.json").read_text()), res.stderr


def test_report_wall_time_is_the_trials_span_or_null_and_said_so(tmp_path):
    t = "2026-01-01T00:0{}:{}.000Z"
    trial_dir(tmp_path / "timed", "a", started_at=t.format(0, "00"), finished_at=t.format(1, "00"), wall_s=60.0)
    trial_dir(tmp_path / "timed", "b", variant="optimized", started_at=t.format(0, "30"),
              finished_at=t.format(2, "00"), wall_s=90.0)
    summary, man, _ = _report(tmp_path, tmp_path / "timed")
    assert man["wall_s"] == summary["wall_s"] == 120.0 and man["trial_wall_s"] == 150.0  # side by side
    assert "started_at/finished_at" in man["wall_s_source"]
    assert "started_at/finished_at: first start to last end" in (tmp_path / "rep" / "report.html").read_text()

    one = trial_dir(tmp_path / "one", "a", wall_s=42.5)
    _, man, _ = _report(tmp_path, one)
    assert man["wall_s"] == 42.5 and man["wall_s_source"] == "the one trial's own wall_s"

    trial_dir(tmp_path / "untimed", "a")
    trial_dir(tmp_path / "untimed", "b", variant="optimized", started_at=t.format(0, "00"),
              finished_at=t.format(1, "00"))
    summary, man, _ = _report(tmp_path, tmp_path / "untimed")
    assert man["wall_s"] is None and summary["wall_s"] is None and man["trial_wall_s"] == 2.0
    assert man["wall_s_source"].startswith("unknown: 1 of 2 trials recorded no started_at/finished_at")
    res = CliRunner().invoke(app, ["report", str(tmp_path / "untimed"), "--out", str(tmp_path / "rep2")])
    assert res.exit_code == 0 and "wall time unknown: 1 of 2 trials" in res.stderr, res.output
