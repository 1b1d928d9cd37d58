"""Worker rows of recorded model calls (``tracebridge.export.views_llm``): Agent Lightning rollouts
used to give no training row at all, so an export of them failed and their users could not train."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tracebridge.export.config import ExportConfig, ViewsConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.export.views import VIEW_KINDS, RunContext, build_views
from tracebridge.importers.agentlightning.spans import spans_to_events
from tracebridge.schema.canonical import sha256_json
from tracebridge.train.data import to_pref_records, to_sft_records

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
SYSTEM = {"role": "system", "content": "You are a weather bot."}
# spans a real OpenAI client wrote under Agent Lightning's AgentOpsTracer (agentlightning 0.3.0, agentops
# 0.4.21, openai 3.57.0; tests/importers/test_agentlightning_openai.py runs the same agent live)
RECORDED = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"
USER = {"role": "user", "content": "What is the weather in Paris?"}


def _llm(sid: str, t: float, prompt: list[dict], content: str | None = None, calls: list[dict] | None = None,
         tools: bool = True) -> dict:
    attrs: dict = {"gen_ai.request.model": "m1", "gen_ai.completion.0.role": "assistant"}
    for i, m in enumerate(prompt):
        attrs[f"gen_ai.prompt.{i}.role"] = m["role"]
        for j, c in enumerate(m.get("tool_calls") or []):
            attrs[f"gen_ai.prompt.{i}.tool_calls.{j}.id"] = c["id"]
            attrs[f"gen_ai.prompt.{i}.tool_calls.{j}.name"] = c["name"]
            attrs[f"gen_ai.prompt.{i}.tool_calls.{j}.arguments"] = json.dumps(c["arguments"])
        if "content" in m:
            attrs[f"gen_ai.prompt.{i}.content"] = m["content"]
        if m.get("tool_call_id"):
            attrs[f"gen_ai.prompt.{i}.tool_call_id"] = m["tool_call_id"]
    if content is not None:
        attrs["gen_ai.completion.0.content"] = content
    for j, c in enumerate(calls or []):
        attrs[f"gen_ai.completion.0.tool_calls.{j}.id"] = c["id"]
        attrs[f"gen_ai.completion.0.tool_calls.{j}.name"] = c["name"]
        attrs[f"gen_ai.completion.0.tool_calls.{j}.arguments"] = json.dumps(c["arguments"])
    if tools:
        fn = WEATHER["function"]
        attrs.update({"gen_ai.request.functions.0.name": fn["name"], "gen_ai.request.functions.0.description":
                      fn["description"], "gen_ai.request.functions.0.parameters": json.dumps(fn["parameters"])})
    return {"span_id": sid, "parent_id": None, "name": "openai.chat.completion", "attributes": attrs,
            "start_time": t, "end_time": t + 0.5, "status": {"status_code": "OK"}}


def _tool(sid: str, t: float, call_id: str, city: str, error: str | None = None) -> dict:
    attrs = {"tool.name": "get_weather", "tool.parameters": json.dumps({"city": city}), "tool.call.id": call_id}
    if error is None:
        attrs["agentlightning.operation.output"] = "sunny"
    status = {"status_code": "ERROR", "description": error} if error else {"status_code": "OK"}
    return {"span_id": sid, "parent_id": None, "name": "tool.call", "attributes": attrs, "start_time": t,
            "end_time": t + 0.1, "status": status}


def _call(cid: str, city: str) -> dict:
    return {"id": cid, "name": "get_weather", "arguments": {"city": city}}


def weather_rollout() -> list[dict]:
    """A native tool-calling agent: a failed call (a typo), the recovery, then the answer. Tool spans
    are siblings of the model calls, as an OpenAI client's instrumentation gives them."""
    p1 = [SYSTEM, USER]
    p2 = p1 + [{"role": "assistant", "tool_calls": [_call("c1", "Pari")]},
               {"role": "tool", "tool_call_id": "c1", "content": "error: city not found"}]
    p3 = p2 + [{"role": "assistant", "tool_calls": [_call("c2", "Paris")]},
               {"role": "tool", "tool_call_id": "c2", "content": "sunny"}]
    return [_llm("a", 1.0, p1, calls=[_call("c1", "Pari")]), _tool("b", 2.0, "c1", "Pari", "city not found"),
            _llm("c", 3.0, p2, calls=[_call("c2", "Paris")]), _tool("d", 4.0, "c2", "Paris"),
            _llm("e", 5.0, p3, content="<think>the tool said sunny</think>It is sunny in Paris."),
            {"span_id": "f", "parent_id": None, "name": "agentlightning.annotation", "start_time": 6.0,
             "end_time": 6.0, "attributes": {"agentlightning.reward.0.name": "primary",
                                             "agentlightning.reward.0.value": 1.0}}]


