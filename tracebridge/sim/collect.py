"""The collection matrix: ``families × mixes × failures × seeds`` run over worker processes,
each episode written as one schema-v2 run, summarised as the class balance the verifier views
need (verdict shares, failure → recovery share, success rate) plus the post-run checks.

Seeds are the config's fixed list plus N random ones; each run records its seed and kind in
``runtime_config``. Random seeds come from ``seeds.random_source`` when set (a reproducible
collection) or from OS entropy. Worker processes start through ``forkserver`` (safe with the
progress bar's thread and with torch); model-backed roles build their backend once per process.
Every event and session.json is redacted as it is written (``capture.redact``, pass 1 of the two
redaction passes; session.json records the pass), unless the config turns it off. A rerun into
the same root resumes an interrupted pass from its ledger (``tracebridge.sim.resume``).
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing as mp
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.capture.recorder import new_run_id
from tracebridge.config import config_hash
from tracebridge.pool_workers import end_with_parent
from tracebridge.schema.events import EVENT_TYPES
from tracebridge.sim.config import ROLE_NAMES, CollectConfig, PolicyMix, RoleBackendConfig
from tracebridge.sim.episode import EpisodeResult, EpisodeSpec, run_episode
from tracebridge.sim.policies import RoleSet
from tracebridge.sim.resume import (
    ASIDE,
    Done,
    append_ledger,
    check_settings,
    episode_hash,
    prepare_resume,
    prune_aside,
    read_ledger,
    save_random_seeds,
    saved_random_seeds,
)
from tracebridge.sim.scripted import scripted_roles

log = logging.getLogger(__name__)
VERDICTS = ("continue", "replan", "end")
ProgressFn = Callable[[int, int], None]


def draw_random_seeds(n: int, source: int | None, exclude: list[int]) -> list[int]:
    """``n`` distinct seeds not in ``exclude``: from ``random.Random(source)``, or OS entropy."""
    rng: random.Random = random.Random(source) if source is not None else random.SystemRandom()
    out: list[int] = []
    while len(out) < n:
        s = rng.randrange(10_000, 2**31)
        if s not in exclude and s not in out:
            out.append(s)
    return out


def expand_matrix(cfg: CollectConfig, random_seeds: list[int] | None = None) -> list[EpisodeSpec]:
    """Every episode of the matrix, in a fixed order (``random_seeds``: those of an earlier pass,
    instead of drawing them)."""
    seeds = [(s, "fixed") for s in cfg.seeds.fixed]
    if random_seeds is None:
        random_seeds = draw_random_seeds(cfg.seeds.random, cfg.seeds.random_source, cfg.seeds.fixed)
    seeds += [(s, "random") for s in random_seeds]
    redaction = cfg.capture.redaction()
    return [EpisodeSpec(family=fam, seed=seed, seed_kind=kind, mix=mname, skill=mix.skill, failure=fname,
                        profile=prof, max_steps=cfg.max_steps, max_attempts=cfg.max_attempts, collection=cfg.name,
                        redaction=redaction)
            for fam in cfg.families for mname, mix in cfg.mixes.items() for fname, prof in cfg.failures.items()
            for seed, kind in seeds]


def earlier_runs(root: str | Path, cfg: CollectConfig) -> tuple[list[str], list[str]]:
    """Runs already in ``root`` that this collection would write again: the complete ones of the
    same episodes (``source.ref`` = collection/family/mix/failure/seed), and the incomplete ones
    (no session.json: an interrupted collection). A second pass would duplicate their episodes and
    double their share of the class balance.

    Returns:
        ``(complete_run_dirs, incomplete_run_dirs)``, each sorted.
    """
    drawn_again = cfg.seeds.random_source is not None  # OS-entropy seeds differ from one pass to the next
    refs = {f"{cfg.name}/{s.key}" for s in expand_matrix(cfg) if s.seed_kind == "fixed" or drawn_again}
    done, partial = [], []
    for d in sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (d / "session.json").is_file():
            partial += [str(d)] if (d / "events.jsonl").is_file() else []
            continue
        try:
            src = json.loads((d / "session.json").read_text(encoding="utf-8")).get("source") or {}
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            continue
        if src.get("kind") == "sim" and src.get("ref") in refs:
            done.append(str(d))
    return done, partial


# --------------------------------------------------------------------------- roles per mix


@functools.lru_cache(maxsize=8)
def _backend(role_json: str) -> Any:
    """Build (once per process) the chat backend of a role config given as canonical JSON."""
    rc = RoleBackendConfig(**json.loads(role_json))
    if rc.backend == "http":
        import os

        from tracebridge.sim.backends import OpenAIBackend

        key = os.environ.get(rc.api_key_env) if rc.api_key_env else None
        return OpenAIBackend(rc.base_url, rc.model, api_key=key, max_tokens=rc.max_new_tokens,
                             temperature=rc.temperature, timeout_s=rc.timeout_s)
    import torch

    from tracebridge.config import load_config
    from tracebridge.sim.backends import TransformersBackend
    from tracebridge.train.config import ModelConfig
    from tracebridge.train.models import build_model_and_tokenizer

    torch.set_num_threads(1)
    mcfg = load_config(ModelConfig, rc.model)
    model, tok = build_model_and_tokenizer(mcfg)
    model.eval()
    return TransformersBackend(model, tok, name=mcfg.name, max_new_tokens=rc.max_new_tokens,
                               temperature=rc.temperature)


def roles_factory(mix: PolicyMix) -> Callable[[dict[str, random.Random]], RoleSet] | None:
    """How to build a mix's roles from an episode's rngs (None = all scripted, the default)."""
    if mix.scripted:
        return None

    def build(rngs: dict[str, random.Random]) -> RoleSet:
        from tracebridge.sim.model_policies import MODEL_ROLES

        roles = scripted_roles(mix.skill, rngs)
        for r in ROLE_NAMES:
            rc: RoleBackendConfig = getattr(mix, r)
            if rc.backend != "scripted":
                roles[r] = MODEL_ROLES[r](_backend(json.dumps(asdict(rc), sort_keys=True)), rngs[r])
        return RoleSet(**roles)

    return build


def _run_chunk(specs: list[EpisodeSpec], out: str, mixes: dict[str, PolicyMix],
               sandbox_dir: str | None) -> tuple[list[EpisodeResult], list[dict[str, str]]]:
    results, errors = [], []
    for spec in specs:
        ref, run_id, h = f"{spec.collection}/{spec.key}", new_run_id(), episode_hash(spec, mixes[spec.mix])
        try:  # the ledger says which run each episode writes, and when it is done: a rerun resumes from it
            append_ledger(out, {"state": "started", "ref": ref, "run_id": run_id, "spec": h})
            result = run_episode(spec, out, roles_factory(mixes[spec.mix]), sandbox_dir, run_id)
            append_ledger(out, {"state": "done", "ref": ref, "run_id": run_id, "spec": h, "result": result.to_dict()})
        except Exception as exc:  # setup failure (e.g. a model that will not load): report, go on
            log.exception("episode %s failed to start", spec.key)
            errors.append({"key": spec.key, "error": f"{type(exc).__name__}: {exc}"[:500]})
        else:
            results.append(result)
    return results, errors


# --------------------------------------------------------------------------- summary


@dataclass
class CollectSummary:
    """Class balance and health of one collection (``to_dict`` is the ``--json`` output)."""

    out: str
    config_hash: str
    episodes: int
    seconds: float
    episodes_per_s: float
    seeds: dict[str, list[int]]
    verdicts: dict[str, int]
    verdict_shares: dict[str, float]
    expected_verdict_shares: dict[str, float]
    verifier_accuracy: float
    recovery_episodes: int
    recovery_share: float
    success_rate: float
    failure_classes: dict[str, int]
    event_types: dict[str, int]
    missing_event_types: list[str]
    by_family: dict[str, dict[str, float]]
    invalid_outputs: int
    crashed: int
    capture_errors: int
    errors: list[dict[str, str]] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    resumed: int = 0  # episodes an earlier, interrupted pass into this root had collected (not run again)
    set_aside: list[str] = field(default_factory=list)  # runs of its interrupted episodes, moved (run again)
    # runs under .collect.interrupted/ whose episode this pass (or an earlier one) collected again: removed;
    # and those still there (their episode not collected since, or a folder the ledger does not name)
    interrupted_removed: list[str] = field(default_factory=list)
    interrupted_left: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether no health check failed."""
        return not self.failed_checks

    def to_dict(self) -> dict[str, Any]:
        """The summary as a plain dict, plus ``passed``."""
        return {**asdict(self), "passed": self.passed}


