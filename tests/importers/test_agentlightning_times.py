"""Span times the run cannot hold are listed as problems naming file:line, span and field; the span is kept
(before, a start_time of 1e300 or an end before the start was replaced without a word)."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.importers.conftest import lazy_importorskip
from tracebridge.importers.agentlightning.importer import import_agentlightning

lazy_importorskip("agentlightning")
SPANS = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"


def test_unrepresentable_and_reversed_times_are_problems(tmp_path):
    spans = [orjson.loads(x) for x in SPANS.read_bytes().splitlines()]
    tool = next(i for i, s in enumerate(spans) if "tool.call.id" in s["attributes"])
    late = next(i for i in range(len(spans)) if i != tool and spans[i]["end_time"])
    spans[tool]["start_time"] = 1e300
    spans[late]["end_time"] = spans[late]["start_time"] - 5
    src = tmp_path / "spans.jsonl"
    src.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in spans))
    clean = import_agentlightning([SPANS], tmp_path / "clean").to_dict()
    d = import_agentlightning([src], tmp_path / "t").to_dict()
    assert d["runs_written"] == 1 and d["span_problems"] == clean["span_problems"] + 2
    assert f"{src}:{tool + 1}: span {spans[tool]['span_id']}: start_time: 1e+300 is no time the schema can hold" \
           " (epoch seconds in the years 1-9999)" in "\n".join(d["problems"])
    assert (f"{src}:{late + 1}: span {spans[late]['span_id']}: end_time: {spans[late]['end_time']!r} is before "
            f"start_time {spans[late]['start_time']!r}: its latency is recorded as 0") in d["problems"]
    assert d["events_written"] == clean["events_written"]  # every span kept


def test_the_runs_reward_is_the_last_in_sequence_order_as_agent_lightnings(tmp_path):
    """Spans from hosts whose clocks differ (Agent Lightning's LLM proxy warns of it): the run's reward is the one
    ``find_final_reward`` gives over the store's spans (ordered by ``sequence_id``). Before, the reward that
    started last by the clock won: a rollout Agent Lightning rewarded 1.0 was imported with 0.0, success false."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from tests.importers.test_agentlightning_hostile import _call, _span

    agl = lazy_importorskip("agentlightning")
    reward = lambda v: {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": v}
    spans = [_call(0, "q", "a", start=2e9), _span("agentlightning.annotation", reward(0.0), 1, start=2e9 + 9),
             _call(2, "q2", "b", start=2e9 + 2), _span("agentlightning.annotation", reward(1.0), 3, start=2e9 + 3)]
    stored = sorted((agl.Span.model_validate(s) for s in spans), key=lambda s: s.sequence_id)  # store.query_spans
    assert agl.find_final_reward(stored) == 1.0
    src = tmp_path / "spans.jsonl"
    src.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in reversed(spans)))
    assert import_agentlightning([src], tmp_path / "t").runs_written == 1
    session = orjson.loads(next((tmp_path / "t").glob("al-*/session.json")).read_bytes())
    assert session["labels"]["reward"] == 1.0 and session["summary"]["success"] is True


def test_the_latest_attempt_without_attempt_records_is_the_one_the_store_numbered_last(tmp_path):
    """A retry on another runner whose clock is behind, the spans dumped without Attempt records: the store
    numbers a rollout's spans across its attempts (``get_next_span_sequence_id``), so the retry's spans come
    after the first attempt's. Before, the attempt whose first span started last by the clock was taken:
    the failed first attempt was imported and the retry counted as superseded."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from tests.importers.test_agentlightning_hostile import _call, _span

    reward = {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": 0.0}
    first = [_call(0, "q", "wrong", start=2e9 + 100), _span("agentlightning.annotation", reward, 1, start=2e9 + 101)]
    retry = [_call(2, "q", "right", start=2e9 + 40)]  # 60 s behind on its host
    for s in retry:
        s["attempt_id"] = "at-2"
    src = tmp_path / "spans.jsonl"
    src.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in first + retry))
    rep = import_agentlightning([src], tmp_path / "t")
    assert rep.runs_written == 1 and rep.spans_superseded == 2
    run = next((tmp_path / "t").glob("al-*"))
    assert orjson.loads((run / "session.json").read_bytes())["runtime_config"]["extra"]["attempt_id"] == "at-2"
    replies = [e["llm"]["response"] for e in map(orjson.loads, (run / "events.jsonl").read_bytes().splitlines())
               if e["event_type"] == "worker_action"]
    assert replies == ["right"]


def _skewed_import(tmp_path, spans):
    """(report, worker_action replies in event order, events) of ``spans`` imported as one store dump."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    src = tmp_path / "spans.jsonl"
    src.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in spans))
    rep = import_agentlightning([src], tmp_path / "t")
    assert rep.reconciles and rep.runs_written == 1, rep.to_dict()
    run = next((tmp_path / "t").glob("al-*"))
    events = [orjson.loads(x) for x in (run / "events.jsonl").read_bytes().splitlines()]
    return rep, [e["llm"]["response"] for e in events if e["event_type"] == "worker_action"], events


