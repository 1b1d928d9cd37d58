"""The cheap triggers (``Detectors.triggered``/``fired``) next to hard negatives: silent on dates,
times and code, firing on the values beside them, and covering fuzzed digit runs and digits of
other scripts on bytes exactly."""

from __future__ import annotations

import random
import re

import orjson
import pytest

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Scanner
from tracebridge.testing.pii_corpus import corpus_config
from tracebridge.testing.pii_values import GENERATORS


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors(RedactionConfig(terms={"NAME": ["Alice Smith"], "HOST": ["db01.corp.internal"]}))


# What tool outputs are full of and no detector finds: the triggers stay silent on them.
TRIGGER_NEGATIVES = [
    "2026-01-23 12:30:51 UTC", "+5m 2026-01-23 12:30 UTC", "2026-01-23T12:30:51.441Z",  # dates, times
    "at Object.<anonymous> (/home/u/proj/src/index.ts:42:13)",  # file:line:column
    "Exec completed (QgZIAeJP, code 0) :: u u  4096 Feb  9 10:12 src",  # "::", ls -l
    "session 00b5094c-3b1d-4b2f-99f1-60d4b0769175", "/home/u/proj/cron/build_1490321.py",  # digits after a letter
    "took 1234567.89 ms",  # a decimal
    # a credential marker outside every long token run, a long run (a hash) without one
    "pip install sk-learn; sha c06c93e5fedd499ea5c591d923b26936f758a9fb9d70ee954387a2fc6ede1e0c",
]
# ... and the true positives next to them: the same separators, the same runs.
TRIGGER_POSITIVES = [
    ("PHONE", "2026-01-23 12:30 call 415-555-2671", "415-555-2671"),  # dashes as in the date
    ("PHONE", "2026-01-23 / 415-555-2671", "415-555-2671"),  # one digit run with the date
    ("PHONE", "2026-01-23/030 123456", "030 123456"),
    ("PHONE", "2026-01-23 12:30:51 (415) 555-2671", "(415) 555-2671"),
    ("CARD", "2026-01-23 4111-1111-1111-1111", "4111-1111-1111-1111"),
    ("PHONE", "b0769175 (415) 555-2671", "(415) 555-2671"),  # a run after a blocked group
    ("PHONE", "+198.69611944", "+198.69611944"),  # "+" or "(" in front: no plain decimal
    ("PHONE", "Tel ref (06914073.19278", "(06914073"),
    ("PHONE", "Tel _v2939.0658101.979é:", "0658101"),  # DIGITS stops before ".979é": no plain decimal
    ("PHONE", "2026-01-23\t415 555 2671", "415 555 2671"),  # a tab is a separator (\t in JSON)
    ("PHONE", "\x1f4155552671 mobile", "4155552671"),  # \u001f in JSON: its hex does not block the run
    ("PHONE", "cell\n4155552671", "4155552671"),
    ("IPV6", "12:30:45 from fe80::1:2", "fe80::1:2"),
    ("IPV6", "2026-01-23 1:2::", "1:2::"),
    ("IPV6", "2001:db8:85a3:0:0:8a2e:370:7334", "2001:db8:85a3:0:0:8a2e:370:7334"),  # eight groups, no "::"
    ("IBAN", "DE89370400440532013000", "DE89370400440532013000"),  # no digit run of its own
    ("IPV6", "12:30:45 ::ffff:10.1.2.3", "::ffff:10.1.2.3"),  # no hex group after the "::"
    ("IPV6", "t 12:30 0:0:0:0:0:ffff:10.1.2.3", "0:0:0:0:0:ffff:10.1.2.3"),  # no "::", six colons
]


@pytest.mark.parametrize("text", TRIGGER_NEGATIVES)
def test_triggers_stay_silent_on_dates_times_and_code(det: Detectors, text: str) -> None:
    assert det.scan(text) == []
    assert not det.triggered(text) and not det.triggered(orjson.dumps({"output": [text, text]}))


@pytest.mark.parametrize("kind,text,value", TRIGGER_POSITIVES, ids=[f"{k}-{i}" for i, (k, _, _) in
                                                                    enumerate(TRIGGER_POSITIVES)])
def test_triggers_fire_on_values_next_to_hard_negatives(kind: str, text: str, value: str) -> None:
    d = Detectors(RedactionConfig(phone_regions=["US", "GB", "DE"]))
    spans = d.scan(text)
    assert (kind, value) in [(s.kind, text[s.start:s.end]) for s in spans]
    assert d.find(text) == spans
    assert d.triggered(text.encode()) and d.triggered(orjson.dumps({"output": text}))