def _shares(c: Counter[str]) -> dict[str, float]:
    total = sum(c.values())
    return {v: round(c.get(v, 0) / total, 4) if total else 0.0 for v in VERDICTS}


def summarize(results: list[EpisodeResult], errors: list[dict[str, str]], cfg: CollectConfig,
              seconds: float, out: str, ran: int | None = None) -> CollectSummary:
    """Fold episode results into the class balance and run the config's checks (``ran``: how many
    of them this pass ran, for the rate; default all)."""
    ran = len(results) if ran is None else ran
    n = len(results) or 1
    verdicts, expected, types = Counter[str](), Counter[str](), Counter[str]()
    for r in results:
        verdicts.update(r.verdicts)
        expected.update(r.expected_verdicts)
        types.update(r.event_types)
    fams: dict[str, dict[str, float]] = {}
    for fam in sorted({r.family for r in results}):
        rs = [r for r in results if r.family == fam]
        fams[fam] = {"episodes": len(rs), "success_rate": round(sum(r.success for r in rs) / len(rs), 4),
                     "recovery_share": round(sum(r.recovery for r in rs) / len(rs), 4)}
    seeds: dict[str, list[int]] = {"fixed": [], "random": []}
    for r in results:
        if r.seed not in seeds[r.seed_kind]:
            seeds[r.seed_kind].append(r.seed)
    s = CollectSummary(
        out=out, config_hash=config_hash(cfg), episodes=len(results), seconds=round(seconds, 3),
        episodes_per_s=round(ran / seconds, 2) if seconds > 0 else 0.0, seeds=seeds,
        verdicts={v: verdicts.get(v, 0) for v in VERDICTS}, verdict_shares=_shares(verdicts),
        expected_verdict_shares=_shares(expected),
        verifier_accuracy=round(sum(r.verdicts_correct for r in results) / max(1, sum(verdicts.values())), 4),
        recovery_episodes=sum(r.recovery for r in results),
        recovery_share=round(sum(r.recovery for r in results) / n, 4),
        success_rate=round(sum(r.success for r in results) / n, 4),
        failure_classes=dict(Counter(r.failure_class or "none" for r in results)), event_types=dict(types),
        missing_event_types=[t for t in EVENT_TYPES if not types.get(t)], by_family=fams,
        invalid_outputs=sum(r.invalid_outputs for r in results), crashed=sum(r.crashed for r in results),
        capture_errors=sum(r.capture_errors for r in results), errors=errors)
    s.failed_checks = _checks(s, cfg)
    return s


