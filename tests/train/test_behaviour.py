"""Behaviour policies (tracebridge.train.behaviour) on real rows: the hand-made view bundle, an
OpenClaw export (no system turn, conversation windows) and a simulator export whose tool-call turns
carry prose (views.include_reasoning=true); then a real trial trained under a policy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.config import ConfigError
from tracebridge.eval.offline import worker_points
from tracebridge.eval.predict import render_prompt
from tracebridge.train.behaviour import apply_behaviour, apply_behaviour_rows, describe
from tracebridge.train.config import BehaviourConfig, load_train_config
from tracebridge.train.data import load_role_data, to_pref_records, to_sft_records
from tracebridge.train.trial import run_trial

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/data/train_views"
PROMPT = "You are the worker. Call one listed tool."


def _export(traces: Path, out: Path, *overrides: str) -> Path:
    r = CliRunner().invoke(app, ["export", str(traces), "--out", str(out), *overrides, "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return Path(json.loads(r.stdout)["path"])


@pytest.fixture(scope="module")
def openclaw_bundle(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("openclaw")
    r = CliRunner().invoke(app, ["import", "openclaw", str(ROOT / "tests/data/openclaw/home"), "--out",
                                 str(tmp / "traces"), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return _export(tmp / "traces", tmp / "bundles")


@pytest.fixture(scope="module")
def reasoning_bundle(tmp_path_factory) -> Path:
    """Simulator traces exported with the worker's reasoning as the prose of its tool-call turns."""
    from sim_bundle import collect_traces

    tmp = tmp_path_factory.mktemp("reasoning")
    return _export(collect_traces(tmp / "traces", ["seeds.fixed=[0,1]"]), tmp / "bundles",
                   "views.include_reasoning=true")


def _rows(data):
    return data.sft + data.recovery_sft + data.pref


def _records(data):
    return json.dumps([to_sft_records(data.sft), to_sft_records(data.recovery_sft), to_pref_records(data.pref)])


def _names(tools):
    tools = json.loads(tools) if isinstance(tools, str) else tools
    return [(t["function"]["name"], t["function"].get("description")) for t in tools]


@pytest.mark.parametrize("role", ["planner", "worker", "verifier"])
def test_default_policy_leaves_records_identical(role):
    data = load_role_data(FIXTURE, role)
    before = _records(data)
    default = load_train_config(ROOT / "configs/train/cpu_tiny.yaml").behaviour
    same, changed = apply_behaviour(data, default)
    assert same is data and changed == {} and describe(default) == "as exported"
    assert _records(same) == before
    # a policy that touches nothing in these rows (no prose beside tool calls) leaves the records equal too
    calls_only, changed = apply_behaviour(data, BehaviourConfig(response="calls_only"))
    assert changed.get("rows", 0) == 0 and _records(calls_only) == before


def test_names_only_tools_keep_names_and_descriptions_drop_parameters(reasoning_bundle):
    from tracebridge.train.models import build_tokenizer

    tok = build_tokenizer(load_train_config(None).model)  # the tiny model's chat template
    for bundle in (FIXTURE, reasoning_bundle):  # tools as JSON lists (hand-made) and strings (export)
        data = load_role_data(bundle, "worker")
        before = _records(data)
        names, changed = apply_behaviour(data, BehaviourConfig(tool_schemas="names"))
        assert changed["tool_schemas"] == changed["rows"] == len(_rows(data)) > 0
        for old, new in zip(_rows(data), _rows(names)):
            assert type(new["tools"]) is type(old["tools"]) and _names(new["tools"]) == _names(old["tools"])
            assert "parameters" not in json.dumps(new["tools"]) and "parameters" in json.dumps(old["tools"])
            assert new["meta"]["exported_tools"] is old["tools"] and "exported_tools" not in old["meta"]
        assert _records(data) == before  # the loaded rows are not mutated
        # the model is shown the names, its calls are scored against the exported schemas
        _, prompt, _, shown, scored = worker_points(names.sft)[0]
        assert scored is data.sft[0]["tools"] and shown is names.sft[0]["tools"]
        text = render_prompt(tok, prompt, shown)
        assert "Tools:" in text and _names(shown)[0][0] in text and '"parameters"' not in text

        none, changed = apply_behaviour(data, BehaviourConfig(tool_schemas="none"))
        assert changed["tool_schemas"] == len(_rows(data))
        assert all("tools" not in r and r["meta"]["exported_tools"] is o["tools"] for r, o in zip(_rows(none), _rows(data)))
        assert all(r["tools"] is None for r in to_sft_records(none.sft) + to_pref_records(none.pref))
        assert "Tools:" not in render_prompt(tok, worker_points(none.sft)[0][1], None)


