"""Every view of a real bundle loads all its splits in one ``datasets.load_dataset`` call: through the
bundle's dataset card (``README.md``: configs and features), streamed, or naming the files with
``features.json``; a split holding labels no other split has (a reaction on test runs only) loads too,
and a loaded split trains one step with the project's TRL SFT and DPO configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.importers.conftest import HOME
from tracebridge.export.features import config_name
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.importers.openclaw import import_openclaw

VIEWS = {"planner_sft", "worker_sft", "verifier_sft", "verifier_pref_pairs", "worker_recovery_cases/sft",
         "worker_recovery_cases/pairs", "agentlightning/triplets", "agentlightning/messages"}
REACTION = {"feedback_score": 2.0, "feedback_count": 1,
            "feedback": {"score": 2.0, "reactions": {"👍": 1}, "source": "telegram"}}


@pytest.fixture(scope="module", autouse=True)
def _quiet() -> None:
    import datasets

    datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def bundles(sim_traces: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportResult, ExportResult]:
    """The simulator bundle, and the same traces with a reaction on every test run (labels and a
    reward component that no train or validation row holds)."""
    out = tmp_path_factory.mktemp("card")
    plain = export_traces(sim_traces, out / "plain")
    test_runs = {r["run_id"] for r in map(json.loads, (plain.path / "runs.jsonl").read_text().splitlines())
                 if r.get("split") == "test"}
    assert test_runs
    reacted = export_traces(sim_traces, out / "reacted",
                            labels_for_run=lambda run_id: {"run": REACTION} if run_id in test_runs else None)
    return plain, reacted


def splits(res: ExportResult, key: str) -> dict[str, str]:
    return {e["split"]: str(res.path / e["path"]) for e in res.manifest["views"] if e["file_key"] == key} or \
        {s: str(p) for s in ("train", "validation", "test") if (p := res.path / key / f"{s}.jsonl").is_file()}


def load(res: ExportResult, key: str, tmp: Path, **kw: Any) -> Any:
    import datasets

    return datasets.load_dataset(str(res.path), config_name(key), cache_dir=str(tmp / "hf"), **kw)


def test_every_view_loads_every_split_through_the_card(bundles: tuple[ExportResult, ExportResult],
                                                       tmp_path: Path) -> None:
    for res in bundles:
        features = json.loads((res.path / "features.json").read_text())
        assert VIEWS <= set(features) and res.manifest["datasets"] == {"card": "README.md", "features": "features.json"}
        for key in sorted(features):
            ds = load(res, key, tmp_path)
            counts = res.report["rows"][key]
            assert {s: len(d) for s, d in ds.items()} == {s: n for s, n in counts.items() if n}, key
            streamed = load(res, key, tmp_path, streaming=True)
            assert {s: sum(1 for _ in d) for s, d in streamed.items()} == {s: len(d) for s, d in ds.items()}, key
    reacted = load(bundles[1], "verifier_sft", tmp_path)
    assert {r["meta"]["labels"]["feedback_score"] for r in reacted["test"]} == {2.0}
    assert {r["meta"]["labels"]["feedback_score"] for r in reacted["train"]} == {None}
    assert json.loads(reacted["test"][0]["meta"]["labels"]["feedback"])["reactions"] == {"👍": 1}
    triplets = load(bundles[1], "agentlightning/triplets", tmp_path)
    assert all(r["metadata"]["reward_components"]["feedback"] == 1.0 for r in triplets["test"])
    assert all(r["metadata"]["reward_components"]["feedback"] is None for r in triplets["train"])


def test_named_files_load_with_features_json_where_inference_fails(bundles: tuple[ExportResult, ExportResult],
                                                                  tmp_path: Path) -> None:
    """``datasets`` types the call by its first file: a reward component only test triplets hold fails
    the load without the bundle's features, and loads with them."""
    import datasets

    res = bundles[1]
    features = json.loads((res.path / "features.json").read_text())
    files = splits(res, "agentlightning/triplets")
    with pytest.raises(datasets.exceptions.DatasetGenerationError):
        datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "plain"))
    for key in sorted(features):
        ds = datasets.load_dataset("json", data_files=splits(res, key), cache_dir=str(tmp_path / "hf"),
                                   features=datasets.Features.from_dict(features[key]))
        assert sum(map(len, ds.values())) == sum(res.report["rows"][key].values()), key


