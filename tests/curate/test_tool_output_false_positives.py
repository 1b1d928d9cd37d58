"""False positives found by auditing realistic agent data (100 generated OpenClaw sessions through import
and export, and typical tool output): what the detectors took for a value, and what they must keep finding."""

from __future__ import annotations

import pytest

from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor

# Were redacted: an exception's name after a secret name (a log line; 10 findings in the OpenClaw corpus), a
# YAML tag where a value would be (Ansible's vault, Home Assistant's reference to secrets.yaml), a bare id
# in a call's parentheses read as a US phone number
FIXED = [
    "secret: KeyError: 'session_id'",
    "token: TypeError: expected str, got int",
    "password: ValidationError: too short",
    "api_key: requests.exceptions.HTTPError: 401",
    "password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256",
    "wifi_password: !secret wifi_password",
    "get_user(2125550123) returned ids (2125550123)",
]
# Typical tool output that holds no value (guards next to the fixes)
TOOL_OUTPUT = [
    "commit 9f1c2e3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0\nHEAD is now at 3f2a1bc fix",
    "request_id=7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "digest: sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "python 3.12.1, node v20.11.1, 10.4.2.1-beta, torch==2.3.1+cu121",
    "listening on [::]:8080 and ::1",
    "2026-01-23T12:30:45.123456+00:00 INFO start; ts=1732880000123",
    "coords=(40.712776, -74.005974), POINT(-122.4194 37.7749)",
    "Invoice INV-2026-004512 total $1,234.56, invoice number 2026004512",
    'password = os.environ["DB_PASSWORD"]\napi_key = os.getenv("OPENAI_API_KEY")',
    "const token = process.env.GITHUB_TOKEN;",
    "def login(username: str, password: str) -> Token:",
]
# ... and values next to them that stay found
KEPT = [
    ("password: hunter2x9", "SECRET", "hunter2x9"),
    ("password: !hunter2", "SECRET", "!hunter2"),
    ("token: Tk9ErrorX7q", "SECRET", "Tk9ErrorX7q"),
    ("call (212) 555-0123", "PHONE", "(212) 555-0123"),
]


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors()


@pytest.mark.parametrize("text", FIXED + TOOL_OUTPUT)
def test_tool_output_holds_no_value(det: Detectors, text: str) -> None:
    assert [(s.kind, text[s.start:s.end]) for s in det.find(text)] == []


@pytest.mark.parametrize("text,kind,value", KEPT)
def test_values_next_to_them_are_found(det: Detectors, text: str, kind: str, value: str) -> None:
    assert (kind, value) in [(s.kind, text[s.start:s.end]) for s in det.find(text)]


def test_an_exception_after_a_secret_name_stays_in_a_record() -> None:
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e",
             "payload": {"output": "Traceback (most recent call last):\nsecret: KeyError: 'session_id'"}}
    assert Redactor(key=b"k" * 32).redact(event) == event
