"""Values after a secret name in JSON inside a string, where whitespace is an escape: a tool call's
``arguments`` as Agent Lightning's messages and OpenAI's format write them (a JSON string), a tool
output holding JSON. The escape ends a bare value and is a blank of the separator, as the character
it stands for is in the text itself."""

from __future__ import annotations

import orjson
import pytest

from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor, Scanner


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors()


def _values(det: Detectors, text: str) -> list[str]:
    return [text[s.start:s.end] for s in det.find(text)]


@pytest.mark.parametrize("text", [
    "Test retry thread class toml check summary version on where config message channel token:\n檢查部署狀態並且",
    "api_key:\nQWERTYUIOPASDF is on the next line",  # a value on the next line is none (as unescaped)
])
def test_a_line_end_after_the_name_is_no_value_escaped_or_not(det: Detectors, text: str) -> None:
    assert _values(det, text) == []
    escaped = orjson.dumps({"newText": text}).decode()  # JSON inside a string
    assert _values(det, escaped) == []
    row = {"messages": [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "edit", "arguments": escaped}}]}]}
    assert Scanner().scan(row) == {}  # what push scans: an Agent Lightning messages row


@pytest.mark.parametrize(("text", "value"), [
    ("export API_KEY=QWERTYUIOPASDF\nnext", "QWERTYUIOPASDF"),
    ("password=hunter2x9\nmore text", "hunter2x9"),
    ("token:\tQWERTYUIOPASDF", "QWERTYUIOPASDF"),  # a tab after the separator
    ("--token\tzq8Lw4TxR2", "zq8Lw4TxR2"),  # a flag, then a tab
])
def test_escaped_whitespace_ends_the_value_and_separates_it(det: Detectors, text: str, value: str) -> None:
    assert _values(det, text) == [value]
    escaped = orjson.dumps({"cmd": text}).decode()
    assert _values(det, escaped) == [value]  # the same value, without the escape's backslash and letter


def _nest(obj: object, depth: int) -> str:
    """``obj`` as JSON inside a JSON string ``depth - 1`` times (a tool output of a tool output...)."""
    text = orjson.dumps(obj).decode()
    for _ in range(depth - 1):
        text = orjson.dumps({"result": text}).decode()
    return text


@pytest.mark.parametrize("depth", [3, 4])
@pytest.mark.parametrize(("obj", "secret"), [
    ({"password": "hunter2sekrit"}, "hunter2sekrit"),
    ({"db": {"password": "correct horse battery staple"}}, "correct horse battery staple"),  # strong: blanks
    ({"api_key": "zq8LmP2xR7vN4kT9"}, "zq8LmP2xR7vN4kT9"),
    ({"env": [{"name": "DB_PASSWORD", "value": "Sup3rS3cret!"}]}, "Sup3rS3cret!"),
    ({"env": [{"value": "Sup3rS3cret!", "name": "DB_PASSWORD"}]}, "Sup3rS3cret!"),
    ({"headers": {"Authorization": "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}},
     "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
    ({"cmd": "export PGPASSWORD=hunter2x9\nnext"}, "hunter2x9"),  # a bare value ends at the escaped line end
])
def test_a_secret_in_json_escaped_three_or_more_levels_deep(det: Detectors, obj: object, secret: str,
                                                            depth: int) -> None:
    """``\\\\\\"password\\\\\\": \\\\\\"…\\\\\\"``: the name's and the value's quotes were taken as
    escaped once at most, so the value three levels deep was left in the tool output."""
    text = _nest(obj, depth)
    assert _values(det, text) == [secret]
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e", "payload": {"output": text}}
    out = Redactor(key=b"k" * 32).redact(event)
    assert secret not in orjson.dumps(out).decode() and "<SECRET_1>" in out["payload"]["output"]
    assert Scanner().scan(event) and not Scanner().scan(out)


@pytest.mark.parametrize("text", [
    "analysis on token: 我們今天需要檢查部署狀態並且更。How with on this schedule",  # the OpenClaw corpus's one finding
    "api_key: 檢查部署Status1",
])
def test_text_in_a_script_without_case_after_a_token_name_is_no_secret(det: Detectors, text: str) -> None:
    """CJK text after ``token:`` held three character classes (its full stop a symbol, ``How`` upper and
    lower case) and was redacted as a secret, destroying the sentence."""
    assert _values(det, text) == []
    assert _values(det, orjson.dumps({"t": text}).decode()) == []


def test_a_password_in_a_script_without_case_is_still_one(det: Detectors) -> None:
    assert _values(det, "password=密码Hunter22") == ["密码Hunter22"]
