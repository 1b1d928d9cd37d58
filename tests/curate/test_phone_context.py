"""A bare digit run that is a valid US number is a phone number only with a phone word near it
(``tracebridge.curate.phone_context``): ids in URL paths, queries and under id keys stay training data."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor, Scanner

# Ids that are valid US numbers (212, 415 and 650 are area codes), as agent traces hold them
IDS = [
    "GET /orders/2125550123/items",
    "https://api.example.com/v1/users?id=4155550199&x=1",
    '{"user_id": "6505550100", "ok": true}',
    '{\\"orderId\\": \\"2125550123\\"}',
    "user 6505550100 logged in",
    "created 2125550123 ok",
    "order number: 2125550123",
    "ORD-2125550123 shipped",
    "s3://bucket/runs/4155550199/events.jsonl",
    '{"phone_verified": true, "user_id": "4155550199"}',  # a phone word nearby, but an id's key before it
    "contact user_id: 4155550199",
    "get_user(4155552671)",
    "contact_id: 4155552671",
]
# Phone numbers, each next to the ids above: written with separators or with a phone word near them
PHONES = [
    ("call me at (212) 555-0123", "(212) 555-0123"),
    ("reach me on 212-555-0123", "212-555-0123"),
    ("+1 212 555 0123 is the desk", "+1 212 555 0123"),
    ("phone: 2125550123", "2125550123"),
    ('{"mobile_number": "2125550123"}', "2125550123"),
    ('{\\"tel\\": \\"4155552671\\"}', "4155552671"),
    ("Phone number: 4155552671", "4155552671"),
    ("call me at 4155552671 tomorrow", "4155552671"),
    ("my number is 6505550100", "6505550100"),
    ("4155552671 (mobile)", "4155552671"),
    ("text me 4155552671", "4155552671"),
    ("https://x.io/verify?phone=4155552671&id=2125550123", "4155552671"),
    ("tel:4155552671", "4155552671"),
    ("https://wa.me/14155552671", "14155552671"),
    ("WhatsApp 14155552671", "14155552671"),
    ("Reach me at: 4155552671", "4155552671"),
    ("you can reach me at 4155552671", "4155552671"),
    ("Emergency contact: 4155552671", "4155552671"),
]


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors(RedactionConfig(phone_regions=["US"]))


@pytest.mark.parametrize("text", IDS)
def test_bare_ids_are_no_phone_numbers(det: Detectors, text: str) -> None:
    assert [text[s.start:s.end] for s in det.find(text) if s.kind == "PHONE"] == []


@pytest.mark.parametrize("text,value", PHONES, ids=[t for t, _ in PHONES])
def test_phone_numbers_with_context_are_found(det: Detectors, text: str, value: str) -> None:
    assert [text[s.start:s.end] for s in det.find(text) if s.kind == "PHONE"] == [value]


def test_records_bare_numbers_under_phone_keys_only() -> None:
    red = Redactor(RedactionConfig(phone_regions=["US"]))
    rec = {"run_id": "r", "event_type": "worker_tool_result", "payload": {"output": {
        "phone": "4155552671", "user_id": "6505550100", "to": "4155550199", "ts": "2125550123",
        "phones": ["2125550123", "4155552671"], "ids": ["4155552671"], "contact": {"tel": "(212) 555-0123"},
        "url": "https://x.io/orders/2125550123/items?id=4155550199", "note": "call me at 2125550123"}}}
    out = red.redact(rec)["payload"]["output"]
    assert out["user_id"] == "6505550100" and out["ts"] == "2125550123" and out["ids"] == ["4155552671"]
    assert out["url"] == "https://x.io/orders/2125550123/items?id=4155550199"
    # the same number gets the same placeholder however it is written, under a key or in text
    assert out["phone"] == "<PHONE_1>" and out["phones"][1] == "<PHONE_1>"
    assert out["phones"][0] == out["contact"]["tel"] == "<PHONE_3>" and out["note"] == "call me at <PHONE_3>"
    assert out["to"] == "<PHONE_2>"


def test_a_quoted_key_decides_alone_so_a_row_agrees_with_its_record() -> None:
    # pass 1 judges a record's value by its key alone; a bundle row holds the same args as JSON text, with
    # the keys before it in view (``"channel": "sms"``): a phone word there made push's row check find a
    # number pass 1 had rightly left, and refuse the bundle
    args = {"channel": "sms", "body": "4155552671"}
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e", "payload": {"tool": "notify", "args": args}}
    assert Redactor(RedactionConfig(phone_regions=["US"])).redact(event) == event
    row = {"messages": [{"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "notify", "arguments": orjson.dumps(args).decode()}}]}]}
    assert not Scanner(RedactionConfig(phone_regions=["US"])).scan(row)
    assert Scanner().scan({"messages": [{"role": "user", "content": "sms body: 4155552671"}]})  # prose: the word counts


def test_a_phone_key_that_names_a_secret_keeps_its_secret() -> None:
    # ``sms_password`` names a phone and a password: the phone check found no number and the key's secret
    # was not looked for
    red = Redactor(RedactionConfig(phone_regions=["US"]))
    rec = {"run_id": "r", "event_type": "worker_tool_call", "payload": {"args": {
        "sms_password": "hunter22", "whatsapp_api_key": "Qw3rtY8uIo9PzX7c", "phone": "4155552671"}}}
    assert red.redact(rec)["payload"]["args"] == {
        "sms_password": "<SECRET_1>", "whatsapp_api_key": "<SECRET_2>", "phone": "<PHONE_1>"}


@pytest.mark.parametrize("text,value", [
    ("Telefon: 030123456", "030123456"), ("Handy 01711234567", "01711234567"), ("mon portable 0612345678", "0612345678"),
    ("teléfono 4155552671", "4155552671"), ("電話 4155552671", "4155552671"), ("телефон 4155552671", "4155552671"),
])
def test_phone_words_of_other_languages_give_context(text: str, value: str) -> None:
    # chats are written in many languages: a bare number after ``Telefon`` or ``電話`` was missed (the English
    # words alone gave context)
    d = Detectors(RedactionConfig(phone_regions=["US", "DE", "FR"]))
    assert [text[s.start:s.end] for s in d.find(text) if s.kind == "PHONE"] == [value]
    assert not d.find("hotel 4155552671, telemetry 4155552671")  # a word that holds one is none


def test_whatsapp_ids_are_phone_numbers() -> None:
    # WhatsApp's Cloud API names a sender's number ``wa_id`` (an id's label, so it was left) and its own
    # number's id ``phone_number_id`` (an id indeed)
    hook = {"contacts": [{"profile": {"name": "Ann"}, "wa_id": "14155552671"}],
            "metadata": {"phone_number_id": "106540352242922"}, "messages": [{"from": "14155552671", "id": "wamid.X"}]}
    out = Redactor(RedactionConfig(phone_regions=["US"])).redact(
        {"run_id": "r", "event_type": "env_observation", "payload": {"webhook": hook}})["payload"]["webhook"]
    assert out["contacts"][0]["wa_id"] == out["messages"][0]["from"] == "<PHONE_1>"
    assert out["metadata"]["phone_number_id"] == "106540352242922"
    text = '{"wa_id": "14155552671"}'
    assert [text[s.start:s.end] for s in Detectors(RedactionConfig(phone_regions=["US"])).find(text)] == ["14155552671"]


class _Counting(Detectors):
    """The detectors, counting the numbers handed to ``phonenumbers`` (``_phone_ok``)."""

    parsed = 0

    def _phone_ok(self, text: str, digits: int) -> bool:
        self.parsed += 1
        return super()._phone_ok(text, digits)


def test_bare_ids_without_a_phone_word_are_not_parsed() -> None:
    # a tool output of ids (a CSV, a listing) paid phonenumbers' parse for each and then refused it for want of
    # a phone word: the context is looked at first (6000 ids: 0.66 -> 0.06 s of CPU)
    det = _Counting(RedactionConfig(phone_regions=["US"]))
    ids = [str(2125550100 + 7 * i) for i in range(200)]
    text = "order_id,customer_id\n" + "\n".join(f"{a},{b}" for a, b in zip(ids, reversed(ids)))
    assert det.find(text) == [] and det.parsed == 0
    assert [s.kind for s in det.find("call me at 2125550123")] == ["PHONE"] and det.parsed == 1


def test_a_phone_number_stored_as_an_integer_under_a_phone_key_is_redacted() -> None:
    # a table read with its phone column as integers (pandas' to_dict, a CSV importer) leaked: the walk never
    # looks at numbers, and its trigger check drops them
    rows = [{"name": "Ann", "phone": 4155552671, "id": 2125550123, "phones": [6505550100], "tel": 12}]
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e", "payload": {"output": {"rows": rows}}}
    out = Redactor(RedactionConfig(phone_regions=["US"])).redact(event)["payload"]["output"]["rows"][0]
    assert out == {"name": "Ann", "phone": "<PHONE_1>", "id": 2125550123, "phones": ["<PHONE_2>"], "tel": 12}
    found = Scanner(RedactionConfig(phone_regions=["US"])).scan(event)
    assert sum(found.values()) == 2 and found[("PHONE", "worker_tool_result.payload.output.rows.phone")] == 1


def test_an_integer_phone_in_a_bare_record_is_redacted() -> None:
    # ``tracebridge redact`` of a JSONL export: the record's own integer fields were never walked
    rec = {"name": "Ann", "phone": 4155552671, "id": 2125550123}
    assert Redactor(RedactionConfig(phone_regions=["US"])).redact(dict(rec), scope="f") == {
        "name": "Ann", "phone": "<PHONE_1>", "id": 2125550123}
    assert Scanner(RedactionConfig(phone_regions=["US"])).scan(rec) == {("PHONE", "phone"): 1}


def test_a_phone_in_an_entry_naming_it_is_redacted() -> None:
    # a value beside a name or type naming a phone (Google's People API, CRM properties), or in an object
    # under a phone key, was judged under ``value`` and, bare, needed a phone word it did not have
    out = Redactor(RedactionConfig(phone_regions=["US"])).redact({"run_id": "r", "event_type": "worker_tool_result",
        "payload": {"output": {
            "phoneNumbers": [{"value": "4155552671", "type": "mobile"}, {"value": "2125550123"}],
            "props": [{"name": "phone", "value": "6505550100"}, {"name": "user_id", "value": "6505550111"},
                      {"type": "string", "value": "4155550199"}]}}})["payload"]["output"]
    assert [p["value"] for p in out["phoneNumbers"]] == ["<PHONE_1>", "<PHONE_2>"]
    assert [p["value"] for p in out["props"]] == ["<PHONE_3>", "6505550111", "4155550199"]