def _views(events: list[dict], cfg: ViewsConfig | None = None, tools: list | None = None):
    ctx = RunContext("al-1", "agentlightning", "train", "agentlightning", True, tools=tools or [WEATHER])
    out, stats = build_views(events, ctx, cfg or ViewsConfig())
    return out, stats


def test_each_recorded_call_is_a_row_of_its_prompt_and_reply() -> None:
    run = spans_to_events(weather_rollout(), "al-1", {"goal": "weather in Paris"})
    first = next(e for e in run.events if e["event_type"] == "worker_action")
    assert first["llm"]["tool_calls"] == [{**_call("c1", "Pari"), "arguments": '{"city": "Pari"}'}]
    assert first["llm"]["toolset_hash"]
    assert first["payload"]["action"] == "tool_call" and first["payload"]["args"] == {"city": "Pari"}
    out, stats = _views(run.events)
    rows = out["worker_sft"]
    assert len(rows) == 3 and not stats
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Pari"}'}}
    assert rows[0]["messages"] == [SYSTEM, USER, {"role": "assistant", "content": "", "tool_calls": [call]}]
    assert rows[1]["messages"][:4] == [SYSTEM, USER, {"role": "assistant", "content": "", "tool_calls": [call]},
                                       {"role": "tool", "content": "error: city not found", "tool_call_id": "c1"}]
    assert rows[2]["messages"][-1] == {"role": "assistant", "content": "It is sunny in Paris."}  # no thinking
    assert [r["meta"]["labels"]["context_messages"] for r in rows] == [2, 4, 6]
    assert json.loads(rows[0]["tools"]) == [WEATHER]
    assert [r["meta"]["labels"].get("tool_ok") for r in rows] == [False, True, None]
    # lineage: the call, then its tool call and result
    types = {e["event_id"]: e["event_type"] for e in run.events}
    assert [types[i] for i in rows[0]["meta"]["event_ids"]] == ["worker_action", "worker_tool_call",
                                                                "worker_tool_result"]


def test_a_recovery_gives_a_pair_against_the_failed_reply() -> None:
    out, _ = _views(spans_to_events(weather_rollout(), "al-1", {"goal": "weather in Paris"}).events)
    (rec,), (pair,) = out["worker_recovery_cases/sft"], out["worker_recovery_cases/pairs"]
    assert rec is out["worker_sft"][1] and rec["meta"]["labels"]["recovery"] is True
    assert rec["meta"]["labels"]["failed_attempts"] == 1
    assert pair["prompt"] == rec["messages"][:-1] and pair["chosen"] == [rec["messages"][-1]]
    assert pair["rejected"] == [out["worker_sft"][0]["messages"][-1]]  # what the model said last time
    (sft,) = to_pref_records([pair])[:1]
    assert sft["chosen"] != sft["rejected"]


def test_training_takes_the_reply_alone_as_the_target() -> None:
    out, _ = _views(spans_to_events(weather_rollout(), "al-1", {"goal": "weather in Paris"}).events)
    recs = to_sft_records(out["worker_sft"])
    assert [len(r["completion"]) for r in recs] == [1, 1, 1]
    assert recs[2]["completion"][0]["content"] == "It is sunny in Paris." and len(recs[2]["prompt"]) == 6


