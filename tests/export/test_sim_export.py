"""A simulator bundle: every view loads with ``datasets.load_dataset("json")`` and formats with a
tokenizer's chat template through TRL's own data utilities; targets parse with the role contract."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.schema import roles


@pytest.fixture(scope="module")
def sim_bundle(sim_traces: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_traces(sim_traces, tmp_path_factory.mktemp("sim_bundles"))


def test_sim_bundle_report(sim_bundle: ExportResult) -> None:
    rep = sim_bundle.report
    assert rep["passed"] and rep["runs"]["read"] == 32 == rep["runs"]["accepted"]
    assert rep["leakage"]["passed"] and rep["views"]["tool_schemas"] == {"toolset_hash": 32}
    assert set(rep["split"]["assignment"].values()) == {"train", "validation", "test"}
    for key in ("planner_sft", "planner_pref_pairs", "worker_sft", "verifier_sft", "verifier_pref_pairs",
                "worker_recovery_cases/sft", "worker_recovery_cases/pairs"):
        assert sum(rep["rows"][key].values()) > 0, key
    cb = rep["class_balance"]
    assert set(cb["verifier_verdicts_expected"]) == {"continue", "replan", "end"}
    assert cb["outcomes"]["success"] + cb["outcomes"]["failure"] == 32
    assert (sim_bundle.path / "report.md").read_text().startswith("# Dataset report")


def test_every_view_loads_and_formats_with_trl(sim_bundle: ExportResult) -> None:
    import datasets
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from tracebridge.train.models import train_tiny_tokenizer

    datasets.disable_progress_bars()
    tok = train_tiny_tokenizer(512)
    man = sim_bundle.manifest
    checked = set()
    for entry in man["views"]:
        path = sim_bundle.path / entry["path"]
        ds = datasets.load_dataset("json", data_files=str(path), split="train",
                                   cache_dir=str(sim_bundle.path.parent / ".hf-cache"))
        assert len(ds) == entry["rows"] > 0
        for row in ds.select(range(min(5, len(ds)))):
            example = {k: row[k] for k in ("messages", "prompt", "chosen", "rejected") if row.get(k) is not None}
            assert is_conversational(example)
            tools = json.loads(row["tools"]) if row.get("tools") else None
            out = maybe_apply_chat_template(example, tok, tools=tools)
            texts = [v for v in out.values() if isinstance(v, str)]
            assert texts and all(t.strip() for t in texts)
            if entry["view"] in ("worker_sft", "worker_recovery_cases") and tools:
                assert "Tools:" in (out.get("text") or out.get("prompt"))
        checked.add(entry["view"])
    assert checked == {"planner_sft", "planner_pref_pairs", "worker_sft", "verifier_sft", "verifier_pref_pairs",
                       "worker_recovery_cases"}


def test_assistant_targets_parse_with_the_role_contract(sim_bundle: ExportResult) -> None:
    parse = {"planner_sft": roles.parse_planner_reply, "verifier_sft": roles.parse_verifier_reply}
    for view, fn in parse.items():
        for path in (sim_bundle.path / "views" / view).glob("*.jsonl"):
            for line in path.read_text().splitlines():
                fn(json.loads(line)["messages"][-1]["content"])
    for path in (sim_bundle.path / "views" / "worker_sft").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            msg = json.loads(line)["messages"][-1]
            for tc in msg.get("tool_calls") or []:
                reply = roles.parse_worker_reply(roles.tool_call_text(tc["function"]["name"],
                                                                      json.loads(tc["function"]["arguments"])))
                assert reply.is_tool_call


def test_every_row_leads_back_to_events_of_its_run(sim_bundle: ExportResult, sim_traces: Path) -> None:
    """DESIGN.md's lineage rule over every file of the bundle: each row's meta (Agent Lightning triplets:
    metadata, no labels) names its run, split and events, and each event id (and each failed attempt's, on
    rows whose prompt shows one) is an event of that run; the manifest's split counts are the files' rows."""
    types = {run.name: {json.loads(x)["event_id"]: json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()}
             for run in sim_traces.iterdir() if (run / "events.jsonl").is_file()}
    counts: dict[str, int] = {}
    recoveries = 0
    for f in sorted(sim_bundle.path.rglob("*.jsonl")):
        rel = f.relative_to(sim_bundle.path).as_posix()
        if not rel.startswith(("views/", "agentlightning/")):
            continue
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        counts[rel] = len(rows)
        for r in rows:
            meta = r.get("meta") or r["metadata"]
            need = {"run_id", "event_ids", "goal_family", "split", "source"} | ({"labels"} if "meta" in r else set())
            assert need <= set(meta) and meta["split"] == f.stem and meta["source"] == "sim", rel
            events = types[meta["run_id"]]
            failed = (meta.get("labels") or {}).get("failed_event_ids") or []
            assert meta["event_ids"] and all(e in events for e in [*meta["event_ids"], *failed]), rel
            if rel.startswith("views/worker_recovery_cases/"):
                recoveries += 1
                assert any(events[e]["event_type"] == "worker_tool_result" and events[e]["payload"]["ok"] is False
                           for e in failed), rel
    assert recoveries > 0
    for view, splits in sim_bundle.manifest["split"]["counts"].items():
        for split, n in splits.items():
            rel = f"{view}/{split}.jsonl" if view.startswith("agentlightning/") else f"views/{view}/{split}.jsonl"
            assert counts.get(rel, 0) == n, rel


def test_agentlightning_triplets_have_the_triplet_fields(sim_bundle: ExportResult) -> None:
    # the shape of agentlightning.Triplet(prompt, response, reward, metadata); importing Agent
    # Lightning itself costs ~10 s, the ops consumer check builds the real objects
    rows = [json.loads(x) for p in (sim_bundle.path / "agentlightning" / "triplets").glob("*.jsonl")
            for x in p.read_text().splitlines()]
    assert rows and all(isinstance(r["prompt"], list) and r["response"]["role"] == "assistant"
                        and 0.0 <= r["reward"] <= 1.0 and r["metadata"]["run_id"] for r in rows)
    # graded, task-grounded rewards: a turn that failed in a successful run is neither 0 nor 1
    assert len({r["reward"] for r in rows}) > 2
    assert all(set(r["metadata"]["reward_components"]) <= {"outcome", "step", "feedback"} for r in rows)
    assert {r["metadata"]["role"] for r in rows} == {"planner", "worker", "verifier"}


def test_planner_rows_carry_the_verdicts_of_their_cycle(sim_traces: Path) -> None:
    """Seed 004 §1.1: planner rows are labelled with the verifier's verdict per cycle. On every
    simulator run, the rows' cycle verdicts are the run's verdicts after its first plan, split at
    each new plan; a cycle that another plan follows was closed by ``replan``."""
    from tracebridge.export.config import ViewsConfig
    from tracebridge.export.views import RunContext, build_views

    replanned = 0
    for run in sorted(p for p in sim_traces.iterdir() if (p / "events.jsonl").is_file()):
        events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
        ctx = RunContext(run_id=run.name, family="f", split="train", source="sim", success=True, tools=[])
        rows = build_views(events, ctx, ViewsConfig())[0]["planner_sft"]
        kinds = [e["event_type"] for e in events]
        first_plan = kinds.index("planner_output")
        verdicts = [e["payload"]["verdict"] for e in events[first_plan:] if e["event_type"] == "verifier_output"]
        cycles = [r["meta"]["labels"]["cycle_verdicts"] for r in rows]
        assert len(rows) == kinds.count("planner_output") and [v for c in cycles for v in c] == verdicts, run.name
        for row, nxt in itertools.pairwise(rows):
            assert row["meta"]["labels"]["cycle_verdict"] == "replan", run.name
            replanned += 1
        assert all(r["meta"]["labels"].get("cycle_verdict") == (c[-1] if c else None) for r, c in zip(rows, cycles))
    assert replanned > 0  # the smoke collection has replans, so the split at each plan is exercised