def _assistant(msgs):
    return [m for m in msgs if m["role"] == "assistant"]


def test_calls_only_empties_tool_call_prose_and_keeps_answers(reasoning_bundle):
    data = load_role_data(reasoning_bundle, "worker")
    prose = [m for r in _rows(data) for k in ("messages", "prompt", "chosen", "rejected")
             for m in _assistant(r.get(k, [])) if m.get("tool_calls") and m["content"]]
    assert len(prose) > 50 and data.pref  # the export put the reasoning beside the calls
    distinct = len({id(m) for r in _rows(data) for m in r.get("messages", r.get("prompt"))})
    out, changed = apply_behaviour(data, BehaviourConfig(response="calls_only"))
    assert changed["response"] == changed["rows"] == len(_rows(data))
    for r in to_sft_records(out.sft + out.recovery_sft) + to_pref_records(out.pref):
        for k in ("messages", "prompt", "chosen", "rejected"):
            for m in _assistant(r.get(k, [])):
                assert m["content"] == "" and m["tool_calls"]  # the call itself is kept
    for old, new in zip(_rows(data), _rows(out)):  # same calls, only the prose is gone
        for k in ("messages", "chosen", "rejected"):
            assert [m["tool_calls"] for m in _assistant(old.get(k, []))] == \
                   [m["tool_calls"] for m in _assistant(new.get(k, []))]
    assert all(m["content"] for m in prose)  # the loaded messages keep theirs
    # messages shared by many rows stay shared after the rewrite
    assert len({id(m) for r in _rows(out) for m in r.get("messages", r.get("prompt"))}) == distinct

    answers = load_role_data(FIXTURE, "worker")  # tool calls without prose, then plain answers
    kept, _ = apply_behaviour(answers, BehaviourConfig(response="calls_only"))
    texts = [m["content"] for r in kept.sft for m in _assistant(r["messages"]) if not m.get("tool_calls")]
    assert texts and all(t.startswith("done") for t in texts)


def test_system_prompt_lands_first_and_moves_the_context_window(openclaw_bundle):
    data = load_role_data(openclaw_bundle, "worker")
    assert all(r["messages"][0]["role"] != "system" for r in data.sft)  # OpenClaw rows carry none
    before = to_sft_records(data.sft)
    out, changed = apply_behaviour(data, BehaviourConfig(system_prompt=PROMPT))
    assert changed["system_prompt"] == len(_rows(data))
    after = to_sft_records(out.sft)
    for b, a, old, new in zip(before, after, data.sft, out.sft):
        assert a["prompt"][0] == {"role": "system", "content": PROMPT, "tool_calls": None}
        assert a["prompt"][1:] == b["prompt"] and a["completion"] == b["completion"]  # same targets
        assert new["meta"]["labels"]["context_messages"] == old["meta"]["labels"]["context_messages"] + 1
    assert all(r["prompt"][0]["content"] == PROMPT for r in out.pref)

    hand = load_role_data(FIXTURE, "verifier")  # rows with an exported system turn
    old_sys = hand.sft[0]["messages"][0]["content"]
    rep, _ = apply_behaviour(hand, BehaviourConfig(system_prompt=PROMPT))
    pre, _ = apply_behaviour(hand, BehaviourConfig(system_prompt=PROMPT, system_prompt_mode="prepend"))
    drop, _ = apply_behaviour(hand, BehaviourConfig(system_prompt=""))
    n = len(hand.sft[0]["messages"])
    assert rep.sft[0]["messages"][0]["content"] == PROMPT and len(rep.sft[0]["messages"]) == n
    assert pre.sft[0]["messages"][0]["content"] == f"{PROMPT}\n\n{old_sys}" and len(pre.sft[0]["messages"]) == n
    assert drop.sft[0]["messages"] == hand.sft[0]["messages"][1:]
    assert all(r["prompt"][0]["content"] == PROMPT for r in rep.pref)
    assert hand.sft[0]["messages"][0]["content"] == old_sys


