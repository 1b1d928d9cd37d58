"""Edges of ``tracebridge train`` found by walking it as a user: an ``--out`` that is a file, ``--resume``
of a trial with nothing left to train, rows quarantined by the bundle check (said in ``--json`` and on
stderr), and preference pairs whose chosen and rejected answers are the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.train.config import load_train_config
from tracebridge.train.data import read_view
from tracebridge.train.resume_config import nothing_left_problem
from tracebridge.train.trial import resolve_resume

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/train/cpu_tiny.yaml")
FIXTURE = ROOT / "tests" / "data" / "train_views"
FAST = ["train.max_steps=2", "dpo.max_steps=2", "eval.n_boot=100", "train.save_steps=0"]


def _trial(tmp_path: Path, sft_steps: list[int], dpo_steps: list[int] = ()) -> Path:
    """A trial folder as a finished run leaves it: ``sft/final`` (and ``dpo/final``) beside checkpoints."""
    work = tmp_path / "runs" / "verifier-baseline-s0"
    for phase, steps in (("sft", sft_steps), ("dpo", dpo_steps)):
        if phase == "sft" or steps:
            (work / phase / "final").mkdir(parents=True)
            for name in ("config.json", "tokenizer_config.json", "tokenizer.json"):  # saved whole (final_saved)
                (work / phase / "final" / name).write_text("{}")
        for n in steps:
            (work / phase / f"checkpoint-{n}").mkdir(parents=True)
            (work / phase / f"checkpoint-{n}" / "trainer_state.json").write_text("{}")
    return work


def test_train_into_an_out_that_is_a_file_exits_2_before_any_trial(tmp_path):
    """Before: every trial failed on a NotADirectoryError after the bundle was read (exit 1, no report)."""
    (tmp_path / "runs").write_text("x")
    res = CliRunner().invoke(app, ["train", CONFIG, *FAST, "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"),
                                   "--json"])
    assert res.exit_code == 2, res.output
    body = json.loads(res.stdout)
    assert body["ok"] is False and f"--out {tmp_path / 'runs'}: {tmp_path / 'runs'} is a file, not a folder" in body["error"]


def test_resume_of_a_finished_baseline_trial_exits_2_with_the_fix(tmp_path):
    """Before: the finished trial was re-evaluated (exit 0) and its trial.json rewritten without its SFT
    numbers, with train/tokens_per_s 0.0 for training that never ran."""
    work = _trial(tmp_path, [])
    res = CliRunner().invoke(app, ["train", CONFIG, *FAST, "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"),
                                   "--resume", str(work), "--json"])
    assert res.exit_code == 2, res.output
    err = json.loads(res.stdout)["error"]
    assert f"--resume {work}: nothing left to train (sft/final is trained and no sft/checkpoint-N" in err
    assert f"drop --resume to train afresh, or re-evaluate it with tracebridge eval {work / 'sft' / 'final'}" in err


def test_resume_at_the_last_dpo_checkpoint_is_refused_and_one_with_steps_left_is_not(tmp_path):
    """Before: transformers resumed at dpo/checkpoint-2 with dpo.max_steps=2 and trained a third step."""
    work = _trial(tmp_path, [1, 2], [1, 2])
    cfg = load_train_config(CONFIG, ["variant=optimized", "train.max_steps=2", "dpo.max_steps=2"])
    why = nothing_left_problem(work, cfg)
    assert why is not None and f"{work / 'dpo' / 'checkpoint-2'} reached dpo.max_steps=2" in why
    assert "raise dpo.max_steps above 2 to train on from it" in why
    assert nothing_left_problem(work / "dpo" / "checkpoint-2", cfg) is not None
    longer = load_train_config(CONFIG, ["variant=optimized", "train.max_steps=2", "dpo.max_steps=4"])
    assert nothing_left_problem(work, longer) is None
    assert nothing_left_problem(work / "sft" / "checkpoint-1", cfg) is None  # SFT has a step left


def test_an_sft_checkpoint_at_max_steps_counts_as_finished_sft(tmp_path):
    """Before: an optimized trial resumed from its last SFT checkpoint (no DPO checkpoint yet) trained one
    SFT step past train.max_steps before DPO."""
    work = _trial(tmp_path, [1, 2])
    assert resolve_resume(work, 2) == {"sft": None, "sft_final": work / "sft" / "final", "dpo": None}
    assert resolve_resume(work, 3) == {"sft": work / "sft" / "checkpoint-2", "sft_final": None, "dpo": None}
    assert resolve_resume(work)["sft"] == work / "sft" / "checkpoint-2"  # no limit known: as before


def test_a_pair_whose_chosen_is_its_rejected_is_quarantined(tmp_path):
    """Before: accepted, trained on (DPO's loss is flat on it) and scored as a lost pair in pref_accuracy."""
    rows = [json.loads(line) for line in (FIXTURE / "verifier_pref_pairs.jsonl").read_text().splitlines()[:3]]
    rows[1]["rejected"] = rows[1]["chosen"]
    (tmp_path / "verifier_pref_pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = read_view(tmp_path, "verifier_pref_pairs")
    assert data.read == 3 and len(data.rows) == 2 and len(data.quarantined) == 1
    q = data.quarantined[0]
    assert q.where == f"{tmp_path / 'verifier_pref_pairs.jsonl'}:2:rejected"
    assert q.reason == "rejected: same as chosen, so the pair prefers nothing"


def test_quarantined_rows_are_counted_in_the_json_summary_and_said_on_stderr(tmp_path):
    """Before: a damaged row went to the trial folder's quarantine.jsonl and a log line; the --json summary
    and the command's own output did not say that any row was left out."""
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    view = bundle / "verifier_sft.jsonl"
    lines = view.read_text().splitlines()
    lines[2] = lines[2][:-5]  # a torn line
    view.write_text("".join(line + "\n" for line in lines))
    res = CliRunner().invoke(app, ["train", CONFIG, *FAST, "data.verify_bundle=false", "--bundle", str(bundle),
                                   "--out", str(tmp_path / "runs"), "--json"])
    assert res.exit_code == 0, res.output
    trial = json.loads(res.stdout)["trials"][0]
    assert (trial["data/read"], trial["data/quarantined"]) == (145, 1)
    assert (f"warning: verifier-baseline-s0: 1 of 145 rows of the role's views quarantined (neither trained nor "
            f"evaluated): first {view}:3:row: not JSON") in res.stderr
    assert str(tmp_path / "runs" / "verifier-baseline-s0" / "quarantine.jsonl") in res.stderr


def test_an_optimized_trial_without_a_valid_pair_says_it_ran_no_dpo(tmp_path):
    """Before: with every pair quarantined (here: rejected == chosen) the optimized trial quietly trained
    SFT only; an INFO log line, not shown, was all that said so."""
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURE, bundle)
    view = bundle / "verifier_pref_pairs.jsonl"
    rows = [json.loads(line) for line in view.read_text().splitlines()]
    view.write_text("".join(json.dumps({**r, "rejected": r["chosen"]}) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["train", CONFIG, *FAST, "data.verify_bundle=false", "--bundle", str(bundle),
                                   "--out", str(tmp_path / "runs"), "--variants", "optimized", "--json"])
    assert res.exit_code == 0, res.output
    trial = json.loads(res.stdout)["trials"][0]
    assert trial["data/quarantined"] == len(rows) and "dpo/steps" not in trial
    assert "warning: verifier-optimized-s0: ran no DPO: the bundle has no valid verifier preference pair" in res.stderr


def test_a_prepared_cache_under_a_file_exits_2_before_any_trial(tmp_path):
    """Before: each trial failed when it first prepared its rows ("cannot create the folder: File exists"),
    exit 1 after the bundle was read and the model built."""
    (tmp_path / "cache").write_text("x")
    res = CliRunner().invoke(app, ["train", CONFIG, *FAST, f"data.prepared_cache={tmp_path / 'cache' / 'sets'}",
                                   "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"), "--json"])
    assert res.exit_code == 2, res.output
    assert (f"data.prepared_cache={tmp_path / 'cache' / 'sets'}: {tmp_path / 'cache'} is a file, not a folder"
            in json.loads(res.stdout)["error"])
    assert not (tmp_path / "runs").exists()
