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


# Shapes a typed lower-case IBAN takes that were missed (pass 1 and 2 alike): after an escaped line end (JSON
# inside a string: a tool output's file), split across lines, in a URL query, by tabs or no-break spaces, a
# sentence's capital, and a group of the next word right after it
SHAPES = [
    ("line1\\nde89 3704 0044 0532 0130 00", "de89 3704 0044 0532 0130 00"),
    ('{\\"text\\": \\"pay\\\\nde89 3704 0044 0532 0130 00\\"}', "de89 3704 0044 0532 0130 00"),
    ("de89 3704 0044\n0532 0130 00", "de89 3704 0044\n0532 0130 00"),
    ("iban: de89 3704 0044\\n0532 0130 00 ok", "de89 3704 0044\\n0532 0130 00"),
    ("https://bank.example/pay?iban=de89%203704%200044%200532%200130%2000&x=1", "de89%203704%200044%200532%200130%2000"),
    ("https://bank.example/pay?iban=de89+3704+0044+0532+0130+00&x=1", "de89+3704+0044+0532+0130+00"),
    ("gb82\twest\t1234\t5698\t7654\t32", "gb82\twest\t1234\t5698\t7654\t32"),
    ("de89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000", "de89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000"),
    ("De89 3704 0044 0532 0130 00 is mine", "De89 3704 0044 0532 0130 00"),
    ("be68 5390 0754 7034 then", "be68 5390 0754 7034"),
]


@pytest.mark.parametrize("text,iban", SHAPES, ids=[t for t, _ in SHAPES])
def test_lower_case_ibans_in_every_typed_shape_are_found(det: Detectors, text: str, iban: str) -> None:
    assert [(text[s.start:s.end], s.kind) for s in det.find(text)] == [(iban, "IBAN")]
    assert det.triggered(orjson.dumps({"m": [text]}))
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e",
             "payload": {"output": text, "note": "de89 3704 0044 0532 0130 00"}}
    out = Redactor(key=b"k" * 32).redact(event)["payload"]
    assert out["output"] != text and out["output"].replace("<IBAN_1>", iban).replace("<IBAN_2>", iban) == text
    if iban[:4].lower() == "de89":  # one IBAN however it is written: one placeholder
        assert out["note"] == "<IBAN_1>" and "<IBAN_2>" not in out["output"]
    assert Scanner().scan(event)[("IBAN", "worker_tool_result.payload.output")] == 1 and not Scanner().scan(
        {**event, "payload": out})


@pytest.mark.parametrize("text", [
    "https://bank.example/pay?iban=de89370400440532013000&amount=10",
    "IBAN: de89370400440532013000",
    '{\\"payee_iban\\": \\"de89370400440532013000\\"}',
])
def test_one_lower_case_run_after_an_iban_label_is_found(det: Detectors, text: str) -> None:
    # a run alone stays (ids and hashes hold that shape); after an ``iban`` label it is one
    assert [(text[s.start:s.end], s.kind) for s in det.find(text)] == [("de89370400440532013000", "IBAN")]
    assert det.triggered(orjson.dumps({"m": [text]}))
    assert not det.find(text.replace("013000", "013001"))  # the check must hold


def test_one_run_under_an_iban_key_is_found_in_a_record() -> None:
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e", "payload": {"args": {
        "iban": "de89370400440532013000", "payee_iban": "DE89 3704 0044 0532 0130 00", "ref": "de89370400440532013000"}}}
    out = Redactor(key=b"k" * 32).redact(event)["payload"]["args"]
    assert out == {"iban": "<IBAN_1>", "payee_iban": "<IBAN_1>", "ref": "de89370400440532013000"}
    assert Scanner().scan(event)[("IBAN", "worker_tool_call.payload.args.iban")] == 1
