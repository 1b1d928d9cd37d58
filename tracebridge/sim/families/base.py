"""What every goal family shares: the ``Task`` a generator returns (goal text, the oracle plan
with expected calls and outputs, unsatisfiability), the ``Family`` protocol, the
``submit_answer`` tool and answer comparison, and ``$prev`` reference resolution.

A plan step's arguments may refer to the previous completed step's output: ``"$prev"`` is the
whole output, ``"$prev.rows.0.0"`` walks keys and list indices, and a reference inside a longer
string (``"round($prev.value, 2)"``) is replaced by the value's text. The planner writes
references; the worker substitutes them (the oracle knows the concrete values).
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from tracebridge.schema.events import ErrorKind
from tracebridge.sim.tools import STR, Sandbox, ToolFailure, ToolSpec, params

_REF = re.compile(r"\$prev((?:\.[A-Za-z0-9_]+)*)")


@dataclass(frozen=True)
class OracleStep:
    """One step of the reference plan.

    Args:
        description: what the step does, in words.
        tool: the tool it calls.
        plan_args: arguments as a planner writes them (may hold ``$prev`` references).
        args: the concrete arguments (references resolved by the generator).
        output: the expected output when the generator knows it (None = compare args only).
    """

    description: str
    tool: str
    plan_args: dict[str, Any]
    args: dict[str, Any]
    output: Any = None

    def plan_step(self, index: int) -> dict[str, Any]:
        """The step as plan step ``index``, with its plan arguments (``$prev`` references kept)."""
        return {"index": index, "description": self.description, "tool": self.tool, "args": self.plan_args}


@dataclass
class Misleading:
    """A false observation and the wrong plan arguments a planner who believes it would write."""

    observation: Any
    step: int
    plan_args: dict[str, Any]


@dataclass
class Task:
    """One generated goal with its ground truth."""

    family: str
    goal: str
    steps: list[OracleStep]
    expected: Any = None
    unsatisfiable: bool = False
    blocking: tuple[str, ...] = ()  # error kinds that prove an unsatisfiable goal cannot be met
    facts: dict[str, Any] = field(default_factory=dict)


class Family(Protocol):
    """A goal family: a seeded generator, its tools, observations and a ground-truth checker."""

    name: str

    def tools(self) -> list[ToolSpec]:
        """The family's tools (bound to nothing; they get the sandbox at call time)."""

    def generate(self, rng: random.Random, sandbox: Sandbox, *, unsatisfiable: bool) -> Task:
        """Populate ``sandbox`` and return a task (unsatisfiable on request)."""

    def observe(self, sandbox: Sandbox, task: Task) -> Any:
        """What the environment looks like now (JSON-able, small)."""

    def mislead(self, rng: random.Random, sandbox: Sandbox, task: Task) -> Misleading | None:
        """A plausible false observation and the plan arguments it induces (None if none)."""

    def check(self, task: Task, sandbox: Sandbox) -> bool:
        """Whether the sandbox state satisfies the goal (never true for an unsatisfiable task)."""


# --------------------------------------------------------------------------- answers


def _submit(sb: Sandbox, args: dict[str, Any]) -> dict[str, Any]:
    sb.answer_path.write_text(json.dumps({"answer": args["answer"]}), encoding="utf-8")
    return {"submitted": args["answer"]}


SUBMIT_ANSWER = ToolSpec(
    "submit_answer", "Submit the final answer to the question (replaces an earlier answer).",
    params({"answer": {"type": ["string", "number"]}}), _submit, mutates=True)


def read_answer(sb: Sandbox) -> Any:
    """The last submitted answer, or None."""
    if not sb.answer_path.is_file():
        return None
    try:
        return json.loads(sb.answer_path.read_text(encoding="utf-8")).get("answer")
    except (OSError, ValueError):
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


def answers_match(given: Any, expected: Any, tol: float = 1e-6) -> bool:
    """Numbers compare with a relative tolerance; text compares trimmed and case-folded."""
    if given is None or expected is None:
        return False
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        g = _number(given)
        return g is not None and math.isclose(g, float(expected), rel_tol=tol, abs_tol=tol)
    return str(given).strip().casefold() == str(expected).strip().casefold()


# --------------------------------------------------------------------------- references


def _walk(value: Any, path: str) -> Any:
    for key in [k for k in path.split(".") if k]:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise KeyError(key)
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def resolve_refs(value: Any, prev: Any) -> Any:
    """Substitute ``$prev`` references with parts of ``prev``; unresolvable ones stay as written."""
    if isinstance(value, dict):
        return {k: resolve_refs(v, prev) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_refs(v, prev) for v in value]
    if not isinstance(value, str) or "$prev" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole:
        try:
            return _walk(prev, whole.group(1))
        except (KeyError, TypeError):
            return value

    def sub(m: re.Match[str]) -> str:
        try:
            return _as_text(_walk(prev, m.group(1)))
        except (KeyError, TypeError):
            return m.group(0)

    return _REF.sub(sub, value)


def need(cond: bool, kind: ErrorKind, message: str) -> None:
    """Raise ``ToolFailure(kind, message)`` unless ``cond``."""
    if not cond:
        raise ToolFailure(kind, message)


__all__ = [
    "STR",
    "SUBMIT_ANSWER",
    "Family",
    "Misleading",
    "OracleStep",
    "Task",
    "answers_match",
    "need",
    "read_answer",
    "resolve_refs",
]