def test_siblings_from_hosts_whose_clocks_differ_keep_the_stores_order_and_the_report_says_so(tmp_path):
    """Two model calls in one agent span, the second made on a host whose clock is 30 s behind: the store numbered
    them first, second (``sequence_id``). Before, they were ordered by start time: the second call became the
    run's first step, and nothing said the clocks disagreed."""
    from tests.importers.test_agentlightning_hostile import _call, _span

    agent = _span("agent", {}, 0, span_id="a" * 16, start=2e9, seq=9)  # ends last: numbered last
    spans = [agent, _call(1, "q1", "first", parent="a" * 16, start=2e9 + 40, seq=1),
             _call(2, "q2", "second", parent="a" * 16, start=2e9 + 10, seq=2)]
    rep, replies, _ = _skewed_import(tmp_path, spans)
    assert replies == ["first", "second"]
    d = rep.to_dict()
    assert d["clock_skew_rollouts"] == 1 and d["clock_skew_spans"] == 1
    assert (f"{tmp_path / 'spans.jsonl'}:2: rollout ro-1: clock skew in 1 span(s) (e.g. span {'0' * 15}2 starts "
            f"29.500 s after its sibling {'0' * 15}3 ended, which the store numbered later (sequence_id 1 < 2)): "
            "ordered by parent/child and sequence_id, not by time") in d["problems"]


def test_a_child_that_starts_before_its_parent_follows_it_and_its_subtree_stays_whole(tmp_path):
    """The LLM proxy's call inside an agent's tool, on a host 5 s behind: the call follows its tool, and the
    tool's subtree is not split by a sibling that started later by the tool's clock (before, spans were sorted by
    start time: the call tied with its tool's start, clamped, and numbered before it (the store numbers a span when it
    ends) was mapped before the tool it ran inside)."""
    from tests.importers.test_agentlightning_hostile import _call, _span

    tool = _span("agentlightning.operation", {"agentlightning.operation.name": "search",
                                              "agentlightning.operation.input.q": "x"}, 0, span_id="t" * 16,
                 start=2e9, seq=2)
    inner = _call(1, "inner q", "inner", parent="t" * 16, start=2e9 - 5, seq=1)  # the proxy's clock is behind
    after = _call(3, "q2", "after", start=2e9 + 0.2, seq=3)  # starts (by the clock) while the tool still runs
    rep, replies, events = _skewed_import(tmp_path, [after, inner, tool])
    assert replies == ["inner", "after"]
    call = next(e for e in events if e["event_type"] == "worker_tool_call")
    inner_action = next(e for e in events if e["event_type"] == "worker_action")
    assert inner_action["parent_event_id"] == call["event_id"]  # made inside the tool (before: mapped before it)
    d = rep.to_dict()
    assert d["clock_skew_rollouts"] == 1 and d["clock_skew_spans"] == 1
    assert any(f"span {'0' * 15}2 starts 5.000 s before its parent {'t' * 16}" in p for p in d["problems"])


def test_siblings_with_equal_times_take_the_stores_order_and_no_skew_is_reported(tmp_path):
    """Coarse clocks give siblings one start time: their ``sequence_id`` orders them, whatever the order of the
    records in the file; equal times are no skew."""
    from tests.importers.test_agentlightning_hostile import _call

    spans = [_call(k, f"q{k}", f"r{k}", start=2e9, seq=k) for k in range(4)]
    rep, replies, _ = _skewed_import(tmp_path, spans[::-1])
    assert replies == ["r0", "r1", "r2", "r3"]
    assert rep.clock_skew_rollouts == 0 and rep.clock_skew_spans == 0
    assert not any("clock skew" in p for p in rep.problems)


def test_spans_recorded_on_one_clock_report_no_skew(tmp_path):
    """The AgentOps recording (one process, one clock): ordered as by start time, no skew reported."""
    rep = import_agentlightning([SPANS], tmp_path / "t")
    assert rep.runs_written == 1 and rep.clock_skew_rollouts == 0 and rep.clock_skew_spans == 0


def test_a_span_that_overtook_a_sibling_on_its_way_to_the_store_is_ordered_by_it_but_no_skew():
    """The store numbers records as they reach it: a short span that ended just after a sibling may reach it
    first. Within 0.1 s that is no clock skew (the spans keep the store's order all the same); past it, it is."""
    from tests.importers.test_agentlightning_hostile import _call
    from tracebridge.importers.agentlightning.spans import spans_to_events

    for gap, skewed in ((0.05, {}), (0.3, {"0000000000000002"})):
        run = spans_to_events([_call(1, "q1", "a", start=2e9 + 0.5 + gap, seq=1), _call(2, "q2", "b", start=2e9, seq=2)],
                              "r", "task")
        assert [e["llm"]["response"] for e in run.events if e["event_type"] == "worker_action"] == ["a", "b"]
        assert set(run.skewed) == set(skewed), gap


def test_the_runtime_hook_logs_clock_skew_in_the_spans_it_writes(tmp_path, caplog):
    """The hook writes the spans the store holds at the end of a run (its LLM proxy's among them): clock skew in
    them is logged as the span problems are, where the agent's operator sees them (before: nothing said it)."""
    import logging

    from tests.importers.test_agentlightning_hostile import _call, _span
    from tracebridge.importers.agentlightning.hook import HookResult, RuntimeHook

    agent = _span("agent", {}, 0, span_id="a" * 16, start=2e9, seq=9)
    spans = [agent, _call(1, "q1", "first", parent="a" * 16, start=2e9 + 40, seq=1),
             _call(2, "q2", "second", parent="a" * 16, start=2e9 + 10, seq=2)]
    res = HookResult()
    with caplog.at_level(logging.WARNING, logger="tracebridge.importers.agentlightning.hook"):
        RuntimeHook(tmp_path)._write(res, spans, "ro-1", {"goal": "g"}, None)
    assert res.capture_ok and res.events_written > 0
    assert f"rollout ro-1: clock skew in 1 span(s) (e.g. span {'0' * 15}2 starts 29.500 s after its sibling" \
           in caplog.text
