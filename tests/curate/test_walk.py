"""The record walk (``tracebridge.curate.walk``): a list held by a secret-named dict key
(``{"set-cookie": ["sessionid=…; Path=/"]}``, as HTTP client libraries log multi-valued headers) was walked as
an argv list, its strings judged after each other, not under their key: the cookie, API keys, an
``Authorization`` credential and passwords in such lists leaked through pass 1 and pass 2 alike. So did a
header given as a name/value pair (``[["Authorization", "Token …"]]``, as WSGI and ASGI log headers)."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.memo import ScanMemo
from tracebridge.curate.redact import Redactor, Scanner
from tracebridge.curate.walk import list_key

SID, KEY, TOK = "abc123XyZ987qwe5Tt", "Qw3rtY8uIo9PzX7c", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
OPENAI = "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
HELD = [  # (args of a tool call, the secrets in it)
    ({"headers": {"set-cookie": [f"sessionid={SID}; Path=/; HttpOnly", f"csrftoken={KEY}; Path=/"]}}, [SID, KEY]),
    ({"headers": {"Cookie": [f"sessionid={SID}"]}}, [SID]),
    ({"cfg": {"api_keys": [OPENAI, KEY]}}, [OPENAI, KEY]),
    ({"cfg": {"api_key": [KEY]}}, [KEY]),
    ({"cfg": {"apiKeys": [[KEY]]}}, [KEY]),  # nested lists too
    ({"headers": {"Authorization": [f"Token {TOK}"]}}, [TOK]),
    ({"cfg": {"password": ["hunter22"]}}, ["hunter22"]),
    ({"cfg": {"db_passwords": ("hunter22", "correcthorse")}}, ["hunter22", "correcthorse"]),  # a tuple at capture
    ({"passwords": ["hunter22"]}, ["hunter22"]),  # at a record's top level
    ({"headers": [["Authorization", f"Token {TOK}"], ["X-Api-Key", KEY]]}, [TOK, KEY]),
    ({"headers": [("set-cookie", f"sessionid={SID}; Path=/")]}, [SID]),
    # a list written by index (PHP's json_encode, JS's Object.assign({}, list)): it leaked
    ({"headers": {"set-cookie": {"0": f"sessionid={SID}; Path=/; HttpOnly", "1": f"csrftoken={KEY}; Path=/"}}},
     [SID, KEY]),
    ({"cfg": {"api_keys": {"0": KEY}}}, [KEY]),
    ({"cfg": {"password": {0: "hunter22"}}}, ["hunter22"]),  # int keys at capture
    # a value wrapped in an object under the secret's name (``terraform output -json``): it leaked
    ({"outputs": {"db_password": {"sensitive": True, "type": "string", "value": "hunter22x"}}}, ["hunter22x"]),
    ({"cfg": {"api_key": {"value": KEY}}}, [KEY]),
]


@pytest.mark.parametrize(("args", "secrets"), HELD)
def test_secrets_in_lists_under_their_key_are_redacted_pass_1_and_2(args: dict, secrets: list[str]) -> None:
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e", "payload": {"tool": "http", "args": args}}
    out = Redactor(key=b"k" * 32).redact(event)
    dumped = orjson.dumps(out, option=orjson.OPT_NON_STR_KEYS).decode()
    assert not any(s in dumped for s in secrets), dumped
    assert dumped.count("_1>") + dumped.count("_2>") == len(secrets), dumped
    for memo in (None, ScanMemo(min_bytes=1)):  # export's pass 2, push's row check
        found = Scanner(memo=memo).scan(event)
        assert sum(found.values()) == len(secrets), found
        assert not Scanner(memo=memo).scan(out)
    record = dict(args)  # a bare record (``tracebridge redact`` of a JSONL file)
    redacted = Redactor(key=b"k" * 32).redact(record, scope="f")
    assert not any(s in orjson.dumps(redacted, option=orjson.OPT_NON_STR_KEYS).decode() for s in secrets)


@pytest.mark.parametrize("args", [
    {"password": ["This field is required.", "This password is too short."]},  # Django REST framework's errors
    {"secrets": ["db_password", "api_key"]},  # the names of secrets (Compose, GitHub Actions)
    {"tokens": ["Hello", "ĠQUICKBROWNFOX", "world"]},  # a tokenizer's output
    {"set-cookie": ["theme=dark; Path=/"]},
    {"set-cookie": {"0": "theme=dark; Path=/"}},
    {"password": {"0": "This field is required."}},
    {"token": {"value": 512, "type": "number"}, "api_key": {"Value": "YOUR_API_KEY"}},
    {"api_keys": ["YOUR_API_KEY", "<your-key>"]},
    {"argv": ["curl", "-H", "Accept: text/html", "https://example.org"]},
    {"pair": ["name", "value"]},
])
def test_lists_holding_no_secret_stay(args: dict) -> None:
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e", "payload": {"args": args}}
    assert Redactor(key=b"k" * 32).redact(event) == event
    assert not Scanner().scan(event)


def test_a_list_of_secret_names_stays_beside_a_secret() -> None:
    """``["db_password", "api_key"]`` under ``secrets`` names secrets: no name/value pair, also when another
    field of the record holds a secret (the walk then looks at every list; it took the pair's value)."""
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e",
             "payload": {"args": {"secrets": ["db_password", "api_key"], "env": "DB_PASSWORD=hunter2hunter2"}}}
    out = Redactor(key=b"k" * 32).redact(event)
    assert out["payload"]["args"]["secrets"] == ["db_password", "api_key"]
    assert "hunter2hunter2" not in orjson.dumps(out).decode()


def test_list_key_names() -> None:
    assert [list_key(k) for k in ("set-cookie", "Authorization", "api_keys", "passwords", "ssns", "cookies")] == [
        "set-cookie", "Authorization", "api_key", "password", "ssn", "cookie"]
    assert [list_key(k) for k in ("secrets", "tokens", "keys", "headers", "messages")] == [None] * 5
    assert list_key("api_keys", plural=False) is None


@pytest.mark.parametrize(("args", "kept"), [
    ({"cookies": [{"name": "sessionid", "value": SID, "domain": "example.org", "path": "/"},
                  {"name": "theme", "value": "dark", "domain": "example.org", "path": "/"}]}, ["dark", "example.org"]),
    ({"page": {"cookies": [{"name": "sessionid", "value": SID, "httpOnly": True}]}}, ["sessionid"]),
    ({"cookies": {"sessionid": SID, "lang": "en-US"}}, ["en-US"]),
    ({"Cookie": {"sessionid": SID}}, ["sessionid"]),
])
def test_cookie_objects_and_jars_under_a_cookies_key_are_redacted(args: dict, kept: list[str]) -> None:
    """A browser's cookie objects (Playwright's ``context.cookies()``, Selenium, CDP) and a client's cookie jar
    (``requests``' ``cookies=``) leaked: the session value sat under ``value`` or the cookie's name, no secret name."""
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e", "payload": {"output": args}}
    out = Redactor(key=b"k" * 32).redact(event)
    dumped = orjson.dumps(out).decode()
    assert SID not in dumped and "<SECRET_1>" in dumped and all(k in dumped for k in kept), dumped
    for memo in (None, ScanMemo(min_bytes=1)):
        assert sum(Scanner(memo=memo).scan(event).values()) == 1 and not Scanner(memo=memo).scan(out)


def test_cookie_settings_stay() -> None:
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e",
             "payload": {"args": {"cookies": {"policy": "strict", "consent": "accepted", "secure": True}}}}
    assert Redactor(key=b"k" * 32).redact(event) == event