def test_a_text_only_agent_is_shown_no_tool_list(tmp_path: Path) -> None:
    """A ReAct loop parses the reply itself: its prompt had no tools, and its rows must not add them."""
    pytest.importorskip("agentlightning")
    from tracebridge.importers.agentlightning.hook import RuntimeHook
    from tracebridge.importers.agentlightning.smoke import tiny_agent

    for q, a in (("6*7", 42), ("2+3", 5)):
        RuntimeHook(tmp_path / "t").run(tiny_agent, {"question": q, "expected": a})
    res = export_traces(tmp_path / "t", tmp_path / "b")
    assert res.report["passed"], res.report["failures"]
    rows = [orjson.loads(line) for f in sorted((res.path / "views" / "worker_sft").glob("*.jsonl"))
            for line in f.read_bytes().splitlines()]
    assert len(rows) == 4 and all(r["tools"] is None for r in rows)
    assert sorted(r["messages"][-1]["content"] for r in rows if len(r["messages"]) == 2) == \
        ["calculator(2+3)", "calculator(6*7)"]
    assert sum(res.report["rows"]["agentlightning/triplets"].values()) == 4


def test_runs_of_one_agent_are_split_by_task(tmp_path: Path) -> None:
    """A hook records one goal family (one agent): its runs are split by task too (``split.by_goal_sources``
    holds agentlightning), so training finds test rows; they used to be all in one split."""
    pytest.importorskip("agentlightning")
    from tracebridge.importers.agentlightning.hook import RuntimeHook
    from tracebridge.importers.agentlightning.smoke import tiny_agent

    for q, a in (("6*7", 42), ("2+3", 5), ("9-4", 5), ("8*2", 16), ("3*3", 9), ("1+1", 2)):
        RuntimeHook(tmp_path / "t").run(tiny_agent, {"question": q, "expected": a})
    res = export_traces(tmp_path / "t", tmp_path / "b")
    assert res.report["passed"], res.report["failures"]
    assert set(res.report["rows"]["worker_sft"]) == {"train", "validation", "test"}, res.report["rows"]
    assert not res.report["leakage"]["families_in_several_splits"]


def test_calls_that_give_no_row_are_counted() -> None:
    spans = weather_rollout()
    spans[0]["attributes"] = {k: v for k, v in spans[0]["attributes"].items() if not k.startswith("gen_ai.prompt")}
    spans[4]["attributes"].pop("gen_ai.completion.0.content")
    run = spans_to_events(spans, "al-1", {"goal": "weather in Paris"})
    first = next(e for e in run.events if e["event_type"] == "worker_action")
    first["llm"]["rendered_prompt"] = "<|im_start|>user\nWhat is the weather?<|im_end|>"  # a rendered template
    out, stats = _views(run.events)
    assert len(out["worker_sft"]) == 1 and stats == {"llm_prompt_not_messages": 1, "llm_call_without_reply": 1}


def test_sources_not_read_this_way_give_no_rows_and_the_export_says_why(tmp_path: Path) -> None:
    pytest.importorskip("agentlightning")
    from tracebridge.importers.agentlightning.hook import RuntimeHook
    from tracebridge.importers.agentlightning.smoke import tiny_agent

    RuntimeHook(tmp_path / "t").run(tiny_agent, {"question": "6*7", "expected": 42})
    cfg = ExportConfig()
    cfg.views.llm_call_sources = []
    res = export_traces(tmp_path / "t", tmp_path / "b", cfg)
    assert not res.report["passed"] and not any(n for v in res.report["rows"].values() for n in v.values())
    assert set(VIEW_KINDS) <= set(res.report["rows"])  # every view listed, with its zeros
    (why,) = res.report["failures"]
    assert why.startswith("no row in any view from 1 exported runs") and "views.llm_call_sources=[]" in why


def test_llm_call_sources_are_checked() -> None:
    cfg = ViewsConfig(llm_call_sources=["agentlightnin", "openclaw"])
    problems = cfg.validate()
    assert any(p.startswith("views.llm_call_sources=agentlightnin: unknown source kind") for p in problems)
    assert any(p.startswith("views.llm_call_sources=openclaw: also in views.conversational_sources") for p in problems)


