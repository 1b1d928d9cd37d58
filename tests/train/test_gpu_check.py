"""The Python part of scripts/gpu_check.sh, on CPU at tiny size (the GPU run is manual)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracebridge.train.gpu_check import main, synth_rows

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_sft_then_dpo_and_reports_speed_and_memory(tmp_path, capsys):
    summary = main(["--model", str(ROOT / "configs/model/tiny.yaml"), "--steps", "10", "--rows", "24",
                    "--seq-len", "256", "--chars", "200", "--batch-size", "4", "--lr", "3e-3",
                    "--out", str(tmp_path), "--json"])
    assert summary["ok"] and summary["device"] == "cpu"
    for phase in ("sft", "dpo"):
        r = summary[phase]
        assert r["steps"] == 10 and r["tokens_per_s"] > 0 and r["peak_memory_gib"] > 0
    assert summary["prepared"]["trials"] == ["stored", "loaded"] and summary["prepared"]["ok"]
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("{")


def test_synthetic_rows_reach_the_target_length():
    sft, pref = synth_rows("verifier", 3, 1500)
    assert len(sft) == len(pref) == 3
    assert all(len(r["messages"][1]["content"]) >= 1500 for r in sft)
    assert pref[0]["chosen"][0]["content"].startswith("verdict: ")


def test_the_shell_script_parses():
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts/gpu_check.sh")], check=False).returncode == 0


def _model_yaml(tmp_path: Path, old: str, new: str) -> Path:
    """configs/model/tiny.yaml with one line changed, under a configs/model folder of its own."""
    text = (ROOT / "configs/model/tiny.yaml").read_text()
    assert old in text
    path = tmp_path / "configs" / "model" / "bad.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize("old, new, expect", [
    ("hidden_size: 64", "hiden_size: 64", "hiden_size: unknown key; did you mean 'hidden_size'?"),
    ("hidden_size: 64", "hidden_size: big", "hidden_size=big: expected an integer, e.g. hidden_size=3"),
])
def test_a_typo_or_a_wrong_type_in_the_model_yaml_exits_2_naming_the_key(tmp_path, capsys, old, new, expect):
    """The YAML went to ModelConfig(**yaml): a typo was a TypeError traceback, a wrong type a crash in validate()."""
    path = _model_yaml(tmp_path, old, new)
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(path), "--out", str(tmp_path / "out"), "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"invalid config {path}" in err and expect in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_model_keys_are_overridable_as_key_value():
    from tracebridge.train.gpu_check import load_model_config

    cfg = load_model_config(str(ROOT / "configs/model/tiny.yaml"), ["hidden_size=32", "num_hidden_layers=1"])
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.name) == (32, 1, "tiny")


@pytest.mark.parametrize("old, new, expect", [
    ("hidden_size: 64", "hiden_size: 64", "hiden_size: unknown key; did you mean 'hidden_size'?"),
    ("hidden_size: 64", "hidden_size: big", "hidden_size=big: expected an integer"),
    ("tie_word_embeddings: true", "tie_word_embeddings: 1", "tie_word_embeddings=1: expected true or false"),
])
def test_without_omegaconf_the_model_yaml_is_still_checked_by_name_and_type(tmp_path, old, new, expect):
    """A bare GPU machine may lack omegaconf: a module of that name that fails to import stands for it."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "omegaconf.py").write_text("raise ImportError('omegaconf is not installed')\n")
    path = _model_yaml(tmp_path, old, new)
    env = {**os.environ, "PYTHONPATH": f"{shadow}{os.pathsep}{ROOT}"}
    code = "from tracebridge.train.gpu_check import load_model_config as f; import sys; f(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"invalid config {path}" in proc.stderr and expect in proc.stderr
    ok = subprocess.run([sys.executable, "-c", code, str(ROOT / "configs/model/qwen2.5-0.5b.yaml")],
                        capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]


@pytest.mark.parametrize("argv, expect", [
    (["--steps", "0"], "argument --steps: 0: must be >= 1"),
    (["--batch-size", "-2"], "argument --batch-size: -2: must be >= 1"),
    (["--lr", "0"], "argument --lr: 0: must be > 0"),
    (["--lr", "nan"], "argument --lr: nan: must be > 0"),
    (["--rows", "many"], "argument --rows: 'many' is not a whole number"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_a_bad_flag_exits_2_before_any_work_with_one_json_document(tmp_path, capsys, argv, expect):
    """--steps 0 trained (TRL ran one step) and exited 1 as a failed check; a bad flag under --json left
    stdout empty, while every command prints {"ok": false, "error", "exit_code"} there."""
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(ROOT / "configs/model/tiny.yaml"), *argv, "--out", str(tmp_path / "out"), "--json"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"ok": False, "error": expect, "exit_code": 2}
    assert f"gpu_check: error: {expect}" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()


def test_an_out_under_a_file_exits_2_naming_the_file(tmp_path, capsys):
    """--out under a file was found by the first checkpoint write: a traceback after the model was built."""
    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(ROOT / "configs/model/tiny.yaml"), "--out", str(tmp_path / "f" / "run")])
    assert exc.value.code == 2
    assert f"--out {tmp_path / 'f' / 'run'}: {tmp_path / 'f'} is a file, not a folder" in capsys.readouterr().err


def test_help_gives_the_whole_description_and_the_exit_codes(capsys):
    """--help cut the description mid-sentence ("Qwen2.5-0.5B shape by") and said nothing of exit codes."""
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: " in out and "Qwen2.5-0.5B shape by\ndefault, bf16" in out
    assert "exit codes:" in out and "  2  a bad flag" in out and "  1  the check ran and failed" in out
