"""Agent Lightning span records as users' real stores can present them: message attributes cut short or of
the wrong shape, a response id two different calls share, rewards and token ids that are no numbers, span
graphs with cycles and duplicate ids, and content holding PII. Each bad value is a problem naming the
file, line, span id and attribute; no line is lost (read = accepted + quarantined); no row is built from
a record that could not be read; no PII reaches the bundle. Spans are Agent Lightning's own ``Span`` model.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import orjson

from tests.importers.conftest import lazy_importorskip
from tracebridge.export.pipeline import export_traces
from tracebridge.importers.agentlightning.importer import import_agentlightning
from tracebridge.importers.agentlightning.llm_calls import MAX_TOKEN_IDS
from tracebridge.importers.agentlightning.spans import reward_of, spans_to_events

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
agl = lazy_importorskip("agentlightning")


def _span(name: str, attrs: dict[str, Any], k: int, span_id: str | None = None, parent: str | None = None,
          start: float | None = None, seq: int | None = None) -> dict[str, Any]:
    """A ``Span`` record as Agent Lightning's store dumps it (checked by its model)."""
    sid = span_id or f"{k + 1:016x}"
    t = 2e9 + k if start is None else start
    ctx = {"trace_id": "0" * 31 + "1", "span_id": sid, "is_remote": False, "trace_state": {}}
    return agl.Span.model_validate({
        "rollout_id": "ro-1", "attempt_id": "at-1", "sequence_id": k if seq is None else seq,
        "trace_id": ctx["trace_id"], "span_id": sid, "parent_id": parent, "name": name,
        "status": {"status_code": "OK"}, "attributes": attrs, "events": [], "links": [], "start_time": t,
        "end_time": t + 0.5, "context": ctx, "parent": None, "resource": {"attributes": {}, "schema_url": ""},
    }).model_dump(mode="json")


def _call(k: int, prompt: str, reply: str, rid: str | None = None, **kw: Any) -> dict[str, Any]:
    attrs = {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": prompt,
             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": reply}
    return _span("openai.chat.completion", {**attrs, **({"gen_ai.response.id": rid} if rid is not None else {})}, k, **kw)


def _proxy(k: int, inp: Any, out: Any = None, **extra: Any) -> dict[str, Any]:
    """A LiteLLM ``litellm_request`` span with the JSON message attributes as given (strings as is)."""
    attrs = {"gen_ai.input.messages": inp if isinstance(inp, str) else json.dumps(inp), **extra}
    if out is not None:
        attrs["gen_ai.output.messages"] = out if isinstance(out, str) else json.dumps(out)
    return _span("litellm_request", attrs, k)


def _import(tmp_path: Path, spans: list[dict[str, Any]], dumps: Any = orjson.dumps) -> tuple[Any, Path]:
    """Import the spans as a store's JSONL dump (``dumps``: orjson writes NaN as null; json, integers past 64 bits)."""
    lines = [dumps(s) for s in spans]
    (tmp_path / "spans.jsonl").write_bytes(b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines))
    rep = import_agentlightning([tmp_path / "spans.jsonl"], tmp_path / "t")
    assert rep.reconciles and rep.lines_read == len(spans) and rep.runs_written == 1, rep.to_dict()
    return rep, tmp_path / "spans.jsonl"


def _actions(run: Any) -> list[dict[str, Any]]:
    return [e for e in run.events if e["event_type"] == "worker_action"]


def _rows(bundle: Path, view: str = "views/worker_sft") -> list[dict[str, Any]]:
    return [orjson.loads(x) for f in sorted((bundle / view).glob("*.jsonl")) for x in f.read_bytes().splitlines()]


def test_a_shared_response_id_alone_does_not_merge_two_calls(tmp_path: Path) -> None:
    # a provider returning one id for every call: two calls one after the other, and two at once that differ
    spans = [_call(0, "q0", "A", "chatcmpl-const"), _call(1, "q1", "B", "chatcmpl-const"),
             _call(2, "q2", "C", "chatcmpl-par", start=2e9 + 2), _call(3, "q3", "D", "chatcmpl-par", start=2e9 + 2.1),
             _call(4, "q4", "", ""), _call(5, "q5", "", "")]  # empty ids: no id at all
    run = spans_to_events(spans, "r", "task")
    assert [a["llm"]["response"] for a in _actions(run)] == ["A", "B", "C", "D", "", ""]
    assert run.kinds == {"llm": 6} and [p[:2] for p in run.problems] == [
        ("0000000000000002", "gen_ai.response.id"), ("0000000000000004", "gen_ai.response.id")]
    # the same call recorded twice (times overlap, the reply agrees, the proxy's prompt differs) is one
    same = spans_to_events([_call(0, "q0", "A", "chatcmpl-x"),
                            _call(1, "system + q0", "A", "chatcmpl-x", start=2e9 + 0.01)], "r", "task")
    assert same.kinds == {"llm": 1, "llm_duplicate": 1} and not same.problems
    rep, path = _import(tmp_path, spans)
    assert rep.span_problems == 2 and rep.problems[0] == (
        f"{path}:2: span 0000000000000002: gen_ai.response.id: 'chatcmpl-const' is also the id of span "
        "0000000000000001, whose time or reply differs: mapped as a call of its own")


