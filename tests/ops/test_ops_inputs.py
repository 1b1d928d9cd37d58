"""Operations commands given the wrong input: exit 2 (a usage error, README "Exit codes") naming the file and
what was wrong in it, before any work, never a failed check (exit 1) or a failed cycle the review counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ops.test_cli import run
from tests.ops.test_promotion import gate_report


@pytest.mark.parametrize("text, says", [
    ("not json {", "cannot read gate report: not valid JSON: invalid literal, expected 'null': line 1 column 1"),
    ('{\n  "passed": true,\n  oops\n}\n', "not valid JSON: unexpected character, expected a string key: line 3 column 3"),
    ("[1, 2]", "not a gate report (a JSON object; run tracebridge gate --out)"),
    ('{"a": 1}', ":passed: not a gate report"),
])
def test_promote_of_a_file_that_is_no_gate_report_exits_2(tmp_path: Path, text: str, says: str) -> None:
    # before: exit 1, as if a gate had refused the candidate
    report = tmp_path / "gate.json"
    report.write_text(text)
    r = run("promote", "--report", report, "--state", tmp_path / "state", "--json")
    assert r.exit_code == 2, r.output
    doc = json.loads(r.stdout)
    assert doc["promoted"] is False and doc["error"].startswith(str(report)) and says in doc["error"], doc
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("edit, says", [
    ({"passed": "false"}, ":passed: 'false', must be true or false"),  # a string is true: it promoted, exit 0
    ({"policies": {"baseline": "v1"}}, ":policies.candidate: None, must be a policy id"),  # made null the active policy
    ({"policies": ["v2", "v1"]}, ":policies: ['v2', 'v1'], must be an object"),  # a traceback
    ({"checks": [1]}, ":checks[0]: 1, must be an object with a name and a status"),  # a traceback
])
def test_promote_of_a_gate_report_with_fields_of_the_wrong_type_exits_2(tmp_path: Path, edit: dict,
                                                                         says: str) -> None:
    # the id is made again, as a writer with these types would have made it: the content check alone let them by
    from tracebridge.ops.gates import gate_report_id

    report = gate_report(tmp_path / "gate.json", "v2", "v1")
    rep = {**json.loads(report.read_text()), **edit}
    report.write_text(json.dumps({**rep, "report_id": gate_report_id(rep)}))
    r = run("promote", "--report", report, "--state", tmp_path / "state", "--json")
    assert r.exit_code == 2, r.output
    doc = json.loads(r.stdout)
    assert doc["promoted"] is False and doc["error"].startswith(f"{report}{says}"), doc
    assert not (tmp_path / "state" / "history.jsonl").exists()


def test_promote_of_a_folder_says_so(tmp_path: Path) -> None:
    r = run("promote", "--report", tmp_path, "--state", tmp_path / "state", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"].startswith(f"--report {tmp_path}: a folder"), r.output


def test_promote_of_a_gate_that_failed_is_still_a_refusal(tmp_path: Path) -> None:
    r = run("promote", "--report", gate_report(tmp_path / "g.json", "v2", "v1", passed=False),
            "--state", tmp_path / "state", "--json")
    assert r.exit_code == 1 and "gate did not pass" in json.loads(r.stdout)["error"], r.output


def _shadow_yaml(tmp_path: Path, **shadow: object) -> Path:
    cfg = {"artifacts_dir": str(tmp_path / "art"), "promotion": {"state_dir": str(tmp_path / "state")},
           "shadow": {"work_dir": str(tmp_path / "work"), "optimize": {"mode": "off"}, "runtime_hook": False,
                      "retention": {"enabled": False, "pin_configs": []},
                      **{k: str(tmp_path / "mem" / v) for k, v in (("feedback_ledger", "l.jsonl"),
                         ("feedback_mapping", "m.json"), ("feedback_harvest_log", "log.jsonl"),
                         ("chunk_registry", "reg.jsonl"))}, **shadow}}
    path = tmp_path / "shadow.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


@pytest.mark.parametrize("shadow, says", [
    ({"sources": ["{t}/no-such-home"]}, "shadow.sources[0]={t}/no-such-home: no such file or folder (an OpenClaw"),
    ({"sources": [], "feedback_updates": ["{t}/dumps/u.json"]},
     "shadow.feedback_updates[0]={t}/dumps/u.json: no such file or folder"),
    ({"sources": [], "feedback_bot_id": "1", "feedback_bots": [{"bot_id": "2", "updates": ["{t}/u2.json"]}]},
     "shadow.feedback_bots[0].updates[0]={t}/u2.json: no such file or folder"),
    ({"sources": [], "chunk_policy_doc": "{t}/docs/policy.md"},  # a cycle run outside the checkout: it ran whole
     "shadow.chunk_policy_doc={t}/docs/policy.md: no such file or folder (the chunk label policy"),
])
def test_shadow_cycle_with_an_input_path_that_is_not_there_exits_2_before_the_cycle(tmp_path: Path, shadow: dict,
                                                                                     says: str) -> None:
    # before: the import and feedback steps failed on it and a failed cycle was written (exit 1), which the
    # review counts as a cycle that did not succeed
    shadow = json.loads(json.dumps(shadow).replace("{t}", str(tmp_path)))
    config = _shadow_yaml(tmp_path, **shadow)
    r = run("shadow-cycle", "--config", config, "--json")
    assert r.exit_code == 2, r.output
    assert json.loads(r.stdout)["error"].startswith(f"{config}: {says.format(t=tmp_path)}"), r.stdout
    assert not (tmp_path / "art").exists() and not (tmp_path / "work").exists()


def test_a_source_the_cycle_does_not_read_is_not_checked(tmp_path: Path) -> None:
    from tracebridge.config import load_config
    from tracebridge.ops.config import OpsConfig
    from tracebridge.ops.cycle import check_setup
    from tracebridge.ops.shadow_steps import STEPS

    cfg = load_config(OpsConfig, _shadow_yaml(tmp_path, sources=[str(tmp_path / "gone")]),
                      ["shadow.skip=[import,feedback]"])
    check_setup(cfg, STEPS)  # neither step that reads it runs
    with pytest.raises(ValueError, match="shadow.sources"):
        check_setup(load_config(OpsConfig, _shadow_yaml(tmp_path, sources=[str(tmp_path / "gone")])), STEPS)


def test_rollback_with_no_state_folder_leaves_none_behind(tmp_path: Path) -> None:
    # before: the refused rollback made the folder (and its lock file) at a mistyped --state
    state = tmp_path / "no-such-state"
    r = run("rollback", "--state", state, "--json")
    assert r.exit_code == 1 and "nothing to roll back to" in json.loads(r.stdout)["error"], r.output
    assert not state.exists()


def test_gate_out_under_a_file_exits_2_before_the_gate(tmp_path: Path) -> None:
    # before: the gate ran, then write_gate_report died with a FileExistsError traceback (exit 1)
    from tests.ops.test_cli import _samples

    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "gate.json"
    r = run("gate", "--samples", _samples(tmp_path, "s.jsonl"), "--out", out, "--json")
    assert r.exit_code == 2, r.output
    assert json.loads(r.stdout)["error"] == f"--out {out}: {tmp_path / 'afile'} is a file, not a folder"


def test_gate_json_lists_the_skipped_sessions(tmp_path: Path) -> None:
    # before: --json gave only their counts; the text output listed each place and reason
    from tests.ops.test_cli import _samples

    samples = _samples(tmp_path, "s.jsonl")
    samples.write_text(samples.read_text() + "not json\n")
    n = len(samples.read_text().splitlines())
    doc = json.loads(run("gate", "--samples", samples, "--json").stdout)
    assert doc["counts"]["skipped"] == 1 and doc["skipped"][0]["where"] == f"{samples}:{n}", doc["skipped"]
    assert doc["skipped"][0]["reason"].startswith("invalid: invalid JSON")


def test_monthly_review_out_under_a_file_exits_2_before_the_review(tmp_path: Path) -> None:
    # before: a NotADirectoryError traceback once the review was done
    (tmp_path / "afile").write_text("x")
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("")
    out = tmp_path / "afile" / "monthly"
    r = run("ops", "monthly-review", "agree_with=[]", f"monthly.ledger={ledger}", "--month", "2026-02", "--out", out,
            "--json")
    assert r.exit_code == 2, r.output
    assert json.loads(r.stdout)["error"] == f"--out {out}: {tmp_path / 'afile'} is a file, not a folder"


@pytest.mark.parametrize("command", [["shadow-cycle"], ["review"], ["shadow-prune"], ["feedback", "labels"],
                                     ["ops", "monthly-review"]])
def test_a_config_that_is_a_folder_is_named_as_one(tmp_path: Path, command: list[str]) -> None:
    # before: "no such config file", which sent the user looking for a typo in a path that is there
    r = run(*command, "--config", tmp_path, "--json")
    assert r.exit_code == 2 and f"{tmp_path}: a folder, not a config file" in json.loads(r.stdout)["error"], r.output


def test_monthly_review_json_names_the_files_it_wrote(tmp_path: Path) -> None:
    # before: --json printed the report without saying where --out put it (feedback audit gives "files")
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("")
    out = tmp_path / "monthly"
    args = ["ops", "monthly-review", "agree_with=[]", f"monthly.ledger={ledger}", "--month", "2026-02", "--json"]
    doc = json.loads(run(*args, "--out", out).stdout)
    assert doc["files"] == {"json": str(out / "monthly-2026-02.json"), "markdown": str(out / "monthly-2026-02.md")}
    assert json.loads((out / "monthly-2026-02.json").read_text())["month"] == "2026-02"
    assert json.loads(run(*args).stdout)["files"] is None