def test_openclaw_bundle_loads_every_view_through_the_card(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    import_openclaw([HOME], traces)
    res = export_traces(traces, tmp_path / "bundles")
    features = json.loads((res.path / "features.json").read_text())
    assert {"worker_sft", "worker_recovery_cases/sft", "agentlightning/messages"} <= set(features)
    for key in sorted(features):
        ds = load(res, key, tmp_path)
        assert sum(map(len, ds.values())) == sum(res.report["rows"][key].values()) > 0, key
    tool = next(m for r in load(res, "worker_sft", tmp_path)["train"] for m in r["messages"] if m["role"] == "tool")
    assert tool["tool_call_id"] and tool["tool_calls"] is None


def test_a_loaded_split_trains_one_step_with_the_project_trl_configs(bundles: tuple[ExportResult, ExportResult],
                                                                    tmp_path: Path) -> None:
    from tracebridge.train.config import DPORecipeConfig, SFTRecipeConfig
    from tracebridge.train.data import to_pref_records, to_sft_records
    from tracebridge.train.dpo import run_dpo
    from tracebridge.train.models import tiny_model_and_tokenizer
    from tracebridge.train.sft import run_sft

    res = bundles[1]
    sft = load(res, "worker_sft", tmp_path)["test"]  # the split with the labels no other split has
    _, out = run_sft(*tiny_model_and_tokenizer(), to_sft_records(sft.to_list()),
                     SFTRecipeConfig(max_steps=1, max_length=4096), tmp_path / "sft")
    assert out.global_step == 1 and out.first_loss > 0
    pairs = load(res, "verifier_pref_pairs", tmp_path)["test"]
    _, out = run_dpo(*tiny_model_and_tokenizer(), to_pref_records(pairs.to_list()),
                     DPORecipeConfig(max_steps=1, max_length=4096), tmp_path / "dpo")
    assert out.global_step == 1


def test_card_and_features_change_only_with_content(bundles: tuple[ExportResult, ExportResult],
                                                    sim_traces: Path, tmp_path: Path) -> None:
    plain, reacted = bundles
    again = export_traces(sim_traces, tmp_path / "again", workers=2)
    assert again.manifest.bundle_id == plain.manifest.bundle_id
    for name in ("README.md", "features.json"):
        assert (again.path / name).read_bytes() == (plain.path / name).read_bytes()
    assert reacted.manifest.bundle_id != plain.manifest.bundle_id
    labels = json.loads((reacted.path / "features.json").read_text())["verifier_sft"]["meta"]["labels"]
    assert labels["feedback_score"] == {"dtype": "float64", "_type": "Value"}
    assert "feedback_score" not in json.loads((plain.path / "features.json").read_text())["verifier_sft"]["meta"]["labels"]


def test_agentlightning_tools_load_as_written(bundles: tuple[ExportResult, ExportResult], tmp_path: Path) -> None:
    """A tool's ``parameters`` schema loads as it was written, not with every other tool's properties
    as nulls (its keys are data: the type is ``Json``)."""
    res = bundles[0]
    raw = [json.loads(x) for x in (res.path / "agentlightning/messages/test.jsonl").read_text().splitlines()]
    loaded = load(res, "agentlightning/messages", tmp_path)["test"]
    assert len({json.dumps(r["tools"]) for r in raw}) > 1
    assert [r["tools"] for r in loaded] == [r["tools"] for r in raw]


def test_call_arguments_as_objects_load_as_written(sim_traces: Path, tmp_path: Path) -> None:
    """``views.json_strings=false`` writes tool-call arguments as objects: each loads as written."""
    from dataclasses import replace

    from tracebridge.export.config import ExportConfig

    cfg = ExportConfig()
    res = export_traces(sim_traces, tmp_path / "b", replace(cfg, views=replace(cfg.views, json_strings=False)))
    raw = [json.loads(x) for x in (res.path / "views/worker_sft/train.jsonl").read_text().splitlines()]
    loaded = load(res, "worker_sft", tmp_path)["train"]

    def calls(rows: Any) -> list[Any]:
        return [c["function"]["arguments"] for r in rows for m in r["messages"] for c in m.get("tool_calls") or []]

    assert calls(raw) and isinstance(calls(raw)[0], dict) and calls(loaded) == calls(raw)


def test_the_shadow_cycles_consumer_check_loads_the_splits_through_the_card(
        bundles: tuple[ExportResult, ExportResult], tmp_path: Path) -> None:
    """The consumer check (``tracebridge.ops.consumers``) loads each view as its users do: every split in
    one call through the card. A test row whose label has another type than the card says (a file
    edited after the export) loads file by file, and fails through the card; a second check does not
    reuse the first one's datasets cache."""
    import shutil

    from tracebridge.ops.consumers import check_views_parse

    bundle = tmp_path / "b"
    shutil.copytree(bundles[1].path, bundle)
    res = check_views_parse(bundle)
    assert res["ok"], res["problems"]
    assert set(res["card_configs"]) == {config_name(k) for k in json.loads((bundle / "features.json").read_text())}
    assert res["card_configs"]["verifier_sft"] == {s: n for s, n in bundles[1].report["rows"]["verifier_sft"].items() if n}
    test_file = bundle / Path(splits(bundles[1], "verifier_sft")["test"]).relative_to(bundles[1].path)
    row = json.loads(test_file.read_text().splitlines()[0])
    row["meta"]["labels"]["feedback_score"] = "high"  # a float64 in the card
    with open(test_file, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    problems = check_views_parse(bundle)["problems"]
    assert any(p.startswith("README.md config verifier_sft (") and "cannot load its splits together" in p
               for p in problems), problems