def test_message_attributes_that_cannot_be_read_are_problems_and_give_no_row(tmp_path: Path) -> None:
    user = {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    reply = [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]
    whole = json.dumps([user])
    spans = [
        _proxy(0, whole[:-5], reply),  # cut short by an attribute length limit
        _proxy(1, {"role": "user"}, reply),  # an object, not a list
        _proxy(2, [user, 7], reply),  # a message that is no object
        _proxy(3, [{"role": "user", "parts": [{"type": "text", "content": "a"}, "b"]}], reply),  # a part, no object
        _proxy(4, [{"role": "user", "parts": [{"type": "text", "content": {"x": 1}}]}], reply),
        _proxy(5, "[" * 5000 + "]" * 5000, reply),  # nested past the JSON reader's depth
        _proxy(6, [user], "[{"),  # the reply cut short
        _proxy(7, [user], reply, **{"gen_ai.system_instructions": '{"x": 1}'}),
        _proxy(8, [user], reply),
    ]
    rep, path = _import(tmp_path, spans)
    listed = [p.split(": ", 3)[:3] for p in rep.problems]
    assert listed == [[f"{path}:{k + 1}", f"span {k + 1:016x}", attr] for k, attr in [
        (0, "gen_ai.input.messages"), (1, "gen_ai.input.messages"), (2, "gen_ai.input.messages[1]"),
        (3, "gen_ai.input.messages[0].parts"), (4, "gen_ai.input.messages[0].parts[0].content"),
        (5, "gen_ai.input.messages"), (6, "gen_ai.output.messages"), (7, "gen_ai.system_instructions")]]
    assert "not valid JSON" in rep.problems[0] and "cut short?" in rep.problems[0]
    assert "depth limit exceeded" in rep.problems[5]
    res = export_traces(tmp_path / "t", tmp_path / "b")
    # one row, of the one call read whole: no unreadable message is filled in from the call before it
    assert [r["messages"] for r in _rows(res.path)] == [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]]


def test_the_flattened_records_win_over_the_json_messages_on_one_span() -> None:
    both = {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "old",
            "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "old reply",
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "new"}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "x"}]}])}
    for order in (both, dict(reversed(both.items()))):
        (action,) = _actions(spans_to_events([_span("litellm_request", order, 0)], "r", "task"))
        assert json.loads(action["llm"]["rendered_prompt"]) == [{"role": "user", "content": "old"}]
        assert action["llm"]["response"] == "old reply"


