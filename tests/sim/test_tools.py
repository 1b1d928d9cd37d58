"""The tool gate and the sandbox: unknown tools, schema checks, controlled failures, escapes."""

from __future__ import annotations

import os
import random

import pytest

from tracebridge.schema.events import ErrorKind
from tracebridge.sim.tools import (
    Faults,
    Sandbox,
    Toolbox,
    ToolFailure,
    ToolSpec,
    params,
    schema_problems,
)


def _echo(sb, a):
    return {"echo": a["text"]}


def _boom(sb, a):
    raise OSError(f"cannot open {sb.root}/secret.txt")


def _write(sb, a):
    sb.resolve(a["path"], write=True).write_text("x")
    return {"ok": True}


TOOLS = [ToolSpec("echo", "echo", params({"text": {"type": "string", "minLength": 1}}), _echo),
         ToolSpec("boom", "fails", params({}), _boom),
         ToolSpec("write", "write", params({"path": {"type": "string"}}), _write, mutates=True)]


@pytest.fixture
def box(tmp_path):
    return Toolbox(Sandbox(tmp_path), TOOLS)


def test_ok_call_returns_output_and_latency(box):
    out = box.call("echo", {"text": "hi"})
    assert out.ok and out.output == {"echo": "hi"} and out.error is None and out.latency_ms >= 0


def test_unknown_tool(box):
    out = box.call("run_shell", {"cmd": "ls"})
    assert not out.ok and out.error.kind == ErrorKind.UNKNOWN_TOOL and "echo" in out.error.message


@pytest.mark.parametrize("args, fragment", [
    ({}, "args.text: required"),
    ({"text": 3}, "expected string"),
    ({"text": ""}, "must not be empty"),
    ({"text": "a", "extra": 1}, "args.extra: unknown argument"),
    ({"text": "$prev.value"}, "unresolved $prev reference"),
    ([1], "expected object"),
])
def test_bad_args(box, args, fragment):
    out = box.call("echo", args)
    assert not out.ok and out.error.kind == ErrorKind.BAD_ARGS and fragment in out.error.message


def test_tool_exception_is_runtime_error_without_sandbox_path(box, tmp_path):
    out = box.call("boom", {})
    assert out.error.kind == ErrorKind.RUNTIME_ERROR and "OSError" in out.error.message
    assert str(tmp_path) not in out.error.message and "secret.txt" in out.error.message


def test_flaky_and_slow_faults(tmp_path):
    flaky = Toolbox(Sandbox(tmp_path), TOOLS, Faults(flaky_rate=1.0), random.Random(0))
    out = flaky.call("echo", {"text": "hi"})
    assert out.error.kind == ErrorKind.RUNTIME_ERROR and out.injected == "flaky" and "transient" in out.error.message
    slow = Toolbox(Sandbox(tmp_path), TOOLS, Faults(slow_rate=1.0, slow_ms=2000, timeout_ms=500), random.Random(0))
    out = slow.call("echo", {"text": "hi"})
    assert out.error.kind == ErrorKind.TIMEOUT and out.latency_ms == 500 and out.injected == "slow"
    late = Toolbox(Sandbox(tmp_path), TOOLS, Faults(slow_rate=1.0, slow_ms=300, timeout_ms=500), random.Random(0))
    out = late.call("echo", {"text": "hi"})
    assert out.ok and out.latency_ms >= 300 and out.injected == "slow"


def test_bad_args_win_over_injected_faults(tmp_path):
    box = Toolbox(Sandbox(tmp_path), TOOLS, Faults(flaky_rate=1.0), random.Random(0))
    assert box.call("echo", {}).error.kind == ErrorKind.BAD_ARGS


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", ".answer.json", "dir/.hidden"])
def test_sandbox_refuses_escapes(tmp_path, path):
    with pytest.raises(ToolFailure) as exc:
        Sandbox(tmp_path).resolve(path)
    assert exc.value.kind == ErrorKind.PERMISSION


def test_sandbox_refuses_symlink_out_and_readonly_writes(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    box_root = tmp_path / "box"
    (box_root / "locked").mkdir(parents=True)
    os.symlink(outside, box_root / "link")
    sb = Sandbox(box_root)
    for path, write in (("link/f.txt", False), ("locked/new.txt", True)):
        with pytest.raises(ToolFailure) as exc:
            sb.resolve(path, write=write)
        assert exc.value.kind == ErrorKind.PERMISSION
    out = Toolbox(sb, TOOLS).call("write", {"path": "link/x"})
    assert out.error.kind == ErrorKind.PERMISSION and not (outside / "x").exists()
    assert sb.resolve("locked/readme.txt") == box_root / "locked" / "readme.txt"  # reading is fine


def test_schema_problems_lists_every_problem():
    schema = params({"a": {"type": "integer"}, "b": {"type": "string", "enum": ["x", "y"]}})
    assert schema_problems(schema, {"a": True, "b": "z", "c": 1}) == [
        "args.c: unknown argument", "args.a: expected integer, got bool", "args.b: 'z' is not one of ['x', 'y']"]
    assert schema_problems(schema, {"a": 1, "b": "x"}) == []
