"""``data.max_rows_dropped``: a recipe whose rows TRL mostly drops (longer than max_length, no trainable
token left) fails before training, naming the fix, instead of training and reporting metrics on the
few rows left. Imported OpenClaw worker rows carry ~1.1k tokens of tool schemas, over cpu_tiny's
``train.max_length=1024``: 358 of 363 rows were dropped and the trial "passed" on the other 5."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.config import ConfigError, load_config
from tracebridge.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CPU_TINY = str(ROOT / "configs/train/cpu_tiny.yaml")
SYSTEM = {"role": "system", "content": "You are the worker."}
WORDS = ["alpha", "beta", "gamma", "delta", "notes", "report", "sales", "rivers", "paris", "oslo"]


def tool(i: int, words: int) -> dict:
    desc = " ".join(WORDS[(i + j) % len(WORDS)] + str(j % 9) for j in range(words))
    return {"type": "function", "function": {"name": f"tool_{i}", "description": desc, "parameters": {
        "type": "object", "properties": {"path": {"type": "string", "description": desc}}, "required": ["path"]}}}


def row(i: int, tools: list[dict], split: str = "train") -> dict:
    call = {"role": "assistant", "content": "", "tool_calls": [
        {"id": f"c{i}", "type": "function", "function": {"name": "tool_0", "arguments": {"path": f"f{i}.txt"}}}]}
    msgs = [SYSTEM, {"role": "user", "content": f"read file {i} and say what it holds"}, call]
    return {"messages": msgs, "tools": tools, "meta": {"run_id": f"r{i}", "split": split, "labels": {}}}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """3 worker rows with one small tool, 5 whose tool schemas alone run past 1,024 tokens (as OpenClaw's)."""
    out = tmp_path_factory.mktemp("dropped")
    small, big = [tool(0, 5)], [tool(i, 25) for i in range(20)]
    rows = [row(i, small) for i in range(3)] + [row(i, big) for i in range(3, 8)] + [row(9, small, "test")]
    (out / "worker_sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def train(bundle: Path, out: Path, *overrides: str):
    return CliRunner().invoke(app, ["train", CPU_TINY, "role=worker", "train.max_steps=1", "train.save_steps=0",
                                    "data.verify_bundle=false", "eval.max_new_tokens=4", "eval.n_boot=100",
                                    *overrides, "--bundle", str(bundle), "--out", str(out)])


def test_most_rows_dropped_fails_before_training_naming_the_fix(bundle, tmp_path):
    res = train(bundle, tmp_path / "runs")
    assert res.exit_code == 1, res.output
    assert ("TrialInputError: sft: 5 of 8 rows (more than data.max_rows_dropped=0.5 of them) dropped by TRL "
            "(no trainable token left after truncation to max_length=1024); raise train.max_length, or set "
            "data.fit_context=true") in res.output
    assert "data.max_rows_dropped=1 to train on the rest" in res.output
    trial = tmp_path / "runs" / "worker-baseline-s0"
    assert not (trial / "sft" / "final").exists() and not (trial / "eval_items.json").exists()  # nothing trained


def test_the_user_may_accept_training_on_the_rest(bundle, tmp_path):
    res = train(bundle, tmp_path / "runs", "data.max_rows_dropped=1")
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "runs" / "worker-baseline-s0" / "trial.json").read_text())["result"]
    assert (result["sft/rows"], result["sft/rows_dropped"]) == (8, 5)
    assert "sft trained on 3 of 8 rows (5 longer than train.max_length=1024" in res.output


@pytest.mark.parametrize("value", ["-0.1", "1.5"])
def test_the_fraction_is_checked(value):
    with pytest.raises(ConfigError, match=rf"data.max_rows_dropped={value}: must be in 0..1"):
        load_config(TrainConfig, CPU_TINY, [f"data.max_rows_dropped={value}"])


def test_packing_counts_rows_left_without_a_trainable_token(bundle, tmp_path):
    """With ``train.packing=true`` TRL keeps the rows its bfd packing cuts at max_length, their target cut
    off: counted by their packed lengths they were all kept, ``rows_dropped`` stayed 0 and the trial trained
    on 3 of 8 rows saying nothing. Only sequences with a trainable label count as kept."""
    res = train(bundle, tmp_path / "runs", "train.packing=true")
    assert res.exit_code == 1, res.output
    assert "TrialInputError: sft: 5 of 8 rows (more than data.max_rows_dropped=0.5 of them)" in res.output


def test_rows_kept_splits_packed_labels_by_sequence():
    from datasets import Dataset

    from tracebridge.train.common import _rows_kept

    # row 0 packs a sequence with a trainable token and one without; row 1 one with
    ds = Dataset.from_dict({"input_ids": [[1, 2, 3, 4, 5], [6, 7, 8]], "seq_lengths": [[2, 3], [3]],
                            "labels": [[-100, 2, -100, -100, -100], [-100, -100, 8]]})
    assert _rows_kept(ds) == 2 and _rows_kept(ds.shuffle(seed=0)) == 2 and _rows_kept(ds.select([0])) == 1
    assert _rows_kept(Dataset.from_dict({"input_ids": [[1], [2]], "labels": [[-100], [2]]})) == 2  # TRL filtered