def test_rewards_that_are_no_finite_number_are_problems_not_rewards(tmp_path: Path) -> None:
    bad = [float("nan"), float("inf"), "0.5", True, "NaN", [1.0]]  # what Agent Lightning's Span model lets through
    spans = [_span("my.reward", {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": v}, k)
             for k, v in enumerate(bad)]
    spans += [_span("agentlightning.annotation", {"reward": "0.9"}, 6),
              _span("agentops_reward_operation.task", {"agentops.task.output": '{"type": "reward", "value": false}'}, 7),
              _span("my.reward", {"agentlightning.reward.0.name": "task", "agentlightning.reward.0.value": 0.5,
                                  "agentlightning.reward.1.name": "style", "agentlightning.reward.1.value": "n/a"}, 8)]
    assert [reward_of(s["name"], s["attributes"]) for s in spans] == [None] * 8 + [(0.5, {"task": 0.5})]
    run = spans_to_events(spans, "r", "task")
    assert run.final_reward == 0.5 and run.kinds["reward"] == 1
    assert [(sid[-1], attr) for sid, attr, _ in run.problems] == [
        *((str(k + 1), "agentlightning.reward.0.value") for k in range(6)),
        ("7", "reward"), ("8", "agentops.task.output"), ("9", "agentlightning.reward.1.value")]
    rep, path = _import(tmp_path, spans)  # a dump writes NaN and inf as null, which Span refuses: quarantined
    assert rep.lines_quarantined == 2 and rep.quarantine_samples[0].startswith(f"{path}:1: attributes.")
    assert rep.problems[1] == f"{path}:4: span 0000000000000004: agentlightning.reward.0.value: not a finite number: True"


def test_token_ids_that_are_no_token_ids_are_left_out_and_named(tmp_path: Path) -> None:
    text = {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hi",
            "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "hello"}
    bad = [["1", "x"], [1.5], [True], [2**70], [-1], "[1, 2, x]", list(range(MAX_TOKEN_IDS + 1))]
    spans = [_span("openai.chat.completion", {**text, "prompt_token_ids": ids, "response_token_ids": [4, 2]}, k)
             for k, ids in enumerate(bad)]
    run = spans_to_events(spans, "r", "task")
    assert [a["labels"] for a in _actions(run)] == [{"response_token_ids": [4, 2]}] * len(bad)
    assert [attr for _, attr, _ in run.problems] == ["prompt_token_ids"] * len(bad)
    assert run.problems[-1][2].endswith(f"<list of {MAX_TOKEN_IDS + 1}>")
    rep, _ = _import(tmp_path, spans[:5], json.dumps)  # an id past 64 bits used to fail the import's write
    assert rep.span_problems == 5 and rep.rollouts_skipped == 0


def test_span_graphs_with_cycles_duplicates_and_lost_parents_map_once(tmp_path: Path) -> None:
    spans = [_span("step", {}, 0, span_id="a", parent="a"),  # its own parent
             _span("step", {}, 1, span_id="b", parent="c"), _span("step", {}, 2, span_id="c", parent="b"),  # a cycle
             _call(3, "q", "A", parent="b"), _call(4, "q2", "B", parent="gone"),  # a parent never recorded
             _call(5, "q3", "C", span_id="dup", seq=5), _call(5, "q3", "C", span_id="dup", seq=5),  # a copy
             _call(6, "q4", "old", span_id="twice", seq=6), _call(6, "q4", "new", span_id="twice", seq=9)]
    run = spans_to_events(spans, "r", "task")
    assert [a["llm"]["response"] for a in _actions(run)] == ["A", "B", "C", "new"]
    assert run.kinds["copy"] == 1 and [p[:2] for p in run.problems] == [  # loops and lost parents were silent
        ("twice", "span_id"), ("a", "parent_id"), ("b", "parent_id"), ("c", "parent_id"), ("0000000000000005", "parent_id")]
    assert run.problems[2][2] == ("parent pointers form a loop (b -> c -> b): cut at its span mapped first, which is "
                                  "attached to the event before it")
    shuffled = spans[:]
    random.Random(7).shuffle(shuffled)
    assert spans_to_events(shuffled, "r", "task").events == run.events  # the order of records does not matter
    rep, path = _import(tmp_path, spans)
    assert rep.problems[0] == (f"{path}:8, {path}:9: span twice: span_id: recorded again with other content "
                               "(sequence_id 6): the record with sequence_id 9 is mapped")
    assert rep.problems[1:] == [(f"{path}:1: span a: parent_id: parent pointers form a loop (a -> a): cut at its span "
                                "mapped first, which is attached to the event before it"), *rep.problems[2:4],
                                (f"{path}:5: span 0000000000000005: parent_id: 'gone' names no span of this rollout: "
                                "attached to the event before it")]


def test_pii_in_calls_objects_and_annotations_never_reaches_the_bundle(tmp_path: Path) -> None:
    email, key = "jane.doe@example.com", "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
    text = f"mail {email}, key {key}"
    call = {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": text, "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": f"sent: {text}", "prompt_token_ids": [11, 12], "response_token_ids": [13]}
    spans = [_span("openai.chat.completion", call, 0),
             _span("agentlightning.object", {"agentlightning.object.json": json.dumps({"to": email, "key": key})}, 1),
             _span("agentlightning.annotation", {"agentlightning.tag.0": email, "note": text}, 2),
             _span("agentlightning.message", {"agentlightning.message.body": text}, 3),
             _proxy(4, [{"role": "user", "parts": [{"type": "text", "content": text}]}],
                    [{"role": "assistant", "parts": [{"type": "text", "content": text}]}]),
             _span("my.reward", {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": 1.0}, 5)]
    _import(tmp_path, spans)
    assert email in (next((tmp_path / "t").glob("al-*")) / "events.jsonl").read_text()  # the traces hold it
    res = export_traces(tmp_path / "t", tmp_path / "b")
    files = [p for p in res.path.rglob("*") if p.is_file()]
    assert {"views/worker_sft", "agentlightning/messages", "agentlightning/triplets"} <= {
        str(p.parent.relative_to(res.path)) for p in files}
    for p in files:
        body = p.read_text()
        assert email not in body and "example.com" not in body and "A1b2C3d4" not in body, p
    for view in ("views/worker_sft", "agentlightning/messages", "agentlightning/triplets"):
        for row in _rows(res.path, view):
            assert "token_ids" not in json.dumps(row)


def test_a_span_file_or_folder_whose_name_is_not_utf8_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    """A span file or folder named in latin-1 bytes reached the state file as a surrogate string orjson cannot
    write: the import stopped with a TypeError traceback. Now each is named (bytes escaped) with the fix, and
    the other spans import."""
    src = tmp_path / "spans"
    src.mkdir()
    (src / "ok.jsonl").write_bytes(orjson.dumps(_call(0, "q", "A")) + b"\n")
    raw = os.fsencode(src)
    with open(raw + b"/s\xe9.jsonl", "wb") as fh:
        fh.write(orjson.dumps(_call(1, "q1", "B")) + b"\n")
    os.mkdir(raw + b"/d\xe9")
    with open(raw + b"/d\xe9/x.jsonl", "wb") as fh:
        fh.write(orjson.dumps(_call(2, "q2", "C")) + b"\n")
    rep = import_agentlightning([src], tmp_path / "t")
    assert rep.reconciles and rep.lines_read == 1 and rep.runs_written == 1, rep.to_dict()
    assert sorted(rep.problems) == sorted(f"{src}/{n}\\xe9{x}: name is not UTF-8, not read (a run, its state and "
                                          "its quarantine lines are named after it); rename it to UTF-8 to import it"
                                          for n, x in (("s", ".jsonl"), ("d", "")))


def test_a_child_recorded_on_a_host_whose_clock_is_behind_still_follows_its_parent() -> None:
    """An agent's tool span and, inside it, a model call the LLM proxy recorded on a host 10 s behind: by start
    time the call came first. Before, it was mapped before the tool (off the task, not the tool call) and the
    tool call then hung off the sub-call, as if the sub-call had asked for the tool."""
    op = _span("agentlightning.operation", {"agentlightning.operation.name": "research",
                                            "agentlightning.operation.input.q": "x",
                                            "agentlightning.operation.output": "found"}, 0, span_id="op", start=2e9 + 10)
    op["end_time"] = 2e9 + 20
    spans = [op, _call(1, "sub question", "sub answer", span_id="llm", parent="op", start=2e9 + 4),
             _call(2, "q", "final", span_id="top", start=2e9 + 25)]
    run = spans_to_events(spans, "r", "task")
    by_id = {e["event_id"]: e for e in run.events}
    got = [(e["event_type"], (by_id.get(e["parent_event_id"]) or {}).get("event_type")) for e in run.events[1:6]]
    assert got == [("worker_tool_call", "planner_input"), ("worker_action", "worker_tool_call"),
                   ("worker_tool_result", "worker_tool_call"), ("worker_action", "worker_tool_result"),
                   ("worker_output", "worker_action")]
    assert [a["llm"]["response"] for a in _actions(run)] == ["sub answer", "final"]
    assert spans_to_events(spans[::-1], "r", "task").events == run.events


def test_a_task_asked_with_an_image_is_the_goal_of_each_of_its_rollouts(tmp_path: Path) -> None:
    """No Rollout records; the first user message is content parts (a question and an image). Before, it was
    passed over and each rollout's goal was 'Agent Lightning rollout <its id>': two rollouts of one task had
    two goals, so the split by goal could put the same task in train and in test."""
    parts = [{"type": "text", "text": "What animal is this?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}]
    spans = []
    for k, rollout in enumerate(("ro-a", "ro-b")):
        s = _span("openai.chat.completion", {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": json.dumps(parts),
                                             "gen_ai.completion.0.role": "assistant",
                                             "gen_ai.completion.0.content": "A cat."}, k)
        spans.append({**s, "rollout_id": rollout})
    (tmp_path / "spans.jsonl").write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in spans))
    rep = import_agentlightning([tmp_path / "spans.jsonl"], tmp_path / "t")
    assert rep.reconciles and rep.runs_written == 2
    goals = [orjson.loads((tmp_path / "t" / f"al-{r}" / "session.json").read_bytes())["goal"] for r in ("ro-a", "ro-b")]
    assert goals[0]["text"] == "What animal is this?" and goals[0] == goals[1]