def _checks(s: CollectSummary, cfg: CollectConfig) -> list[str]:
    c, out = cfg.checks, []
    for v in VERDICTS:
        if s.verdict_shares[v] < c.min_verdict_share:
            out.append(f"verdict {v}: {s.verdict_shares[v]:.1%} < {c.min_verdict_share:.0%}")
    if s.recovery_share < c.min_recovery_share:
        out.append(f"recovery episodes: {s.recovery_share:.1%} < {c.min_recovery_share:.0%}")
    if c.require_all_event_types and s.missing_event_types:
        out.append(f"event types never emitted: {', '.join(s.missing_event_types)}")
    if s.errors:
        out.append(f"{len(s.errors)} episode(s) failed to start (first: {s.errors[0]['error']})")
    if s.crashed:
        out.append(f"{s.crashed} episode(s) crashed (recorded as episode_error)")
    if s.capture_errors:
        out.append(f"{s.capture_errors} capture error(s)")
    return out


# --------------------------------------------------------------------------- driver


def collect(cfg: CollectConfig, out: str | None = None, progress: ProgressFn | None = None) -> CollectSummary:
    """Run the matrix and write the traces.

    Args:
        cfg: the collection config.
        out: trace root (default ``cfg.out``).
        progress: called as ``progress(done, total)`` after every finished chunk.

    Returns:
        The summary with the class balance and the failed checks (empty when all passed).

    Raises:
        SettingsChanged: ``root``'s ledger holds episodes of these names collected with other settings
            (nothing was run).
    """
    root = out or cfg.out
    Path(root).mkdir(parents=True, exist_ok=True)
    ledger = read_ledger(root)[1]
    matrix = expand_matrix(cfg, _random_seeds(cfg, root, ledger))
    check_settings(ledger, {f"{cfg.name}/{s.key}": episode_hash(s, cfg.mixes[s.mix]) for s in matrix}, root)
    resume = prepare_resume(root)  # an interrupted pass: its collected episodes stay, its unfinished ones run again
    earlier = [resume.done[f"{cfg.name}/{s.key}"] for s in matrix if f"{cfg.name}/{s.key}" in resume.done]
    specs = [s for s in matrix if f"{cfg.name}/{s.key}" not in resume.done]
    if earlier or resume.set_aside:
        log.warning("%s: resuming: %d of %d episodes were collected by an earlier pass; %d interrupted run(s) "
                    "moved to %s/ and run again", root, len(earlier), len(matrix), len(resume.set_aside), ASIDE)
    chunks = [specs[i:i + cfg.chunk] for i in range(0, len(specs), cfg.chunk)]
    results: list[EpisodeResult] = list(earlier)
    errors: list[dict[str, str]] = []
    t0 = time.perf_counter()
    if progress:
        progress(len(results), len(matrix))
    if cfg.workers <= 1 or len(chunks) <= 1:
        for ch in chunks:
            r, e = _run_chunk(ch, root, cfg.mixes, cfg.sandbox_dir)
            results += r
            errors += e
            if progress:
                progress(len(results) + len(errors), len(matrix))
    else:
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        # workers end with this process: killed, it must not leave them writing runs into the root
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx, initializer=end_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(_run_chunk, ch, root, cfg.mixes, cfg.sandbox_dir) for ch in chunks]
            try:
                for fut in as_completed(futures):
                    r, e = fut.result()
                    results += r
                    errors += e
                    if progress:
                        progress(len(results) + len(errors), len(matrix))
            except BaseException:  # Ctrl-C: leaving the block ran every queued chunk first (all the episodes)
                pool.shutdown(wait=True, cancel_futures=True)  # the running ones end (their workers got it too)
                raise
    results.sort(key=lambda r: r.key)
    summary = summarize(results, errors, cfg, time.perf_counter() - t0, str(root), ran=len(results) - len(earlier))
    summary.resumed, summary.set_aside = len(earlier), resume.set_aside
    summary.interrupted_removed, summary.interrupted_left = prune_aside(root)  # superseded by this pass's runs
    log.info("collected %d episodes in %.1f s into %s", summary.episodes, summary.seconds, root)
    return summary


def _random_seeds(cfg: CollectConfig, root: str | Path, done: Done) -> list[int] | None:
    """The random seeds of this pass: those of an earlier pass of the same collection into ``root``
    that did not finish (drawn from OS entropy, they would differ), else None (drawn as configured);
    OS-entropy seeds are saved for a rerun."""
    if cfg.seeds.random_source is not None or not cfg.seeds.random:
        return None
    saved = saved_random_seeds(root, cfg.name, cfg.seeds.random)
    if saved is not None and any(f"{cfg.name}/{s.key}" not in done for s in expand_matrix(cfg, saved)):
        return saved
    seeds = draw_random_seeds(cfg.seeds.random, None, cfg.seeds.fixed)
    save_random_seeds(root, cfg.name, seeds)
    return seeds
