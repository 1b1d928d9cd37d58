"""IBANs typed in lower case, grouped in fours (``tracebridge.curate.iban`` and ``detectors.IBAN_LOWER``):
found where their country's length and mod-97 check hold, on text and in records, and nothing else of
that shape."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor, Scanner

VALID = ["de89 3704 0044 0532 0130 00", "gb82 west 1234 5698 7654 32", "fr14 2004 1010 0505 0001 3m02 606",
         "nl91 abna 0417 1643 00", "no93 8601 1117 947"]


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors()


@pytest.mark.parametrize("iban", VALID)
def test_a_lower_case_iban_grouped_in_fours_is_found(det: Detectors, iban: str) -> None:
    for text in (f"my iban is {iban}, thanks", f"IBAN:\n{iban}\n", iban):
        found = [(text[s.start:s.end], s.kind) for s in det.find(text)]
        assert found == [(iban, "IBAN")], text
        assert det.triggered(orjson.dumps({"m": [text]}))  # JSON: after an escaped line end too
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e",
             "payload": {"output": f"wire it to\n{iban}"}}
    out = Redactor(key=b"k" * 32).redact(event)
    assert out["payload"]["output"] == "wire it to\n<IBAN_1>"
    assert Scanner().scan(event) == {("IBAN", "worker_tool_result.payload.output"): 1} and not Scanner().scan(out)


@pytest.mark.parametrize("text", [
    "de89 3704 0044 0532 0130 01",  # the check digits do not hold
    "de89370400440532013000",  # one lower-case run: not looked for (ids and hashes; see iban.py)
    "de89 37040044 0532013000",  # not grouped in fours
    "commit de12a4b7c9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4 merged",  # a hex hash of no IBAN's length
    "id be12abcd-1234-5678-9abc-def012345678",  # a UUID
    "ab12cdef34567890ab cd",  # no country
    "de89 3704 0044 0532 0130 00x",  # more after it
])
def test_lower_case_shapes_that_are_no_iban_stay(det: Detectors, text: str) -> None:
    assert [s for s in det.find(text) if s.kind == "IBAN"] == []
