"""A recipe's ``final`` model folder exists only whole: it is saved into a temporary folder beside it and renamed
at the end. Before, it was written in place, and a trial killed while saving left a ``final`` with the model and
no tokenizer (resume learnt to pass such a folder over; anything else reading it took it for a model)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tracebridge.train.config import SFTRecipeConfig
from tracebridge.train.data import load_role_data, to_sft_records
from tracebridge.train.models import tiny_model_and_tokenizer
from tracebridge.train.sft import run_sft
from tracebridge.train.trial import final_saved

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "train_views"

# A real SFT run whose tokenizer save (after the model's weights and config) waits for a file that never comes:
# the parent kills the process there with SIGKILL, mid-save, at the same point every time.
CHILD = r"""
import sys, time
from pathlib import Path
from transformers import PreTrainedTokenizerBase

out, ready = Path(sys.argv[1]), Path(sys.argv[2])
save = PreTrainedTokenizerBase.save_pretrained

def waiting_save(self, save_directory, *args, **kwargs):
    if any(Path(save_directory).glob("config.json")):  # the model is saved; the tokenizer is next
        ready.write_text(str(save_directory))
        while True:
            time.sleep(0.05)
    return save(self, save_directory, *args, **kwargs)

PreTrainedTokenizerBase.save_pretrained = waiting_save
from tracebridge.train.config import SFTRecipeConfig
from tracebridge.train.data import load_role_data, to_sft_records
from tracebridge.train.models import tiny_model_and_tokenizer
from tracebridge.train.sft import run_sft

d = load_role_data(Path(sys.argv[3]), "verifier")
model, tok = tiny_model_and_tokenizer()
run_sft(model, tok, to_sft_records(d.split(d.sft, "train")), SFTRecipeConfig(max_steps=1, save_steps=0), out)
"""


def _sft(out: Path) -> None:
    d = load_role_data(FIXTURE, "verifier")
    model, tok = tiny_model_and_tokenizer()
    run_sft(model, tok, to_sft_records(d.split(d.sft, "train")), SFTRecipeConfig(max_steps=1, save_steps=0), out)


def _kill_mid_save(out: Path, tmp_path: Path) -> str:
    ready = tmp_path / "saving"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(ready), str(FIXTURE)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), f"the child never reached the tokenizer save: {proc.poll()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return ready.read_text()


def test_a_kill_mid_save_leaves_no_final_or_the_earlier_one_whole(tmp_path):
    out = tmp_path / "sft"
    saving_into = _kill_mid_save(out, tmp_path)
    assert not (out / "final").exists()  # before: a final holding the model and no tokenizer
    assert Path(saving_into) != out / "final" and Path(saving_into).parent == out  # beside it, in the same parent

    _sft(out)  # the same folder trained again: a whole final, the killed save's leftovers gone
    assert final_saved(out / "final") and sorted(p.name for p in out.iterdir()) == ["final"]

    before = {p.name: p.stat().st_mtime_ns for p in (out / "final").iterdir()}
    _kill_mid_save(out, tmp_path)  # killed while saving over a whole final
    # the earlier final, untouched (before: the new run's weights beside the earlier run's tokenizer, which
    # passed for whole)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "final").iterdir()} == before
    _sft(out)  # and replaced whole by a run that ends
    assert final_saved(out / "final") and sorted(p.name for p in out.iterdir()) == ["final"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "final").iterdir()} != before
