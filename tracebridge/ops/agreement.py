"""Folders and files that more than one ops config names, and the check that they name the same ones.

The ops configs (``configs/ops/*.yaml``) share one schema (``OpsConfig``) but are read by different
commands, and a folder one command writes is set again in the config of the command that reads it:
the shadow cycle's ``shadow.work_dir`` (phase 2 reads its replay bundles), the reaction files the cycle
harvests into (the weekly export joins them as labels), the phase-2 and weekly run folders (retention,
configured from shadow.yaml, pins and prunes them) and the promotion history (promote writes it,
retention pins its policies), and the bot of the reaction rows that name none when several bots share the
files. Moved in one file and not the other, a command would read a stale or
empty folder and say nothing. ``disagreements`` lists each such key one config names differently from
another: the phase-2, weekly and monthly-review commands check the configs in their ``agree_with`` before any work,
and retention checks ``shadow.retention.pin_configs`` before removing anything.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from tracebridge.ops.config import OpsConfig


@dataclass(frozen=True)
class Shared:
    """One place two configs must name alike: ``key`` in one, ``other`` in the other (often the same key)."""

    key: str
    other: str
    what: str  # what lives there, for the message
    path: bool = True  # compared as places (~ and symlinks resolved); False = as written (a bot id)


SHARED = (
    Shared("promotion.state_dir", "promotion.state_dir", "the promotion history (its policies are pinned)"),
    Shared("phase2.out_dir", "phase2.out_dir", "the phase-2 runs (their bundles are pinned)"),
    Shared("weekly.bundles_dir", "weekly.bundles_dir", "the weekly runs"),
    Shared("shadow.work_dir", "shadow.work_dir", "the shadow cycle's work folder (phase 2 reads its replay bundles)"),
    Shared("shadow.feedback_ledger", "weekly.feedback_ledger", "the reaction ledger the shadow cycle harvests into"),
    Shared("shadow.feedback_mapping", "weekly.feedback_mapping", "the reaction mapping"),
    Shared("shadow.chunk_registry", "weekly.chunk_registry", "the registry of chunked replies"),
    Shared("shadow.feedback_ledger", "monthly.ledger", "the reaction ledger the shadow cycle harvests into"),
    Shared("shadow.feedback_mapping", "monthly.mapping", "the reaction mapping"),
    Shared("shadow.feedback_legacy_bot_id", "weekly.feedback_legacy_bot_id",
           "the bot of the reaction rows that name none (their labels)", path=False),
)
# the keys each command reads (and must agree on); retention checks every pair
PHASE2_KEYS = ("shadow.work_dir", "phase2.out_dir")
WEEKLY_KEYS = ("weekly.bundles_dir", "weekly.feedback_ledger", "weekly.feedback_mapping", "weekly.chunk_registry",
               "weekly.feedback_legacy_bot_id")
MONTHLY_KEYS = ("monthly.ledger", "monthly.mapping")


def _place(value: Any) -> str:
    return os.path.realpath(os.path.expanduser(str(value)))


def disagreements(own: OpsConfig, own_name: str, path: str, keys: Collection[str] | None = None) -> list[str]:
    """Each ``SHARED`` key the config file at ``path`` sets to another place than ``own`` has.

    Args:
        own: the running command's config, as resolved (its file and its overrides).
        own_name: how the messages name it (its file).
        path: the other ops config; only the keys it sets itself are compared (a config that sets no
            ``promotion.state_dir`` is not about promotions), and a null on either side reads nothing.
        keys: compare only these keys of ``own`` (what the command reads); None = every pair.

    Returns:
        One problem per key, naming both files, both keys and both values, and the fix.

    Raises:
        ConfigError: the file at ``path`` is missing, not YAML or not a mapping.
    """
    from omegaconf import OmegaConf

    from tracebridge.config import read_yaml

    raw, ours = read_yaml(path), OmegaConf.structured(own)
    out = []
    for s in SHARED:
        for mine_key, their_key in dict.fromkeys(((s.key, s.other), (s.other, s.key))):
            if keys is not None and mine_key not in keys:
                continue
            theirs, mine = OmegaConf.select(raw, their_key, default=None), OmegaConf.select(ours, mine_key)
            if theirs is None or mine is None or (_place(theirs) == _place(mine) if s.path else
                                                  str(theirs) == str(mine)):
                continue
            fix = (f"set the same {mine_key} in both" if mine_key == their_key
                   else f"set {mine_key} and {their_key} to the same {'path' if s.path else 'value'}")
            other = "another place for" if s.path else "another value for"
            out.append(f"{path} sets {their_key}={theirs!s} but {own_name} has {mine_key}={mine!s}: the commands run "
                       f"with each would use {other} {s.what}; {fix}")
    return out
