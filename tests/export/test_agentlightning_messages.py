"""``agentlightning/messages/<split>.jsonl``: Agent Lightning's messages format in the bundle, one row per
role SFT row, the shape Agent Lightning's own adapter gives for the same conversation, checked by the
ops consumer check with Agent Lightning's types; ``views.agentlightning_messages`` turns it off."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pytest

from tests.importers.conftest import HOME
from tracebridge.config import load_config
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.importers.openclaw import import_openclaw

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[2]
SFT = ("planner_sft", "worker_sft", "verifier_sft")


def _cfg(*overrides: str) -> ExportConfig:
    return load_config(ExportConfig, ROOT / "configs/export/default.yaml", list(overrides))


@pytest.fixture(scope="module")
def bundles(sim_traces: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExportResult]:
    oc = tmp_path_factory.mktemp("oc") / "traces"
    import_openclaw([HOME], oc)
    out = tmp_path_factory.mktemp("al_bundles")
    return {"sim": export_traces(sim_traces, out / "sim", _cfg()), "openclaw": export_traces(oc, out / "oc", _cfg())}


def _rows(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.is_file() else []


@pytest.mark.parametrize("source", ["sim", "openclaw"])
def test_one_messages_row_per_role_sft_row(bundles: dict[str, ExportResult], source: str) -> None:
    res = bundles[source]
    files = {f.path: f.rows for f in res.manifest.files}
    for split in ("train", "validation", "test"):
        msgs = _rows(res.path / "agentlightning" / "messages" / f"{split}.jsonl")
        sft = {(r["meta"]["run_id"], tuple(r["meta"]["event_ids"]), v.split("_")[0]): r
               for v in SFT for r in _rows(res.path / "views" / v / f"{split}.jsonl")}
        assert len(msgs) == len(sft) and files.get(f"agentlightning/messages/{split}.jsonl", 0) == len(msgs)
        assert res.report["rows"]["agentlightning/messages"].get(split, 0) == len(msgs)
        for m in msgs:
            r = sft.pop((m["meta"]["run_id"], tuple(m["meta"]["event_ids"]), m["meta"]["role"]))
            assert m["meta"] == {**r["meta"], "role": m["meta"]["role"]}  # lineage back to the run and its events
            assert [x["role"] for x in m["messages"]] == [x["role"] for x in r["messages"]]
            assert [x.get("content") for x in m["messages"]] == [x.get("content") for x in r["messages"]]
            tools = json.loads(r["tools"]) if isinstance(r.get("tools"), str) else r.get("tools")
            if tools:  # schemas as objects, the way Agent Lightning rebuilds them from a span
                assert [t["function"]["name"] for t in m["tools"]] == [t["function"]["name"] for t in tools]
                assert all(isinstance(t["function"]["parameters"], dict) for t in m["tools"])
            else:
                assert m["tools"] is None
    assert sum(res.report["rows"]["agentlightning/messages"].values()) > 0


def test_rows_are_what_agent_lightnings_adapter_makes(bundles: dict[str, ExportResult]) -> None:
    """The same conversation as spans through Agent Lightning's ``TraceToMessages``: the same messages and
    tools, but for the text of earlier assistant turns that called tools (its adapter drops it; we keep it)."""
    pytest.importorskip("agentlightning")
    from tracebridge.importers.agentlightning.formats import adapt, row_to_traces

    for source, res in bundles.items():
        ours = {(m["meta"]["run_id"], tuple(m["meta"]["event_ids"])): m
                for m in _rows(res.path / "agentlightning" / "messages" / "train.jsonl")}
        for view in SFT:
            for i, row in enumerate(_rows(res.path / "views" / view / "train.jsonl")[:15]):
                (trace,) = row_to_traces(row, i)
                (theirs,), _ = adapt(trace)
                mine = ours[(row["meta"]["run_id"], tuple(row["meta"]["event_ids"]))]
                assert mine["tools"] == theirs["tools"], (source, view, i)
                last = len(mine["messages"]) - 1
                kept = [{**m, "content": None} if m["role"] == "assistant" and m.get("tool_calls") and j < last else m
                        for j, m in enumerate(mine["messages"])]
                assert kept == theirs["messages"], (source, view, i)


def test_consumer_check_reads_the_messages_with_agent_lightnings_types(bundles: dict[str, ExportResult],
                                                                       tmp_path: Path) -> None:
    pytest.importorskip("agentlightning")
    from tracebridge.ops.consumers import check_agentlightning

    for res in bundles.values():
        chk = check_agentlightning(res.path)
        assert chk["ok"], chk["problems"]
        assert {p.split("/")[1] for p in chk["files"]} == {"messages", "triplets"}
    good = _rows(bundles["openclaw"].path / "agentlightning" / "messages" / "train.jsonl")[0]
    call = next(m for m in good["messages"] if m.get("tool_calls"))
    bad = [
        {k: v for k, v in good.items() if k != "tools"},
        {**good, "tools": json.dumps(good["tools"])},
        {**good, "messages": [*good["messages"], {"role": "tool", "tool_call_id": "c", "content": "x", "name": "f"}]},
        {**good, "messages": [{**call, "tool_calls": [{**call["tool_calls"][0], "function": {
            "name": "f", "arguments": {"a": 1}}}]}]},
        {**good, "messages": good["messages"][:1]},
        {**good, "messages": [{"role": "robot", "content": "hi"}, good["messages"][-1]]},
    ]
    d = tmp_path / "bundle" / "agentlightning" / "messages"
    d.mkdir(parents=True)
    (d / "train.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in [good, *bad]))
    chk = check_agentlightning(tmp_path / "bundle")
    assert not chk["ok"] and chk["files"] == {"agentlightning/messages/train.jsonl": 7}
    where = [p.split(": ", 1) for p in chk["problems"]]
    assert [w[0].rsplit(":", 1)[1] for w in where] == ["2", "3", "4", "5", "6", "7"]
    reasons = [w[1] for w in where]
    assert reasons[0] == "not an OpenAIMessages row: needs ['messages', 'tools']"
    assert "ValidationError" in reasons[1] and "list" in reasons[1]
    assert reasons[2] == f"messages[{len(good['messages'])}]: ['name'] not fields of the tool message type"
    assert "ValidationError" in reasons[3] and "arguments" in reasons[3]
    assert reasons[4] == "the last message is not the assistant turn"
    assert "ValidationError" in reasons[5]


def test_messages_are_optional(sim_traces: Path, bundles: dict[str, ExportResult], tmp_path: Path) -> None:
    with_all = bundles["sim"]
    off = export_traces(sim_traces, tmp_path / "a", _cfg("views.agentlightning_messages=false"))
    assert not (off.path / "agentlightning" / "messages").exists()
    assert "agentlightning/messages" not in off.report["rows"]
    data = lambda res: {f.path: f.sha256 for f in res.manifest.files  # runs.jsonl counts every row
                        if f.path.endswith(".jsonl") and f.path != "runs.jsonl"}
    assert data(off) == {k: v for k, v in data(with_all).items() if not k.startswith("agentlightning/messages/")}
    none = export_traces(sim_traces, tmp_path / "b", _cfg("views.agentlightning=false"))
    assert not (none.path / "agentlightning").exists()


def test_a_message_shared_by_rows_is_converted_once_and_alike_in_each() -> None:
    """A run's conversation rows share their message dicts (each row a longer prefix): each one is
    converted once per run, and every row holds what ``al_message`` makes of it."""
    from tracebridge.export.views import RunContext
    from tracebridge.export.views_agentlightning import al_message, al_messages

    user = {"role": "user", "content": "list files"}
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "function": {"name": "ls", "arguments": {"path": "."}}}]}
    result = {"role": "tool", "content": "a.txt", "tool_call_id": "c1", "name": "ls"}
    answer = {"role": "assistant", "content": "a.txt"}
    meta = {"run_id": "r1", "event_ids": ["e1"]}
    views = {"worker_sft": [{"messages": [user, call], "meta": meta},
                            {"messages": [user, call, result, answer], "meta": meta}]}
    first, second = al_messages(views, RunContext("r1", "fam", "train", "openclaw", True))
    assert second["messages"] == [al_message(m) for m in (user, call, result, answer)]
    assert second["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"path":"."}'
    assert first["messages"][1] is second["messages"][1]  # made once, not once per row
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]


def test_a_recorded_calls_row_offers_the_tools_that_call_was_offered(tmp_path: Path) -> None:
    """Two model calls of one rollout offered different tools: each worker_sft row holds its call's, but the
    messages rows held the run's toolset for every call (the second call's row offered ``search``, which
    that call never saw, and not ``write``, which it called)."""
    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder

    def tool(name: str) -> list[dict]:
        return [{"type": "function", "function": {"name": name, "description": name,
                                                  "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}}]

    with Recorder(tmp_path / "traces", goal={"text": "find then write", "family": "agent"}, model_stack=MODEL_STACK, runtime_config={"max_steps": 2},
                  tools=tool("search"), source={"kind": "agentlightning", "ref": "t"}, strict=True) as run:
        start = run.emit("planner_input", role="planner", payload={"goal": "find then write"})
        for i, name in enumerate(["search", "write"]):
            act = run.emit("worker_action", role="worker", parent=start,
                           payload={"action": "tool_call", "tool": name, "args": {"x": "1"}},
                           llm=run.llm_call("m", [{"role": "user", "content": f"step {i}"}], tools=tool(name),
                                            response=f"calling {name}"))
            call = run.emit("worker_tool_call", role="worker", parent=act,
                            payload={"call_id": f"c{i}", "tool": name, "args": {"x": "1"}})
            run.emit("worker_tool_result", role="worker", parent=call, payload={"call_id": f"c{i}", "ok": True})
        run.emit("episode_end", role="orchestrator", parent=start, payload={"success": True})
    res = export_traces(tmp_path / "traces", tmp_path / "b", _cfg())
    (split,) = [s for s, n in res.report["rows"]["worker_sft"].items() if n]
    sft = _rows(res.path / "views" / "worker_sft" / f"{split}.jsonl")
    msgs = _rows(res.path / "agentlightning" / "messages" / f"{split}.jsonl")
    assert [[t["function"]["name"] for t in json.loads(r["tools"])] for r in sft] == [["search"], ["write"]]
    assert [[t["function"]["name"] for t in r["tools"]] for r in msgs] == [["search"], ["write"]]
    assert msgs[1]["tools"][0]["function"]["parameters"] == tool("write")[0]["function"]["parameters"]
