"""tracebridge train / eval misuse: every bad input is one error listing each problem, raised before
any trial trains or any model loads, with exit 2 and no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.config import ConfigError
from tracebridge.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / "configs" / "train" / "cpu_tiny.yaml")
FIXTURE = ROOT / "tests" / "data" / "train_views"


def fake_checkpoint(ck: Path, weights: bool = True) -> Path:
    """A folder that looks like a saved model (every file save_pretrained writes) until it is loaded."""
    ck.mkdir(parents=True, exist_ok=True)
    (ck / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (ck / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))  # a trial saves one
    (ck / "tokenizer.json").write_text("{}")
    if weights:
        (ck / "model.safetensors").write_bytes(b"")
    return ck


def test_out_of_range_overrides_are_all_listed():
    bad = ["train.max_length=1", "data.max_train_rows=-3", "data.max_eval_rows=-1", "data.max_pref_rows=-1",
           "seed=-1", "eval.batch_size=0", "eval.max_new_tokens=0", "train.save_steps=-1"]
    with pytest.raises(ConfigError) as e:
        load_train_config(CFG, bad)
    assert len(e.value.problems) == len(bad), e.value.problems
    for key in ("train.max_length=1", "data.max_train_rows=-3", "data.max_eval_rows=-1", "seed=-1",
                "eval.batch_size=0", "train.save_steps=-1"):
        assert any(p.startswith(key) for p in e.value.problems), key


def test_model_yaml_that_is_not_a_model_config(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_train_config(CFG, [], CFG)
    assert len(e.value.problems) == 1 and "not a model config" in e.value.problems[0]
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="not a model config"):
        load_train_config(CFG, [], str(tmp_path / "empty.yaml"))
    assert load_train_config(CFG, [], str(ROOT / "configs" / "model" / "tiny.yaml")).model.name == "tiny"


def test_every_variant_and_seed_is_checked_before_the_first_trial(tmp_path):
    res = CliRunner().invoke(app, ["train", CFG, "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"),
                                   "--variants", "baseline,optimised", "--seeds", "0,-2"])
    assert res.exit_code == 2 and "variant=optimised" in res.output and "seed=-2" in res.output, res.output
    assert not (tmp_path / "runs").exists()  # before: baseline s0 trained, then the typo failed


@pytest.mark.parametrize("make", ["missing", "empty", "final", "bare_checkpoint"])
def test_resume_from_a_folder_that_is_not_a_checkpoint(tmp_path, make):
    target = {"missing": tmp_path / "nope", "empty": tmp_path, "final": tmp_path / "w" / "sft" / "final",
              "bare_checkpoint": tmp_path / "w" / "sft" / "checkpoint-3"}[make]
    if make != "missing":
        target.mkdir(parents=True, exist_ok=True)
    res = CliRunner().invoke(app, ["train", CFG, "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"),
                                   "--resume", str(target)])
    assert res.exit_code == 2 and f"--resume {target}" in res.output, res.output  # before: trained from scratch
    assert not (tmp_path / "runs").exists()


def test_eval_rejects_a_non_model_folder_and_bad_floors_before_loading(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text("{}")
    res = CliRunner().invoke(app, ["eval", str(ck), CFG, "--bundle", str(FIXTURE), "--min", "verifier/acc=0.5",
                                   "--min", "verifier/accuracy=abc", "--min", "worker/action_match=0.1",
                                   "--max", "verifier/accuracy=0.9", "--min", "verifier/false_stop_rate=0.1"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    out = res.output
    assert "checkpoint not usable (1 problem(s))" in out and f"{ck}: not a saved model folder" in out
    assert "invalid --min (4 problem(s))" in out and "invalid config" not in out
    assert "invalid --max (1 problem(s))" in out and "give a floor: --min verifier/accuracy=0.9" in out
    assert "give a ceiling: --max verifier/false_stop_rate=0.1" in out
    assert "--min verifier/acc: not a verifier metric" in out and "--min verifier/accuracy=abc: use metric=number" in out
    assert "--min worker/action_match: not a verifier metric" in out


def test_eval_refuses_a_checkpoint_of_another_role(tmp_path):
    ck = fake_checkpoint(tmp_path / "trial" / "sft" / "final")
    (tmp_path / "trial" / "trial.json").write_text(json.dumps({"result": {"role": "verifier"}}))
    res = CliRunner().invoke(app, ["eval", str(ck), CFG, "role=planner", "--bundle", str(FIXTURE)])
    assert res.exit_code == 2 and "trained as role verifier" in res.output and "pass role=verifier" in res.output


@pytest.mark.parametrize("case", ["no_folder", "no_manifest", "no_weights", "broken_weights"])
def test_eval_says_whether_the_bundle_or_the_checkpoint_is_not_usable(tmp_path, case):
    """A missing bundle folder, a bundle without a manifest, a checkpoint without a model: exit 2 under a
    heading naming what is wrong, not "invalid config" (the config is fine); --json gives {ok, error, exit_code}."""
    ck = fake_checkpoint(tmp_path / "ck", weights=case != "no_weights")
    bundle = FIXTURE
    if case == "no_folder":
        bundle = tmp_path / "nope"
    elif case == "no_manifest":
        bundle = Path(shutil.copytree(FIXTURE, tmp_path / "bundle"))
        (bundle / "manifest.json").unlink()
    res = CliRunner().invoke(app, ["eval", str(ck), CFG, "--bundle", str(bundle), "--json"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    body = json.loads(res.stdout)
    assert set(body) == {"ok", "error", "exit_code"} and body["ok"] is False and body["exit_code"] == 2
    err = body["error"]
    assert "invalid config" not in err and f"error: {err}" in res.stderr
    said = {"no_folder": ("bundle not usable (1 problem(s)):", f"--bundle {bundle}: no such folder"),
            "no_manifest": ("bundle not usable (1 problem(s)):", f"{bundle / 'manifest.json'}: no manifest.json"),
            "no_weights": ("checkpoint not usable (1 problem(s)):", f"{ck}: not a saved model folder"),
            "broken_weights": ("checkpoint not usable:", f"{ck}: cannot load the model")}[case]
    assert err.startswith(said[0]) and said[1] in err, err


def test_eval_of_a_bundle_without_rows_in_the_eval_split_says_so_before_loading(tmp_path):
    """Before: the model loaded, then eval crashed with a KeyError traceback ('accuracy'), exit 1; train
    already refused such a bundle. Now eval refuses it the same way, with exit 2, before the model loads."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for src in FIXTURE.glob("*.jsonl"):  # every test row moved into train: the eval split is empty
        rows = [json.loads(line) for line in src.read_text().splitlines()]
        for r in rows:
            r["meta"]["split"] = "train" if r["meta"]["split"] == "test" else r["meta"]["split"]
        (bundle / src.name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    ck = fake_checkpoint(tmp_path / "ck")  # loading it would fail: the bundle must be refused first
    res = CliRunner().invoke(app, ["eval", str(ck), CFG, "data.verify_bundle=false", "--bundle", str(bundle), "--json"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    err = json.loads(res.stdout)["error"]
    assert err.startswith("bundle not usable (1 problem(s)):"), err
    assert "role verifier has no rows in split 'test' to evaluate on" in err
    assert "set data.eval_split=validation" in err and "cannot load the model" not in err


@pytest.mark.parametrize("option, value, said", [
    ("--seeds", "0,00", "--seeds 0,00: 0 given twice; each trial runs once"),
    ("--variants", "baseline,baseline", "--variants baseline,baseline: baseline given twice"),
    ("--seeds", "0,,1", "--seeds 0,,1: use a comma list of whole numbers, e.g. --seeds 0,1"),
    ("--variants", ",", "--variants ,: use a comma list of names, e.g. --variants baseline,optimized"),
    ("--seeds", "", "--seeds : use a comma list of whole numbers"),  # trained the config's seed (a script's unset $SEEDS)
    ("--variants", " ", "--variants  : use a comma list of names"),
])
def test_variants_and_seeds_given_twice_or_empty_are_refused(tmp_path, option, value, said):
    """Before: --seeds 0,0 trained the trial twice into one folder and the report pooled its eval items twice
    (n=32 for 16 rows: a narrower interval than the data gives); '--variants ,' trained the config's default."""
    res = CliRunner().invoke(app, ["train", CFG, "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"),
                                   option, value])
    assert res.exit_code == 2 and said in res.stderr, res.output
    assert not (tmp_path / "runs").exists()