def test_prompt_messages_take_openai_role_names_and_content_parts() -> None:
    from tracebridge.export.views_llm import prompt_messages

    raw = [{"role": "developer", "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}]},
           {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "u"}}]},
           {"role": "function", "name": "get_weather", "content": "sunny"}]
    msgs = prompt_messages({"rendered_prompt": json.dumps(raw)})
    assert msgs is not None and [m["role"] for m in msgs] == ["system", "user", "tool"]
    assert msgs[0]["content"] == "Be brief." and json.loads(msgs[1]["content"])[1]["type"] == "image_url"
    assert msgs[2]["tool_call_id"] == "get_weather"
    assert prompt_messages({"rendered_prompt": json.dumps([{"role": "narrator", "content": "x"}])}) is None


def test_a_call_is_ok_only_when_every_tool_it_asked_for_succeeded() -> None:
    from tracebridge.export.views_llm import _tool_events

    def ev(i: int, et: str, **p) -> dict:
        return {"event_id": f"e{i}", "event_type": et, "payload": p, **({"llm": {}} if et == "worker_action" else {})}

    events = [ev(1, "worker_action"), ev(2, "worker_tool_call", call_id="a"), ev(3, "worker_tool_result", call_id="a", ok=False),
              ev(4, "worker_tool_call", call_id="b"),  # no result
              ev(5, "worker_action"), ev(6, "worker_tool_call", call_id="c"), ev(7, "worker_tool_result", call_id="c", ok=True),
              ev(8, "worker_action"), ev(9, "worker_tool_call", call_id="d")]
    assert _tool_events(events) == {"e1": (["e2", "e3", "e4"], False), "e5": (["e6", "e7"], True), "e8": (["e9"], None)}


def _recorded() -> list[dict]:
    return [json.loads(line) for line in RECORDED.read_text().splitlines()]


