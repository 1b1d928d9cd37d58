"""Sandboxed real tools: the per-episode ``Sandbox``, ``ToolSpec`` (name, description, JSON-schema
arguments, the function that does the work) and the ``Toolbox`` that dispatches a call.

Every call goes through the same gate, in order: unknown tool → ``unknown_tool``; arguments that
break the tool's JSON schema (or still hold an unresolved ``$prev`` reference) → ``bad_args``;
the episode's controlled failures (flaky → ``runtime_error``, slow past the timeout →
``timeout``); then the tool runs for real inside the sandbox. A tool raises ``ToolFailure`` with
a kind from ``ErrorKind``; any other exception becomes ``runtime_error``. Messages never carry
the sandbox's absolute path, so traces do not depend on where the temp directory was.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tracebridge.schema.events import ErrorKind, ToolError

log = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 4000
REF_PREFIX = "$prev"
READ_ONLY_DIRS = ("locked",)


class ToolFailure(Exception):
    """Raised by a tool: the call failed with ``kind`` from the taxonomy."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Sandbox:
    """A temp directory owned by one episode; paths given to tools resolve inside it only.

    Args:
        root: the directory (created by the caller, removed by the caller).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.answer_path = self.root / ".answer.json"

    def resolve(self, rel: Any, *, write: bool = False) -> Path:
        """Resolve a relative path given by an agent.

        Raises:
            ToolFailure: ``bad_args`` for a non-string or empty path; ``permission`` for an
                absolute path, ``..``, a hidden name, a symlink leaving the sandbox, or a write
                under a read-only folder.
        """
        if not isinstance(rel, str) or not rel.strip():
            raise ToolFailure(ErrorKind.BAD_ARGS, "path must be a non-empty relative path")
        p = PurePosixPath(rel.strip())
        if p.is_absolute() or ".." in p.parts:
            raise ToolFailure(ErrorKind.PERMISSION, f"{rel}: outside the sandbox")
        if any(part.startswith(".") for part in p.parts):
            raise ToolFailure(ErrorKind.PERMISSION, f"{rel}: hidden paths are not accessible")
        full = self.root.joinpath(*p.parts)
        if not full.resolve().is_relative_to(self.root):
            raise ToolFailure(ErrorKind.PERMISSION, f"{rel}: resolves outside the sandbox")
        if write and p.parts and p.parts[0] in READ_ONLY_DIRS:
            raise ToolFailure(ErrorKind.PERMISSION, f"{rel}: {p.parts[0]}/ is read-only")
        return full

    def rel(self, path: Path) -> str:
        """The sandbox-relative POSIX form of ``path``."""
        return path.resolve().relative_to(self.root).as_posix()

    def scrub(self, text: str) -> str:
        """Remove the sandbox's absolute location from a message."""
        return text.replace(str(self.root) + "/", "").replace(str(self.root), ".")


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what the model sees (name, description, JSON-schema parameters) and the code.

    Args:
        name: tool name.
        description: one line for the model.
        parameters: JSON schema of the arguments object.
        fn: ``fn(sandbox, args) -> output`` (JSON-able); raises ``ToolFailure``.
        mutates: the tool changes the sandbox (an ``env_observation`` follows it).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[[Sandbox, dict[str, Any]], Any]
    mutates: bool = False

    def schema(self) -> dict[str, Any]:
        """OpenAI/transformers function-tool form."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


def params(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """A closed JSON schema object with the given required and optional properties."""
    props = {**required, **(optional or {})}
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


STR = {"type": "string", "minLength": 1}
NUM = {"type": "number"}

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def schema_problems(schema: dict[str, Any], value: Any, where: str = "args") -> list[str]:
    """Check ``value`` against the subset of JSON Schema the tools use (type, properties,
    required, additionalProperties, enum, minLength). Returns every problem."""
    out: list[str] = []
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        if not any(_TYPES[t](value) for t in allowed):
            return [f"{where}: expected {' or '.join(allowed)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        out.append(f"{where}: must not be empty")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties") is False:
            out += [f"{where}.{k}: unknown argument" for k in value if k not in props]
        for k, v in value.items():
            if k in props:
                out += schema_problems(props[k], v, f"{where}.{k}")
    return out


def _has_ref(value: Any) -> bool:
    if isinstance(value, str):
        return REF_PREFIX in value
    if isinstance(value, dict):
        return any(_has_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_ref(v) for v in value)
    return False


@dataclass
class Faults:
    """Controlled failures applied at the tool gate (drawn from the environment's rng)."""

    flaky_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 0.0
    timeout_ms: float = 1000.0
    real_sleep: bool = False


@dataclass
class ToolOutcome:
    """What one call returned."""

    ok: bool
    output: Any = None
    error: ToolError | None = None
    latency_ms: float = 0.0
    injected: str | None = None  # flaky | slow when a controlled failure fired


@dataclass
class Toolbox:
    """The tools of one episode, bound to its sandbox, with its controlled failures."""

    sandbox: Sandbox
    tools: list[ToolSpec]
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        self.by_name = {t.name: t for t in self.tools}

    @property
    def names(self) -> list[str]:
        """The tool names, in order."""
        return [t.name for t in self.tools]

    def schemas(self) -> list[dict[str, Any]]:
        """Each tool in OpenAI/transformers function-tool form (the session's ``tools``)."""
        return [t.schema() for t in self.tools]

    def call(self, name: str, args: Any) -> ToolOutcome:
        """Run one call through the gate (see the module docstring); never raises."""
        spec = self.by_name.get(name)
        if spec is None:
            return _fail(ErrorKind.UNKNOWN_TOOL, f"unknown tool {name!r}; available: {', '.join(self.names)}")
        problems = schema_problems(spec.parameters, args)
        if not problems and _has_ref(args):
            problems = [f"args hold an unresolved {REF_PREFIX} reference; substitute the earlier result"]
        if problems:
            return _fail(ErrorKind.BAD_ARGS, "; ".join(problems))
        # Draw both faults every call so the rng stream does not depend on which one fired.
        flaky, slow = self.rng.random() < self.faults.flaky_rate, self.rng.random() < self.faults.slow_rate
        delay = self.faults.slow_ms if slow else 0.0
        if flaky:
            return _fail(ErrorKind.RUNTIME_ERROR, "transient failure: tool backend reset the connection; "
                                                  "a retry may succeed", injected="flaky")
        if delay > self.faults.timeout_ms:
            if self.faults.real_sleep:
                time.sleep(self.faults.timeout_ms / 1000)
            return _fail(ErrorKind.TIMEOUT, f"{name} did not answer within {self.faults.timeout_ms:g} ms",
                         latency_ms=self.faults.timeout_ms, injected="slow")
        if delay and self.faults.real_sleep:
            time.sleep(delay / 1000)
        t0 = time.perf_counter()
        try:
            output = spec.fn(self.sandbox, args)
        except ToolFailure as exc:
            return _fail(exc.kind, self.sandbox.scrub(exc.message), latency_ms=_ms(t0) + delay)
        except Exception as exc:  # noqa: BLE001 - a real tool's own failure, reported as such
            return _fail(ErrorKind.RUNTIME_ERROR, self.sandbox.scrub(f"{type(exc).__name__}: {exc}"),
                         latency_ms=_ms(t0) + delay)
        return ToolOutcome(ok=True, output=_cap(output), latency_ms=_ms(t0) + delay,
                           injected="slow" if delay else None)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


def _fail(kind: ErrorKind, message: str, latency_ms: float = 0.0, injected: str | None = None) -> ToolOutcome:
    return ToolOutcome(ok=False, error=ToolError(kind=kind, message=message[:500]), latency_ms=latency_ms,
                       injected=injected)


def _cap(output: Any) -> Any:
    if isinstance(output, str) and len(output) > MAX_OUTPUT_CHARS:
        return output[:MAX_OUTPUT_CHARS] + "…[truncated]"
    return output
