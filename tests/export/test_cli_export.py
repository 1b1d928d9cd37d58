"""The commands: ``export``, ``push``, ``fetch``, ``redact`` (exit codes and --json summaries), and
every YAML under configs/export and configs/storage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tests.export.conftest import PII
from tracebridge.cli.app import app
from tracebridge.config import ConfigError, load_config
from tracebridge.export.config import ExportConfig, StorageConfig

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _json(res) -> dict:  # type: ignore[no-untyped-def]
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.stdout)


def test_export_push_fetch_commands(mixed_traces: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["export", str(mixed_traces), "split.salt=x", "--out", str(tmp_path / "b"),
                              "--config", str(ROOT / "configs/export/default.yaml"), "--json"])
    doc = _json(res)
    assert res.exit_code == 0 and doc["passed"] and doc["counts"]["read"] == 5
    assert doc["data_governance"]["pii_scan"] == "clean"
    store = (tmp_path / "store").as_uri()
    res = runner.invoke(app, ["push", str(tmp_path / "b"), store, "--json"])  # the --out folder resolves
    assert res.exit_code == 0 and _json(res)["bundle_id"] == doc["bundle_id"]
    res = runner.invoke(app, ["fetch", store, "--out", str(tmp_path / "pulled"), "--json"])
    assert res.exit_code == 0 and _json(res)["verified"] is True
    res = runner.invoke(app, ["export", str(mixed_traces), "split.ratios.train=2", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "must sum to 1" in res.output


def test_export_with_no_test_share_needs_a_family_of_the_traces_fixed_to_test(sim_traces: Path, tmp_path: Path) -> None:
    """split.ratios.test=0 is refused at load (exit 2, nothing exported); with split.assign fixing a family of
    the traces to test that family is the test split; fixing only families the traces lack fails the
    export (exit 1) naming the keys instead of writing a bundle trials cannot evaluate."""
    base = ["export", str(sim_traces), "split.ratios.train=0.9", "split.ratios.validation=0.1", "split.ratios.test=0"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "a"), "--json"])
    assert res.exit_code == 2 and "split.ratios.test=0: no run would be in the test split" in res.output
    assert not (tmp_path / "a").exists()
    doc = _json(runner.invoke(app, [*base, "split.assign.calc=test", "--out", str(tmp_path / "b"), "--json"]))
    assert doc["passed"] is True
    report = json.loads((Path(doc["path"]) / "report.json").read_text())
    assert [f for f, s in report["split"]["assignment"].items() if s == "test"] == ["calc"]
    res = runner.invoke(app, [*base, "split.assign.arith=test", "--out", str(tmp_path / "c"), "--json"])
    doc = _json(res)
    assert res.exit_code == 1 and doc["passed"] is False
    assert any(f.startswith("split.ratios.test=0 and split.assign fixes arith to test, but the traces hold none")
               for f in doc["failures"]), doc["failures"]


def test_export_says_why_runs_were_quarantined_and_where(mixed_traces: Path, tmp_path: Path) -> None:
    """"quarantined 1" alone left the user to find out which rule and which file: the summary names
    the rules and the bundle's quarantine.jsonl, in text and --json."""
    doc = _json(runner.invoke(app, ["export", str(mixed_traces), "--out", str(tmp_path / "b"), "--json"]))
    q = doc["quarantine"]
    assert doc["counts"]["quarantined"] == 1 and q["by_rule"] == {"bad_json": 1}
    assert q["file"] == str(Path(doc["path"]) / "quarantine.jsonl") and Path(q["file"]).stat().st_size
    res = runner.invoke(app, ["export", str(mixed_traces), "--out", str(tmp_path / "c")])
    assert res.exit_code == 0 and f"quarantined by rule: bad_json 1 (see {tmp_path / 'c'}" in res.output
    assert "quarantine.jsonl: run, rule, file:line:field)" in res.output


def test_export_of_a_folder_without_runs_says_none_were_found(mixed_traces: Path, tmp_path: Path) -> None:
    """An empty folder, or one level above the trace root, said "no run passed curation" though no run
    was read or quarantined: the user looked for quarantine reasons that did not exist."""
    root = tmp_path / "empty"
    root.mkdir()
    res = runner.invoke(app, ["export", str(root), "--out", str(tmp_path / "b"), "--json"])
    doc = _json(res)
    assert res.exit_code == 1 and doc["counts"]["read"] == 0
    assert doc["failures"] == [(f"no runs found under {root} (a run is a folder holding events.jsonl or "
                               "session.json: give the folder that holds the run folders, or one run's folder)")]
    outer = tmp_path / "outer"  # the runs one level down: the folder that holds them is named, before any work
    shutil.copytree(mixed_traces, outer / "traces")
    res = runner.invoke(app, ["export", str(outer), "--out", str(tmp_path / "b2"), "--json"])
    assert res.exit_code == 2 and f"its sub-folders hold runs: {outer / 'traces'} (" in json.loads(res.stdout)["error"]


