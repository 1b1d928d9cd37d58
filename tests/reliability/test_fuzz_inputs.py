"""Malformed OpenClaw transcripts and Telegram getUpdates dumps (hypothesis over the fuzz kinds of
tracebridge/testing/fuzz_inputs.py): no crash, no hang, read = accepted + quarantined, every
quarantined item located, nothing valid in the same file lost, imported lineage a tree."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tracebridge.testing.fuzz_driver import PROMISES, Case, run_case
from tracebridge.testing.fuzz_inputs import (
    OPENCLAW_MUTATIONS,
    TELEGRAM_MUTATIONS,
    OpenClawFuzz,
    TelegramFuzz,
    parent_swap,
)


@pytest.fixture(scope="module")
def openclaw(tmp_path_factory) -> OpenClawFuzz:
    return OpenClawFuzz(tmp_path_factory.mktemp("openclaw"))


@pytest.fixture(scope="module")
def telegram(tmp_path_factory) -> TelegramFuzz:
    return TelegramFuzz(tmp_path_factory.mktemp("telegram"))


def _broken(counts) -> dict[str, int]:
    return {k: counts[k] for k in PROMISES if counts[k]}


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_openclaw_importer_keeps_its_promise_under_mutation(openclaw, seed):
    assert _broken(run_case(openclaw, random.Random(seed))) == {}


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
@example(seed=4608)  # a count update of a positive chat id: the ledger keeps it pseudonymised, as a private chat's
def test_telegram_harvester_keeps_its_promise_under_mutation(telegram, seed):
    assert _broken(run_case(telegram, random.Random(seed))) == {}


def test_the_checks_see_a_lost_line(openclaw, telegram):
    """A base line broken but declared untouched must show up as lost (the checks can fail)."""
    lines = list(openclaw.base)
    lines[3] = lines[3][:-5]
    case = Case(openclaw.tmp / "case" / "in" / "s.jsonl", b"\n".join(lines) + b"\n", lines, set())
    assert openclaw.verify(case, openclaw.feed(case))["lost"] >= 1
    lines = list(telegram.base)
    lines[0] = b"{" + lines[0]
    case = telegram._case(lines, set(), False, random.Random(0))
    assert telegram.verify(case, telegram.feed(case))["lost"] >= 1


def test_kind_mutations_produce_what_they_name():
    row = b'{"type":"message","id":"b","parentId":"a","message":{"role":"user","content":"x"}}'
    swapped = orjson.loads(parent_swap(row, random.Random(0)))
    assert (swapped["id"], swapped["parentId"]) == ("a", "b")  # with the original row: a -> b -> a
    rng = random.Random(1)
    for table in (OPENCLAW_MUTATIONS, TELEGRAM_MUTATIONS):
        for name, fn in table.items():
            assert isinstance(fn(row, rng), bytes), name
