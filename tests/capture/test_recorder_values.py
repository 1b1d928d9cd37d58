"""SQL drivers' values in payloads: ``decimal.Decimal`` (NUMERIC) and ``bytearray``/``memoryview`` (BLOB, bytea)
were refused as "not JSON" and the whole event dropped. They are written losslessly now (a Decimal as the number
it is, or its text; binary data as its UTF-8 text, or ``$bytes_b64:`` and its base64), validate, and export."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from tests.conftest import MODEL_STACK
from tracebridge.capture.reader import RunDir, iter_runs
from tracebridge.capture.recorder import Recorder
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.schema.validate import check_run

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\xff"
BYTES_B64 = "$bytes_b64:"  # docs/trace-conventions.md


@pytest.mark.parametrize(("value", "written"), [
    (Decimal("12.30"), 12.3),  # the same number
    (Decimal("12.0"), 12.0),
    (Decimal(-7), -7),
    (Decimal("1E+2"), 100),
    (Decimal("0.1"), 0.1),
    (Decimal(12345678901234567890), "12345678901234567890"),  # beyond 64 bits: its text
    (Decimal("0.1000000000000000055511151231257827"), "0.1000000000000000055511151231257827"),  # no float is it
    (Decimal("1E+400"), "1E+400"),
    (Decimal("NaN"), "NaN"),
    (Decimal("-Infinity"), "-Infinity"),
    (bytearray(b"abc"), "abc"),
    (memoryview(b"caf\xc3\xa9"), "café"),
    (b"caf\xc3\xa9", "café"),
    (bytearray(PNG), BYTES_B64 + base64.b64encode(PNG).decode()),
    (memoryview(PNG), BYTES_B64 + base64.b64encode(PNG).decode()),
    (PNG, BYTES_B64 + base64.b64encode(PNG).decode()),  # was "\\x89PNG...": a backslash in the text looked the same
])
def test_sql_values_are_written_losslessly_and_validate(tmp_path, value, written):
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2}, run_id="r",
                  strict=True) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c1", "tool": "sql", "args": {}})
        run.emit("worker_tool_result", role="worker", payload={"call_id": "c1", "ok": True, "output": {"v": value}})
    (chk,) = [check_run(r) for r in iter_runs(tmp_path)]
    assert chk.complete and chk.schema_valid and chk.problems == [], chk.problems
    got = [json.loads(x) for x in (tmp_path / "r" / "events.jsonl").read_text().splitlines()][-1]
    assert got["payload"]["output"] == {"v": written}
    assert type(got["payload"]["output"]["v"]) is type(written)
    assert json.loads((tmp_path / "r" / "session.json").read_text())["capture"]["events_dropped"] == 0
    if isinstance(value, Decimal):  # read back exactly: Decimal(str(number)) or Decimal(text)
        back = Decimal(str(written))
        assert back == value or (value.is_nan() and back.is_nan())
    elif isinstance(written, str) and written.startswith(BYTES_B64):
        assert base64.b64decode(written[len(BYTES_B64):]) == bytes(value)
    else:
        assert written.encode() == bytes(value)


def test_a_decimal_where_the_schema_wants_a_number_and_in_llm_params(tmp_path):
    """A verifier's confidence and a call's cost from a NUMERIC column, the temperature from a Decimal config."""
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2}, run_id="r",
                  strict=True) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        llm = run.llm_call("m", "p", params={"temperature": Decimal("0.7")}, response="end",
                           usage={"input_tokens": 3, "output_tokens": 1, "cost_usd": 0.5})
        run.emit("verifier_output", role="verifier", llm=llm,
                 payload={"verdict": "end", "feedback": "ok", "confidence": Decimal("0.85")})
    ev = [json.loads(x) for x in (tmp_path / "r" / "events.jsonl").read_text().splitlines()][-1]
    assert ev["payload"]["confidence"] == 0.85 and ev["llm"]["params"] == {"temperature": 0.7}
    assert check_run(RunDir(tmp_path / "r")).schema_valid


def test_a_redacted_run_writes_them_too(tmp_path):
    from tracebridge.curate.redact import capture_redactor

    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2}, run_id="r",
                  strict=True, redactor=capture_redactor()) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c1", "tool": "sql", "args": {}})
        run.emit("worker_tool_result", role="worker", payload={"call_id": "c1", "ok": True,
                                                               "output": {"total": Decimal("9.99"), "blob": PNG}})
    ev = [json.loads(x) for x in (tmp_path / "r" / "events.jsonl").read_text().splitlines()][-1]
    assert ev["payload"]["output"] == {"total": 9.99, "blob": BYTES_B64 + base64.b64encode(PNG).decode()}


def test_decimal_value_reads_back():
    from tracebridge.schema.canonical import BYTES_B64 as documented
    from tracebridge.schema.canonical import decimal_value

    assert documented == BYTES_B64
    assert decimal_value(Decimal("-0.00")) == 0.0 and decimal_value(Decimal("sNaN")) == "sNaN"


def test_an_sql_run_exports_with_its_values(tmp_path):
    traces = tmp_path / "traces"
    with Recorder(traces, goal="total of order 7", model_stack=MODEL_STACK, strict=True, run_id="sql-run",
                  runtime_config={"max_steps": 4, "seed": 1, "seed_kind": "fixed"},
                  source={"kind": "sim", "ref": "test"}) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "total of order 7", "tool_mask": ["sql"]})
        po = run.emit("planner_output", role="planner", parent=pi,
                      payload={"plan": [{"index": 0, "description": "query", "tool": "sql"}], "rationale": "one step",
                               "confidence": 0.9})
        run.next_step()
        wi = run.emit("worker_input", role="worker", parent=po,
                      payload={"plan_step": {"index": 0, "description": "query"}, "allowed_tools": ["sql"]})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c1", "tool": "sql",
                                                              "args": {"query": "SELECT total, doc FROM orders"}})
        run.emit("worker_tool_result", role="worker", payload={
            "call_id": "c1", "ok": True, "output": [{"total": Decimal("12.30"), "doc": memoryview(PNG),
                                                      "note": bytearray(b"paid")}]})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c2", "tool": "sql",
                                                              "args": {"query": "SELECT 1"}})
        run.emit("worker_tool_result", role="worker", payload={"call_id": "c2", "ok": True, "output": [[1]]})
        run.emit("worker_output", role="worker", payload={"result": Decimal("12.30")})
        vi = run.emit("verifier_input", role="verifier", parent=wi,
                      payload={"plan_progress": {"completed": 1, "total": 1}, "evidence": ["12.30"]})
        run.emit("verifier_output", role="verifier", parent=vi, payload={"verdict": "end", "feedback": "done"})
        run.emit("episode_end", role="orchestrator", payload={"success": True, "outcome": "12.30"})
    assert json.loads((traces / "sql-run" / "session.json").read_text())["capture"]["events_dropped"] == 0
    res = export_traces(traces, tmp_path / "out", ExportConfig())
    rows = [json.loads(x) for p in (res.path / "views" / "worker_sft").glob("*.jsonl") for x in p.read_text().splitlines()]
    prompts = [m["content"] for r in rows for m in r["messages"] if m["role"] == "user"]
    b64 = BYTES_B64 + base64.b64encode(PNG).decode()
    assert any(f'"output": [{{"doc": "{b64}", "note": "paid", "total": 12.3}}]' in p for p in prompts), prompts


def test_a_path_in_a_payload_is_written_as_its_text(tmp_path):
    """A tool's result naming the file it wrote (``pathlib.Path``) was "PosixPath is not JSON": the event dropped."""
    from pathlib import Path, PurePosixPath

    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2}, run_id="r") as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c1", "tool": "save", "args": {
            "to": Path("out/report.csv")}})
        run.emit("worker_tool_result", role="worker", payload={"call_id": "c1", "ok": True, "output": {
            "written": [PurePosixPath("/data/a b.csv"), tmp_path / "r.txt"]}})
    assert run.stats.events_dropped == 0 and run.stats.errors == 0
    (chk,) = [check_run(r) for r in iter_runs(tmp_path)]
    assert chk.complete and chk.schema_valid and chk.problems == [], chk.problems
    evs = [json.loads(x) for x in (tmp_path / "r" / "events.jsonl").read_text().splitlines()]
    assert evs[1]["payload"]["args"] == {"to": "out/report.csv"}
    assert evs[2]["payload"]["output"] == {"written": ["/data/a b.csv", str(tmp_path / "r.txt")]}


def test_a_path_with_undecodable_bytes_is_written_escaped():
    from pathlib import Path

    from tracebridge.schema.canonical import canonical_json

    assert json.loads(canonical_json({"p": Path("caf\udce9.txt"), "b": Path(b"x\xff".decode(errors="surrogateescape"))})) \
        == {"p": "caf\\udce9.txt", "b": "x\\udcff"}
