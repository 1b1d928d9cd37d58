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
