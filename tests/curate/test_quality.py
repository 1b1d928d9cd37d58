"""Each quality rule on a run broken in exactly that way; allowed rules do not block."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import record_sample_run
from tracebridge.capture.reader import RunDir, iter_lines
from tracebridge.curate.quality import run_reasons
from tracebridge.schema.validate import check_run


def _lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]


def _write(run: Path, events: list[dict], tail: str = "") -> None:
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + tail)


def _edit(fn: Callable[[list[dict]], list[dict]], tail: str = "") -> Callable[[Path], None]:
    return lambda run: _write(run, fn(_lines(run)), tail)


def _set(i: int, path: str, value: object) -> Callable[[list[dict]], list[dict]]:
    def fn(evs: list[dict]) -> list[dict]:
        obj = evs[i]
        *head, last = path.split(".")
        for k in head:
            obj = obj[k]
        if value is KeyError:
            del obj[last]
        else:
            obj[last] = value
        return evs
    return fn


BREAKS: dict[str, Callable[[Path], None]] = {
    "bad_json": _edit(lambda e: e, tail="{not json\n"),
    "torn_tail": _edit(lambda e: e, tail='{"run_id": "x", "ev'),
    "missing_key": _edit(_set(0, "payload.goal", KeyError)),
    "schema_invalid": _edit(_set(3, "payload.plan_step", "not an object")),
    "schema_drift": _edit(_set(2, "payload.mood", "happy")),
    "broken_lineage": _edit(_set(4, "parent_event_id", "elsewhere:000099")),
    "duplicate_id": _edit(lambda e: e[:3] + [e[2]] + e[3:]),
    "non_monotonic_timestamp": _edit(_set(5, "timestamp", "2000-01-01T00:00:00.000Z")),
    "unmatched_tool_result": _edit(_set(6, "payload.call_id", "c9")),  # answers no call of the run
    "step_backwards": _edit(_set(12, "step", 0)),  # verifier_input of step 1 back at step 0
    "role_mismatch": _edit(_set(13, "role", "planner")),  # verifier_output under the planner
    "empty_payload": _edit(_set(1, "payload.plan", [])),
    "incomplete_run": lambda run: (run / "session.json").unlink(),
    "no_events": lambda run: (run / "events.jsonl").write_text(""),
}


def _reasons(run: Path, allow: tuple[str, ...] = ()) -> tuple[list, list]:
    rd = RunDir(run)
    lines = [(ln.lineno, ln.obj) for ln in iter_lines(rd.events_path) if ln.error is None] \
        if rd.events_path.exists() else []
    return run_reasons(check_run(rd), run, lines, allow)


def test_clean_run_has_no_reason(tmp_path: Path) -> None:
    run = tmp_path / record_sample_run(tmp_path)
    assert _reasons(run) == ([], [])


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_rule(tmp_path: Path, rule: str) -> None:
    run = tmp_path / record_sample_run(tmp_path)
    BREAKS[rule](run)
    blocking, allowed = _reasons(run)
    assert rule in {r.rule for r in blocking}, [r.to_dict() for r in blocking]
    assert not allowed
    r = next(r for r in blocking if r.rule == rule)
    assert r.where.startswith(run.name)  # relative to the trace root: bundles do not depend on paths
    assert str(tmp_path) not in r.where


def test_run_without_episode_end_is_incomplete(tmp_path: Path) -> None:
    run = tmp_path / record_sample_run(tmp_path)
    _write(run, [e for e in _lines(run) if e["event_type"] != "episode_end"])
    assert [r.rule for r in _reasons(run)[0]] == ["incomplete_run"]


def test_allowed_rules_are_reported_not_blocking(tmp_path: Path) -> None:
    run = tmp_path / record_sample_run(tmp_path)
    BREAKS["torn_tail"](run)
    blocking, allowed = _reasons(run, allow=("torn_tail",))
    assert not blocking and [r.rule for r in allowed] == ["torn_tail"]


@pytest.mark.parametrize("value, rule", [(KeyError, "missing_key"), (None, "schema_invalid"), (7, "schema_invalid")])
def test_a_missing_or_mistyped_event_type_is_its_own_rule_at_its_field(tmp_path: Path, value: object, rule: str) -> None:
    """A line without event_type was ``schema_invalid`` at ``<root>`` and one with ``event_type: 7``
    ``schema_drift``: neither said which field nor the kind of damage."""
    run = tmp_path / record_sample_run(tmp_path)
    _edit(_set(2, "event_type", value))(run)
    blocking, _ = _reasons(run)
    assert [(r.rule, r.where.split(":", 1)[1]) for r in blocking] == [(rule, "3:event_type")]
