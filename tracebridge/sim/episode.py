"""One simulator episode from a seed: make the sandbox, generate the task, open the ``Recorder``,
run the ``Episode`` and summarise it as an ``EpisodeResult``.

Everything random in an episode draws from named ``random.Random`` streams derived from
``family/mix/failure/seed`` (task, environment, misleading, each role), so the same spec gives
the same trace content (``tracebridge.sim.hashing.content_hash``) in any process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.capture.recorder import Recorder, make_goal
from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.redact import capture_redactor
from tracebridge.sim.backends import BackendError
from tracebridge.sim.config import FailureProfile, SkillConfig
from tracebridge.sim.families import get_family
from tracebridge.sim.orchestrator import Episode
from tracebridge.sim.policies import RoleSet
from tracebridge.sim.scripted import scripted_roles
from tracebridge.sim.tools import Faults, Sandbox, Toolbox
from tracebridge.sim.truth import Truth

log = logging.getLogger(__name__)
STREAMS = ("task", "env", "mislead", "planner", "worker", "verifier")
RolesFactory = Callable[[dict[str, random.Random]], RoleSet]


@dataclass
class EpisodeSpec:
    """One cell of the matrix at one seed."""

    family: str
    seed: int
    seed_kind: str = "fixed"
    mix: str = "default"
    skill: SkillConfig = field(default_factory=SkillConfig)
    failure: str = "clean"
    profile: FailureProfile = field(default_factory=FailureProfile)
    max_steps: int = 8
    max_attempts: int = 3
    collection: str = "sim"
    redaction: RedactionConfig | None = None  # pass 1 at capture; None = the run is written raw

    @property
    def key(self) -> str:
        """The cell and seed as ``family/mix/failure/seed``."""
        return f"{self.family}/{self.mix}/{self.failure}/{self.seed}"

    @property
    def episode_seed(self) -> int:
        """A seed derived from ``key`` (the first 48 bits of its sha256)."""
        return int(hashlib.sha256(self.key.encode()).hexdigest()[:12], 16)

    def rngs(self) -> dict[str, random.Random]:
        """One independent random stream per ``STREAMS`` name, seeded from ``episode_seed``."""
        return {s: random.Random(f"{self.episode_seed}:{s}") for s in STREAMS}


@dataclass
class EpisodeResult:
    """The summary the collector aggregates (JSON-able via ``to_dict``)."""

    run_id: str
    key: str
    family: str
    mix: str
    failure: str
    seed: int
    seed_kind: str
    success: bool
    failure_class: str | None
    cycles: int
    events: int
    event_types: dict[str, int]
    verdicts: dict[str, int]
    expected_verdicts: dict[str, int]
    verdicts_correct: int
    recovery: bool
    invalid_outputs: int
    capture_errors: int
    crashed: bool
    unsatisfiable: bool
    misleading: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict."""
        return dataclasses.asdict(self)


def _runtime_config(spec: EpisodeSpec, roles: RoleSet) -> dict[str, Any]:
    sources = [f"{r}={'scripted' if getattr(roles, r).prompt_source.startswith('scripted:') else 'model'}"
               for r in ("planner", "worker", "verifier")]
    return {"max_steps": spec.max_steps, "prompt_sources": sources, "tool_mode": "sandbox", "seed": spec.seed,
            "seed_kind": spec.seed_kind,
            "extra": {"collection": spec.collection, "family": spec.family, "mix": spec.mix,
                      "failure_profile": spec.failure, "episode_seed": spec.episode_seed,
                      "max_attempts": spec.max_attempts, "failures": dataclasses.asdict(spec.profile),
                      "skill": dataclasses.asdict(spec.skill)}}


def run_episode(spec: EpisodeSpec, root: str | Path, roles: RolesFactory | None = None,
                sandbox_dir: str | None = None, run_id: str | None = None) -> EpisodeResult:
    """Run one episode and write its run under ``root``.

    Args:
        spec: family, seed, policy mix and failure profile.
        root: trace root.
        roles: builds the roles from the episode's rngs; None = scripted with ``spec.skill``.
        sandbox_dir: parent of the episode's temp directory (None = system temp).
        run_id: the run's folder name (None = a new one).

    Returns:
        The episode's summary. Policy and backend failures are recorded, never raised.
    """
    t0 = time.perf_counter()
    rngs = spec.rngs()
    role_set = roles(rngs) if roles else RoleSet(**scripted_roles(spec.skill, rngs))
    family = get_family(spec.family)
    p = spec.profile
    with tempfile.TemporaryDirectory(prefix="tb-sim-", dir=sandbox_dir) as tmp:
        sandbox = Sandbox(tmp)
        unsat = rngs["env"].random() < p.unsatisfiable_rate
        misled = rngs["env"].random() < p.misleading_rate
        task = family.generate(rngs["task"], sandbox, unsatisfiable=unsat)
        misleading = family.mislead(rngs["mislead"], sandbox, task) if misled else None
        faults = Faults(p.flaky_rate, p.slow_rate, p.slow_ms, p.timeout_ms, p.real_sleep)
        toolbox = Toolbox(sandbox, family.tools(), faults, rngs["env"])
        truth = Truth(family, task, sandbox)
        labels = {"unsatisfiable": task.unsatisfiable, "misleading": misleading is not None,
                  "expected_answer": task.expected}
        with Recorder(root, goal=make_goal(task.goal, family.name), model_stack=role_set.model_stack(),
                      runtime_config=_runtime_config(spec, role_set),
                      source={"kind": "sim", "ref": f"{spec.collection}/{spec.key}"}, run_id=run_id,
                      tools=toolbox.schemas(), prompts=role_set.prompts(), fsync_interval_s=None, labels=labels,
                      redactor=capture_redactor(spec.redaction) if spec.redaction is not None else None) as rec:
            ep = Episode(rec, family, task, toolbox, truth, role_set, misleading, spec.max_steps, spec.max_attempts)
            crashed = _run_guarded(ep)
            rec.labels["recovery"] = ep.recovered
            stats = rec.stats
    return EpisodeResult(
        run_id=rec.run_id, key=spec.key, family=spec.family, mix=spec.mix, failure=spec.failure, seed=spec.seed,
        seed_kind=spec.seed_kind, success=ep.success, failure_class=ep.failure_class, cycles=rec.step + 1,
        events=stats.events_written, event_types=dict(ep.types), verdicts=dict(ep.verdicts),
        expected_verdicts=dict(ep.expected), verdicts_correct=ep.correct, recovery=ep.recovered,
        invalid_outputs=ep.invalid, capture_errors=stats.errors, crashed=crashed, unsatisfiable=task.unsatisfiable,
        misleading=misleading is not None, seconds=round(time.perf_counter() - t0, 4))


def _run_guarded(ep: Episode) -> bool:
    """Run the episode; a policy or backend failure is recorded and ends it. True if it crashed."""
    try:
        ep.run()
        return False
    except BackendError as exc:
        kind, fclass, msg = exc.kind, "backend_error", str(exc)
    except Exception as exc:  # a bug in a policy must not take the collection down
        log.exception("episode crashed")
        kind, fclass, msg = type(exc).__name__, "crash", f"{type(exc).__name__}: {exc}"
    if not ep.ended:
        err = ep.emit("episode_error", "orchestrator", {"kind": kind, "message": msg[:500], "recoverable": False},
                      ep.last_event)
        ep.finish(f"episode aborted: {msg[:200]}", fclass, err)
    return True
