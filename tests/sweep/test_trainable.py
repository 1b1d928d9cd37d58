"""Checkpoint packing of trials (plain file operations): a packed training checkpoint unpacks to
the folder ``resolve_resume`` continues from; a final checkpoint carries the result."""

from __future__ import annotations

from pathlib import Path

from tracebridge.sweep.trainable import (
    make_reporter,
    pack_checkpoint,
    pack_final,
    scalar_metrics,
    unpack_checkpoint,
)
from tracebridge.train.trial import resolve_resume


def _work(tmp: Path) -> Path:
    w = tmp / "work"
    for d in ("sft/checkpoint-4", "sft/final", "dpo/checkpoint-2"):
        (w / d).mkdir(parents=True)
        (w / d / "model.safetensors").write_bytes(b"w" * 10)
    for name in ("config.json", "tokenizer_config.json", "tokenizer.json"):  # a final saved whole (trial.final_saved)
        (w / "sft" / "final" / name).write_text("{}")
    return w


def test_dpo_checkpoint_round_trip(tmp_path):
    w = _work(tmp_path)
    out = pack_checkpoint(w / "dpo" / "checkpoint-2", tmp_path / "ck", "dpo", 2)
    kind, resume = unpack_checkpoint(out)
    assert kind == "train" and resume == out / "dpo" / "checkpoint-2"
    r = resolve_resume(resume)
    assert r["dpo"] == resume and r["sft_final"] == out / "sft" / "final"
    assert (out / "sft" / "final" / "model.safetensors").read_bytes() == b"w" * 10


def test_sft_checkpoint_round_trip(tmp_path):
    w = _work(tmp_path)
    kind, resume = unpack_checkpoint(pack_checkpoint(w / "sft" / "checkpoint-4", tmp_path / "ck", "sft", 4))
    assert kind == "train" and resolve_resume(resume)["sft"] == resume


def test_final_checkpoint_carries_result_and_model(tmp_path):
    w = _work(tmp_path)
    (w / "eval_items.json").write_text("{}")
    (w / "trial.json").write_text("{}")
    res = {"role": "verifier", "verifier/accuracy": 0.5, "loss_curve": [{"loss": 1.0}],
           "checkpoint_dir": str(w / "sft" / "final")}
    out = pack_final(res, w, tmp_path / "fin", keep_model=True)
    kind, got = unpack_checkpoint(out)
    assert kind == "final" and got["verifier/accuracy"] == 0.5
    assert (out / "model" / "model.safetensors").is_file() and (out / "eval_items.json").is_file()
    assert "loss_curve" not in scalar_metrics(res) and scalar_metrics(res)["role"] == "verifier"
    assert unpack_checkpoint(tmp_path) == ("none", None)


def test_reporter_routes_losses_and_checkpoints(tmp_path):
    w = _work(tmp_path)
    calls = []

    class Ck:
        @staticmethod
        def from_directory(p):
            calls.append(("ckpt", sorted(str(x.relative_to(p)) for x in Path(p).rglob("*") if x.is_file())))
            return p

    rep = make_reporter(lambda m, checkpoint=None: calls.append(("report", m, checkpoint is not None)), Ck)
    rep({"phase": "sft", "step": 2, "loss": 3.5})
    rep({"phase": "sft", "step": 4, "checkpoint_dir": str(w / "sft" / "checkpoint-4")})
    rep({"role": "verifier"})  # the final dict is reported by the caller, with its own checkpoint
    assert calls[0] == ("report", {"phase": "sft", "step": 2, "loss": 3.5}, False)
    assert calls[1][0] == "ckpt" and "sft/checkpoint-4/model.safetensors" in calls[1][1]
    assert calls[2] == ("report", {"phase": "sft", "step": 4}, True) and len(calls) == 3