def test_unredacted_bundle_push_exits_1(tmp_path: Path, mixed_traces: Path) -> None:
    res = runner.invoke(app, ["export", str(mixed_traces), "redaction.enabled=false", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["push", str(tmp_path / "b"), (tmp_path / "store").as_uri()])
    assert res.exit_code == 1 and "refusing to push an unredacted bundle" in res.output
    assert not (tmp_path / "store").exists()


def test_push_of_an_export_with_no_run_says_so(tmp_path: Path) -> None:
    """Exit 1 as before, but the reason is the empty export, not an "unredacted bundle"."""
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["export", str(tmp_path / "empty"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 1, res.output
    res = runner.invoke(app, ["push", str(tmp_path / "b"), (tmp_path / "store").as_uri(), "--json"])
    error = json.loads(res.stdout)["error"]
    assert res.exit_code == 1 and error.startswith("refusing to push a bundle with no exported run\n  no runs found under")
    assert "unredacted" not in error and not (tmp_path / "store").exists()


def test_redact_command(tmp_path: Path) -> None:
    src = tmp_path / "chat.txt"
    src.write_text(f"reach me at {PII['email']} or {PII['phone']}\nall good\n")
    res = runner.invoke(app, ["redact", str(src), "--out", str(tmp_path / "out"), "--json"])
    doc = _json(res)
    assert res.exit_code == 0 and doc["findings_total"] == 2 and doc["ok"]  # redacting what it found is no failure
    assert doc["files"][0]["findings"] == {"EMAIL": {"line": 1}, "PHONE": {"line": 1}}
    out = (tmp_path / "out" / "chat.redacted.txt").read_text()
    assert out == "reach me at <EMAIL_1> or <PHONE_1>\nall good\n"
    assert PII["email"] not in res.stdout
    res = runner.invoke(app, ["redact", str(src), "redaction.detectors=[phone]", "--check"])
    assert res.exit_code == 1 and "PHONE×1" in res.output and "EMAIL" not in res.output
    res = runner.invoke(app, ["redact", str(src), "--check", "--json"])
    assert res.exit_code == 1 and _json(res)["ok"] is False and _json(res)["check"]
    res = runner.invoke(app, ["redact", str(tmp_path / "out" / "chat.redacted.txt"), "--check"])
    assert res.exit_code == 0  # pass 2 over a redacted copy finds nothing


def test_redact_runs_files_of_the_same_name_keeps_every_copy(tmp_path: Path) -> None:
    """Every run's file is called events.jsonl: redacting two runs wrote both copies to
    out/events.redacted.jsonl, the second over the first, and said nothing."""
    srcs = []
    for run, who in (("run-a", PII["email"]), ("run-b", PII["phone"])):
        (tmp_path / "traces" / run).mkdir(parents=True)
        srcs.append(tmp_path / "traces" / run / "events.jsonl")
        srcs[-1].write_text(json.dumps({"note": f"from {run}: {who}"}) + "\n")
    out = tmp_path / "out"
    doc = _json(runner.invoke(app, ["redact", *map(str, srcs), str(srcs[0]), "--out", str(out), "--json"]))
    assert [f["file"] for f in doc["files"]] == [str(s) for s in srcs]  # the file given twice is redacted once
    copies = [Path(f["out"]) for f in doc["files"]]
    assert copies == [out / "run-a" / "events.redacted.jsonl", out / "run-b" / "events.redacted.jsonl"]
    assert [json.loads(c.read_text())["note"] for c in copies] == ["from run-a: <EMAIL_1>", "from run-b: <PHONE_1>"]
    one = _json(runner.invoke(app, ["redact", str(srcs[0]), "--out", str(tmp_path / "one"), "--json"]))
    assert one["files"][0]["out"] == str(tmp_path / "one" / "events.redacted.jsonl")  # unique names stay flat


def test_redact_takes_an_existing_file_with_an_equals_sign_as_a_file_not_an_override(tmp_path: Path) -> None:
    """`a=b` arguments are config overrides unless a file of that name exists: `chat=2026.txt` was read
    as an override (a config error), and an override key must still work beside it."""
    src = tmp_path / "chat=2026.txt"
    src.write_text(f"write to {PII['email']}\n")
    doc = _json(runner.invoke(app, ["redact", str(src), "redaction.detectors=[email]", "--out", str(tmp_path / "o"),
                                    "--json"]))
    assert [f["file"] for f in doc["files"]] == [str(src)]
    assert "<EMAIL_1>" in Path(doc["files"][0]["out"]).read_text()


@pytest.mark.parametrize("path", sorted((ROOT / "configs/export").glob("*.yaml"))
                         + sorted((ROOT / "configs/storage").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    assert path.read_text().startswith("#")  # a header that says how to run it
    schema = ExportConfig if path.parent.name == "export" else StorageConfig
    load_config(schema, path)


def test_config_errors_name_every_problem() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(ExportConfig, None, ["redaction.detectors=[emial]", "views.verifier_sft_target=best",
                                          "split.ratios.train=0.5"])
    msg = str(err.value)
    assert "emial" in msg and "verifier_sft_target" in msg and "must sum to 1" in msg
    with pytest.raises(ConfigError, match="credential"):
        load_config(StorageConfig, None, ["options.aws_secret_access_key=x"])
