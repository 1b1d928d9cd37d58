"""Exit codes are the same contract in every command (README "Exit codes"): 0 ok, 1 the command ran
and what it checks failed, 2 a usage or config error found before any work, 3 try again later, so a
script can tell "called wrong" from "the data failed the check". A bad ``key=value`` override must
exit 2 naming the key in every command that takes overrides; collect's and export's failed checks
still exit 1. Under ``--json`` an error exit still prints one JSON document on stdout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[1]
C = ROOT / "configs"
BAD = "no_such_key=1"

# Each command that takes key=value overrides, with the arguments that get it as far as its config;
# "{tmp}" is a fresh empty folder (a trace root, a bundle, an --out parent).
COMMANDS = {
    "config show": ["config", "show", str(C / "collect/smoke.yaml"), BAD],
    "collect": ["collect", str(C / "collect/smoke.yaml"), BAD, "--out", "{tmp}/traces"],
    "export": ["export", "{tmp}", BAD, "--out", "{tmp}/bundles"],
    "redact": ["redact", "{tmp}/notes.txt", BAD, "--out", "{tmp}/redacted"],
    "push": ["push", "{tmp}", "file:///nowhere", BAD],
    "fetch": ["fetch", "file:///nowhere", BAD, "--out", "{tmp}/pulled"],
    "train": ["train", str(C / "train/cpu_tiny.yaml"), BAD, "--bundle", "{tmp}", "--out", "{tmp}/runs"],
    "eval": ["eval", "{tmp}", str(C / "train/cpu_tiny.yaml"), BAD, "--bundle", "{tmp}"],
    "submit": ["submit", str(C / "sweep/smoke.yaml"), BAD],
    "window": ["window", str(C / "sweep/smoke.yaml"), BAD, "--dry-run"],
    "gate": ["gate", "--traces", "{tmp}", "--config", str(C / "gates/default.yaml"), BAD],
    "shadow-cycle": ["shadow-cycle", "--config", str(C / "ops/shadow.yaml"), BAD],
    "shadow-prune": ["shadow-prune", "--config", str(C / "ops/shadow.yaml"), BAD],
    "ops canary-status": ["ops", "canary-status", "--config", str(C / "ops/canary.yaml"), BAD],
    "ops monthly-review": ["ops", "monthly-review", "--config", str(C / "ops/monthly.yaml"), BAD],
    "ops weekly": ["ops", "weekly", "--config", str(C / "ops/weekly.yaml"), BAD, "--dry-run"],
    "ops phase2-report": ["ops", "phase2-report", "--config", str(C / "ops/phase2.yaml"), BAD],
    "feedback harvest": ["feedback", "harvest", "--updates", "{tmp}/notes.txt", BAD],
    "feedback serve": ["feedback", "serve", BAD],
    "feedback labels": ["feedback", "labels", BAD],
    "feedback audit": ["feedback", "audit", "--day", "2026-01-01", BAD],
    "feedback mapping show": ["feedback", "mapping", "show", BAD],
    "feedback mapping init": ["feedback", "mapping", "init", BAD],
    "feedback migrate": ["feedback", "migrate", BAD],
    "import openclaw": ["import", "openclaw", "{tmp}", BAD, "--out", "{tmp}/traces"],
    "import agentlightning": ["import", "agentlightning", "{tmp}", BAD, "--out", "{tmp}/traces"],
}


def _args(args: list[str], tmp: Path) -> list[str]:
    (tmp / "notes.txt").write_text("nothing to see\n")
    return [a.replace("{tmp}", str(tmp)) for a in args]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_bad_override_exits_2_naming_the_key(name: str, tmp_path: Path) -> None:
    before = sorted(p.name for p in tmp_path.iterdir()) if tmp_path.exists() else []
    res = CliRunner().invoke(app, _args(COMMANDS[name], tmp_path))
    assert res.exit_code == 2, (name, res.exit_code, res.output)
    assert "no_such_key" in res.stderr and "unknown key" in res.stderr, (name, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), (name, res.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "notes.txt"])  # no work done


# every kind of config error, in the commands that used to exit 1 for it (as for a failed check)
CONFIG_ERRORS = {
    "unknown key": ("checks.min_verdict_shar=0.2", "did you mean"),
    "not key=value": ("workers", "overrides are key=value"),
    "bad YAML value": ("families=[calc", "not valid YAML"),
    "wrong type": ("workers=many", "workers"),
    "out of range": ("workers=-1", "must be >= 0"),
}


@pytest.mark.parametrize("kind", list(CONFIG_ERRORS))
def test_every_kind_of_config_error_exits_2_in_collect_and_config_show(kind: str, tmp_path: Path) -> None:
    override, says = CONFIG_ERRORS[kind]
    for args in (["collect", str(C / "collect/smoke.yaml"), override, "--out", str(tmp_path / "t")],
                 ["config", "show", str(C / "collect/smoke.yaml"), override]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2 and says in res.stderr, (args, res.exit_code, res.output)
    assert not (tmp_path / "t").exists()



# a value of the wrong type, in commands that stop at their config (no Ray head, no training, no export)
WRONG_TYPES = {
    "submit: scalar for a list": (["submit", str(C / "sweep/smoke.yaml"), "seeds=zero"],
                                  "seeds=zero: expected a list of integers, e.g. seeds=[0,1]"),
    "train: scalar for a list": (["train", str(C / "train/cpu_tiny.yaml"), "dpo.lora.target_modules=q_proj",
                                  "--bundle", "{tmp}", "--out", "{tmp}/runs"],
                                 ("dpo.lora.target_modules=q_proj: expected a list of strings, e.g. "
                                  "dpo.lora.target_modules=[a,b]")),
    "export: scalar for a map": (["export", "{tmp}", "views.system_prompts=hi", "--out", "{tmp}/bundles"],
                                 ("views.system_prompts=hi: expected a mapping of names to values (a string each), "
                                  "e.g. views.system_prompts.NAME=text")),
    "export: scalar for a list": (["export", "{tmp}", "views.llm_call_sources=agentlightning", "--out", "{tmp}/b"],
                                  "views.llm_call_sources=agentlightning: expected a list of strings"),
    "submit: scalar for a group": (["submit", str(C / "sweep/smoke.yaml"), "resources=3"],
                                   "resources=3: expected a group of keys (cpu, gpu,"),
    "collect: list for an integer": (["collect", str(C / "collect/smoke.yaml"), "workers=[1]", "--out", "{tmp}/t"],
                                     "workers=[1]: expected an integer, e.g. workers=3"),
    "collect: text for an integer": (["collect", str(C / "collect/smoke.yaml"), "workers=many", "--out", "{tmp}/t"],
                                     "workers=many: expected an integer"),
}


@pytest.mark.parametrize("name", list(WRONG_TYPES))
def test_a_value_of_the_wrong_type_exits_2_in_plain_words(name: str, tmp_path: Path) -> None:
    args, says = WRONG_TYPES[name]
    res = CliRunner().invoke(app, [*_args(args, tmp_path), "--json"])
    assert res.exit_code == 2, (name, res.output)
    error = json.loads(res.stdout)["error"]
    assert says in error, (name, error)
    assert not any(w in error for w in ("Node", "ListConfig", "DictConfig", "Merge error", "subclass")), error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no work done

def test_config_show_of_a_missing_or_unknown_config_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["config", "show", str(C / "collect/nope.yaml")])
    assert res.exit_code == 2 and "no such config file" in res.stderr, res.output
    (tmp_path / "x.yaml").write_text("a: 1\n")
    res = CliRunner().invoke(app, ["config", "show", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and "names no kind of config (configs/<kind>/); say which it is with --kind" in \
        res.stderr, res.output


def test_collect_tells_a_bad_call_from_a_failed_check(tmp_path: Path) -> None:
    small = [str(C / "collect/smoke.yaml"), "workers=1", "families=[calc]", "seeds.fixed=[0]"]
    runner = CliRunner()
    res = runner.invoke(app, ["collect", *small, "checks.min_verdict_share=0.9", "--out", str(tmp_path / "t"), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout[res.stdout.index("{"):])["failed_checks"], res.output
    res = runner.invoke(app, ["collect", *small, "checks.min_verdict_share=2", "--out", str(tmp_path / "u")])
    assert res.exit_code == 2 and "min_verdict_share" in res.stderr, res.output
    assert not (tmp_path / "u").exists()
    # the --out refusals come before any episode runs: usage errors too
    (tmp_path / "file").write_text("x")
    res = runner.invoke(app, ["collect", *small, "--out", str(tmp_path / "file")])
    assert res.exit_code == 2 and "is a file" in res.stderr, res.output
    (tmp_path / "t" / ".collect.ledger.jsonl").unlink()  # its runs no ledger lists (a rerun with one resumes)
    res = runner.invoke(app, ["collect", *small, "--out", str(tmp_path / "t")])
    assert res.exit_code == 2 and "would write them twice" in res.stderr, res.output


def test_export_tells_a_bad_call_from_a_failed_check(tmp_path: Path) -> None:
    from tests.conftest import record_sample_run

    root = tmp_path / "traces"
    record_sample_run(root)
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(root), "quality.max_quarantined_pct=-1",
                              "--out", str(tmp_path / "b"), "--json"])
    assert res.exit_code == 2 and "max_quarantined_pct" in res.stderr, res.output
    for bad, says in ((f"corrections.file={tmp_path / 'none.jsonl'}", "corrections file"),
                      (f"tools.schemas_file={tmp_path / 'none.json'}", "tools.schemas_file")):
        res = runner.invoke(app, ["export", str(root), bad, "--out", str(tmp_path / "b")])
        assert res.exit_code == 2 and says in res.stderr, (bad, res.output)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    # one run cannot meet a both-outcomes floor: the export runs, writes its bundle and its check fails
    res = runner.invoke(app, ["export", str(root), "balance.fail=true", "balance.min_count=1",
                              "balance.min_outcome_share=0.5", "--out", str(tmp_path / "b"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and not doc["passed"] and (Path(doc["path"]) / "manifest.json").is_file(), res.output
    assert any(f.startswith("class balance (balance.fail):") and "run_outcome:failure" in f for f in doc["failures"])


def test_install_schedule_with_a_relative_workdir_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["ops", "install-schedule", "--workdir", str(ROOT), "--bin", "tracebridge"])
    assert res.exit_code == 2 and "must be an absolute path" in res.stderr, res.output


def test_report_verify_of_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    """A report folder that is not there is a missing input path (2), not a report failing its check (1)."""
    res = CliRunner().invoke(app, ["report", "--verify", str(tmp_path / "no_such_report")])
    assert res.exit_code == 2 and "no such report folder" in res.stderr, res.output
    (tmp_path / "empty").mkdir()  # a folder without manifest.json is a report that does not verify
    assert CliRunner().invoke(app, ["report", "--verify", str(tmp_path / "empty")]).exit_code == 1


# --json: an error exit prints {"ok": false, "error", "exit_code"} on stdout, the message on stderr.
# Every command that takes --json and not key=value overrides, with a bad input and the code it gets;
# "{dead}" is a Ray dashboard URL on a closed 127.0.0.1 port (the head does not answer: try again later).
JSON_ERRORS = {
    "validate": (["validate", "{tmp}/nope"], 2),
    "report": (["report", "--verify", "{tmp}/nope"], 2),
    "promote": (["promote", "--report", "{tmp}/nope.json", "--state", "{tmp}/state"], 2),
    "rollback": (["rollback", "--config", "{tmp}/nope.yaml"], 2),
    "review": (["review", "--config", "{tmp}/nope.yaml"], 2),
    "ops policy": (["ops", "policy", "--config", "{tmp}/nope.yaml"], 2),
    "ops install-schedule": (["ops", "install-schedule", "--workdir", str(ROOT), "--bin", "tracebridge"], 2),
    "feedback mapping set": (["feedback", "mapping", "set", "x", "many", "--mapping", "{tmp}/m.json"], 2),
    "feedback migrate": (["feedback", "migrate", "--ledger", "{tmp}/nope.jsonl", "--registry", "{tmp}/nope2.jsonl",
                          "--audit-dir", "{tmp}/no-audits"], 2),
    "feedback chunks record": (["feedback", "chunks", "record", "--chat", "1", "--message-ids", "a,b", "--run-id",
                                "r", "--event-id", "e", "--registry", "{tmp}/chunks.jsonl"], 2),
    "corrections check": (["corrections", "check", "{tmp}/nope.jsonl", "--traces", "{tmp}/nope"], 2),
    "schema export": (["schema", "export", "--check", "--out", "{tmp}/nope"], 2),
    "status": (["status", "sweep-a1", "--cluster", "{dead}"], 3),
    "stop": (["stop", "sweep-a1", "--cluster", "{dead}"], 3),
    "list": (["list", "--cluster", "{dead}"], 3),
    "logs": (["logs", "sweep-a1", "--cluster", "{dead}"], 3),
    "pull": (["pull", "sweep-a1", "--cluster", "{dead}", "--out", "{tmp}/reports"], 3),
    "stop-head": (["stop-head", "--cluster-set", "state_dir={tmp}/ray"], 1),  # no head there
}
NO_JSON = {"feedback serve"}  # in COMMANDS, without --json
IN_SUBPROCESS = {"smoke runtime-hook"}  # needs agentlightning missing: test_agentlightning_missing_...


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _json_error(res, code: int) -> dict:  # type: ignore[no-untyped-def]
    assert res.exit_code == code, (res.exit_code, res.output)
    doc = json.loads(res.stdout)  # the whole of stdout: one document, no "error:" line
    assert doc["ok"] is False and doc["exit_code"] == code and doc["error"], doc
    assert f"error: {doc['error']}" in res.stderr, res.stderr
    return doc


@pytest.mark.parametrize("name", [n for n in COMMANDS if n not in NO_JSON])
def test_a_bad_override_under_json_prints_one_json_error(name: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, [*_args(COMMANDS[name], tmp_path), "--json"])
    assert "no_such_key" in _json_error(res, 2)["error"], name


@pytest.mark.parametrize("name", list(JSON_ERRORS))
def test_every_json_command_prints_its_error_as_json(name: str, tmp_path: Path) -> None:
    args, code = JSON_ERRORS[name]
    dead = f"http://127.0.0.1:{closed_port()}"
    res = CliRunner().invoke(app, [*(a.replace("{dead}", dead) for a in _args(args, tmp_path)), "--json"])
    doc = _json_error(res, code)
    if code == 3:
        assert dead in doc["error"] and "did not answer" in doc["error"], doc


def test_every_command_with_json_is_covered() -> None:
    from typer.main import get_command

    def walk(cmd, path):  # type: ignore[no-untyped-def]
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name]) if hasattr(sub, "commands") else [(" ".join([*path, name]), sub)]

    takes_json = {n for n, c in walk(get_command(app), []) if any("--json" in getattr(p, "opts", ()) for p in c.params)}
    covered = (set(COMMANDS) - NO_JSON) | set(JSON_ERRORS) | IN_SUBPROCESS
    assert takes_json - covered == set(), "add a bad input for these to JSON_ERRORS"
    assert NO_JSON.isdisjoint(takes_json)


BLOCK_AGL = "import sys; sys.modules['agentlightning'] = None; from tracebridge.cli import main; main()"


@pytest.mark.parametrize("args", [["smoke", "runtime-hook"], ["import", "agentlightning", "{tmp}/spans"]])
def test_agentlightning_missing_is_a_set_up_error_in_both_commands(args: list[str], tmp_path: Path) -> None:
    """Not installed is a set-up problem (2) for the smoke as for the import, not a failed check (1)."""
    (tmp_path / "spans").mkdir()
    (tmp_path / "spans" / "a.jsonl").write_text("")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args] + ["--out", str(tmp_path / "traces")]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OMP_NUM_THREADS": "1"}
    for extra in ([], ["--json"]):
        res = subprocess.run([sys.executable, "-c", BLOCK_AGL, *argv, *extra], capture_output=True, text=True,
                             env=env, timeout=120, check=False)
        assert res.returncode == 2, (args, extra, res.returncode, res.stdout, res.stderr)
        assert "agentlightning is not installed" in res.stderr, res.stderr
        if extra:
            doc = json.loads(res.stdout)
            assert doc["ok"] is False and doc["exit_code"] == 2 and "pip install" in doc["error"], doc
    assert not (tmp_path / "traces").exists()


# A check that fails exits 1, and under --json stdout is still its one report document (not an error line):
# the commands that check inputs a user hands them, each given an input that fails its check. "{tmp}/bad"
# is a trace root whose one complete run has a line that is not JSON; "{tmp}/mail.txt" holds an e-mail address.
FAILED_CHECKS = {
    "validate": ["validate", "{tmp}/bad"],
    "redact --check": ["redact", "{tmp}/mail.txt", "--check"],
    "schema export --check": ["schema", "export", "--check", "--out", "{tmp}/schemas"],
    "report --verify": ["report", "--verify", "{tmp}/schemas"],  # a folder with no manifest.json
    "import openclaw": ["import", "openclaw", "{tmp}/notes.txt", "--out", "{tmp}/imported"],
    "feedback audit": ["feedback", "audit", "--day", "2020-01-01", "--ledger", "{tmp}/ledger.jsonl",
                       "--out", "{tmp}/audit", "harvest_log={tmp}/harvest-log.jsonl"],
    "corrections check": ["corrections", "check", "{tmp}/corrections.jsonl", "--traces", "{tmp}/bad"],
}


@pytest.mark.parametrize("name", list(FAILED_CHECKS))
def test_a_failed_check_exits_1_with_its_report_as_one_json_document(name: str, tmp_path: Path) -> None:
    run = tmp_path / "bad" / "r1"
    run.mkdir(parents=True)
    (run / "events.jsonl").write_text("not json\n")
    (run / "session.json").write_text("{}\n")
    (tmp_path / "mail.txt").write_text("write to bob@example.com\n")
    (tmp_path / "schemas").mkdir()
    (tmp_path / "ledger.jsonl").write_text("")
    (tmp_path / "corrections.jsonl").write_text(json.dumps(
        {"run_id": "nope", "event_id": None, "labels": {"success": True}, "reviewer": "me",
         "time": "2026-01-01T00:00:00Z", "note": ""}) + "\n")
    res = CliRunner().invoke(app, [*_args(FAILED_CHECKS[name], tmp_path), "--json"])
    assert res.exit_code == 1, (name, res.exit_code, res.output)
    assert isinstance(json.loads(res.stdout), dict), (name, res.stdout)  # the whole of stdout: one document
