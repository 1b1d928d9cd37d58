"""``tracebridge import openclaw``: JSON summary, validation, overrides, exit codes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.importers.conftest import HOME
from tracebridge.cli import app


def test_import_command_json_validate_and_incremental(tmp_path):
    out = tmp_path / "traces"
    r = CliRunner().invoke(app, ["import", "openclaw", str(HOME), "--out", str(out), "--validate", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["read"], doc["accepted"], doc["quarantined"]) == (49, 43, 6) and doc["reconciles"] is True
    assert doc["validation"]["passed"] is True and doc["validation"]["lineage_valid_pct"] >= 98.0
    va = doc["validation"]  # each problem also structured, as validate --json lists them
    assert va["problems"] and [f"{e['file']}:{e['line']}: {e['field']}: {e['message']}" for e in va["problem_entries"]] \
        == va["problems"]
    assert len(doc["quarantine_samples"]) == 6 and doc["passed"] is True
    r = CliRunner().invoke(app, ["import", "openclaw", str(HOME), "--out", str(out), "max_listed=2", "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["files_unchanged"] == 5 and doc["events_written"] == 0


def test_import_command_bad_input(tmp_path):
    r = CliRunner().invoke(app, ["import", "openclaw", str(tmp_path / "missing"), "--out", str(tmp_path / "t")])
    assert r.exit_code == 2 and "no such file or folder" in r.output
    r = CliRunner().invoke(app, ["import", "openclaw", str(HOME), "--out", str(tmp_path / "t"), "header_scan_byts=1"])
    assert r.exit_code == 2 and "did you mean 'header_scan_bytes'" in r.output


def test_imported_sessions_export_with_the_default_config(tmp_path):
    """OpenClaw runs record no episode_end: the default export keeps them (quality.open_ended_sources)."""
    out = tmp_path / "traces"
    assert CliRunner().invoke(app, ["import", "openclaw", str(HOME), "--out", str(out)]).exit_code == 0
    r = CliRunner().invoke(app, ["export", str(out), "--out", str(tmp_path / "b"), "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0, r.output
    assert doc["counts"]["accepted"] == doc["counts"]["read"] > 0 and doc["passed"]
    # the sessions are training rows: one worker_sft row per assistant turn that called tools or answered
    assert sum(doc["rows"]["worker_sft"].values()) == 9 and sum(doc["rows"]["worker_recovery_cases/sft"].values()) == 1
    r = CliRunner().invoke(app, ["export", str(out), "--out", str(tmp_path / "c"), "quality.open_ended_sources=[]",
                                 "--json"])
    doc = json.loads(r.stdout)  # without the key, every imported run is incomplete
    assert r.exit_code != 0 and doc["counts"]["quarantined"] == doc["counts"]["read"]
