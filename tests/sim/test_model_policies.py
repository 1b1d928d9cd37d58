"""Model-backed roles on a tiny random-init local model: prompts rendered through the chat
template with the role I/O contract, garbage replies recorded as invalid_output, never a crash."""

from __future__ import annotations

import pytest

from tests.sim.conftest import read_run, spec
from tracebridge.schema import roles
from tracebridge.schema.validate import Thresholds, validate_root
from tracebridge.sim.backends import TransformersBackend
from tracebridge.sim.config import SkillConfig
from tracebridge.sim.episode import run_episode
from tracebridge.sim.model_policies import ModelPlanner, ModelVerifier, ModelWorker
from tracebridge.sim.policies import InvalidOutput, PlannerView, RoleSet, WorkerView
from tracebridge.sim.scripted import ScriptedPlanner, ScriptedWorker

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny():
    import torch

    from tracebridge.train.models import tiny_model_and_tokenizer

    torch.set_num_threads(1)
    model, tok = tiny_model_and_tokenizer(seed=0)
    model.eval()
    return model, tok


def test_backend_renders_the_chat_template_and_generates(tiny):
    model, tok = tiny
    b = TransformersBackend(model, tok, name="tiny", max_new_tokens=12)
    msgs = roles.messages("verifier", "Plan progress: {}")
    call = b.chat(msgs)
    assert call.prompt == tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert call.prompt.startswith("<|im_start|>system\nYou are the verifier.") and call.prompt.endswith(
        "<|im_start|>assistant\n")
    assert 0 < call.usage["output_tokens"] <= 12 and call.usage["input_tokens"] > 10
    assert b.chat(msgs).response == call.response  # greedy is deterministic
    s = TransformersBackend(model, tok, max_new_tokens=12, temperature=1.0)
    assert s.chat(msgs, seed=3).response == s.chat(msgs, seed=3).response  # seeded sampling


def test_max_new_tokens_must_leave_the_prompt_a_position(caplog):
    """``max_new_tokens`` >= the model's positions used to slice the prompt with a negative count (all of it,
    or its first tokens dropped): now a ValueError naming both numbers; below, a long prompt keeps its end."""
    import logging

    import torch

    from tracebridge.train.models import tiny_model_and_tokenizer

    torch.set_num_threads(1)
    model, tok = tiny_model_and_tokenizer(seed=0, max_position_embeddings=32)
    model.eval()
    for n in (32, 40):
        with pytest.raises(ValueError, match=rf"tiny: max_new_tokens={n} .*max_position_embeddings=32"):
            TransformersBackend(model, tok, name="tiny", max_new_tokens=n)
    msgs = roles.messages("verifier", "Plan progress: {}")  # well over 32 tokens
    whole = len(tok(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False),
                    add_special_tokens=False)["input_ids"])
    assert whole > 32
    for n, kept in ((8, 24), (31, 1)):
        with caplog.at_level(logging.WARNING, logger="tracebridge.sim.backends"):
            call = TransformersBackend(model, tok, name="tiny", max_new_tokens=n).chat(msgs)
        assert call.usage["input_tokens"] == kept and 0 < call.usage["output_tokens"] <= n
        assert f"tiny: prompt cut to its last {kept} tokens" in caplog.text


def test_garbage_from_each_role_is_invalid_output(tiny):
    import random

    b = TransformersBackend(*tiny, name="tiny", max_new_tokens=16)
    with pytest.raises(InvalidOutput) as exc:
        ModelPlanner(b, random.Random(0)).plan(PlannerView({"goal": "count lines", "tool_mask": ["grep"]}, []))
    assert exc.value.call is not None and exc.value.call.model == "tiny"
    view = WorkerView({"plan_step": {"index": 0, "description": "x"}, "allowed_tools": []}, [])
    try:  # a random model may answer in plain text (a valid final answer) or break the format
        d = ModelWorker(b, random.Random(0)).act(view)
        assert d.action == "respond" and d.call.response
    except InvalidOutput as err:
        assert err.call.response is not None


def test_episodes_with_model_roles_do_not_crash(tiny, tmp_path):
    b = TransformersBackend(*tiny, name="tiny", max_new_tokens=16)
    all_model = lambda r: RoleSet(ModelPlanner(b, r["planner"]), ModelWorker(b, r["worker"]),
                                  ModelVerifier(b, r["verifier"]))
    skill = SkillConfig()
    scripted_plan = lambda r: RoleSet(ScriptedPlanner(skill, r["planner"]), ScriptedWorker(skill, r["worker"]),
                                      ModelVerifier(b, r["verifier"]))
    a = run_episode(spec("files", 0, max_steps=2), tmp_path, roles=all_model)
    c = run_episode(spec("calc", 0, max_steps=2), tmp_path, roles=scripted_plan)
    assert not a.crashed and not c.crashed and a.invalid_outputs == 2 and c.invalid_outputs >= 1
    assert validate_root(tmp_path, Thresholds(100.0, 100.0, 0.0)).passed
    events, session = read_run(tmp_path, a.run_id)
    errs = [e for e in events if e["event_type"] == "episode_error"]
    assert errs[0]["payload"]["kind"] == "invalid_output" and errs[0]["role"] == "planner"
    assert errs[0]["llm"]["rendered_prompt"].startswith("<|im_start|>system\nYou are the planner.")
    assert session["model_stack"]["planner"]["model"] == "tiny" and session["summary"]["tokens"] > 0
    events, _ = read_run(tmp_path, c.run_id)
    v = [e for e in events if e["event_type"] == "episode_error" and e["role"] == "verifier"]
    assert v and "Plan progress" in v[0]["llm"]["rendered_prompt"]


def test_collect_with_a_transformers_mix(tiny, tmp_path):
    from pathlib import Path

    from tracebridge.config import load_config
    from tracebridge.sim.collect import collect
    from tracebridge.sim.config import CollectConfig

    model_yaml = Path(__file__).resolve().parents[2] / "configs" / "model" / "tiny.yaml"
    cfg = load_config(CollectConfig, None, [
        "families=[calc,sql]", "seeds.fixed=[0]", "workers=1", "max_steps=2",
        "mixes.tiny.verifier.backend=transformers", f"mixes.tiny.verifier.model={model_yaml}",
        "mixes.tiny.verifier.max_new_tokens=8"])
    s = collect(cfg, str(tmp_path))
    assert s.episodes == 2 and s.crashed == 0 and s.invalid_outputs >= 2 and s.passed, s.failed_checks
    assert validate_root(tmp_path, Thresholds(100.0, 100.0, 0.0)).passed
