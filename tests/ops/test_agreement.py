"""Folders several ops configs name (``tracebridge.ops.agreement``): phase2.yaml repeats shadow.yaml's
``shadow.work_dir``, weekly.yaml its feedback files; edited in one file only, phase 2 read another replay
folder and the weekly export another ledger, silently. Now ``ops phase2-report`` and ``ops weekly`` exit 2
before any work, naming both files, keys and values, and retention refuses to remove anything."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ops.test_retention import ROOT, _cli, _overrides
from tracebridge.config import load_config
from tracebridge.ops.agreement import MONTHLY_KEYS, PHASE2_KEYS, WEEKLY_KEYS, disagreements
from tracebridge.ops.config import OpsConfig

SHADOW_YAML = ROOT / "configs/ops/shadow.yaml"


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _shadow(tmp_path: Path, work: str = "work", ledger: str = "ledger.jsonl") -> Path:
    return _yaml(tmp_path / "shadow.yaml", f"shadow:\n  work_dir: {tmp_path / work}\n"
                 f"  feedback_ledger: {tmp_path / ledger}\n  feedback_mapping: {tmp_path / 'mapping.json'}\n"
                 f"phase2:\n  out_dir: {tmp_path / 'p2'}\nweekly:\n  bundles_dir: {tmp_path / 'bundles'}\n")


def test_the_shipped_phase2_and_weekly_configs_agree_with_shadow_yaml() -> None:
    shadow = str(SHADOW_YAML)
    for name, keys in (("phase2", PHASE2_KEYS), ("weekly", WEEKLY_KEYS), ("monthly", MONTHLY_KEYS)):
        cfg = load_config(OpsConfig, ROOT / f"configs/ops/{name}.yaml")
        assert cfg.agree_with == ["configs/ops/shadow.yaml"] and (ROOT / cfg.agree_with[0]).is_file()
        assert disagreements(cfg, name, shadow, keys) == []
    # and the other way round, as retention reads them (shadow.retention.pin_configs)
    own = load_config(OpsConfig, SHADOW_YAML)
    assert [p for c in own.shadow.retention.pin_configs for p in disagreements(own, "shadow", str(ROOT / c))] == []


def test_phase2_report_refuses_a_shadow_work_dir_other_than_the_cycles(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path, work="moved")  # the user moved the cycle's work dir in shadow.yaml only
    p2 = _yaml(tmp_path / "phase2.yaml", f"agree_with: [{shadow}]\nshadow:\n  work_dir: {tmp_path / 'work'}\n"
               f"phase2:\n  out_dir: {tmp_path / 'p2'}\n")
    r = _cli("ops", "phase2-report", "--config", p2, "--json")
    assert r.exit_code == 2
    err = json.loads(r.stdout)["error"]
    assert err == (f"{shadow} sets shadow.work_dir={tmp_path / 'moved'} but {p2} has shadow.work_dir={tmp_path / 'work'}: "
                   "the commands run with each would use another place for the shadow cycle's work folder (phase 2 "
                   "reads its replay bundles); set the same shadow.work_dir in both")
    assert not (tmp_path / "p2").exists()  # refused before any work
    # an override is named as one; the same folder passes the check (then: no replay bundle there yet)
    r = _cli("ops", "phase2-report", "--config", p2, f"phase2.out_dir={tmp_path / 'other'}", "--json")
    assert r.exit_code == 2 and f"but {p2} with the overrides given has phase2.out_dir={tmp_path / 'other'}" in r.stdout
    r = _cli("ops", "phase2-report", "--config", p2, f"shadow.work_dir={tmp_path / 'moved'}", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"].startswith("no bundle: ")
    r = _cli("ops", "phase2-report", "--config", p2, "agree_with=[]", "--json")  # a one-off run opts out
    assert r.exit_code == 2 and json.loads(r.stdout)["error"].startswith("no bundle: ")


def test_weekly_refuses_feedback_files_other_than_the_shadow_cycles_and_lists_each(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path)
    (tmp_path / "traces").mkdir()
    weekly = _yaml(tmp_path / "weekly.yaml", f"agree_with: [{shadow}]\nweekly:\n  traces: {tmp_path / 'traces'}\n"
                   f"  bundles_dir: {tmp_path / 'bundles'}\n  artifacts_dir: {tmp_path / 'art'}\n"
                   f"  feedback_ledger: {tmp_path / 'old-ledger.jsonl'}\n  feedback_mapping: {tmp_path / 'm.json'}\n")
    r = _cli("ops", "weekly", "--config", weekly, "--dry-run")
    assert r.exit_code == 2 and not (tmp_path / "art").exists()
    lines = r.output.splitlines()
    assert lines[0] == (f"error: {shadow} sets shadow.feedback_ledger={tmp_path / 'ledger.jsonl'} but {weekly} has "
                        f"weekly.feedback_ledger={tmp_path / 'old-ledger.jsonl'}: the commands run with each would use "
                        "another place for the reaction ledger the shadow cycle harvests into; set "
                        "weekly.feedback_ledger and shadow.feedback_ledger to the same path")
    assert f"{shadow} sets shadow.feedback_mapping={tmp_path / 'mapping.json'}" in lines[1] and len(lines) == 2
    # the chunk registry shadow.yaml does not set is not compared; the same paths (or no ledger) pass
    fixed = [f"weekly.feedback_ledger={tmp_path / 'ledger.jsonl'}", f"weekly.feedback_mapping={tmp_path / 'mapping.json'}"]
    assert _cli("ops", "weekly", "--config", weekly, *fixed, "--dry-run").exit_code == 0
    assert _cli("ops", "weekly", "--config", weekly, "weekly.feedback_ledger=null", fixed[1], "--dry-run").exit_code == 0


def test_weekly_refuses_a_legacy_bot_other_than_the_shadow_cycles(tmp_path: Path) -> None:
    """Several bots: the weekly export reads the rows of no bot as weekly.feedback_legacy_bot_id's; the shadow
    cycle harvests (and labels) them as shadow.feedback_legacy_bot_id's. Bot ids compare as written."""
    shadow = _yaml(tmp_path / "shadow.yaml", _shadow(tmp_path).read_text().replace(
        "shadow:\n", "shadow:\n  feedback_bot_id: '222'\n  feedback_legacy_bot_id: '111'\n"))
    (tmp_path / "traces").mkdir()
    (tmp_path / "ledger.jsonl").write_text("")
    weekly = _yaml(tmp_path / "weekly.yaml", f"agree_with: [{shadow}]\nweekly:\n  traces: {tmp_path / 'traces'}\n"
                   f"  bundles_dir: {tmp_path / 'bundles'}\n  artifacts_dir: {tmp_path / 'art'}\n"
                   f"  feedback_ledger: {tmp_path / 'ledger.jsonl'}\n  feedback_mapping: {tmp_path / 'mapping.json'}\n")
    r = _cli("ops", "weekly", "--config", weekly, "--dry-run")
    assert r.exit_code == 2 and not (tmp_path / "art").exists()
    assert r.output.splitlines() == [
        (f"error: {shadow} sets shadow.feedback_legacy_bot_id=111 but {weekly} has weekly.feedback_legacy_bot_id=: "
        "the commands run with each would use another value for the bot of the reaction rows that name none "
        "(their labels); set weekly.feedback_legacy_bot_id and shadow.feedback_legacy_bot_id to the same value")]
    r = _cli("ops", "weekly", "--config", weekly, "weekly.feedback_legacy_bot_id=111", "--dry-run", "--json")
    assert r.exit_code == 0 and "feedback.legacy_bot_id=111" in r.output  # the export's overrides carry it


