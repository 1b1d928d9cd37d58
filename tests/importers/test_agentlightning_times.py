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