def test_rows_helper_and_bad_keys_fail_with_the_fix():
    rows = load_role_data(FIXTURE, "worker").sft
    same, changed = apply_behaviour_rows(rows, BehaviourConfig())
    assert same is rows and changed == {}
    new, changed = apply_behaviour_rows(rows, BehaviourConfig(system_prompt=PROMPT, tool_schemas="none"))
    assert changed == {"rows": len(rows), "system_prompt": len(rows), "tool_schemas": len(rows)}
    assert all("tools" not in r and r["messages"][0]["content"] == PROMPT for r in new)
    assert describe(BehaviourConfig(system_prompt="x", tool_schemas="none")) == "system_prompt='x', tool_schemas=none"
    with pytest.raises(ConfigError) as exc:
        load_train_config(None, ["behaviour.tool_schemas=short", "behaviour.response=terse",
                                 "behaviour.system_prompt=''", "behaviour.system_prompt_mode=prepend"])
    msg = str(exc.value)
    assert "behaviour.tool_schemas=short: use one of full, names, none" in msg
    assert "behaviour.response=terse: use one of as_is, calls_only" in msg and "nothing to prepend" in msg
    with pytest.raises(ConfigError, match="did you mean 'behaviour.tool_schemas'"):
        load_train_config(None, ["behaviour.tool_schema=names"])
    with pytest.raises(ConfigError, match="simulator prompts the model as exported"):
        load_train_config(None, ["behaviour.response=calls_only", "eval.closed_loop.enabled=true"])
    quoted = load_train_config(None, ["behaviour.system_prompt='Worker: call one tool.'"])
    assert quoted.behaviour.system_prompt == "Worker: call one tool."


def test_trial_trains_under_a_behaviour_policy_and_records_it(tmp_path):
    spec = {"role": "worker", "variant": "baseline", "seed": 0, "train.max_steps": 4, "train.batch_size": 8,
            "train.logging_steps": 1, "eval.n_boot": 100, "eval.max_new_tokens": 16, "data.max_eval_rows": 8}
    policy = ["behaviour.tool_schemas=names", f"behaviour.system_prompt={PROMPT}"]
    r = run_trial({**spec, "overrides": policy}, FIXTURE, tmp_path / "policy")
    losses = [p["loss"] for p in r["loss_curve"] if p["phase"] == "sft"]
    assert len(losses) == 4 and all(math.isfinite(x) and x > 0 for x in losses) and r["sft/steps"] == 4
    assert r["ablation"]["behaviour.tool_schemas"] == "names" and r["worker/eval_rows"] > 0
    assert "worker/tool_call_validity" in r and "worker/action_match" in r
    trial = json.loads((tmp_path / "policy" / "trial.json").read_text())
    assert trial["config"]["behaviour"] == {"system_prompt": PROMPT, "system_prompt_mode": "replace",
                                            "tool_schemas": "names", "response": "as_is"}
    n_rows = sum(sum(trial["data"][k].values()) for k in ("sft", "recovery_sft", "pref"))
    assert trial["behaviour"] == {"rows": n_rows, "system_prompt": n_rows, "tool_schemas": n_rows}
    # same seed, same rows, as exported: other tokens, so another first loss
    default = run_trial(spec, FIXTURE, tmp_path / "default")
    assert json.loads((tmp_path / "default" / "trial.json").read_text())["behaviour"] == {}
    assert default["sft/first_loss"] != pytest.approx(r["sft/first_loss"], rel=1e-4)