_NEAR = ["2026-01-23 ", "2026-01-23T12:30:51Z ", "2026-01-23", " 12:30:45", "app.py:42:13", "std::", "::", ":", "v",
         "b", "T", "_", "é", "電話", "+", "(", ")", "+(", "\t", "\n", "\r", "\x1f", "\\", " / ", "/", "-", ".", " ",
         "  ", "0", "12", "2026", "ab12", "DE", "GB82", "x=", "#", ",", "1.5", '"', "a:b::", "＋４４ ", "٤١٥",
         "::ffff:", "::", "64:ff9b::", "27.11.2026", "2026.11.27 ", "1.3.6.1.4.1.", " bytes", "127.0.0.1"]


def _fuzz_piece(rng: random.Random) -> str:
    """A generated phone/card/IBAN/IP value, a hard neighbour or a run of random digit groups."""
    r = rng.random()
    if r < 0.3:
        return GENERATORS[rng.choice(["PHONE", "CARD", "IBAN", "IPV4", "IPV6"])](rng).value
    if r < 0.6:
        return rng.choice(_NEAR)
    groups = ("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 5)))
    return rng.choice(["", "+", "("]) + rng.choice(" -./()\t").join(groups)


def test_triggers_and_groups_cover_fuzzed_digit_runs() -> None:
    # Values glued to dates, times, letters, escapes, "+"/"(" and other digit runs: whatever the
    # detectors find unfiltered (scan), find finds too, and the triggers fire on bytes and JSON.
    cfg = corpus_config()
    det, scanner, rng, hits = Detectors(cfg), Scanner(cfg), random.Random(11), 0
    for _ in range(2000):
        text = "".join(_fuzz_piece(rng) for _ in range(rng.randint(1, 6)))
        spans = det.scan(text)
        assert det.find(text) == spans, text
        if spans:
            hits += 1
            assert det.triggered(text.encode()) and det.triggered(orjson.dumps({"k": [text]})), text
            event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e", "payload": {"out": text}}
            assert sum(scanner.scan(event).values()) == len(spans), text
    assert hits > 500


def test_other_script_digits_are_found_on_bytes_exactly() -> None:
    # the byte-level check stands in for re's \d on decoded text: every digit of every script,
    # alone and inside text, and none of the common non-ASCII text that holds no digit
    from tracebridge.curate.other_digits import OTHER_DIGITS_BELOW, other_digit

    digit = re.compile(r"[^\D0-9]").match
    digits = [chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF and digit(chr(c))]
    assert len(digits) > 600 and max(map(ord, digits)) < OTHER_DIGITS_BELOW
    assert all(other_digit(f"id {d}\u3002".encode()) for d in digits)
    for text in ("這個問題看來。", "plan → done — ok ✓", "café 😀 naïve", "Ⅻ ½ ² ⑤", "\ufffd\udcff".encode("utf-8", "surrogatepass")):
        data = text if isinstance(text, bytes) else text.encode()
        assert not other_digit(data), text
    d = Detectors(RedactionConfig())
    assert d.triggered("tel ٤١٥٥٥٥٢٦٧١") and not d.triggered("這個問題看來。 → ✓")


@pytest.mark.parametrize("text,value", [
    ("mysql -u root --password correcthorse app", "correcthorse"), ("mongosh -u app --password HUNTERHUNTER", "HUNTERHUNTER"),
    ("cd /srv && /usr/bin/mariadb --passwd letmeinplease", "letmeinplease"), ("PASSWORD=HUNTERHUNTER", "HUNTERHUNTER"),
    ("x\n  db_password = ZQXWVUTS\n", "ZQXWVUTS"), ('"cmd": "export SECRET=QWERTYUIOP; run"', "QWERTYUIOP"),
    ("secret: ZQXWVUTS", "ZQXWVUTS"), ("cfg:\n  api_key:\tQWERTYUIOPASDF\n", "QWERTYUIOPASDF"),
    ("PASSWORD=HUNTER_HUNTER", "HUNTER_HUNTER")])
def test_triggers_fire_on_client_flag_words_and_upper_case_words(det: Detectors, text: str, value: str) -> None:
    # one-word passwords after a client's --password and upper-case ones after "=": found, and the
    # keyword trigger fires on their bytes and JSON (escapes included), so find and pass 2 see them
    spans = det.scan(text)
    assert [(s.kind, text[s.start:s.end]) for s in spans] == [("SECRET", value)] and det.find(text) == spans
    assert det.triggered(text.encode()) and det.triggered(orjson.dumps({"out": [text]}))
    assert "keywords" in det.fired(orjson.dumps({"out": orjson.dumps({"cmd": text}).decode()}))
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e", "payload": {"out": text}}
    assert sum(Scanner().scan(event).values()) == 1


@pytest.mark.parametrize("text,value", [
    ("mongosh -u admin -p hunter", "hunter"), ("docker login -u bob -p\thunter22x r.io", "hunter22x"),
    ("redis-cli --pass sunshine", "sunshine"), ("sqlcmd -S db -P hunter22", "hunter22"),
    ("ldapwhoami -x -w letmein", "letmein"), ("sshpass -p 'open sesame' ssh h", "open sesame")])
def test_triggers_fire_on_client_password_flags(det: Detectors, text: str, value: str) -> None:
    # the word after a client's own password flag: found, and the keyword trigger fires on its bytes
    # and JSON (a tab escaped too) and on a record's argv list, where no secret name is
    spans = det.scan(text)
    assert [text[s.start:s.end] for s in spans] == [value] and det.find(text) == spans
    assert "keywords" in det.fired(text) and "keywords" in det.fired(orjson.dumps({"cmd": [text]}))
    argv = orjson.dumps(text.replace("'", "").split(" ", 5))
    assert "keywords" in det.fired(argv) and "keywords" in det.fired(b"\0".join(argv.split(b",")))


@pytest.mark.parametrize("text,value", [
    ("machine h login bob password hunter", "hunter"), ("machine h\n\tlogin bob\r\n\tpassword correcthorse", "correcthorse"),
    ("openssl rsa -passin pass:hunter22 -in k", "hunter22"), ("keytool -list -deststorepass sunshine", "sunshine"),
    ("smbclient //h/s -U bob%letmein22", "letmein22"), ("lftp -u bob,letmein22 h", "letmein22"),
    ("apksigner sign --ks-pass pass:letmein app.apk", "letmein"), ("machine h password hunter login bob", "hunter"),
    ("machine h\n  password correcthorse\n  login bob", "correcthorse"), ("smbclient //h/s -Ubob%letmein22", "letmein22")])
def test_triggers_fire_on_netrc_and_other_clients_passwords(det: Detectors, text: str, value: str) -> None:
    # a .netrc entry (no separator after "password") and openssl's pass:, keytool's, Samba's and lftp's
    # passwords: found, and the keyword trigger fires on bytes, on JSON (line ends escaped) and, for
    # the commands, on an argv list, so find and pass 2 see them
    spans = det.scan(text)
    assert [text[s.start:s.end] for s in spans] == [value] and det.find(text) == spans
    assert "keywords" in det.fired(text) and "keywords" in det.fired(orjson.dumps({"cmd": [text]}))
    argv = orjson.dumps(text.split())
    assert text.startswith("machine") or "keywords" in det.fired(argv) and "keywords" in det.fired(b"\0".join(argv.split(b",")))


@pytest.mark.parametrize("text", ["mkdir -p build", "ssh -p 2222 host", "docker run -p 8080:80 img",
                                  '["tar", "-a", "x"]', "grep -w word f", "psql -P pager=off", "psql -U app db",
                                  "openssl rsa -passin env:PW -in k", "cc -U NDEBUG x.c", "zip -P x.zip",
                                  "the login page asks for a password", "login bob\npassword", "the password is wrong",
                                  "password hunter22 then login bob"])
def test_a_short_flag_without_its_client_does_not_trigger(det: Detectors, text: str) -> None:
    # -p, -a, -w, -P, -U of other commands (common in tool calls) open no detector: the trigger needs a
    # client (openssl's flags its pass:), a .netrc entry "login", a blank, "password" and a blank
    assert det.fired(text) == frozenset() and det.fired(orjson.dumps({"cmd": text})) == frozenset()


@pytest.mark.parametrize("text,groups", [
    ("from 10.1.2.3", {"ipv4"}),
    ("from fe80::1:2", {"ipv6"}),
    ("2001:db8:85a3:0:0:8a2e:370:7334", {"ipv6"}),  # eight groups: no "::", no dots
    ("via ::ffff:10.1.2.3", {"ipv4", "ipv6"}),  # an IPv6 address ending in an IPv4 one: both
    ("t 0:0:0:0:0:ffff:10.1.2.3", {"ipv4", "ipv6"}),
    ("12:30:45 std::vector app.py:42:13 v1.2.3", set()),
])
def test_ip_trigger_opens_the_groups_of_the_shapes_it_sees(text: str, groups: set[str]) -> None:
    """One check opens ``ipv4`` and ``ipv6``: each where its shape is, both for an IPv6 address
    written with an IPv4 tail, on text and on its JSON form alike, and the scan then finds it."""
    d = Detectors(RedactionConfig(detectors=["ip"]))
    assert d.fired(text) == groups and d.fired(orjson.dumps({"output": text})) == groups
    assert d.triggered(text) is bool(groups)
    assert bool(d.scan(text)) is bool(groups)
