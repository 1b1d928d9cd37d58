"""``data.fit_context``: conversation-window rows whose first target lies past max_length lose their
oldest context messages, whole, by the export cap's rule; targets, rows that fit and rows that cannot
fit stay as they are; DPO prompts fit the longer answer; the counts reach trial results and the CLI;
fitted and unfitted sets never share a prepared-cache entry."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tracebridge.train import context_fit
from tracebridge.train.context_fit import fit_pref_records, fit_sft_records
from tracebridge.train.data import to_pref_records, to_sft_records

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = {"role": "system", "content": "You are the worker."}
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "read a file", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]
WORDS = ["alpha", "beta", "gamma", "delta", "notes", "report", "sales", "rivers", "paris", "oslo"]


def _call(i: int) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": f"c{i}", "type": "function", "function": {"name": "read_file", "arguments": {"path": f"f{i}.txt"}}}]}


def _text(i: int, n: int) -> str:
    return " ".join(WORDS[(i + j) % len(WORDS)] + str(j % 7) for j in range(n))


def conversation(turns: int, calls: int = 1, words: int = 40, seed: int = 0) -> list[dict]:
    """``turns`` user turns, each with ``calls`` tool calls and results, then a short answer."""
    msgs, k = [], seed * 100
    for t in range(turns):
        msgs.append({"role": "user", "content": f"turn {t}: {_text(k, 8)}"})
        for _ in range(calls):
            k += 1
            msgs += [_call(k), {"role": "tool", "content": _text(k, words)}]
        msgs.append({"role": "assistant", "content": f"done {t}: {_text(k, 5)}"})
    return msgs


def window_row(context: list[dict], target: dict, split: str = "train", system: bool = True, **labels) -> dict:
    """A ``worker_sft`` row as views_conversation writes it (context, then the target)."""
    msgs = ([SYSTEM] if system else []) + context + [target]
    return {"messages": msgs, "tools": TOOLS,
            "meta": {"run_id": f"r{len(context)}", "split": split, "labels": {"context_messages": len(msgs) - 1,
                                                                                **labels}}}


@pytest.fixture(scope="module")
def tok():
    from tracebridge.train.models import tiny_model_and_tokenizer

    return tiny_model_and_tokenizer()[1]


def tokens(tok, msgs: list[dict], tools: str | None) -> int:
    return len(tok.apply_chat_template(msgs, tools=json.loads(tools) if tools else None, tokenize=True,
                                       return_dict=True)["input_ids"])


def test_fitting_drops_only_the_oldest_context_and_keeps_targets(tok):
    rows = [window_row(conversation(t, seed=t), _call(99)) for t in (2, 4, 6, 8)]
    recs = to_sft_records(rows)
    max_length = 700  # a user turn is ~270 tokens here: every fitted row keeps whole turns
    full = [tokens(tok, r["prompt"] + r["completion"][:1], r["tools"]) for r in recs]
    out, rep = fit_sft_records(recs, tok, max_length)
    assert rep.fitted == sum(n > max_length for n in full) >= 2 and rep.over == 0 and rep.exact_estimates
    for rec, got, n in zip(recs, out, full):
        assert got["completion"] is rec["completion"] and got["tools"] is rec["tools"]  # targets untouched
        if n <= max_length:
            assert got is rec
            continue
        prompt = got["prompt"]
        assert prompt[0] is rec["prompt"][0] and prompt[0]["role"] == "system"  # the system turn stays
        tail = rec["prompt"][len(rec["prompt"]) - len(prompt) + 1:]
        assert prompt[1:] == tail and all(a is b for a, b in zip(prompt[1:], tail))  # the oldest went, whole
        assert prompt[1]["role"] == "user"
        assert tokens(tok, prompt + got["completion"][:1], got["tools"]) <= max_length
        # the longest that fits: starting at the user turn before would not
        starts = [i for i, m in enumerate(rec["prompt"]) if m["role"] == "user"]
        before = max(i for i in starts if i < len(rec["prompt"]) - len(tail))
        longer = [rec["prompt"][0], *rec["prompt"][before:]]
        assert tokens(tok, longer + got["completion"][:1], got["tools"]) > max_length


def test_one_long_user_turn_keeps_its_user_message_and_each_tool_result_with_its_call(tok):
    ctx = conversation(1, calls=12, words=15)[:-1]  # one user turn: a dozen calls and results, no answer yet
    (rec,) = to_sft_records([window_row(ctx, _call(99), system=False)])
    out, rep = fit_sft_records([rec], tok, 600)
    prompt = out[0]["prompt"]
    assert rep.fitted == 1 and prompt[0] is rec["prompt"][0] and prompt[0]["role"] == "user"
    assert prompt[1]["role"] == "assistant" and prompt[1]["tool_calls"]  # then the latest calls, from a call on
    assert prompt[1:] == rec["prompt"][len(rec["prompt"]) - len(prompt) + 1:]
    assert 2 < len(prompt) < len(rec["prompt"]) - 2
    assert tokens(tok, prompt + out[0]["completion"][:1], rec["tools"]) <= 600


def test_rows_that_fit_and_rows_without_a_context_split_are_untouched(tok):
    recs = to_sft_records([window_row(conversation(t, seed=t), _call(9)) for t in (1, 2, 8, 2)])
    before = [orjson.dumps(r) for r in recs]
    out, rep = fit_sft_records(recs, tok, 1000)  # ~400 and ~690 tokens fit; ~2300 does not
    assert rep.fitted == 1 and rep.over == 0 and out[2] is not recs[2]
    for i in (0, 1, 3):
        assert out[i] is recs[i] and orjson.dumps(out[i]) == before[i]  # the same object, bit for bit
    assert [orjson.dumps(r) for r in recs] == before  # and the input is not changed in place
    # a messages record (every assistant turn a target) is never cut, however long
    plain = to_sft_records([{"messages": conversation(8), "tools": TOOLS, "meta": {"split": "train"}}])
    assert "messages" in plain[0]
    out, rep = fit_sft_records(plain, tok, 64)
    assert out[0] is plain[0] and rep.fitted == rep.over == 0


def test_a_row_whose_minimal_context_is_over_is_left_as_it_is(tok):
    ctx = conversation(3) + [{"role": "user", "content": _text(0, 400)}]  # the last user turn alone is over
    recs = to_sft_records([window_row(ctx, _call(9)), window_row(conversation(4), _call(9))])
    out, rep = fit_sft_records(recs, tok, 300)
    assert out[0] is recs[0] and rep.over == 1 and rep.fitted == 1
    # the tokens its minimal context needs: the max_length that would keep it (what the error names)
    assert rep.over_floor > 300
    assert fit_sft_records(recs[:1], tok, rep.over_floor)[1].over == 0
    assert fit_sft_records(recs[:1], tok, rep.over_floor - 1)[1].over == 1


def test_all_rows_dropped_names_the_fix_that_works():
    """With fitting off, fitting is the fix to name; with it on and every row over even minimal, only a
    longer max_length helps, and the error says how long."""
    from types import SimpleNamespace

    from datasets import Dataset

    from tracebridge.train.common import TrialInputError, require_rows
    from tracebridge.train.context_fit import FitReport

    trainer = SimpleNamespace(train_dataset=Dataset.from_dict({"input_ids": []}), args=SimpleNamespace(max_length=1024))
    with pytest.raises(TrialInputError, match=r"dpo: all 5 rows dropped .*raise dpo.max_length, or set "
                                              r"data.fit_context=true"):
        require_rows(trainer, "dpo", 5)
    with pytest.raises(TrialInputError, match=r"sft: all 5 rows .*with data.fit_context, 5 of them are over even "
                                              r"with their minimal context .*needs ~1115 tokens\): raise train.max_length$"):
        require_rows(trainer, "sft", 5, FitReport(over=5, over_floor=1115))


def test_dpo_prompts_fit_the_longer_answer(tok):
    short, long = [_call(1)], [{"role": "assistant", "content": _text(3, 40)}]
    pairs = [{"prompt": [SYSTEM, *conversation(6, seed=s)], "chosen": short, "rejected": long, "tools": TOOLS,
              "meta": {"split": "train"}} for s in range(2)]
    recs = to_pref_records(pairs)
    out, rep = fit_pref_records(recs, tok, 700)
    assert rep.fitted == 2
    for rec, got in zip(recs, out):
        assert got["chosen"] is rec["chosen"] and got["rejected"] is rec["rejected"]
        assert got["prompt"][0] is rec["prompt"][0] and got["prompt"][1]["role"] == "user"
        assert tokens(tok, got["prompt"] + got["rejected"], got["tools"]) <= 700  # the longer answer fits
        n = len(got["prompt"]) - 1
        assert got["prompt"][1:] == rec["prompt"][-n:]
        longer = [rec["prompt"][0], *rec["prompt"][-n - 4:]]  # one user turn more (user, call, result, answer)
        assert longer[1]["role"] == "user" and tokens(tok, longer + got["rejected"], got["tools"]) > 700
        assert tokens(tok, longer + got["chosen"], got["tools"]) <= 700  # the shorter one alone would fit
    assert fit_pref_records(recs, tok, 100_000)[1].fitted == 0


@pytest.mark.parametrize("skew", [(-3, 0, 5), (60,), (-60,)], ids=["mixed", "high", "low"])
def test_estimates_that_are_off_change_nothing_but_the_cost(tok, monkeypatch, skew):
    """A template whose per-message costs do not add up (here: costs made up) is measured exactly."""
    recs = to_sft_records([window_row(conversation(t, seed=t), _call(9)) for t in (1, 2, 3, 2, 1, 4, 5, 6, 7, 8)])
    exact, rep = fit_sft_records(recs, tok, 700)
    real = context_fit._Lengths.prime

    def skewed(self, messages):
        new = [m for m in messages if id(m) not in self._cost]
        real(self, messages)
        for i, m in enumerate(new):
            self._cost[id(m)] = (m, self._cost[id(m)][1] + skew[i % len(skew)])

    monkeypatch.setattr(context_fit._Lengths, "prime", skewed)
    got, off = fit_sft_records(recs, tok, 700)
    assert rep.exact_estimates and not off.exact_estimates and off.template_calls > rep.template_calls
    assert (off.fitted, off.over) == (rep.fitted, rep.over) and rep.fitted >= 5
    assert [len(r.get("prompt", ())) for r in got] == [len(r.get("prompt", ())) for r in exact] and got == exact


def test_a_late_estimate_that_is_off_never_cuts_a_row_that_fits(tok, monkeypatch):
    """Once the first records showed estimates exact, a record's estimate alone says it is over; its
    confirmation shows the estimate off, and the whole record is measured before anything is cut."""
    recs = to_sft_records([window_row(conversation(t, seed=t), _call(9)) for t in (1, 3, 1, 3, 1, 2)])
    assert tokens(tok, recs[-1]["prompt"] + recs[-1]["completion"][:1], recs[-1]["tools"]) <= 700  # it fits
    late, real = {id(m) for m in recs[-1]["prompt"][1:]}, context_fit._Lengths.prime

    def skewed(self, messages):
        real(self, messages)
        for i in late & set(self._cost):
            m, n = self._cost[i]
            self._cost[i] = (m, n + 60)
        late.difference_update(self._cost)  # once each

    monkeypatch.setattr(context_fit._Lengths, "prime", skewed)
    out, rep = fit_sft_records(recs, tok, 700)
    assert out[-1] is recs[-1] and not rep.exact_estimates and rep.fitted == 2


def test_fitted_and_unfitted_sets_never_share_a_prepared_entry(tmp_path):
    from tracebridge.train.config import SFTRecipeConfig
    from tracebridge.train.models import tiny_model_and_tokenizer
    from tracebridge.train.sft import run_sft

    recs = to_sft_records([window_row(conversation(1, seed=s), _call(9)) for s in range(4)])  # all fit
    cache, rc = str(tmp_path / "prepared"), SFTRecipeConfig(max_steps=1, batch_size=2, max_length=1024)
    got = [run_sft(*tiny_model_and_tokenizer(), recs, rc, tmp_path / f"t{i}", prepared_cache=cache,
                   fit_context=fit)[1] for i, fit in enumerate((False, True, True))]
    assert [r.prepared for r in got] == ["stored", "stored", "loaded"]  # same records, other key
    assert [r.rows_fitted for r in got] == [0, 0, 0]


def bundle(tmp: Path) -> Path:
    """Conversation-window worker rows (train and test) and recovery pairs, as an export writes them."""
    tmp.mkdir()
    rows = [window_row(conversation(t, seed=s), _call(9 + s), split=split)
            for t in (1, 3, 5, 7) for s, split in ((0, "train"), (1, "train"), (2, "test"))]
    pairs = [{"prompt": [SYSTEM, *conversation(t, seed=s)], "chosen": [_call(7)], "rejected": [_call(8)],
              "tools": TOOLS, "meta": {"run_id": f"p{t}{s}", "split": "train", "labels": {"recovery": True}}}
             for t in (1, 6) for s in range(2)]
    (tmp / "worker_sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp / "worker_recovery_cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs))
    return tmp


def test_counts_reach_trial_results_and_the_cli(tmp_path):
    from typer.testing import CliRunner

    import tracebridge.cli  # noqa: F401 - registers the command modules
    from tracebridge.cli.app import app

    b, runs = bundle(tmp_path / "bundle"), {}
    for fit in ("false", "true"):  # most rows are over with fitting off: max_rows_dropped=1 counts, not refuses
        res = CliRunner().invoke(app, [
            "train", str(ROOT / "configs/train/cpu_tiny.yaml"), "role=worker", "train.max_steps=1",
            "train.save_steps=0", "train.max_length=700", "dpo.max_length=700", "dpo.max_steps=1",
            "data.verify_bundle=false", "data.max_eval_rows=2", "eval.max_new_tokens=4", "eval.n_boot=100",
            "data.max_rows_dropped=1", f"data.fit_context={fit}", "--variants", "optimized", "--bundle", str(b),
            "--out", str(tmp_path / fit)])
        assert res.exit_code == 0, res.output
        runs[fit] = (json.loads((tmp_path / fit / "worker-optimized-s0" / "trial.json").read_text())["result"],
                     res.output)
    (off, off_out), (on, on_out) = runs["false"], runs["true"]
    for name in ("sft", "dpo"):
        assert off[f"{name}/rows_fitted"] == 0 and off[f"{name}/rows_dropped"] > 0, off
        assert on[f"{name}/rows_fitted"] > 0 and on[f"{name}/rows"] == off[f"{name}/rows"], on
        assert on[f"{name}/rows_dropped"] < off[f"{name}/rows_dropped"]
        assert f"{name} fitted {on[f'{name}/rows_fitted']} of {on[f'{name}/rows']} rows" in on_out
    assert "set data.fit_context=true" in off_out and " fitted " not in off_out
    # evaluation fits its prompts by the same rule and budget (eval.fit_context follows data.fit_context)
    assert on["worker/eval_prompts_fitted"] > 0 and "worker/eval_prompts_fitted" not in off
    assert on["worker/eval_rows"] == off["worker/eval_rows"]
    from tracebridge.eval.settings import fit_note

    fit = json.loads(Path(on["eval_items_path"]).read_text())["extra"]["fit_context"]
    assert fit["fitted"] + fit.get("pairs_fitted", 0) == on["worker/eval_prompts_fitted"]
    assert fit_note("worker-optimized-s0", fit, True) in on_out and "eval fitted" not in off_out


def test_the_key_is_typed_off_by_default_and_on_in_the_gpu_profile():
    from tracebridge.config import ConfigError
    from tracebridge.train.config import load_train_config

    assert load_train_config(None).data.fit_context is False
    assert load_train_config(None, ["data.fit_context=true"]).data.fit_context is True
    assert load_train_config(str(ROOT / "configs/train/gpu.yaml")).data.fit_context is True
    with pytest.raises(ConfigError, match="data.fit_context=maybe: expected true or false"):
        load_train_config(None, ["data.fit_context=maybe"])


def test_bench_fit_context_smoke() -> None:
    """The script's smoke mode runs (it must not rot): one line per recipe, with and without fitting."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(ROOT / "scripts/bench_fit_context.py"), "--smoke"], capture_output=True,
                         text=True, timeout=300, check=True, cwd=ROOT)
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("input: 24 SFT rows and 12 pairs of worker")
    rows = [ln.split() for ln in lines[2:]]
    assert [(r[0], r[2], r[3]) for r in rows] == [("sft", "False", "24"), ("sft", "True", "24"),
                                                   ("dpo", "False", "12"), ("dpo", "True", "12")]
