"""Worker rows of OpenClaw sessions hold what the model was shown: after a branch only the path to
each row's targets (pi-coding-agent's ``buildSessionContext`` walks from the leaf to the root), with
branch summaries, extension messages and ``!`` shell runs as the ``user`` messages upstream's
``convertToLlm`` makes of them; labels, session names and delivery mirrors are no context.
Transcripts in upstream's row shapes, through the real importer and the real export."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.export.test_openclaw_export import (
    _plain_turns,
    _two_call_turn,
    default_cfg,
    rows,
    run_events,
)
from tests.importers.conftest import HOME
from tests.importers.test_openclaw_upstream import HEADER, ZERO, T, _asst, _write
from tracebridge.export.config import ViewsConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.export.views import RunContext, build_views
from tracebridge.importers.openclaw import import_openclaw


def _msg(rid: str, parent: str | None, message: dict[str, Any]) -> dict[str, Any]:
    """A message row ``e<n>`` (written at second n) continuing ``parent``."""
    return {"type": "message", "id": rid, "parentId": parent, "timestamp": T(int(rid[1:])),
            "message": {"timestamp": 1772359200000, **message}}


def _call(cid: str, cmd: str) -> dict[str, Any]:
    return _asst([{"type": "toolCall", "id": cid, "name": "bash", "arguments": {"cmd": cmd}}], "toolUse")


def _result(cid: str, text: str, error: bool = False) -> dict[str, Any]:
    return {"role": "toolResult", "toolCallId": cid, "toolName": "bash", "content": [{"type": "text", "text": text}],
            "isError": error}


def _branched_session() -> list[dict[str, Any]]:
    """A build fix: a first answer, a follow-up the user abandoned (``branchWithSummary`` back to the
    answer), then extension/shell context and a second try whose reply is also mirrored to a channel."""
    return [HEADER,
            _msg("e1", None, {"role": "user", "content": "fix the build"}),
            _msg("e2", "e1", _call("c1", "make")),
            _msg("e3", "e2", _result("c1", "error: missing ;", error=True)),
            _msg("e4", "e3", _asst([{"type": "text", "text": "main.c lacks a semicolon."}])),
            _msg("e5", "e4", {"role": "user", "content": "fix it"}),  # the path the user left
            _msg("e6", "e5", _call("c2", "sed -i s/x/x;/ main.c")),
            _msg("e7", "e6", _result("c2", "")),
            {"type": "branch_summary", "id": "b1", "parentId": "e4", "timestamp": T(8), "fromId": "e7",
             "summary": "edited main.c with sed", "fromHook": False},
            {"type": "label", "id": "l1", "parentId": "b1", "timestamp": T(9), "targetId": "e2", "label": "first try"},
            {"type": "session_info", "id": "n1", "parentId": "l1", "timestamp": T(10), "name": "build fix"},
            {"type": "custom_message", "id": "x1", "parentId": "n1", "timestamp": T(11), "customType": "hint",
             "content": "Use the Makefile in src/.", "display": False},  # display is the TUI's: context either way
            _msg("e12", "x1", {"role": "bashExecution", "command": "ls src", "output": "Makefile", "exitCode": 0,
                               "cancelled": False, "truncated": False}),
            _msg("e13", "e12", {"role": "bashExecution", "command": "make", "output": "", "exitCode": 2,
                                "cancelled": False, "truncated": True, "fullOutputPath": "/tmp/make.log"}),
            _msg("e14", "e13", {"role": "bashExecution", "command": "cat ~/.netrc", "output": "secret",
                                "exitCode": 0, "cancelled": False, "truncated": False, "excludeFromContext": True}),
            _msg("e15", "e14", {"role": "user", "content": "try again in src"}),
            _msg("e16", "e15", _call("c3", "make -C src")),
            _msg("e17", "e16", _result("c3", "built")),
            _msg("e18", "e17", _asst([{"type": "text", "text": "Build fixed."}], model="delivery-mirror",
                                     provider="openclaw", usage=ZERO)),
            _msg("e19", "e18", _asst([{"type": "text", "text": "Build fixed."}]))]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _calls(*calls: tuple[str, str]) -> dict[str, Any]:
    """The assistant message of a turn calling ``bash`` with these (call id, command) pairs."""
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": "bash", "arguments": orjson.dumps({"cmd": cmd}).decode()}}
        for cid, cmd in calls]}


def _export(tmp_path: Path, transcript: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    home = tmp_path / "home"
    _write(home / ".openclaw" / "agents" / "main" / "sessions" / "s1.jsonl", transcript)
    import_openclaw([home], tmp_path / "traces")
    (run,) = [d for d in (tmp_path / "traces").iterdir() if (d / "session.json").is_file()]
    res = export_traces(tmp_path / "traces", tmp_path / "bundles", default_cfg())
    assert res.report["runs"]["accepted"] == 1
    return rows(res, "worker_sft"), json.loads((run / "session.json").read_text())


def test_after_a_branch_each_row_holds_its_own_path_and_upstream_context_messages(tmp_path: Path) -> None:
    sft, session = _export(tmp_path, _branched_session())
    assert session["runtime_config"]["extra"]["branches"] == 1
    failed = {"role": "tool", "tool_call_id": "c1", "name": "bash", "content": "error: missing ;"}
    first_turn = [user("fix the build"), _calls(("c1", "make")), failed,
                  {"role": "assistant", "content": "main.c lacks a semicolon."}]
    answer, abandoned, kept = sft
    # the shared start: a span that ends at the branch point, so its targets are in one row
    assert answer["messages"] == first_turn and answer["meta"]["labels"]["target_turns"] == 2
    # the abandoned path is still a real model turn, with its own ancestors as context
    assert abandoned["messages"] == [*first_turn, user("fix it"), _calls(("c2", "sed -i s/x/x;/ main.c"))]
    # the kept path: no "fix it"/c2; the branch summary, the extension message and the shell runs as
    # convertToLlm renders them; no label, session name, excluded run or delivery mirror
    assert kept["messages"] == [
        *first_turn,
        user("The following is a summary of a branch that this conversation came back from:\n\n<summary>\n"
             "edited main.c with sed</summary>"),
        user("Use the Makefile in src/."),
        user("Ran `ls src`\n```\nMakefile\n```"),
        user("Ran `make`\n(no output)\n\nCommand exited with code 2\n\n[Output truncated. Full output: /tmp/make.log]"),
        user("try again in src"),
        _calls(("c3", "make -C src")),
        {"role": "tool", "tool_call_id": "c3", "name": "bash", "content": "built"},
        {"role": "assistant", "content": "Build fixed."}]
    assert kept["meta"]["labels"]["context_messages"] == 9 and kept["meta"]["labels"]["target_turns"] == 2
    assert [r["meta"]["labels"]["failed_tool_calls"] for r in sft] == [["c1"]] * 3
    run = sft[0]["meta"]["run_id"]
    assert kept["meta"]["event_ids"] == [f"{run}:{i}" for i in ("e15", "e16", "e16.1", "e17", "e19", "e19.1")]
    assert abandoned["meta"]["event_ids"] == [f"{run}:{i}" for i in ("e5", "e6", "e6.1", "e7")]
    # only the row off the path to the session's leaf (e19) says so: curation can keep or drop it
    assert session["runtime_config"]["extra"]["leaf_entry_id"] == "e19"
    assert [r["meta"]["labels"].get("abandoned_path") for r in sft] == [None, True, None]
    assert "abandoned_path" not in answer["meta"]["labels"] and "abandoned_path" not in kept["meta"]["labels"]


def test_rows_past_a_leaf_the_user_rewound_to_are_on_an_abandoned_path(tmp_path: Path) -> None:
    """The leaf is the writer's last entry, wherever it hangs: a rewind back to the first answer then
    a new question leaves the follow-up's turns (later in the file than the shared answer) off the path."""
    sft, session = _export(tmp_path, [
        HEADER,
        _msg("e1", None, {"role": "user", "content": "fix the build"}),
        _msg("e2", "e1", _asst([{"type": "text", "text": "Which build?"}])),
        _msg("e3", "e2", {"role": "user", "content": "make"}),
        _msg("e4", "e3", _call("c1", "make")),
        _msg("e5", "e4", _result("c1", "ok")),
        _msg("e6", "e5", _asst([{"type": "text", "text": "Built."}])),
        _msg("e7", "e2", {"role": "user", "content": "the docs"}),
        _msg("e8", "e7", _asst([{"type": "text", "text": "Docs built."}]))])
    assert session["runtime_config"]["extra"]["leaf_entry_id"] == "e8"
    assert [(r["messages"][-1]["content"], r["meta"]["labels"].get("abandoned_path")) for r in sft] == [
        ("Which build?", None), ("Built.", True), ("Docs built.", None)]