def test_recorded_agentops_spans_give_the_calls_their_tool_calls_and_rows() -> None:
    """agentops records a reply's tool calls as ``tool_call.<name>`` child spans, not as
    ``gen_ai.completion.0.tool_calls.*``: they were mapped as a tool that ran (ok, no output) and the
    call had no reply, so the first call gave no row."""
    run = spans_to_events(_recorded(), "al-1", {"question": "What is the weather in Paris?"})
    assert not run.drift and run.kinds == {"llm": 2, "llm_tool_call": 1, "tool": 1, "reward": 1, "session": 1}
    first, call = [e for e in run.events if e["event_type"] in ("worker_action", "worker_tool_call")][:2]
    assert first["llm"]["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
    assert first["llm"]["toolset_hash"] == sha256_json([WEATHER]) and call["payload"]["call_id"] == "call_1"
    out, stats = _views(run.events)
    rows = out["worker_sft"]
    assert not stats and len(rows) == 2
    asked = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    user = {"role": "user", "content": "What is the weather in Paris?"}
    assert rows[0]["messages"] == [user, asked]
    assert rows[1]["messages"] == [user, asked, {"role": "tool", "content": "sunny in Paris", "tool_call_id": "call_1"},
                                   {"role": "assistant", "content": "It is sunny in Paris."}]
    assert [r["meta"]["labels"].get("tool_ok") for r in rows] == [True, None]


def test_a_prompt_message_the_instrumentation_missed_is_filled_in_or_counted() -> None:
    """An OpenAI message object sent back as is has no ``gen_ai.prompt.1.*``: it is the previous reply when
    the prompt continues that conversation; otherwise the call gives no row (its prompt would skip a turn)."""
    spans = _recorded()
    second = [s for s in spans if s["name"] == "openai.chat.completion"][1]["attributes"]
    for k in [k for k in second if k.startswith("gen_ai.prompt.1.")]:
        del second[k]
    out, stats = _views(spans_to_events(spans, "al-1", {"question": "q"}).events)
    assert len(out["worker_sft"]) == 2 and not stats
    assert out["worker_sft"][1]["messages"][1]["tool_calls"][0]["id"] == "call_1"
    second["gen_ai.prompt.0.content"] = "another conversation"
    run = spans_to_events(spans, "al-1", {"question": "q"})
    prompt = json.loads([e for e in run.events if e["event_type"] == "worker_action"][1]["llm"]["rendered_prompt"])
    assert prompt[1] is None
    out, stats = _views(run.events)
    assert len(out["worker_sft"]) == 1 and stats == {"llm_prompt_incomplete": 1}


def test_content_parts_agentops_wrote_as_json_are_parts_again() -> None:
    spans = _recorded()
    first = next(s for s in spans if s["name"] == "openai.chat.completion")["attributes"]
    first["gen_ai.prompt.0.content"] = json.dumps([{"type": "text", "text": "Weather "}, {"type": "text", "text": "in Paris?"}])
    run = spans_to_events(spans, "al-1", {"question": "q"})
    action = next(e for e in run.events if e["event_type"] == "worker_action")
    assert json.loads(action["llm"]["rendered_prompt"])[0]["content"][1] == {"type": "text", "text": "in Paris?"}
    out, _ = _views(run.events)
    assert out["worker_sft"][0]["messages"][0] == {"role": "user", "content": "Weather in Paris?"}


HUGE = "".join(f"line {i}: request done\n" for i in range(3000))  # ~67K characters, a log dump
LONG_REPLY = "Paris: " + "sunny and warm. " * 1000  # a reply over the budget: a target, never cut


def _huge_rollout() -> list[dict]:
    """The weather agent whose first tool output is a log dump, repeated in both later calls' prompts."""
    p1 = [SYSTEM, USER]
    p2 = p1 + [{"role": "assistant", "tool_calls": [_call("c1", "Paris")]},
               {"role": "tool", "tool_call_id": "c1", "content": HUGE}]
    p3 = p2 + [{"role": "assistant", "tool_calls": [_call("c2", "Paris")]},
               {"role": "tool", "tool_call_id": "c2", "content": "sunny"}]
    return [_llm("a", 1.0, p1, calls=[_call("c1", "Paris")]), _tool("b", 2.0, "c1", "Paris"),
            _llm("c", 3.0, p2, calls=[_call("c2", "Paris")]), _tool("d", 4.0, "c2", "Paris"),
            _llm("e", 5.0, p3, content=LONG_REPLY)]


def test_a_huge_tool_output_in_recorded_prompts_is_cut_in_every_later_row_and_counted_once() -> None:
    """A call's prompt repeats every earlier output: a log dump was copied whole into every later call's
    row, triplet and messages row (the budget cut only worker and conversation rows)."""
    from tracebridge.export.views_worker import _cut

    events = spans_to_events(_huge_rollout(), "al-1", {"goal": "weather in Paris"}).events
    out, stats = _views(events)
    rows = out["worker_sft"]
    cut = _cut(HUGE, 8000)
    assert f"[… {len(HUGE) - 8000} characters cut …]" in cut and HUGE.startswith(cut[:5000])
    assert [r["messages"][3]["content"] for r in rows[1:]] == [cut, cut]
    assert rows[2]["messages"][5]["content"] == "sunny"  # under the budget: whole
    assert rows[2]["messages"][-1] == {"role": "assistant", "content": LONG_REPLY}  # the target is whole
    assert stats == {"tool_outputs_cut": 1, "tool_output_chars_cut": len(HUGE) - 8000, "tool_output_max_chars": 2}
    triplets, messages = out["agentlightning/triplets"], out["agentlightning/messages"]
    assert [t["prompt"][3]["content"] for t in triplets[1:]] == [cut, cut] and triplets[2]["response"]["content"] == LONG_REPLY
    assert [m["messages"][3]["content"] for m in messages[1:]] == [cut, cut]
    assert orjson.dumps(HUGE).decode()[1:-1] not in orjson.dumps(out).decode()  # no whole copy in any view


def test_tool_output_max_chars_0_keeps_recorded_tool_outputs_whole() -> None:
    events = spans_to_events(_huge_rollout(), "al-1", {"goal": "weather in Paris"}).events
    out, stats = _views(events, ViewsConfig(tool_output_max_chars=0))
    assert [r["messages"][3]["content"] for r in out["worker_sft"][1:]] == [HUGE, HUGE] and not stats
    assert [t["prompt"][3]["content"] for t in out["agentlightning/triplets"][1:]] == [HUGE, HUGE]


def test_tool_result_blocks_in_recorded_prompts_are_cut_and_other_content_is_not() -> None:
    """Anthropic-style prompts carry tool outputs as ``tool_result`` blocks of a user message (a string or
    text parts): they are cut as tool messages are; a long user or system message is not a tool output."""
    from collections import Counter

    from tracebridge.export.views_llm import ToolCuts, prompt_messages

    raw = [{"role": "system", "content": HUGE},
           {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": HUGE}]},
                                        {"type": "tool_result", "tool_use_id": "t2", "content": HUGE + "!"},
                                        {"type": "tool_result", "tool_use_id": "t3", "content": "ok"}]}]
    stats: Counter[str] = Counter()
    cuts = ToolCuts(8000, stats)
    first, again = (prompt_messages({"rendered_prompt": json.dumps(raw)}, cut=cuts) for _ in range(2))
    assert first == again and first is not None and first[0]["content"] == HUGE
    blocks = json.loads(first[1]["content"])
    assert [len(b["content"]) < 8100 for b in blocks[:2]] == [True, True] and blocks[2]["content"] == "ok"
    assert "characters cut" in blocks[0]["content"] and blocks[1]["content"].endswith("!")
    # two distinct outputs, each counted once though two prompts held them
    assert stats == {"tool_outputs_cut": 2, "tool_output_chars_cut": 2 * (len(HUGE) - 8000) + 1}
    whole = prompt_messages({"rendered_prompt": json.dumps(raw)}, cut=ToolCuts(0, stats))
    assert whole is not None and json.loads(whole[1]["content"])[0]["content"] == [{"type": "text", "text": HUGE}]