def test_monthly_review_refuses_files_other_than_the_shadow_cycles(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path)
    for name in ("ledger.jsonl", "old-ledger.jsonl"):
        (tmp_path / name).write_text(json.dumps({"time": "2026-02-03T10:00:00Z", "emoji": "👍", "change": "added"}) + "\n")
    (tmp_path / "mapping.json").write_text(json.dumps({"mapping": {"👍": 1}}))
    monthly = _yaml(tmp_path / "monthly.yaml", f"agree_with: [{shadow}]\nmonthly:\n"
                    f"  ledger: {tmp_path / 'old-ledger.jsonl'}\n  mapping: {tmp_path / 'mapping.json'}\n")
    args = ("ops", "monthly-review", "--config", monthly, "--month", "2026-02", "--out", tmp_path / "out")
    r = _cli(*args)
    assert r.exit_code == 2 and not (tmp_path / "out").exists()
    assert r.output.splitlines() == [
        (f"error: {shadow} sets shadow.feedback_ledger={tmp_path / 'ledger.jsonl'} but {monthly} has "
        f"monthly.ledger={tmp_path / 'old-ledger.jsonl'}: the commands run with each would use another place for "
        "the reaction ledger the shadow cycle harvests into; set monthly.ledger and shadow.feedback_ledger to the same path")]
    # an override is named as one; the cycle's ledger passes; agree_with=[] reviews other files once
    r = _cli(*args, f"monthly.mapping={tmp_path / 'm2.json'}")
    assert r.exit_code == 2 and f"but {monthly} with the overrides given has monthly.mapping={tmp_path / 'm2.json'}" in r.output
    assert _cli(*args, f"monthly.ledger={tmp_path / 'ledger.jsonl'}").exit_code == 0
    assert _cli(*args, "agree_with=[]").exit_code == 0 and (tmp_path / "out" / "monthly-2026-02.json").is_file()


