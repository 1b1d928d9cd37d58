"""The ``calc`` family: arithmetic and unit questions answered through a restricted expression
evaluator and a unit converter, checked against the value the generator computed.

``calculate`` parses with ``ast`` and walks only numbers, + - * / // % **, unary signs and the
functions round/abs/min/max/sqrt; anything else (names, attributes, calls of other functions) is
``bad_args``. Exponents and magnitudes are bounded, so no expression can run long.
"""

from __future__ import annotations

import ast
import math
import operator
import random
from typing import Any

from tracebridge.schema.events import ErrorKind
from tracebridge.sim.families.base import (
    SUBMIT_ANSWER,
    Misleading,
    OracleStep,
    Task,
    answers_match,
    need,
    read_answer,
)
from tracebridge.sim.tools import STR, Sandbox, ToolFailure, ToolSpec, params

MAX_EXPR_CHARS = 200
MAX_EXPONENT = 64
MAX_MAGNITUDE = 1e15
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UN = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS = {"round": round, "abs": abs, "min": min, "max": max, "sqrt": math.sqrt}

# unit -> (dimension, factor to the base unit); temperatures are handled apart
UNITS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0), "km": ("length", 1000.0), "cm": ("length", 0.01), "mm": ("length", 0.001),
    "ft": ("length", 0.3048), "in": ("length", 0.0254), "mi": ("length", 1609.344),
    "kg": ("mass", 1.0), "g": ("mass", 0.001), "lb": ("mass", 0.45359237), "oz": ("mass", 0.028349523125),
    "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0), "day": ("time", 86400.0),
    "C": ("temperature", 1.0), "F": ("temperature", 1.0), "K": ("temperature", 1.0),
}


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolFailure(ErrorKind.BAD_ARGS, f"exponent {right} is too large (max {MAX_EXPONENT})")
        try:
            value = _BIN[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise ToolFailure(ErrorKind.RUNTIME_ERROR, "division by zero") from exc
        if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
            raise ToolFailure(ErrorKind.RUNTIME_ERROR, "result out of range")
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UN:
        return _UN[type(node.op)](_eval(node.operand))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and not node.keywords and 1 <= len(node.args) <= 4):
        args = [_eval(a) for a in node.args]
        if node.func.id == "round":
            return round(args[0], int(args[1])) if len(args) > 1 else round(args[0])
        try:
            return _FUNCS[node.func.id](*args)
        except ValueError as exc:
            raise ToolFailure(ErrorKind.RUNTIME_ERROR, f"{node.func.id}: {exc}") from exc
    raise ToolFailure(ErrorKind.BAD_ARGS, f"not allowed in an expression: {ast.dump(node)[:60]}")


def evaluate(expression: str) -> float:
    """Evaluate a restricted arithmetic expression. Raises ToolFailure."""
    need(len(expression) <= MAX_EXPR_CHARS, ErrorKind.BAD_ARGS, f"expression longer than {MAX_EXPR_CHARS} chars")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolFailure(ErrorKind.BAD_ARGS, f"not an expression: {exc.msg}") from exc
    return _eval(tree)


