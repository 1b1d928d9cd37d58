"""Pass 1 (Redactor as the Recorder's hook), pass 2 (Scanner) and ad-hoc file redaction."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from tests.conftest import MODEL_STACK
from tracebridge.capture.reader import iter_runs
from tracebridge.capture.recorder import Recorder
from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.redact import Redactor, Scanner, capture_redactor, policy_id
from tracebridge.curate.redact_files import redact_file
from tracebridge.schema.validate import check_run

SECRETS = ["bob@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE", "10.20.30.40",
           "Alice Smith"]


def _event(run_id: str, text: str) -> dict:
    return {"run_id": run_id, "event_id": f"{run_id}:000001", "event_type": "worker_tool_result", "step": 0,
            "timestamp": "2026-01-31T12:00:00.000Z", "parent_event_id": None, "role": "worker",
            "payload": {"call_id": "c1", "ok": True, "output": {"text": text, "rows": [[text]]}}}


def test_placeholders_are_typed_and_consistent_within_a_run() -> None:
    red = Redactor()
    a = red.redact(_event("r1", "mail bob@example.com or eve@example.com, again bob@example.com"))
    out = a["payload"]["output"]
    assert out["text"] == "mail <EMAIL_1> or <EMAIL_2>, again <EMAIL_1>"
    assert out["rows"] == [[out["text"]]]
    b = red.redact(_event("r2", "eve@example.com first"))  # another run: numbering starts again
    assert b["payload"]["output"]["text"] == "<EMAIL_1> first"
    assert red.findings() == {"EMAIL": 2}  # the run seen last
    assert red.findings("r1") == {"EMAIL": 6}
    assert red.field_findings("r1") == {"EMAIL": {"worker_tool_result.payload.output.rows": 3,
                                                  "worker_tool_result.payload.output.text": 3}}


def test_structural_fields_are_never_touched() -> None:
    ev = _event("20260131T120000-deadbeef", "nothing personal")
    ev["payload"]["call_id"] = "call 415 555 2671"
    assert Redactor().redact(ev) is ev  # unchanged: the very same object


def test_recorder_hook_then_pass2_finds_nothing(tmp_path: Path) -> None:
    cfg = RedactionConfig(terms={"NAME": ["Alice Smith"]})
    red = capture_redactor(cfg)
    with Recorder(tmp_path, goal=f"email {SECRETS[0]} for Alice Smith", model_stack=MODEL_STACK,
                  runtime_config={"max_steps": 2}, strict=True, redactor=red) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "contact " + " / ".join(SECRETS)})
        run.emit("planner_output", role="planner", parent=pi,
                 payload={"plan": [{"index": 0, "description": f"call {SECRETS[1]}", "tool": "phone"}]},
                 llm=run.llm_call("m", f"key {SECRETS[3]}", response=f"ok {SECRETS[4]}"))
        run.emit("episode_end", role="orchestrator", payload={"success": True, "outcome": SECRETS[2]})
    rd = next(iter_runs(tmp_path))
    raw = (rd.events_path.read_text() + rd.session_path.read_text())
    assert not [s for s in SECRETS if s in raw]
    assert "<EMAIL_1>" in raw and "<NAME_1>" in raw and "<AWS_KEY_1>" in raw
    chk = check_run(rd)
    assert chk.schema_valid and chk.lineage_valid, [str(p) for p in chk.problems]
    gov = rd.read_session()["data_governance"]
    assert gov["pii_scan"] == "findings" and gov["redaction_policy"] == policy_id(cfg)
    assert gov["passes"][0]["stage"] == "capture" and gov["passes"][0]["findings"]["EMAIL"] >= 1
    scanner = Scanner(cfg)
    records = [orjson.loads(line) for line in rd.events_path.read_bytes().splitlines()] + [rd.read_session()]
    assert all(not scanner.scan(r) for r in records)  # pass 2 after pass 1: nothing left
    unredacted = _event("x", " ".join(SECRETS))
    assert {k for k, _ in scanner.scan(unredacted)} == {"EMAIL", "PHONE", "CARD", "AWS_KEY", "IPV4", "NAME"}


def test_findings_never_hold_values() -> None:
    red = Redactor()
    red.redact(_event("r", "bob@example.com"))
    assert "bob" not in json.dumps(red.field_findings("r")) + json.dumps(red.findings("r"))


def test_hmac_key_is_per_redactor_and_not_in_output() -> None:
    r1, r2 = Redactor(), Redactor()
    assert r1._key != r2._key and len(r1._key) == 32
    out = json.dumps(r1.redact(_event("r", "bob@example.com")))
    assert r1._key.hex() not in out


def test_redact_file_jsonl_and_text(tmp_path: Path) -> None:
    src = tmp_path / "log.jsonl"
    src.write_text('{"user": "bob@example.com", "run_id": "20260131T120000-415555267"}\n'
                   '["x", "eve@example.com"]\nnot json: card 4111 1111 1111 1111\n\n')
    res = redact_file(src, tmp_path / "out.jsonl", Redactor())
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"user": "<EMAIL_1>", "run_id": "20260131T120000-415555267"}
    assert json.loads(lines[1]) == ["x", "<EMAIL_2>"]
    assert lines[2] == "not json: card <CARD_1>" and lines[3] == ""
    d = res.to_dict()
    assert d["lines"] == 4 and d["changed_lines"] == 3 and d["findings_total"] == 3
    assert d["findings"] == {"CARD": {"line": 1}, "EMAIL": {"items": 1, "user": 1}}
    assert d["not_json_lines"] == {"lines": 1, "first": [3]}  # the blank line is none
    txt = tmp_path / "notes.txt"
    txt.write_text("ping 10.1.2.3\n")
    assert redact_file(txt, None, Redactor()).to_dict() == {
        "file": str(txt), "out": None, "lines": 1, "changed_lines": 1, "findings_total": 1,
        "findings": {"IPV4": {"line": 1}}}  # a text file's lines are all text: not counted as "not JSON"


def test_numeric_usage_trips_no_trigger_but_odd_usage_is_still_scanned() -> None:
    from tracebridge.curate.redact import Walker

    r = Redactor()
    llm = {"model": "m", "rendered_prompt": "", "prompt_hash": "a" * 64, "config_hash": "b" * 64,
           "usage": {"input_tokens": 14233, "output_tokens": 389, "cost_usd": 0.00783788, "latency_ms": 12.5}}
    ev = {"run_id": "r", "step": 0, "event_id": "r:1", "event_type": "worker_output", "timestamp": "t",
          "parent_event_id": None, "role": "worker", "payload": {"text": "done"}, "llm": llm}
    body = Walker.body(ev)
    assert "usage" not in body[2] and "usage" in ev["llm"]  # left out of the check, not of the record
    assert not r.detectors.triggered(orjson.dumps(body))
    assert r.redact(ev, scope="r") is ev
    for odd, secret in (({**llm["usage"], "note": "call bob@example.org"}, "bob@example.org"),
                        ({"bob@example.org": 1}, "bob@example.org"), ({"cost_usd": "ask bob@example.org"}, "bob@")):
        bad = {**ev, "llm": {**llm, "usage": odd}}
        assert "usage" in Walker.body(bad)[2]
        out = r.redact(bad, scope="r")
        assert secret not in json.dumps(out) and "<EMAIL_" in json.dumps(out["llm"]["usage"]), out["llm"]["usage"]


def test_check_body_never_changes_the_record() -> None:
    """Blocks without structural keys go into the trigger check as they are, uncopied: the numeric usage
    left out of the check is left out of a copy, never deleted from the record's own ``llm`` block."""
    from tracebridge.curate.redact import Walker

    llm = {"model": "m", "rendered_prompt": "", "usage": {"input_tokens": 3, "cost_usd": 0.5}}
    ev = {"run_id": "r", "step": 0, "event_id": "r:1", "event_type": "worker_output", "timestamp": "t",
          "parent_event_id": None, "role": "worker", "payload": {"text": "done"}, "llm": llm}
    body = Walker.body(ev)
    assert body[0] is ev["payload"] and "usage" not in body[2]
    assert ev["llm"] is llm and llm["usage"] == {"input_tokens": 3, "cost_usd": 0.5}


