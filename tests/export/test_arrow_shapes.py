"""Runs whose values change type from run to run (a tool argument an int here and a string there, labels of
mixed types, schemas of different shapes, empty lists, answers that are objects) still export views that
Arrow reads with one type per column: ``pyarrow.json`` with strict inference (what ``datasets`` before 5.0
relies on, without its JSON-column fallback) and ``datasets.load_dataset("json")``. Guards: tool-call
arguments and ``tools`` as JSON strings (``views.json_strings``) and typed labels (``labels.safe_labels``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MODEL_STACK
from tracebridge.capture.recorder import Recorder
from tracebridge.export.pipeline import export_traces

ARGS = [{"n": 1}, {"n": "one"}, {"n": [1, 2]}, {"n": {"x": 1}}, {"n": None}, {}, {"n": 1.5}, {"n": True}]
LABELS = [{"confidence": 1}, {"confidence": "high"}, {"note": [1, 2]}, {"note": "s"}, {"tool_mask": "a"}, None,
          {"fault": 3}, {"recovery": "yes"}]
ANSWERS = [{"a": 1}, [1, 2], 7, "text", False]
SCHEMAS = [{"n": {"type": "integer", "enum": [1, 2], "default": 1}},
           {"n": {"type": ["string", "null"], "enum": ["a", "b"], "default": "a"}},
           {"n": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "m": {"type": "array", "items": [{}]}}]


def _record(root: Path, k: int) -> None:
    props = SCHEMAS[k % 3]
    tools = [{"type": "function", "function": {"name": "calc", "description": "d", "parameters": {
        "type": "object", "properties": props, "required": [] if k % 2 else ["n"]}}}] if k % 4 else None
    with Recorder(root, goal={"text": f"task {k}", "family": f"fam{k % 5}"}, model_stack=MODEL_STACK,
                  runtime_config={"max_steps": 2}, tools=tools, strict=True) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": f"task {k}", "tool_mask": ["calc"]})
        po = run.emit("planner_output", role="planner", parent=pi, labels=LABELS[k % 8],
                      payload={"plan": [{"index": 0, "description": "d", "tool": "calc", "args": ARGS[k % 8]}]})
        wi = run.emit("worker_input", role="worker", parent=po, payload={
            "plan_step": {"index": 0, "description": "d"}, "allowed_tools": [] if k % 3 == 0 else ["calc"]})
        parent = wi
        for j, args in enumerate([ARGS[(k + 1) % 8], ARGS[k % 8]]):  # a failed call, then another
            act = run.emit("worker_action", role="worker", parent=parent, labels=LABELS[(k + j) % 8],
                           payload={"action": "tool_call", "tool": "calc", "args": args},
                           llm=run.llm_call("m", [{"role": "user", "content": "go"}], tools=tools, response="call"))
            call = run.emit("worker_tool_call", role="worker", parent=act,
                            payload={"call_id": f"c{j}", "tool": "calc", "args": args})
            parent = run.emit("worker_tool_result", role="worker", parent=call, payload=(
                {"call_id": f"c{j}", "ok": True, "output": ANSWERS[k % 5]} if j else
                {"call_id": f"c{j}", "ok": False, "error": {"kind": "bad_args", "message": "no"}}))
        act = run.emit("worker_action", role="worker", parent=parent, payload={"action": "respond"})
        wo = run.emit("worker_output", role="worker", parent=act, payload={"result": ANSWERS[k % 5]})
        vi = run.emit("verifier_input", role="verifier", parent=wo,
                      payload={"plan_progress": {"completed": 1, "total": 1}, "evidence": [k, "x", {"a": [k]}]})
        run.emit("verifier_output", role="verifier", parent=vi, labels=LABELS[(k + 3) % 8], payload={
            "verdict": "end", "feedback": "" if k % 2 else "ok", "risk_flags": [] if k % 2 else ["r"],
            "confidence": 1 if k % 2 else 0.5})
        run.emit("episode_end", role="orchestrator", parent=wo, payload={"success": k % 3 != 1})


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("traces")
    for k in range(20):
        _record(root, k)
    res = export_traces(root, tmp_path_factory.mktemp("bundles"))
    assert res.passed and res.report["runs"]["exported"] == 20, res.report["failures"]
    return res.path


def _view_files(bundle: Path) -> list[Path]:
    return sorted((bundle / "views").rglob("*.jsonl"))


def test_every_view_file_has_one_arrow_type_per_column(bundle: Path) -> None:
    import pyarrow.json as paj

    files = _view_files(bundle)
    assert {f.relative_to(bundle / "views").parent.as_posix() for f in files} >= {
        "planner_sft", "worker_sft", "verifier_sft", "verifier_pref_pairs", "worker_recovery_cases/sft",
        "worker_recovery_cases/pairs"}
    for f in files:  # strict inference over the whole file in one block: a type change is an error
        table = paj.read_json(f, read_options=paj.ReadOptions(block_size=1 << 26))
        assert table.num_rows == len(f.read_bytes().splitlines()), f


def test_every_view_file_loads_with_datasets(bundle: Path) -> None:
    import datasets

    for f in _view_files(bundle):
        ds = datasets.load_dataset("json", data_files=str(f), split="train", cache_dir=str(bundle.parent / ".hf"))
        assert len(ds) == len(f.read_bytes().splitlines()), f
        if "tools" in ds.features:  # one string per row, whatever the schemas' shapes
            assert ds.features["tools"] == datasets.Value("string"), f
