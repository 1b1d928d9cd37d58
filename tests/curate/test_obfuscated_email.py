"""E-mail addresses written out against scrapers (``tracebridge.curate.obfuscated_email``) leaked: the
detector wanted an ``@``. Found bracketed or spelled out, in text, JSON text and records; prose with
"at" and "dot" in it stays."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor, Scanner

ADDRESSES = [
    "jane dot doe at example dot com",
    "JANE AT EXAMPLE DOT COM",
    "jdoe42 at mail dot example dot org",
    "jane[at]example[.]com",
    "jane (at) example (dot) com",
    "jane.doe <at> example <dot> co <dot> uk",
    "jane{at}example.com",
    "irvin DOT probst AT ensta-bretagne DOT fr",
]
PROSE = [
    "look at the data",
    "I looked at example dot com yesterday",  # a prose word before "at"
    "meet at example.com tomorrow",  # spelled "at", no spelled "dot": a site, not an address
    "see the docs at docs.python.org",
    "arrays (at) index 3",
    "the price is at 3 dot 5 percent",
    "reach me at example dot com",  # missed by design: "me" is prose
    "Throughput customer cost node at invoice file limit request of the worker",
]


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors()


@pytest.mark.parametrize("address", ADDRESSES)
def test_a_written_out_address_is_an_email(det: Detectors, address: str) -> None:
    text = f"Contact: {address}, thanks."
    assert [(text[s.start:s.end], s.kind) for s in det.find(text)] == [(address, "EMAIL")]
    dumped = orjson.dumps({"out": [text]}).decode()
    assert [dumped[s.start:s.end] for s in det.find(dumped)] == [address]
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e", "payload": {"output": text}}
    out = Redactor(key=b"k" * 32).redact(event)
    assert out["payload"]["output"] == "Contact: <EMAIL_1>, thanks."
    assert Scanner().scan(event) and not Scanner().scan(out)


@pytest.mark.parametrize("text", PROSE)
def test_prose_with_at_and_dot_stays(det: Detectors, text: str) -> None:
    assert det.find(text) == []
