"""Cookies (``tracebridge.curate.cookies``): a session cookie in a ``Cookie``/``Set-Cookie`` header or
curl's ``-b``/``--cookie`` leaked into bundles (only a pair whose name was a secret's, ``csrftoken=``,
was taken). Found in text, JSON text and records (pass 1 and pass 2); non-secret cookies, cookie jars,
attributes and prose stay."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.detectors import Detectors
from tracebridge.curate.memo import ScanMemo
from tracebridge.curate.redact import Redactor, Scanner

SID, CSRF = "9f8e7d6c5b4a3928abcd1234ef", "Xy7kP2qLm9Rt4vWz"
TEXTS = [  # (text, the values in it)
    (f"> GET /api HTTP/1.1\n> Cookie: session={SID}; csrftoken={CSRF}\n", [SID, CSRF]),
    (f"< set-cookie: __Host-session={SID}; Path=/; Max-Age=3600; HttpOnly; Secure", [SID]),
    (f"Set-Cookie: sessionid={SID}; Domain=example.com; SameSite=Lax", [SID]),
    (f'curl -s -b "session={SID}; theme=dark" https://example.org/api', [SID]),
    (f"curl https://example.org/api --cookie 'sid={CSRF}'", [CSRF]),
    (f'requests.get(url, headers={{"Cookie": "session={SID}"}})', [SID]),
    (f"document.cookie = 'sid={CSRF}; path=/'", [CSRF]),
]
NOT_SECRETS = [
    "Cookie: theme=dark; lang=en-US; consent=yes",
    "Set-Cookie: session=deleted; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
    "curl -b cookies.txt -c cookies.txt https://example.org/login",  # a cookie jar
    "git checkout -b feature=Xy7kP2qLm9Rt4vWz",  # no curl: -b is a branch
    "the cookie banner says: accept all cookies",
]


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors()


@pytest.mark.parametrize(("text", "values"), TEXTS)
def test_cookie_values_are_found_in_text_and_json(det: Detectors, text: str, values: list[str]) -> None:
    assert [text[s.start:s.end] for s in det.find(text)] == values
    for depth in (1, 3):  # JSON inside a string, and three levels deep
        dumped = text
        for _ in range(depth):
            dumped = orjson.dumps({"out": dumped}).decode()
        assert [dumped[s.start:s.end] for s in det.find(dumped)] == values, depth
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e", "payload": {"output": text}}
    out = Redactor(key=b"k" * 32).redact(event)
    assert not any(v in out["payload"]["output"] for v in values)


@pytest.mark.parametrize("args", [
    {"headers": {"Cookie": f"session={SID}; csrftoken={CSRF}"}},
    {"headers": {"set-cookie": f"sessionid={SID}; Path=/"}},
    {"argv": ["curl", "-b", f"session={SID}", "https://example.org"]},
    {"argv": ["/usr/bin/curl", "--cookie", f"session={SID}", "https://example.org"]},
])
def test_cookie_values_in_records_pass_1_and_2(args: dict) -> None:
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e", "payload": {"tool": "http", "args": args}}
    out = Redactor(key=b"k" * 32).redact(event)
    dumped = orjson.dumps(out).decode()
    assert SID not in dumped and "<SECRET_1>" in dumped
    for memo in (None, ScanMemo(min_bytes=1)):  # export's pass 2, push's row check
        assert Scanner(memo=memo).scan(event) and not Scanner(memo=memo).scan(out)


def test_one_cookie_one_placeholder_within_a_run() -> None:
    red = Redactor(key=b"k" * 32)
    assert red.redact_text(f"Cookie: session={SID}", "run") == "Cookie: session=<SECRET_1>"
    assert red.redact_text(f"curl -b 'session={SID}' https://x.org", "run") == "curl -b 'session=<SECRET_1>' https://x.org"


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_cookies_that_are_no_secret_stay(det: Detectors, text: str) -> None:
    assert det.find(text) == []
    args = {"argv": text.split()}
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e", "payload": {"args": args}}
    assert Redactor(key=b"k" * 32).redact(event) == event
