"""Helpers of the simulator tests: read a run back, build episode specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracebridge.sim.config import FailureProfile, SkillConfig
from tracebridge.sim.episode import EpisodeSpec

NOVICE = SkillConfig(wrong_step_order=0.25, bad_args=0.25, unknown_tool=0.1, recover=0.7, premature_stop=0.1,
                     missed_stop=0.15, needless_replan=0.12)
HARD = FailureProfile(flaky_rate=0.2, slow_rate=0.1, slow_ms=1500, timeout_ms=1000, misleading_rate=0.3,
                      unsatisfiable_rate=0.25)


def read_run(root: Path, run_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The events and the session of one run."""
    run = Path(root) / run_id
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return events, json.loads((run / "session.json").read_text())


def spec(family: str, seed: int, skill: SkillConfig | None = None, profile: FailureProfile | None = None,
         **kw: Any) -> EpisodeSpec:
    return EpisodeSpec(family=family, seed=seed, skill=skill or SkillConfig(), profile=profile or FailureProfile(),
                       mix="m", failure="f", **kw)