def convert(value: float, src: str, dst: str) -> float:
    """Convert between units of one dimension. Raises ToolFailure."""
    for u in (src, dst):
        need(u in UNITS, ErrorKind.NOT_FOUND, f"unknown unit {u!r}; known: {', '.join(UNITS)}")
    (d1, f1), (d2, f2) = UNITS[src], UNITS[dst]
    need(d1 == d2, ErrorKind.RUNTIME_ERROR, f"cannot convert {d1} ({src}) to {d2} ({dst})")
    if d1 == "temperature":
        kelvin = {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[src]
        return {"C": kelvin - 273.15, "F": (kelvin - 273.15) * 9 / 5 + 32, "K": kelvin}[dst]
    return value * f1 / f2


TOOLS = [
    ToolSpec("calculate", "Evaluate an arithmetic expression (+ - * / // % **, round, abs, min, max, sqrt).",
             params({"expression": STR}), lambda sb, a: {"value": evaluate(a["expression"])}),
    ToolSpec("convert", "Convert a value between units of the same dimension.",
             params({"value": {"type": "number"}, "from_unit": STR, "to_unit": STR}),
             lambda sb, a: {"value": convert(a["value"], a["from_unit"], a["to_unit"])}),
    SUBMIT_ANSWER,
]


def _steps_convert(v: float, src: str, dst: str, nd: int) -> list[OracleStep]:
    conv = convert(v, src, dst)
    rounded = round(conv, nd)
    return [OracleStep(f"convert {v} {src} to {dst}", "convert", {"value": v, "from_unit": src, "to_unit": dst},
                       {"value": v, "from_unit": src, "to_unit": dst}, {"value": conv}),
            OracleStep(f"round to {nd} decimals", "calculate", {"expression": f"round($prev.value, {nd})"},
                       {"expression": f"round({conv!r}, {nd})"}, {"value": rounded}),
            OracleStep("submit the answer", "submit_answer", {"answer": "$prev.value"}, {"answer": rounded})]


class CalcFamily:
    """Calculation and unit questions; see the module docstring."""

    name = "calc"

    def tools(self) -> list[ToolSpec]:
        """``calculate``, ``convert`` and ``submit_answer``."""
        return list(TOOLS)

    def generate(self, rng: random.Random, sandbox: Sandbox, *, unsatisfiable: bool) -> Task:
        """A unit conversion, speed or percentage question (unsatisfiable: a division by zero or
        a conversion across dimensions); the sandbox is not written to."""
        kind = rng.choice(("weight", "speed", "percent"))
        if unsatisfiable:
            return self._impossible(rng, kind)
        if kind == "weight":
            v, src, dst = round(rng.uniform(1, 90), 1), *rng.choice((("lb", "kg"), ("oz", "g"), ("ft", "m"),
                                                                      ("mi", "km"), ("F", "C")))
            steps = _steps_convert(v, src, dst, 2)
            goal = f"Convert {v} {src} to {dst} and give the result rounded to 2 decimals."
            return Task(self.name, goal, steps, expected=steps[-1].args["answer"], facts={"units": (src, dst)})
        if kind == "speed":
            d, t = rng.randint(5, 400), rng.randint(10, 300)
            hours = convert(t, "min", "h")
            value = round(d / hours, 1)
            steps = [OracleStep(f"convert {t} min to h", "convert", {"value": t, "from_unit": "min", "to_unit": "h"},
                                {"value": t, "from_unit": "min", "to_unit": "h"}, {"value": hours}),
                     OracleStep("divide the distance by the hours and round", "calculate",
                                {"expression": f"round({d} / $prev.value, 1)"},
                                {"expression": f"round({d} / {hours!r}, 1)"}, {"value": value}),
                     OracleStep("submit the answer", "submit_answer", {"answer": "$prev.value"}, {"answer": value})]
            goal = f"A car drives {d} km in {t} minutes. What is its average speed in km/h, rounded to 1 decimal?"
            return Task(self.name, goal, steps, expected=value, facts={"units": ("min", "h")})
        a, b, c = rng.randint(2, 60), rng.randint(10, 900), rng.randint(1, 99)
        expr = f"{a} / 100 * {b} + {c}"
        value = evaluate(expr)
        steps = [OracleStep("compute the expression", "calculate", {"expression": expr}, {"expression": expr},
                            {"value": value}),
                 OracleStep("submit the answer", "submit_answer", {"answer": "$prev.value"}, {"answer": value})]
        return Task(self.name, f"What is {a}% of {b}, plus {c}?", steps, expected=value, facts={})

    def _impossible(self, rng: random.Random, kind: str) -> Task:
        if kind == "percent":
            a, b = rng.randint(2, 60), rng.randint(10, 900)
            expr = f"{b} / ({a} - {a})"
            steps = [OracleStep("compute the expression", "calculate", {"expression": expr}, {"expression": expr}),
                     OracleStep("submit the answer", "submit_answer", {"answer": "$prev.value"}, {"answer": None})]
            return Task(self.name, f"What is {b} divided by the difference of {a} and {a}?", steps,
                        unsatisfiable=True, blocking=(ErrorKind.RUNTIME_ERROR,), facts={})
        v, src, dst = round(rng.uniform(1, 90), 1), *rng.choice((("kg", "m"), ("h", "km"), ("lb", "s")))
        steps = [OracleStep(f"convert {v} {src} to {dst}", "convert", {"value": v, "from_unit": src, "to_unit": dst},
                            {"value": v, "from_unit": src, "to_unit": dst}),
                 OracleStep("submit the answer", "submit_answer", {"answer": "$prev.value"}, {"answer": None})]
        return Task(self.name, f"Convert {v} {src} to {dst}.", steps, unsatisfiable=True,
                    blocking=(ErrorKind.RUNTIME_ERROR,), facts={"units": (src, dst)})

    def observe(self, sandbox: Sandbox, task: Task) -> Any:
        """The known units and functions."""
        return {"units": sorted(UNITS), "functions": sorted(_FUNCS)}

    def mislead(self, rng: random.Random, sandbox: Sandbox, task: Task) -> Misleading | None:
        """For a task that starts with ``convert``: a unit list that names the source unit by a
        wrong alias; else None."""
        first = task.steps[0]
        if first.tool != "convert":
            return None
        src = first.plan_args["from_unit"]
        alias = {"lb": "lbs", "oz": "ounce", "ft": "feet", "mi": "miles", "F": "fahrenheit", "min": "minutes",
                 "kg": "kilo", "h": "hours"}.get(src, src + "s")
        units = sorted(alias if u == src else u for u in UNITS)
        return Misleading({"units": units, "functions": sorted(_FUNCS)}, 0, {**first.plan_args, "from_unit": alias})

    def check(self, task: Task, sandbox: Sandbox) -> bool:
        """Whether the submitted answer equals the expected value (relative tolerance 1e-6)."""
        return not task.unsatisfiable and answers_match(read_answer(sandbox), task.expected, tol=1e-6)
