"""The export adds each run's tally into its own (``Tally.merge``), passing over the counts a run left at
zero or empty: what it adds is still every count, field by field, with the types the report writes."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields

from tracebridge.export.report import Tally


def _as_dict(t: Tally) -> dict[str, object]:
    return {f.name: (dict(v) if isinstance(v := getattr(t, f.name), dict) else v) for f in fields(t)}


def test_merged_tallies_add_up_field_by_field_and_keep_their_types() -> None:
    total = Tally(runs_read=2, quarantine_rules=Counter(schema=1))
    total.families["f"]["train"] += 1
    run = Tally(runs_read=1, events_read=7, exported=0, outcomes=Counter(success=1))
    run.families["f"]["test"] += 1
    run.families["g"]  # a family the run touched with no count: listed after the merge, as before
    run.pass1_findings["EMAIL"]["payload.text"] += 2
    total.merge(run)
    total.merge(Tally())  # an empty tally: nothing changes
    got = _as_dict(total)
    assert got["runs_read"] == 3 and got["events_read"] == 7 and got["exported"] == 0
    assert got["quarantine_rules"] == {"schema": 1} and got["outcomes"] == {"success": 1}
    assert got["families"] == {"f": Counter(train=1, test=1), "g": Counter()}
    assert got["pass1_findings"] == {"EMAIL": Counter({"payload.text": 2})}
    ints = [f.name for f in fields(Tally) if f.type in ("int", int)]
    assert ints and all(type(getattr(total, n)) is int for n in ints)  # never a bool, never None