def _write_rollouts(out: Path, rollouts: dict[str, list[dict]]) -> None:
    """Runs of the given spans, written as the runtime hook writes them."""
    from tracebridge.importers.agentlightning.runs import session_record, write_events
    from tracebridge.importers.openclaw.runs import RunWriter

    for rid, spans in rollouts.items():
        run = spans_to_events(spans, f"al-{rid}", {"goal": f"weather {rid}"})
        writer = RunWriter(out, f"al-{rid}", durable=True)
        assert write_events(writer, run) == 0
        writer.close(session_record(run, f"al-{rid}", goal_family="agentlightning", spans=len(spans), dropped=0, ref=rid))


def _long_tool_outputs(res) -> list[str]:
    """The tool outputs over 100 characters of an export's worker_sft, messages and triplet rows."""
    def rows(key: str) -> list[dict]:
        return [orjson.loads(line) for f in sorted((res.path / key).glob("*.jsonl")) for line in f.read_bytes().splitlines()]

    msgs = [m for key in ("views/worker_sft", "agentlightning/messages") for r in rows(key) for m in r["messages"]]
    msgs += [m for t in rows("agentlightning/triplets") for m in t["prompt"]]
    return [m["content"] for m in msgs if m["role"] == "tool" and len(m["content"]) > 100]


def test_an_export_of_recorded_calls_cuts_every_copy_and_its_counts_reconcile(tmp_path: Path) -> None:
    """report.json views.tool_outputs counts the dump once though three files carry it in two rows each;
    every copy in worker_sft, triplets and messages is the same cut; 0 writes it whole everywhere."""
    _write_rollouts(tmp_path / "t", {"big": _huge_rollout(), "plain": weather_rollout()})
    res = export_traces(tmp_path / "t", tmp_path / "b")
    assert res.report["views"]["tool_outputs"] == {"max_chars": 8000, "cut": 1, "chars_cut": len(HUGE) - 8000}
    assert res.report["views"]["rows_trimmed"] == {"tool_output_max_chars": 2}
    copies = _long_tool_outputs(res)  # the dump's copies: two rows in each file
    assert len(copies) == 6 and len(set(copies)) == 1 and f"[… {len(HUGE) - 8000} characters cut …]" in copies[0]
    cfg = ExportConfig()
    cfg.views.tool_output_max_chars = 0
    whole = export_traces(tmp_path / "t", tmp_path / "b0", cfg)
    assert "tool_outputs" not in whole.report["views"] and "rows_trimmed" not in whole.report["views"]
    assert _long_tool_outputs(whole) == [HUGE] * 6
