"""Records of Agent Lightning 1.0, which stores events, not spans (microsoft/agent-lightning v1.0.0
``agentlightning/schemas.py``: ``Event`` {event_type, rollout_id, attempt_id, timestamp, data} with the
gateway's ``model_request`` and the ``reward`` events, and a ``Rollout`` whose ``status`` is an object
with a ``state``). This importer reads the span stores of 0.2/0.3: a 1.0 line is quarantined with a
reason that says so, not as an unknown record or a 0.3 rollout's validation error."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from tests.importers.conftest import lazy_importorskip
from tracebridge.importers.agentlightning.importer import import_agentlightning

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
lazy_importorskip("agentlightning")

EVENTS = [
    {"event_type": "model_request", "rollout_id": "r1", "attempt_id": "0", "timestamp": 1772359200.5,
     "data": {"model": "qwen", "request": {"messages": [{"role": "user", "content": "2+2?"}]},
              "response": {"choices": [{"message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}]},
              "status": "ok", "usage": {"prompt_tokens": 3, "completion_tokens": 1}}},
    {"event_type": "reward", "rollout_id": "r1", "attempt_id": "0", "timestamp": 1772359201.0, "data": {"value": 1.0}},
    {"rollout_id": "r1", "input": {"q": "2+2?"}, "is_train": True, "config": {"timeout_seconds": 3600},
     "metadata": {}, "status": {"state": "succeeded", "version": 3, "created_at": 1772359200.0,
                                "updated_at": 1772359201.0}},
]


def test_agent_lightning_1_records_are_quarantined_as_such(tmp_path: Path) -> None:
    """Before: the events were "not an Agent Lightning Span ... record" and the rollout failed the
    0.3 model on ``status``; neither said that the file is a 1.0 store."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in EVENTS))
    rep = import_agentlightning([path], tmp_path / "traces")
    assert rep.reconciles and rep.lines_read == 3 and rep.lines_quarantined == 3
    assert [s.split(": ", 2)[:2] for s in rep.quarantine_samples] == [
        [f"{path}:1", "event_type"], [f"{path}:2", "event_type"], [f"{path}:3", "status"]]
    assert all("Agent Lightning 1.0" in s and "0.2/0.3" in s for s in rep.quarantine_samples)