def test_values_inside_tuples_are_redacted_at_capture(tmp_path: Path) -> None:
    """A payload built with tuples (as Python code often does) is written as JSON arrays: the
    capture pass must redact inside them as inside lists."""
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True,
                  redactor=capture_redactor(RedactionConfig())) as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("env_observation", role="orchestrator", parent=root,
                 payload={"observation": ("mail", (SECRETS[0], {"to": [SECRETS[0]]}))})
    raw = next(iter_runs(tmp_path)).events_path.read_text()
    assert SECRETS[0] not in raw and raw.count("<EMAIL_1>") == 2


def test_user_data_under_structural_key_names_is_scanned() -> None:
    """Tool arguments and outputs are the user's data: a key there that shares a name with a
    structural field (``step``, ``role``, ``timestamp``, ``event_id``, ``capture``...) holds free text
    and must be redacted by pass 1 and found by pass 2; only the record's own ids and hashes are
    skipped (an OpenClaw call with args ``{"event_id": "AKIA..."}`` reached the bundle as is)."""
    ev = _event("r1", "nothing")
    ev["event_type"] = "worker_tool_call"
    ev["payload"] = {"call_id": "c1", "tool": "browser",
                     "args": {"step": "mail ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "role": SECRETS[0],
                              "timestamp": f"sent to {SECRETS[0]}", "event_id": SECRETS[3],
                              "capture": {"k": SECRETS[3]}, "nested": [{"call_id": SECRETS[0]}]}}
    ev["labels"] = {"data_governance": SECRETS[0]}
    session = {"schema_version": "2.0", "run_id": "r1", "goal": {"text": "g", "goal_hash": "a" * 64},
               "runtime_config": {"extra": {"hashes": SECRETS[3]}}}
    assert Scanner().scan(ev) and Scanner().scan(session)  # pass 2 sees them
    red = Redactor()
    out = json.dumps([red.redact(ev, scope="r1"), red.redact(session, scope="r1")])
    assert not [s for s in [*SECRETS, "ghp_aBcDe"] if s in out], out
    assert red.findings("r1") == {"AWS_KEY": 3, "EMAIL": 4, "GITHUB_TOKEN": 1}
    # the record's own structural fields are still left alone
    assert '"call_id": "c1"' in out and '"goal_hash": "' + "a" * 64 in out


