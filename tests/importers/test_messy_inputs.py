"""Messy real-world inputs to ``import openclaw`` and ``import agentlightning``: each is quarantined
or reported with its place, never a traceback, and the counts still reconcile."""

from __future__ import annotations

import json
import os

import orjson
import pytest
from filelock import FileLock
from typer.testing import CliRunner

from tests.importers.conftest import MAIN
from tracebridge.cli import app
from tracebridge.importers.agentlightning.spans import spans_to_events
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.state import ImportState, Quarantine, StateError


def _row(rid: str, ts: str, text: str = "hi") -> bytes:
    return orjson.dumps({"type": "message", "id": rid, "timestamp": ts,
                         "message": {"role": "user", "content": text}}) + b"\n"


def test_timestamps_past_year_1_or_9999_in_utc_are_drift_not_a_crash(tmp_path):
    """``0001-01-01T00:00:00+05:00`` is a valid ISO time whose UTC is before year 1: the whole
    import died with OverflowError; now the row keeps the previous time and counts as drift."""
    src = tmp_path / "s.jsonl"
    src.write_bytes(_row("a", "2026-01-01T00:00:00.000Z") + _row("b", "0001-01-01T00:00:00+05:00")
                    + _row("c", "9999-12-31T23:59:59-05:00"))
    rep = import_openclaw([src], tmp_path / "t")
    assert rep.reconciles and (rep.lines_read, rep.lines_accepted) == (3, 3)
    assert rep.drift["timestamp:missing_or_invalid"] == 2


def test_bytes_that_are_not_utf8_are_located_in_the_line(tmp_path):
    """orjson says ``line 1 column 1`` for any encoding error; the reason now names the byte."""
    src = tmp_path / "latin1.jsonl"
    src.write_bytes(_row("a", "2026-01-01T00:00:00.000Z") + '{"type":"message","id":"b","x":"café"}\n'.encode("latin-1"))
    rep = import_openclaw([src], tmp_path / "t")
    assert rep.reconciles and rep.lines_quarantined == 1
    assert rep.quarantine_samples[0].endswith("not UTF-8: byte 0xe9 at byte 36 of the line (latin-1 or binary data?)")


def test_out_that_is_a_file_is_a_clear_error(tmp_path):
    out = tmp_path / "traces"
    out.write_text("not a folder")
    for sub in (out, out / "sub"):
        r = CliRunner().invoke(app, ["import", "openclaw", str(MAIN), "--out", str(sub)])
        assert r.exit_code == 2 and f"{out} is a file, not a folder" in r.output, r.output


@pytest.mark.parametrize("state", [b"{bad", b"[]", b'{"version": 7}', b'{"version": 1, "runs": {"oc-x": {"file": 1}}}'])
def test_a_damaged_state_file_is_a_clear_error(tmp_path, state):
    out = tmp_path / "t"
    (out / ".import").mkdir(parents=True)
    (out / ".import" / "openclaw-state.json").write_bytes(state)
    with pytest.raises(StateError, match="openclaw-state.json: unreadable import state"):
        ImportState(out / ".import" / "openclaw-state.json")
    r = CliRunner().invoke(app, ["import", "openclaw", str(MAIN), "--out", str(out), "--json"])
    assert r.exit_code == 2 and "unreadable import state" in r.output and "move it aside" in r.output
    doc = json.loads(r.stdout)  # --json: the error is the one document; nothing was imported
    assert doc["ok"] is False and doc["exit_code"] == 2 and "files_seen" not in doc


