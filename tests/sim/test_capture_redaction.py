"""Seed 004 risk 2: the simulator's collection redacts at capture (pass 1) by default; session.json
records the pass and the export's report counts it, so a bundle shows both passes."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.config import ConfigError, load_config
from tracebridge.curate.redact import capture_redactor
from tracebridge.export.pipeline import export_traces
from tracebridge.sim import episode
from tracebridge.sim.config import CollectConfig

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "collect" / "smoke.yaml"
PII = {"EMAIL": "jane.doe@example.org", "PHONE": "+44 20 7946 0958"}
SMALL = ["workers=1", "families=[calc,docs]", "seeds.fixed=[0]"]  # 2 families × 2 mixes × 2 profiles × 1 seed


class _Leaky:
    """A goal family whose goals carry personal data (the simulator's own goals carry none)."""

    def __init__(self, family: Any) -> None:
        self._family = family
        self.name = family.name

    def __getattr__(self, key: str) -> Any:
        return getattr(self._family, key)

    def generate(self, rng: random.Random, sandbox: Any, *, unsatisfiable: bool) -> Any:
        task = self._family.generate(rng, sandbox, unsatisfiable=unsatisfiable)
        return dataclasses.replace(task, goal=f"{task.goal} Mail {PII['EMAIL']} or call {PII['PHONE']}.")


@pytest.fixture
def leaky(monkeypatch: pytest.MonkeyPatch) -> None:
    real = episode.get_family
    monkeypatch.setattr(episode, "get_family", lambda name: _Leaky(real(name)))


def _collect(out: Path, *overrides: str, n: int = 8) -> list[Path]:
    res = CliRunner().invoke(app, ["collect", str(SMOKE), *SMALL, *overrides, "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    runs = sorted(p for p in out.iterdir() if (p / "session.json").is_file())
    assert len(runs) == n
    return runs


def test_collect_redacts_planted_pii_at_capture_and_records_the_pass(tmp_path: Path, leaky: None) -> None:
    runs = _collect(tmp_path / "on")
    policy = capture_redactor().policy
    for run in runs:
        blob = (run / "events.jsonl").read_bytes() + (run / "session.json").read_bytes()
        assert not [v for v in PII.values() if v.encode() in blob], run.name
        events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
        goal = next(e["payload"]["goal"] for e in events if e["event_type"] == "planner_input")
        assert "Mail <EMAIL_1> or call <PHONE_1>." in goal  # the text around the values is kept
        gov = json.loads((run / "session.json").read_text())["data_governance"]
        assert gov["redaction_policy"] == policy and gov["pii_scan"] == "findings"
        (capture,) = gov["passes"]
        assert capture["stage"] == "capture" and capture["policy"] == policy
        assert capture["findings"]["EMAIL"] >= 1 and capture["findings"]["PHONE"] >= 1

    bundle = export_traces(tmp_path / "on", tmp_path / "bundle_on")
    stages = {p["stage"]: p for p in bundle.report["redaction"]["passes"]}
    assert stages["capture"]["runs"] == 8 and stages["capture"]["policies"] == {policy: 8}
    assert stages["capture"]["findings_by_type"]["EMAIL"] >= 8
    assert stages["curation:pass1"]["runs"] == 0  # nothing left for export's pass 1
    assert stages["curation:pass2"]["runs_scanned"] == 8 and stages["curation:pass2"]["runs_blocked"] == 0
    assert bundle.passed and bundle.manifest.governance["passed_both"] is True
    assert not [v for v in PII.values() for p in bundle.path.rglob("*.jsonl") if v.encode() in p.read_bytes()]


def test_capture_redact_false_writes_raw_traces_and_export_redacts(tmp_path: Path, leaky: None) -> None:
    runs = _collect(tmp_path / "off", "capture.redact=false")
    assert all(PII["EMAIL"].encode() in (r / "events.jsonl").read_bytes() for r in runs)
    assert all(json.loads((r / "session.json").read_text())["data_governance"]["passes"] == [] for r in runs)
    stages = {p["stage"]: p for p in export_traces(tmp_path / "off", tmp_path / "b").report["redaction"]["passes"]}
    assert stages["capture"]["runs"] == 0 and stages["curation:pass1"]["runs"] == 8


def test_capture_terms_redact_user_terms_and_bad_keys_are_reported(tmp_path: Path) -> None:
    runs = _collect(tmp_path / "t", "families=[calc]", "capture.terms.STEP=[submit the answer]", n=4)
    texts = [(r / "events.jsonl").read_text() for r in runs]
    assert all("<STEP_1>" in t and "submit the answer" not in t.lower() for t in texts)
    assert all('"submit_answer"' in t for t in texts)  # whole words only: the tool name is kept
    with pytest.raises(ConfigError) as exc:
        load_config(CollectConfig, SMOKE, ["capture.detectors=[emial]", "capture.terms.bad=[x]"])
    assert "capture.detectors=emial" in str(exc.value) and "capture.terms.bad" in str(exc.value)
