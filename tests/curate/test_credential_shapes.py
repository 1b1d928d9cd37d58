"""Credentials found by their own shape (``tracebridge.curate.credential_shapes``) that leaked before:
Discord webhook URLs, Azure shared access signatures, Twilio SID and auth-token pairs, Slack's
Workflow Builder and trigger webhook URLs. Each is found on text, in JSON text and in records (pass 1
and pass 2), and what only resembles one stays."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.detectors import Detectors
from tracebridge.curate.memo import ScanMemo
from tracebridge.curate.redact import Redactor, Scanner

DISCORD_TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUvWxYz01"
SAS_SIG = "Ab3dEfGh1jKlMn0pQrStUvWxYz%2B1234567890abcdE%3D"
SAS_QUERY = "sp=r&st=2026-01-01T00:00:00Z&se=2026-12-31T00:00:00Z&spr=https"
SID, AUTH = "AC0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
CASES = [  # (text, [(value, type)])
    (f"curl -X POST https://discord.com/api/webhooks/123456789012345678/{DISCORD_TOKEN} -d @msg.json",
     [(DISCORD_TOKEN, "DISCORD_WEBHOOK")]),
    (f"DISCORD_HOOK=https://discordapp.com/api/v10/webhooks/123456789012345678/{DISCORD_TOKEN}",
     [(DISCORD_TOKEN, "DISCORD_WEBHOOK")]),
    (f"https://acct.blob.core.windows.net/c/f.txt?sv=2021-06-08&{SAS_QUERY}&sig={SAS_SIG}",
     [(SAS_SIG, "AZURE_SAS")]),
    (f"https://acct.blob.core.windows.net/c/f.txt?{SAS_QUERY}&sig={SAS_SIG}&sv=2022-11-02&sr=b",
     [(SAS_SIG, "AZURE_SAS")]),  # the signature before the version (the portal's order varies)
    (f"BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2021-06-08&ss=b&sig={SAS_SIG}",
     [(SAS_SIG, "AZURE_SAS")]),
    (f'client = Client("{SID}", "{AUTH}")', [(SID, "TWILIO_KEY"), (AUTH, "TWILIO_KEY")]),
    (f"export TWILIO_ACCOUNT_SID={SID}\nexport TWILIO_AUTH_TOKEN={AUTH}",
     [(SID, "TWILIO_KEY"), (AUTH, "TWILIO_KEY")]),
    ("https://hooks.slack.com/workflows/T01234567/A01234567/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWx",
     [("https://hooks.slack.com/workflows/T01234567/A01234567/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWx",
       "SLACK_TOKEN")]),
    ("https://hooks.slack.com/triggers/T01234567/1234567890123/0123456789abcdef0123456789abcdef",
     [("https://hooks.slack.com/triggers/T01234567/1234567890123/0123456789abcdef0123456789abcdef",
       "SLACK_TOKEN")]),
]
NOT_SECRETS = [
    "POST to https://discord.com/api/webhooks/{webhook.id}/{webhook.token} to send a message",
    "https://discord.com/api/webhooks/123456789012345678/short",
    f"https://example.org/img.png?w=200&sig={SAS_SIG}",  # a signature, but no Azure SAS version
    "the SAS query holds sv=2021-06-08 and a sig= field",
    f"account {SID} is billed monthly",  # a SID alone names an account
    f"md5 {AUTH} sha1 0123456789abcdef0123456789abcdef01234567",  # hashes alone
]


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors()


@pytest.mark.parametrize(("text", "found"), CASES)
def test_shape_is_found_in_text_json_and_records(det: Detectors, text: str, found: list) -> None:
    assert [(text[s.start:s.end], s.kind) for s in det.find(text)] == found
    dumped = orjson.dumps({"cmd": text}).decode()
    assert [dumped[s.start:s.end] for s in det.find(dumped)] == [v for v, _ in found]
    event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e",
             "payload": {"tool": "shell", "args": {"cmd": text}}}
    out = Redactor(key=b"k" * 32).redact(event)
    assert not any(v in orjson.dumps(out).decode() for v, _ in found)
    for memo in (None, ScanMemo(min_bytes=1)):  # pass 2 at export, and push's row check
        assert Scanner(memo=memo).scan(event) and not Scanner(memo=memo).scan(out)


def test_one_sid_one_placeholder_within_a_run() -> None:
    red = Redactor(key=b"k" * 32)
    a = red.redact_text(f'Client("{SID}", "{AUTH}")', "run")
    b = red.redact_text(f"TWILIO_ACCOUNT_SID={SID} TWILIO_AUTH_TOKEN={AUTH}", "run")
    assert a == 'Client("<TWILIO_KEY_1>", "<TWILIO_KEY_2>")'
    assert b == "TWILIO_ACCOUNT_SID=<TWILIO_KEY_1> TWILIO_AUTH_TOKEN=<TWILIO_KEY_2>"


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_what_only_resembles_one_stays(det: Detectors, text: str) -> None:
    assert det.find(text) == []