def test_field_paths_of_findings_never_name_a_key_that_holds_pii() -> None:
    """Findings are counted by field path and the paths go into report.json and the manifest: a
    value under a key that is itself an e-mail address (``{"bob@example.com": "AKIA..."}``) named
    the address in its path."""
    ev = _event("r1", "nothing")
    ev["payload"]["output"] = {SECRETS[0]: SECRETS[3], "notes": {SECRETS[4]: {"x": SECRETS[1]}}}
    red = Redactor()
    red.redact(ev, scope="r1")
    for paths in (red.field_findings("r1"), {k: {p: 1} for (k, p) in Scanner().scan(ev)}):
        text = json.dumps(paths)
        assert not [s for s in SECRETS if s in text], text
        assert "worker_tool_result.payload.output.<key>" in paths["AWS_KEY"], paths
        assert "worker_tool_result.payload.output.notes.<key>.x" in paths["PHONE"], paths


def test_a_secret_named_by_a_top_level_key_is_redacted(tmp_path: Path) -> None:
    """A record that is no event (a line of ``tracebridge redact``'s JSONL, a session) goes into the trigger
    check with its keys: the key is what names a bare secret (``{"password": "correcthorsebattery"}``);
    checked by its values alone, the line was copied out unchanged."""
    red = Redactor()
    for rec in ({"password": "correcthorsebattery"}, {"api_key": "QWERTYUIOPASDFGH", "note": "ok"}):
        out = red.redact(rec)
        assert out[next(iter(rec))].startswith("<SECRET_"), out
    assert red.redact({"note": "fine", "n": 3}) == {"note": "fine", "n": 3}
    src = tmp_path / "k.jsonl"
    src.write_text('{"password":"correcthorsebattery"}\n{"payload":{"password":"correcthorsebattery"}}\n')
    res = redact_file(src, tmp_path / "o.jsonl", Redactor()).to_dict()
    assert res["changed_lines"] == 2 and res["findings"] == {"SECRET": {"password": 1, "payload.password": 1}}
    assert "correcthorsebattery" not in (tmp_path / "o.jsonl").read_text()


def test_redact_file_with_a_memo_writes_the_same_file(tmp_path: Path) -> None:
    """``tracebridge redact`` keeps a memo (conversation rows repeat their context: each message is
    checked once); placeholders, findings and every byte written are those of a redactor without one."""
    from tracebridge.curate.memo import ScanMemo

    msgs = [{"role": "user", "content": f"turn {i}: " + ("mail bob@example.com " if i % 3 == 0 else "all fine ") * 4}
            for i in range(12)]
    rows = [{"messages": msgs[:k], "meta": {"run_id": "r1", "note": "card 4111 1111 1111 1111" if k == 5 else ""}}
            for k in range(1, 13)]
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json: eve@example.com\n")
    key = b"k" * 32
    plain = redact_file(src, tmp_path / "a.jsonl", Redactor(key=key)).to_dict()
    memo = ScanMemo(min_bytes=8)
    kept = redact_file(src, tmp_path / "b.jsonl", Redactor(key=key, memo=memo)).to_dict()
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert {k: v for k, v in plain.items() if k != "out"} == {k: v for k, v in kept.items() if k != "out"}
    assert plain["findings"]["EMAIL"] and plain["findings"]["CARD"] and memo.hits > memo.misses
    assert "bob@example.com" not in (tmp_path / "b.jsonl").read_text()


def test_a_key_file_printed_as_json_passes_pass_2_once_redacted() -> None:
    # `cat sa.json` of a Google service account: the PEM key became "<PRIVATE_KEY_1>\n" after
    # "private_key", which pass 2 then took for a secret value, quarantining the run it had just redacted
    sa = json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B"
                     "AQEFAASC\n-----END PRIVATE KEY-----\n", "client_email": "svc@p.iam.gserviceaccount.com"}, indent=2)
    rec = {"run_id": "r", "event_type": "worker_tool_result", "step": 1, "event_id": "e",
           "payload": {"call_id": "c", "ok": True, "output": f"$ cat sa.json\n{sa}"}}
    red = Redactor(key=b"k" * 32)
    out = red.redact(rec)
    assert '"private_key": "<PRIVATE_KEY_1>\\n"' in out["payload"]["output"] and "MIIEvQ" not in out["payload"]["output"]
    assert red.rewritten_findings("r") == {} and Scanner().scan(out) == {}
    nested = red.redact({**rec, "payload": {**rec["payload"], "output": json.dumps({"stdout": sa})}})  # escaped twice
    assert "MIIEvQ" not in nested["payload"]["output"] and red.rewritten_findings("r") == {}
