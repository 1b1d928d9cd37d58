"""Goal families for the split: each run's split family (its goal family, refined by goal for
the sources in ``split.by_goal_sources``) and, up front from the session files alone, the runs
per family and each family's source kind (``tracebridge.curate.split.assign_families`` splits
each source on its own).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

from tracebridge.capture.blocks import goal_hash
from tracebridge.capture.reader import RunDir, iter_runs
from tracebridge.curate.config import family_key


def family_counts(root: Path, by_goal: Collection[str] = ()) -> tuple[dict[str, int], dict[str, str]]:
    """Runs per goal family and each family's source kind, from the session files only (the split
    needs them up front)."""
    out: Counter[str] = Counter()
    sources: dict[str, str] = {}
    for run in iter_runs(root):
        session = read_session(run)
        fam = split_family(session, by_goal)
        out[fam] += 1
        src = (session or {}).get("source")
        sources.setdefault(fam, str(src.get("kind")) if isinstance(src, dict) else "")
    return dict(out), sources


def read_session(run: RunDir) -> dict[str, Any] | None:
    """A complete run's session.json as a dict; None when missing, unreadable or not an object."""
    if not run.complete:
        return None
    try:
        data = run.read_session()
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def split_family(session: dict[str, Any] | None, by_goal: Collection[str] = ()) -> str:
    """The split family of a run: its goal family as ``family_key`` names it (case and spaces ignored),
    refined by its goal hash for sources in ``split.by_goal_sources`` (one family per chat kind is too
    coarse to split on)."""
    goal = (session or {}).get("goal")
    fam = goal.get("family") if isinstance(goal, dict) else None
    fam = family_key(fam) if isinstance(fam, str) else "unknown"
    source = (session or {}).get("source")
    if by_goal and isinstance(source, dict) and source.get("kind") in by_goal:
        gh = goal_key(session)
        fam = f"{fam}/{gh[:8]}" if gh else fam
    return fam


def goal_key(session: dict[str, Any] | None) -> str | None:
    """The run's goal as the split and dedup compare goals: its ``goal_hash``, or, when its family is not
    written as ``family_key`` names it, the hash of its goal text under that name (``goal_hash`` hashes the
    family: ``CSV`` and ``csv`` runs of one goal had two hashes). None when the session records neither."""
    goal = (session or {}).get("goal")
    if not isinstance(goal, dict):
        return None
    fam, text, gh = goal.get("family"), goal.get("text"), goal.get("goal_hash")
    if isinstance(fam, str) and isinstance(text, str) and fam != family_key(fam):
        return goal_hash(text, family_key(fam))
    return gh if isinstance(gh, str) and gh else None
