"""Recovery rows are up-weighted once: the exporter writes each one to ``worker_sft`` (labelled
``recovery: true``) and to ``worker_recovery_cases/sft``; the optimized variant curated both, so with
``data.dedup=false`` every recovery row trained ``2 × recovery_weight`` times. The recovery view's copy of a
row the SFT rows already hold is now left out whatever ``data.dedup`` says."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tracebridge.train.config import TrainConfig
from tracebridge.train.data import RoleData, load_role_data, new_recovery_rows
from tracebridge.train.trial import select_train_rows

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "train_views"


def row(i: int, recovery: bool = False) -> dict:
    msgs = [{"role": "user", "content": f"read f{i}"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": f"c{i}", "type": "function", "function": {"name": "read_file", "arguments": {"path": f"f{i}"}}}]}]
    return {"messages": msgs, "tools": None, "meta": {"run_id": f"r{i}", "event_ids": [f"r{i}:1", f"r{i}:2"],
                                                     "split": "train", "labels": {"recovery": recovery or None}}}


def role_data() -> RoleData:
    sft = [row(0), row(1, recovery=True), row(2)]
    recovery = [copy.deepcopy(sft[1])]  # as read from the other view: an equal row, another object
    return RoleData("worker", sft, recovery, [], [], 4)


@pytest.mark.parametrize("dedup", [True, False])
def test_a_recovery_row_in_both_views_is_up_weighted_once(dedup):
    cfg = TrainConfig(role="worker", variant="optimized")
    cfg.data.dedup, cfg.data.recovery_weight = dedup, 3
    rows, report = select_train_rows(role_data(), cfg)
    ids = [r["meta"]["run_id"] for r in rows]
    assert ids.count("r1") == 3 and ids.count("r0") == ids.count("r2") == 1
    assert report["recovery_in_sft"] == 1 and report["recovery"] == 1 and report["out"] == 5


def test_recovery_rows_the_sft_rows_lack_are_still_added():
    sft, recovery = [row(0)], [row(1, recovery=True)]
    assert new_recovery_rows(sft, recovery) == recovery
    # the same lineage in an SFT row that is not labelled a recovery (a hand-made bundle's plain step)
    # is no copy: the recovery row is added and up-weighted
    other = copy.deepcopy(recovery[0])
    other["messages"][0]["content"] = "another rendering"
    assert new_recovery_rows([row(1)], [other]) == [other]
    # the same row by its content, whatever its meta says
    moved = copy.deepcopy(sft[0])
    moved["meta"]["event_ids"] = ["elsewhere"]
    assert new_recovery_rows(sft, [moved]) == []
    d = load_role_data(FIXTURE, "worker")  # the fixture's recovery rows are rows of their own: all kept
    train = d.split(d.recovery_sft, "train")
    assert new_recovery_rows(d.split(d.sft, "train"), train) == train
