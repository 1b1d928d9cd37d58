"""Push checks every row of a bundle (``governance_problems``): an OpenClaw export whose tool-call
arguments hold text that is clean as the events hold it stays clean as the rows write it (Agent
Lightning's messages and OpenAI's format write arguments as a JSON string, whose escapes the
detectors read as such). Found on 2000 generated sessions: ``token:\\n檢查…`` in an edit's text read as
a secret in the rows only, so push refused a bundle that both redaction passes had passed."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.export.test_openclaw_export import default_cfg
from tests.importers.openclaw_sessions import SessionBuilder
from tracebridge.export.bundle import parse_manifest
from tracebridge.export.pipeline import export_traces
from tracebridge.export.push import governance_problems
from tracebridge.importers.openclaw import import_openclaw

CLEAN = "config message channel token:\n檢查部署狀態並且\tapi_key:\nnext line\npassword:\tsee the vault"


def _bundle(tmp_path: Path, new_text: str) -> Path:
    sessions = tmp_path / "home" / "agents" / "main" / "sessions"
    b = SessionBuilder("push-rows-1")
    b.user("fix the deploy notes")
    b.call("call_1", "edit", {"path": "/home/u/notes.md", "newText": new_text})
    b.result("call_1", "edit", "ok")
    b.say("Done.")
    b.write(sessions / "push-rows-1.jsonl")
    assert import_openclaw([tmp_path / "home"], tmp_path / "traces").reconciles
    res = export_traces(tmp_path / "traces", tmp_path / "bundles", default_cfg())
    assert res.report["runs"]["exported"] == 1, res.report["quarantine"]
    return res.path


def test_escaped_whitespace_after_a_secret_name_passes_push(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, CLEAN)
    messages = (bundle / "agentlightning/messages/train.jsonl").read_bytes()
    assert b"token:\\\\n\xe6\xaa\xa2" in messages  # the arguments as a JSON string, escapes and all
    man = parse_manifest(orjson.loads((bundle / "manifest.json").read_bytes()))
    assert governance_problems(bundle, man) == []


def test_a_secret_the_rows_hold_is_still_refused(tmp_path: Path) -> None:
    # the same place with a value pass 2 would block: written into a row after the export, push finds it
    bundle = _bundle(tmp_path, CLEAN)
    path = bundle / "agentlightning/messages/train.jsonl"
    path.write_bytes(path.read_bytes().replace(b"see the vault", b"export API_KEY=QWERTYUIOPASDF"))
    man = parse_manifest(orjson.loads((bundle / "manifest.json").read_bytes()))
    problems = governance_problems(bundle, man)
    assert any("agentlightning/messages/train.jsonl:1:" in p and "SECRET found" in p for p in problems), problems