def test_a_hand_edited_quarantine_row_does_not_stop_the_import(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_bytes(b'{"file": "x", "line": "abc"}\n{"file": "y", "line": [1]}\nnot json\n')
    Quarantine(q).close()  # raised ValueError: invalid literal for int()


def test_a_concurrent_import_is_a_clear_error(tmp_path):
    out = tmp_path / "t"
    (out / ".import").mkdir(parents=True)
    with FileLock(str(out / ".import" / "openclaw.lock")):
        r = CliRunner().invoke(app, ["import", "openclaw", str(MAIN), "--out", str(out)])
    assert r.exit_code == 3 and "another import into" in r.output and "held by" in r.output


def _llm_span(**attrs) -> dict:
    return {"span_id": "s1", "parent_id": None, "name": "openai.chat.completion", "start_time": 1e300,
            "end_time": float("nan"), "status": {"status_code": "OK"},
            "attributes": {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "q",
                           "gen_ai.request.model": "m", **attrs}}


def test_span_values_that_are_no_counts_or_times_do_not_fail_the_rollout():
    """A token count ``"abc"`` or ``[1]``, a cost ``"x"``, a count of 1e300 or a start time past year
    9999 raised ValueError/TypeError/OverflowError out of the mapping (a traceback for the import)."""
    for attrs in ({"gen_ai.usage.prompt_tokens": "abc", "gen_ai.usage.cost": "x"},
                  {"gen_ai.usage.prompt_tokens": [1], "gen_ai.usage.completion_tokens": 1e300},
                  {"gen_ai.usage.prompt_tokens": -5, "gen_ai.usage.cost": float("nan")}):
        run = spans_to_events([_llm_span(**attrs)], "al-r", {"question": "q"})
        usage = next(e for e in run.events if e["event_type"] == "worker_action")["llm"]["usage"]
        assert (usage["input_tokens"], usage["output_tokens"], usage["cost_usd"]) == (0, 0, 0.0)
        assert run.events[0]["timestamp"] == "1970-01-01T00:00:00.000Z"


def test_a_huge_prompt_index_is_a_gap_not_a_huge_list():
    """Prompt indices keep their gaps (a message the instrumentation missed is null, not closed up); an
    index of 10**12 would have built a list of that length."""
    run = spans_to_events([_llm_span(**{"gen_ai.prompt.1000000000000.role": "user",
                                        "gen_ai.completion.0.content": "a"})], "al-r", {"question": "q"})
    prompt = orjson.loads(next(e for e in run.events if e["event_type"] == "worker_action")["llm"]["rendered_prompt"])
    assert prompt[0] == {"role": "user", "content": "q"} and len(prompt) == 66 and prompt[1:] == [None] * 65


def test_a_bom_in_front_of_a_span_file_loses_no_rollout(tmp_path):
    """The first record was read past the BOM but read back from byte 0 with it: its rollout was
    skipped with a pydantic ``json_invalid`` error."""
    agl = pytest.importorskip("agentlightning")
    from tracebridge.importers.agentlightning.importer import import_agentlightning

    span = {"rollout_id": "ro-1", "attempt_id": "at-1", "sequence_id": 1, "trace_id": "t", "span_id": "s1",
            "parent_id": None, "name": "agentlightning.operation", "status": {"status_code": "OK"},
            "attributes": {"agentlightning.operation.name": "calc", "agentlightning.operation.output": "4"},
            "events": [], "links": [], "start_time": 1767225600.0, "end_time": 1767225601.0, "context": None,
            "parent": None, "resource": {"attributes": {}, "schema_url": ""}}
    agl.Span.model_validate(span)
    src = tmp_path / "spans.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + json.dumps(span).encode() + b"\r\n")
    rep = import_agentlightning([src], tmp_path / "t")
    assert rep.reconciles and rep.lines_accepted == 1
    assert (rep.rollouts_imported, rep.rollouts_skipped, rep.skipped) == (1, 0, [])
    assert os.path.isfile(tmp_path / "t" / "al-ro-1" / "events.jsonl")


def test_a_transcript_whose_name_is_not_utf8_is_a_problem_not_a_traceback(tmp_path):
    """A file name of latin-1 bytes (``s\\xe9.jsonl``) reached the state file as a surrogate string that
    orjson cannot write: the import stopped with a TypeError traceback after writing the run, with no
    state saved. Now the file is named (its bytes escaped) with the fix, the other transcripts import."""
    src = tmp_path / "sessions"
    src.mkdir()
    (src / "ok.jsonl").write_bytes(_row("a", "2026-01-01T00:00:00.000Z"))
    with open(os.fsencode(src) + b"/s\xe9.jsonl", "wb") as fh:
        fh.write(_row("b", "2026-01-01T00:00:00.000Z"))
    res = CliRunner().invoke(app, ["import", "openclaw", str(src), "--out", str(tmp_path / "t"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["reconciles"] and (doc["read"], doc["runs_written"]) == (1, 1), doc
    assert doc["problems"] == [(f"{src}/s\\xe9.jsonl: name is not UTF-8, not read (a run, its state and its "
                                "quarantine lines are named after it); rename it to UTF-8 to import it")]
