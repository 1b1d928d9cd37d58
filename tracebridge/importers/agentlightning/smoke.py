"""``tracebridge smoke runtime-hook``: a tiny agent end to end through the runtime hook.

The agent answers an arithmetic question: one (scripted) LLM call that asks for a calculator,
the calculator as an ``agentlightning.operation`` tool span, a second LLM call with the answer,
and ``emit_reward``. The smoke checks that the agent's answer is unchanged by the hook, that the
run validates (schema and lineage), that every span kind became events, and that Agent
Lightning's own ``TracerTraceToTriplet`` reads the same spans with the reward attached.
"""

from __future__ import annotations

import ast
import operator
import time
from pathlib import Path
from typing import Any

from tracebridge.capture.reader import RunDir
from tracebridge.importers.agentlightning.hook import RuntimeHook, _agl
from tracebridge.schema.validate import check_run

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def calculate(expression: str) -> int:
    """Evaluate ``a op b`` for + - * on integers (no ``eval``)."""
    node = ast.parse(expression, mode="eval").body
    if not (isinstance(node, ast.BinOp) and type(node.op) in _OPS
            and isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant)):
        raise ValueError(f"unsupported expression: {expression!r}")
    return _OPS[type(node.op)](int(node.left.value), int(node.right.value))


def _llm_span(tracer: Any, prompt: list[dict[str, str]], reply: str, rid: str) -> Any:
    attrs: dict[str, Any] = {"gen_ai.request.model": "scripted-calc", "gen_ai.request.temperature": 0.0,
                             "gen_ai.response.id": rid, "gen_ai.usage.prompt_tokens": 12 * len(prompt),
                             "gen_ai.usage.completion_tokens": 6,
                             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": reply}
    for i, m in enumerate(prompt):
        attrs[f"gen_ai.prompt.{i}.role"] = m["role"]
        attrs[f"gen_ai.prompt.{i}.content"] = m["content"]
    return tracer.operation_context("openai.chat.completion", attributes=attrs)


def tiny_agent(task: dict[str, Any]) -> str:
    """The smoke's agent: calculator tool, two scripted model turns, a reward."""
    agl = _agl()
    tracer = agl.get_active_tracer()
    question = task["question"]
    prompt = [{"role": "user", "content": f"What is {question}?"}]
    with _llm_span(tracer, prompt, f"calculator({question})", "r1"), agl.operation(name="calculator") as op:
        op.set_input(expression=question)
        value = calculate(question)
        op.set_output(str(value))
    prompt += [{"role": "assistant", "content": f"calculator({question})"}, {"role": "user", "content": str(value)}]
    with _llm_span(tracer, prompt, f"The answer is {value}.", "r2"):
        pass
    agl.emit_reward(1.0 if value == task.get("expected") else 0.0)
    return f"The answer is {value}."


def run_smoke(out: str | Path, question: str = "2+3", expected: int = 5) -> dict[str, Any]:
    """Run the tiny agent through the hook into ``out``; return a summary with ``ok``."""
    t0 = time.perf_counter()
    problems: list[str] = []
    task = {"question": question, "expected": expected}
    res = RuntimeHook(out, goal_family="smoke/arithmetic", keep_spans=True).run(tiny_agent, task)
    if res.result != f"The answer is {expected}.":
        problems.append(f"agent answer changed under the hook: {res.result!r}")
    if not res.capture_ok or res.run_dir is None:
        problems.append(f"capture failed: {res.capture_error or f'{res.events_dropped} events dropped'}")
        return _summary(res, problems, {}, 0, t0)
    chk = check_run(RunDir(res.run_dir))
    problems += [str(p) for p in chk.problems]
    if not (chk.schema_valid and chk.lineage_valid):
        problems.append(f"run {res.run_id} does not validate")
    types: dict[str, int] = {}
    for line in (res.run_dir / "events.jsonl").read_text().splitlines():
        t = line.split('"event_type":"', 1)[1].split('"', 1)[0]
        types[t] = types.get(t, 0) + 1
    for needed in ("worker_action", "worker_tool_call", "worker_tool_result", "env_observation", "episode_end"):
        if not types.get(needed):
            problems.append(f"no {needed} event")
    agl = _agl()
    triplets = agl.TracerTraceToTriplet().adapt([agl.Span.model_validate(s) for s in res.raw_spans])
    if not triplets or triplets[-1].reward != 1.0:
        problems.append(f"Agent Lightning's TracerTraceToTriplet found {len(triplets)} triplets, last reward "
                        f"{triplets[-1].reward if triplets else None}")
    return _summary(res, problems, types, len(triplets), t0)


def _summary(res: Any, problems: list[str], types: dict[str, int], triplets: int, t0: float) -> dict[str, Any]:
    return {"ok": not problems, "run_id": res.run_id, "run_dir": str(res.run_dir) if res.run_dir else None,
            "answer": res.result, "spans": res.spans, "span_kinds": res.span_kinds, "events": res.events_written,
            "event_types": types, "triplets": triplets, "capture_error": res.capture_error,
            "problems": problems[:20], "seconds": round(time.perf_counter() - t0, 3)}