def test_an_agree_with_config_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    p2 = _yaml(tmp_path / "phase2.yaml", f"agree_with: [{tmp_path / 'gone.yaml'}]\n")
    r = _cli("ops", "phase2-report", "--config", p2, "--json")
    err = json.loads(r.stdout)["error"]
    assert r.exit_code == 2 and err.startswith(f"agree_with: {tmp_path / 'gone.yaml'}") and "agree_with=[]" in err


def test_retention_removes_nothing_while_a_pin_config_names_another_shadow_work_dir(tmp_path: Path) -> None:
    """The prune's own check (shadow.retention.pin_configs) is the same helper, with the new keys."""
    p2 = _yaml(tmp_path / "phase2.yaml", f"shadow:\n  work_dir: {tmp_path / 'old-work'}\n")
    r = _cli("shadow-prune", "--config", SHADOW_YAML, *_overrides(tmp_path, f"shadow.retention.pin_configs=[{p2}]"),
             "--json")
    rep = json.loads(r.stdout)
    assert r.exit_code == 1 and rep["items"] == []
    assert rep["problems"][0].startswith(f"shadow.retention.pin_configs: {p2} sets shadow.work_dir={tmp_path / 'old-work'} "
                                         f"but {SHADOW_YAML} with the overrides given has shadow.work_dir="
                                         f"{tmp_path / 'work'}")  # the file, not "this config"


def test_paths_compare_as_places_and_only_keys_both_name(tmp_path: Path) -> None:
    other = _yaml(tmp_path / "o.yaml", "shadow:\n  work_dir: ./w/../w\npromotion:\n  state_dir: elsewhere\n")
    cfg = load_config(OpsConfig, None, ["shadow.work_dir=w"])
    assert disagreements(cfg, "own", str(other), PHASE2_KEYS) == []  # one folder, two spellings; state_dir not read
    (problem,) = disagreements(cfg, "own", str(other))  # every pair: the prune's way
    assert problem.startswith(f"{other} sets promotion.state_dir=elsewhere but own has promotion.state_dir=state/policy:")