def test_a_branch_inside_a_turn_of_parallel_calls_keeps_the_results_before_it(tmp_path: Path) -> None:
    """The trace parents each tool result to its call; the writer chains them. Going back to the
    first result and going on from it keeps that result, not the second."""
    two = _asst([{"type": "toolCall", "id": "c1", "name": "bash", "arguments": {"cmd": "a"}},
                 {"type": "toolCall", "id": "c2", "name": "bash", "arguments": {"cmd": "b"}}], "toolUse")
    sft, _ = _export(tmp_path, [
        HEADER,
        _msg("e1", None, {"role": "user", "content": "run a and b"}),
        _msg("e2", "e1", two),
        _msg("e3", "e2", _result("c1", "A")),
        _msg("e4", "e3", _result("c2", "B")),
        _msg("e5", "e4", _asst([{"type": "text", "text": "A and B."}])),
        _msg("e6", "e3", _asst([{"type": "text", "text": "A; b is still running."}]))])  # back to e3
    calls = _calls(("c1", "a"), ("c2", "b"))
    a = {"role": "tool", "tool_call_id": "c1", "name": "bash", "content": "A"}
    b = {"role": "tool", "tool_call_id": "c2", "name": "bash", "content": "B"}
    assert [r["messages"] for r in sft] == [
        [{"role": "user", "content": "run a and b"}, calls],
        [{"role": "user", "content": "run a and b"}, calls, a, b, {"role": "assistant", "content": "A and B."}],
        [{"role": "user", "content": "run a and b"}, calls, a,
         {"role": "assistant", "content": "A; b is still running."}]]


@pytest.mark.parametrize("cfg", [ViewsConfig(), ViewsConfig(conversation_rows="turn", conversation_max_turns=4,
                                                             context_max_chars=60, tool_output_max_chars=20)])
def test_the_tree_walk_of_a_linear_session_gives_the_rows_of_the_file_walk(tmp_path: Path, cfg: ViewsConfig) -> None:
    """A session without branches takes the file-order path; walked as a tree it gives the same rows,
    so the two walks agree on what a path is (calls, parallel results, compaction, spans)."""
    import_openclaw([HOME], tmp_path / "traces")
    runs = [list(evs.values()) for evs in run_events(tmp_path / "traces").values()]
    runs += [_two_call_turn(), _plain_turns()]
    assert len(runs) == 7
    for events in runs:
        ctx = RunContext(str(events[0]["run_id"]), "f", "train", "openclaw", None)
        linear = build_views(events, ctx, cfg)[0]
        assert linear["worker_sft"]
        assert orjson.dumps(build_views(events, replace(ctx, branched=True), cfg)[0]) == orjson.dumps(linear)
        assert b"abandoned_path" not in orjson.dumps(linear)
