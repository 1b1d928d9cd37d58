"""A secret whose name and value are two fields of one entry (``tracebridge.curate.pairs``): Kubernetes
and ECS ``env`` lists, SSM and CloudFormation parameters, as records, JSON text and YAML."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Detectors
from tracebridge.curate.memo import ScanMemo
from tracebridge.curate.redact import Redactor, Scanner

PW = "Sup3rS3cret!"
ENTRIES = [  # (tool args holding the entry, path to the value)
    {
        "env": [{"name": "DB_PASSWORD", "value": PW}, {"name": "LOG_LEVEL", "value": "debug"}]
    },  # Kubernetes, ECS
    {
        "Parameters": [
            {"Name": "/prod/db/password", "Type": "SecureString", "Value": PW, "Version": 3}
        ]
    },  # SSM
    {"Parameters": [{"ParameterKey": "DbPassword", "ParameterValue": PW}]},  # CloudFormation
    {"variables": [{"key": "API_TOKEN", "value": "zq8LmP2xR7vN4kT9"}]},  # GitLab CI variables
    {"env": [{"value": PW, "name": "DB_PASSWORD"}]},  # the value first (keys sorted, hand-written)
    {"Parameters": [{"Value": "zq8LmP2xR7vN4kT9", "Key": "API_TOKEN"}]},  # CloudFormation tags, capitalised
    {"outputs": {"db_password": {"sensitive": True, "type": "string", "value": PW}}},  # terraform output -json
]
TEXTS = [  # (text, the secret in it)
    (
        "spec:\n  containers:\n  - env:\n    - name: DB_PASSWORD\n      value: Sup3rS3cret!\n    - name: X\n",
        PW,
    ),
    ('env:\n  - name: API_TOKEN\n    value: "zq8LmP2xR7vN4kT9"\n', "zq8LmP2xR7vN4kT9"),
    (
        '$ kubectl get pod api -o json\n{"env": [{"name": "DB_PASSWORD", "value": "Sup3rS3cret!"}]}',
        PW,
    ),
    (
        '{"Parameter": {"Name": "/prod/db/password", "Type": "SecureString", "Value": "hunter two words"}}',
        "hunter two words",
    ),
    (
        orjson.dumps(
            {"output": '[{"ParameterKey": "DbPassword", "ParameterValue": "Sup3rS3cret!"}]'}
        ).decode(),
        PW,
    ),
    (
        orjson.dumps({"output": "- name: DB_PASSWORD\n  value: Sup3rS3cret!\n"}).decode(),
        PW,
    ),  # escaped \n
    ('{"env": [{"value": "Sup3rS3cret!", "name": "DB_PASSWORD"}]}', PW),  # the value before the name
    ('[{"Value": "zq8LmP2xR7vN4kT9", "Type": "String", "Key": "API_TOKEN"}]', "zq8LmP2xR7vN4kT9"),
    ("env:\n  - value: Sup3rS3cret!\n    name: DB_PASSWORD\n", PW),
    (orjson.dumps({"output": '[{"value": "Sup3rS3cret!", "name": "DB_PASSWORD"}]'}).decode(), PW),
    # the value in an object under the secret's name (terraform output -json), printed and as JSON in JSON
    ('{\n  "db_password": {\n    "sensitive": true,\n    "type": "string",\n    "value": "Sup3rS3cret!"\n  }\n}', PW),
    (orjson.dumps({"output": '{"api_key": {"value": "zq8LmP2xR7vN4kT9"}}'}).decode(), "zq8LmP2xR7vN4kT9"),
]
NOT_SECRETS = [  # a secret's name with a value that is none, or a name that is no secret's
    '{"env": [{"name": "DB_PASSWORD", "value": "${DB_PASSWORD}"}, {"name": "LOG_LEVEL", "value": "Xy9#kL2mQ"}]}',
    '{"a": [{"name": "max_tokens", "value": "4096"}, {"name": "token_count", "value": "abcDEF123"}]}',
    "- name: API_TOKEN\n  valueFrom:\n    secretKeyRef: {name: api, key: token}\n",
    "- name: DB_PASSWORD\n  value: stored in vault\n",
    '{"key": "password", "value": "********"}',
    '{"env": [{"value": "${DB_PASSWORD}", "name": "DB_PASSWORD"}, {"value": "Xy9#kL2mQ", "name": "LOG_LEVEL"}]}',
    '{"a": [{"value": "abcDEF123", "name": "token_count"}, {"value": "Xy9#kL2mQ", "name": "DB_PASSWORD_HINT"}]}',
    '{"password_policy": {"value": "Xy9#kL2mQ"}, "api_key": {"value": "YOUR_API_KEY"}, "token": {"value": 512}}',
]


def _call(args: dict) -> dict:
    return {
        "run_id": "r1",
        "event_type": "worker_tool_call",
        "step": 1,
        "event_id": "e1",
        "payload": {"call_id": "c1", "tool": "shell", "args": args},
    }


@pytest.mark.parametrize("args", ENTRIES)
def test_value_of_a_secret_named_entry_is_redacted_and_found_by_pass_2(args: dict) -> None:
    rec = _call(args)  # the names and every other value stay
    out = Redactor(key=b"k" * 32).redact(rec)
    dumped = orjson.dumps(out).decode()
    assert PW not in dumped and "zq8LmP2xR7vN4kT9" not in dumped and "<SECRET_1>" in dumped
    assert (
        orjson.dumps(rec)
        .decode()
        .replace(PW, "<SECRET_1>")
        .replace("zq8LmP2xR7vN4kT9", "<SECRET_1>")
        == dumped
    )
    for memo in (
        None,
        ScanMemo(min_bytes=1),
    ):  # pass 2 as export runs it, and as push reads the rows
        assert Scanner(memo=memo).scan(rec), memo
        assert not Scanner(memo=memo).scan(out), memo


@pytest.mark.parametrize("text,secret", TEXTS)
def test_value_of_a_secret_named_entry_in_text(text: str, secret: str) -> None:
    det = Detectors(RedactionConfig())
    assert det.triggered(text) and det.triggered(orjson.dumps({"o": [text]}))
    found = [text[s.start : s.end] for s in det.find(text)]
    assert found == [secret] or found == [orjson.dumps(secret).decode()[1:-1]], found
    assert det.find(text) == det.scan(text)
    out = Redactor(key=b"k" * 32).redact(_call({"stdout": text}))
    assert secret not in orjson.dumps(out).decode()


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_entries_without_a_secret_stay(text: str) -> None:
    assert Detectors(RedactionConfig()).scan(text) == []
    args = orjson.loads(text) if text.startswith("{") and text.endswith("}") else {"stdout": text}
    assert Redactor(key=b"k" * 32).redact(_call(args)) == _call(args)


@pytest.mark.parametrize("rec", [{"value": PW, "name": "DB_PASSWORD"}, {"Key": "API_TOKEN", "Value": PW},
                                 {"name": "DB_PASSWORD", "value": PW}])
def test_an_entry_that_is_the_whole_record_is_redacted(rec: dict) -> None:
    """A JSONL line that is one name/value entry (``tracebridge redact`` of an env dump): the record's own
    fields were read under their keys, not under the entry's name, and the value left as it was."""
    out = Redactor(key=b"k" * 32).redact(dict(rec), scope="f")
    assert PW not in orjson.dumps(out).decode() and "<SECRET_1>" in out.values()
    for memo in (None, ScanMemo(min_bytes=1)):
        assert Scanner(memo=memo).scan(rec), memo
