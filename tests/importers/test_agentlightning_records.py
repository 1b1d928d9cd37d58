"""``import agentlightning`` of stored span files checks lines with ``records`` (copies of Agent
Lightning's ``Span``/``Rollout``/``AttemptedRollout``/``Attempt``), never importing ``agentlightning``
itself (litellm, the OpenTelemetry SDK: ~330 MB and seconds); the copies accept, reject (same first
error) and dump every record as the installed package's own models do."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tests.importers.conftest import lazy_importorskip
from tracebridge.importers.agentlightning import records

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "agentlightning" / "agentops_openai_spans.jsonl"
HEAVY = ("agentlightning", "litellm", "opentelemetry", "agentops", "openai")
NAMES = ("Span", "Rollout", "AttemptedRollout", "Attempt")
no_agl = pytest.mark.skipif(importlib.util.find_spec("agentlightning") is None, reason="agentlightning not installed")
IMPORT = ("import sys; from tracebridge.cli import main\n"
          "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
          f"print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})), file=sys.stderr)\n"
          "sys.exit(code)")

ATTEMPT = {"rollout_id": "ro-1", "attempt_id": "at-1", "sequence_id": 1, "start_time": 1.5, "status": "succeeded",
           "worker_id": "w0", "metadata": {"k": [1, 2]}}
ROLLOUT = {"rollout_id": "ro-1", "input": {"question": "2+2"}, "start_time": 1.0, "end_time": 2.0, "mode": "train",
           "status": "succeeded", "config": {"max_attempts": 2, "retry_condition": ["failed"]}}


def _spans() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def _variants() -> list[dict[str, Any]]:
    """Stored records as they come, and each broken one way (a bad type, a missing field, a bad enum)."""
    span = _spans()[0]
    out = [*_spans(), ATTEMPT, ROLLOUT, {**ROLLOUT, "attempt": ATTEMPT}, {**span, "extra": {"kept": [1]}},
           {**span, "attributes": {"a": [1, 2], "b": ["x"], "c": [True], "d": [1.5, 2]}}]
    for key, value in [("sequence_id", "x"), ("attributes", {"a": {"b": 1}}), ("status", {"status_code": "NO"}),
                       ("events", [{"name": 1}]), ("links", [{"context": {}}]), ("start_time", "soon"),
                       ("resource", None), ("parent", {"span_id": 1}), ("attributes", {"a": [1, "x"]})]:
        out.append({**span, key: value})
    out += [{k: v for k, v in span.items() if k != "name"}, {**ROLLOUT, "status": "weird"},
            {**ROLLOUT, "config": {"max_attempts": 0}}, {**ROLLOUT, "mode": "dev"}, {**ATTEMPT, "start_time": None},
            {**ROLLOUT, "attempt": {**ATTEMPT, "rollout_id": "other"}}, {**ATTEMPT, "status": "queuing"}]
    return out


def _outcome(model: type[BaseModel], obj: dict[str, Any]) -> Any:
    try:
        return model.model_validate(copy.deepcopy(obj)).model_dump(mode="json")
    except ValidationError as exc:
        return [(e["type"], e["loc"], e["msg"]) for e in exc.errors(include_url=False)]


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


def test_the_copies_have_agent_lightnings_schema() -> None:
    agl = lazy_importorskip("agentlightning")
    for name in NAMES:
        ours, theirs = getattr(records, name), getattr(agl, name)
        assert _without_descriptions(ours.model_json_schema()) == _without_descriptions(theirs.model_json_schema()), name
        assert ours.model_config.get("extra") == theirs.model_config.get("extra"), name


def test_the_copies_accept_reject_and_dump_every_record_as_agent_lightning_does() -> None:
    agl = lazy_importorskip("agentlightning")
    for obj in _variants():
        for name in NAMES:
            assert _outcome(getattr(records, name), obj) == _outcome(getattr(agl, name), obj), (name, obj)


@no_agl
def test_importing_stored_span_files_never_imports_agentlightning_or_litellm(tmp_path: Path) -> None:
    """The import reads, checks, quarantines and maps with the package left unloaded."""
    src = tmp_path / "spans"
    src.mkdir()
    (src / "a.jsonl").write_bytes(FIXTURE.read_bytes())
    bad = [{**_spans()[0], "sequence_id": "x"}, ROLLOUT | {"rollout_id": "ro-x", "status": "weird"}]
    (src / "b.jsonl").write_text("".join(json.dumps(b) + "\n" for b in bad))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", IMPORT, "import", "agentlightning", str(src), "--out",
                          str(tmp_path / "traces"), "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    doc = json.loads(res.stdout)
    assert doc["runs_written"] == 1 and doc["quarantined"] == 2 and doc["reconciles"], doc
    assert "HEAVY []" in res.stderr, res.stderr[-3000:]
