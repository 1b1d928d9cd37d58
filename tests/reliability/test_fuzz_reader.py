"""Malformed input to the schema-v2 reader/validator: no crash, counts reconcile, every
problem located, valid lines in the same file never lost."""

from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import record_sample_run
from tracebridge.capture.reader import iter_runs
from tracebridge.schema.validate import check_run
from tracebridge.testing.mutate import MUTATIONS, mutate_lines

LOCATED = re.compile(r"^.+:(\d+|-): [^:]+: .+")


def _fuzz_once(tmp_path, seed: int, n_bad: int) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))  # hypothesis reuses tmp_path across examples
    run_id = record_sample_run(root)
    path = root / run_id / "events.jsonl"
    valid = path.read_bytes().splitlines()
    lines, _ = mutate_lines(valid, random.Random(seed), n_bad)
    path.write_bytes(b"\n".join(lines) + b"\n")
    nonblank = sum(1 for ln in path.read_bytes().split(b"\n") if ln.strip(b"\r\n\t ").strip())
    chk = check_run(next(iter_runs(root)))
    assert chk.events + chk.bad_lines + int(chk.torn_tail) == nonblank
    assert chk.schema_valid_events >= len(valid)  # the valid lines are all still there
    for p in chk.problems:
        assert LOCATED.match(str(p)), str(p)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), n_bad=st.integers(1, 6))
def test_reader_survives_mutations(tmp_path, seed, n_bad):
    _fuzz_once(tmp_path, seed, n_bad)


def test_every_mutation_kind_once(tmp_path):
    valid = b'{"event_id": "a", "parent_event_id": null, "timestamp": "2026-01-01T00:00:00.000Z"}'
    rng = random.Random(0)
    for name, fn in MUTATIONS.items():
        out = fn(valid, rng)
        assert isinstance(out, bytes) and out != valid or name in ("crlf", "bom"), name
