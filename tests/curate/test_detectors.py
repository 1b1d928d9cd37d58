"""Each detector on positives (exact span and type) and on negatives that look alike; the triggers
next to hard negatives are in ``test_triggers.py``."""

from __future__ import annotations

import re

import orjson
import pytest

from tracebridge.curate.checksums import card_ok, iban_ok, luhn_ok
from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor, Scanner
from tracebridge.testing.pii_corpus import build_corpus, corpus_config

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
KEY_BLOCK = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
             "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----")

POSITIVES = [
    ("EMAIL", "write to bob.jones+x@example.co.uk today", "bob.jones+x@example.co.uk"),
    ("PHONE", "call +44 20 7946 0958 now", "+44 20 7946 0958"),
    ("PHONE", "office (415) 555-2671 ext", "(415) 555-2671"),
    ("CARD", "paid with 4111 1111 1111 1111.", "4111 1111 1111 1111"),
    ("CARD", "amex 3782-822463-10005 ok", "3782-822463-10005"),
    ("CARD", "card 4111 1111 1111 1111 exp 12 25", "4111 1111 1111 1111"),  # digits run on
    ("CARD", "+44 20 7946 0958 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("PHONE", "+44 20 7946 0958 4111 1111 1111 1111", "+44 20 7946 0958"),
    ("IBAN", "iban DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "GB29NWBK60161331926819", "GB29NWBK60161331926819"),
    ("IPV4", "host at 192.168.10.20, port 22", "192.168.10.20"),
    ("IPV6", "addr 2001:db8:85a3::8a2e:370:7334 here", "2001:db8:85a3::8a2e:370:7334"),
    ("AWS_KEY", "key=AKIAIOSFODNN7EXAMPLE.", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS_KEY", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),  # ~/.aws/credentials, unquoted
    ("AWS_KEY", '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),  # STS / boto JSON
    ("GITHUB_TOKEN", "token ghp_" + "aB3" * 12 + " used", "ghp_" + "aB3" * 12),
    ("GITLAB_TOKEN", "glpat-abcdefghij1234567890", "glpat-abcdefghij1234567890"),
    ("SLACK_TOKEN", "xoxb-1234567890-1234567890-abcdefghijklmnopqrstuvwx", "xoxb-1234567890-1234567890-abcdefghijklmnopqrstuvwx"),
    ("OPENAI_KEY", "sk-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrst", "sk-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrst"),
    ("OPENAI_KEY", "OPENAI=sk-proj-abcdefghijklmnopqrstuvwxyz0123", "sk-proj-abcdefghijklmnopqrstuvwxyz0123"),
    ("JWT", f"Cookie: session={JWT}; path=/", JWT),
    ("PRIVATE_KEY", f"key:\n{KEY_BLOCK}\nend", KEY_BLOCK),
    ("URL_PASSWORD", "clone https://bob:hunter2pass@git.example.com/repo", "hunter2pass"),
    ("AUTH_HEADER", "Authorization: Bearer abcDEF1234567890xyzTOKEN", "abcDEF1234567890xyzTOKEN"),
    ("AUTH_HEADER", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("EMAIL", "请联系bob@example.com获取详情", "bob@example.com"),  # CJK text has no spaces around values
    ("EMAIL", "GET /search?email=bob.jones%40example.com&x=1", "bob.jones%40example.com"),
    ("PHONE", "電話は+81 3-1234-5678まで", "+81 3-1234-5678"),
    ("PHONE", "call 1 415 555 2671 now", "1 415 555 2671"),
    ("IBAN", "口座DE89370400440532013000です", "DE89370400440532013000"),
    ("GITLAB_TOKEN", "トークンglpat-abcdefghij1234567890です", "glpat-abcdefghij1234567890"),
    ("NPM_TOKEN", "NPM_TOKEN=npm_" + "a1B2c3" * 6, "npm_" + "a1B2c3" * 6),
    ("GITHUB_TOKEN", "pat github_pat_11ABCDEFGHIJKLMNOPQRST_" + ("aB3" * 20)[:59] + " ok",
     "github_pat_11ABCDEFGHIJKLMNOPQRST_" + ("aB3" * 20)[:59]),
    ("URL_PASSWORD", "postgres://app:pa$$w0rd!@db.example.com/app", "pa$$w0rd!"),  # sub-delims are legal
    ("AUTH_HEADER", "Значение: Basic dXNlcjpwYXNzd29yZA.", "dXNlcjpwYXNzd29yZA"),
    # OpenAI-compatible providers (DeepSeek, Together, ...) without the T3BlbkFJ marker; Anthropic
    ("OPENAI_KEY", "token rejected: sk-9b7e9819b2c0ee297cee17f75ef0c0ea", "sk-9b7e9819b2c0ee297cee17f75ef0c0ea"),
    ("OPENAI_KEY", "DEEPSEEK_API_KEY=sk-YHe4NwajSSzLDzB3zm6854fqoDfr1TGoGXjZ0ZAtUOewKFgq",
     "sk-YHe4NwajSSzLDzB3zm6854fqoDfr1TGoGXjZ0ZAtUOewKFgq"),
    ("ANTHROPIC_KEY", 'Client(api_key="sk-ant-api03-' + "aB3_-x" * 15 + 'AA")', "sk-ant-api03-" + "aB3_-x" * 15 + "AA"),
    ("SLACK_TOKEN", "SLACK_APP_TOKEN=xapp-1-A935R6HQP7T-4151864322477-" + "fb2e" * 16,
     "xapp-1-A935R6HQP7T-4151864322477-" + "fb2e" * 16),
    ("STRIPE_KEY", "STRIPE_SECRET_KEY=sk_test_A2ypO7PTpAYZJmFeXw8t1uCj", "sk_test_A2ypO7PTpAYZJmFeXw8t1uCj"),
    ("URL_PASSWORD", "redis://:hunter2279@cache:6379/0", "hunter2279"),  # an empty user
    ("URL_PASSWORD", "Cloning into 'repo'... https://:ghtok3n@github.com/org/repo.git", "ghtok3n"),
    ("URL_PASSWORD", "amqp://:pw@rabbit.svc:5672/", "pw"),
    # unicode local parts, IDN domains (also %-encoded), an apostrophe inside the local part
    ("EMAIL", "write to josé.garcía+spam@posteo.net today", "josé.garcía+spam@posteo.net"),
    ("EMAIL", "30621,Lee,андрей+ci@students.uni.edu.au,8821.66", "андрей+ci@students.uni.edu.au"),
    ("EMAIL", "Please contact 山田@outlook.fr before", "山田@outlook.fr"),
    ("EMAIL", "Please contact 山田+ci42@outlook.fr before", "山田+ci42@outlook.fr"),
    ("EMAIL", "87192,Lee,alice979@münchen.de,8611.36", "alice979@münchen.de"),
    ("EMAIL", "请把发票发送到müller+newsletter@xn--mnchen-3ya.de，谢谢。", "müller+newsletter@xn--mnchen-3ya.de"),
    ("EMAIL", "mail o'brien@outlook.fr now", "o'brien@outlook.fr"),
    ("EMAIL", "to = 'bob@example.io'", "bob@example.io"),  # quotes around it are not part of it
    ("EMAIL", "GET /u?email=jos%C3%A9%40m%C3%BCnchen.de&x=1", "jos%C3%A9%40m%C3%BCnchen.de"),
    # an IPv4-mapped IPv6 address whole, not "::ffff:163"
    ("IPV6", "remote_addr ::ffff:163.120.200.118 ok", "::ffff:163.120.200.118"),
    ("IPV6", "connect to [::ffff:16.159.191.8]:443 refused", "::ffff:16.159.191.8"),
    # IBANs grouped by dashes, 13-digit Visa printed 4-3-3-3
    ("IBAN", " 46118 | BE48-2788-8601-2324 | 2026-07-15T09:23:00Z", "BE48-2788-8601-2324"),
    ("IBAN", "<td>PT89-6999-2032-4679-8659-1100-8</td>", "PT89-6999-2032-4679-8659-1100-8"),
    ("CARD", "<td>4357 853 011 930</td>", "4357 853 011 930"),
    ("CARD", '"card_number": "4370-800-967-047"', "4370-800-967-047"),
    ("GITLAB_TOKEN", "runner token GR1348941xV7ab9Qz_Kp3LmN8wRt2Y ok", "GR1348941xV7ab9Qz_Kp3LmN8wRt2Y"),  # runner
    # Google API keys and OAuth client secrets, Hugging Face tokens: bare, in a query string, after a flag
    ("GOOGLE_KEY", "GET /maps/api/geocode/json?address=x&key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY HTTP/1.1",
     "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    ("GOOGLE_KEY", '"client_id": "1234.apps.googleusercontent.com", "cs": "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"',
     "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"),
    ("HF_TOKEN", "huggingface-cli login --add-to-git-credential hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh ok",
     "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"),
    # Google OAuth access tokens (dotted: no secret name's value), Telegram bot tokens, also in Bot API URLs
    ("GOOGLE_KEY", "GET /oauth2/cb?code=4/0Ab&access_token=ya29.a0AfH6SMBxyz123ABC456def&scope=email",
     "ya29.a0AfH6SMBxyz123ABC456def"),
    ("TELEGRAM_TOKEN", "curl -s https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/getMe",
     "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"),
    ("TELEGRAM_TOKEN", '{"channels": {"telegram": {"botToken": "7123456789:AAF-x_9qLmZ0aBcDeFgHiJkLmNoPqRsTuVw"}}}',
     "7123456789:AAF-x_9qLmZ0aBcDeFgHiJkLmNoPqRsTuVw"),
    # US Social Security numbers: dashed anywhere, any grouping after a label
    ("SSN", "applicant: Jane Roe, SSN 078-05-1120, DOB 1985-04-12", "078-05-1120"),
    ("SSN", '{"name": "Jane", "ssn": "123456789"}', "123456789"),
    ("SSN", "Social Security No. 123 45 6789 on file", "123 45 6789"),
    ("NAME", "ask alice smith about it", "alice smith"),
    ("HOST", "ssh DB01.corp.internal", "DB01.corp.internal"),
]

NEGATIVES = [
    "timestamp 2026-11-26T19:18:51.441Z run 20261126T191851-075cb071",
    "hash c06c93e5fedd499ea5c591d923b26936f758a9fb9d70ee954387a2fc6ede1e0c and uuid 123e4567-e89b-12d3-a456-426614174000",
    "card 4111 1111 1111 1112 fails Luhn",
    "iban DE89 3704 0044 0532 0130 01 has a bad checksum",
    "loopback 127.0.0.1 and ::1 are not personal",
    "bad ip 999.10.10.10 and version 1.2.3",
    "time 12:30:45 and std::vector<int>",
    "basic arithmetic and bearer of bad news",
    "amount 1234567.89 and order 12345",
    "user@localhost is not an address",
    "SELECT c.name FROM customers c ORDER BY SUM(o.amount) DESC LIMIT 1",
    "alice smithson is another person",
    "release v1.2.3.4 and 2.0.1.3-rc1 are versions",
    "at 12:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij and ya29.short",
    "never issued: 000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000; ids 123456789 and 123 45 6789",
    "ORD-123-45-6789, v1.123-45-6789, 123-45-6789.5, 2026-01-23, uuid 123e4567-e89b-12d3-a456-426614174000",
    "from huggingface_hub import hf_hub_download; os.environ['hf_hub_enable_transfer'] and hf_AbCd_EfGh",
    "git@github.com:acme/app.git and logo@2x.png",
    "postgres://app:${DB_PASSWORD}@db/app and https://{user}:{password}@host/",
    "order ORD-2026-060945, ISBN 978-3-16-148410-0, chat -1001234567890",
    "snowflake 332623421759171814 and 420.104.240.35 and 9333737.03",
    # sk- in prose and placeholders, short or letter-only keys, an sk- inside a word
    "pip install scikit-learn (sk-learn); task-list, risk-free, sk-... and sk-YOUR_KEY_HERE",
    "sk-abcdefghijklmnopqrstuvwxyz is all letters, sk-proj-abc is short, disk-1234567890abcdefghij1234",
    "xapp-1 and sk_test_short and redis://:${REDIS_PASSWORD}@cache:6379 and http://:8080/",
    "mapped loopback ::ffff:127.0.0.1 and it's o' clock @ noon",
    "iban BE48-2788-8601-2325 has a bad checksum, part AB12-3456-7890-1234 is no IBAN",
    "visa 4357 853 011 931 fails Luhn, 4357 853 011 93 is short",
]


@pytest.fixture(scope="module")
def det() -> Detectors:
    return Detectors(RedactionConfig(terms={"NAME": ["Alice Smith"], "HOST": ["db01.corp.internal"]}))


@pytest.mark.parametrize("kind,text,value", POSITIVES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(POSITIVES)])
def test_detector_finds_positive(det: Detectors, kind: str, text: str, value: str) -> None:
    found = [(s.kind, text[s.start:s.end]) for s in det.find(text)]
    assert (kind, value) in found, found


@pytest.mark.parametrize("text", NEGATIVES)
def test_detector_ignores_negative(det: Detectors, text: str) -> None:
    assert det.find(text) == []


def test_checksums() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert card_ok("5555 5555 5555 4444") and not card_ok("1234 5678 9012 3456")  # no card network prefix
    assert not card_ok("4444 4444 4444 4444")  # one repeated digit
    assert iban_ok("FR1420041010050500013M02606") and not iban_ok("FR1420041010050500013M02607")
    assert not iban_ok("XX89370400440532013000")  # unknown country length


def test_ssn_detector_alone_and_disabled() -> None:
    # with phone numbers off, the digit trigger still opens for a Social Security number
    d = Detectors(RedactionConfig(detectors=["ssn"]))
    assert [s.kind for s in d.find("ssn=078-05-1120")] == ["SSN"] and d.triggered(b'{"o":"SSN: 078051120"}')
    assert Detectors(RedactionConfig(detectors=["phone", "email"])).find("SSN: 078-05-1120") == []


def test_ssn_under_an_ssn_key_in_a_record() -> None:
    # a record's {"ssn": "078051120"} holds no label in its string: the key is the label
    red = Redactor(key=b"k" * 32)
    args = {"ssn": "078051120", "applicant_ssn": "078 05 1120", "ssn_last4": "1120", "id": "078051120"}
    rec = {"run_id": "r", "event_type": "worker_tool_call", "payload": {"call_id": "c", "tool": "t", "args": args}}
    out = red.redact(rec)["payload"]["args"]
    # one number, written two ways: one placeholder (``same_value``)
    assert out == {"ssn": "<SSN_1>", "applicant_ssn": "<SSN_1>", "ssn_last4": "1120", "id": "078051120"}
    assert Scanner().scan(rec) == {("SSN", "worker_tool_call.payload.args.ssn"): 1,
                                   ("SSN", "worker_tool_call.payload.args.applicant_ssn"): 1}


def test_disabled_categories_and_ip_allowlist() -> None:
    d = Detectors(RedactionConfig(detectors=["email"], ip_allowlist=["10.0.0.0/8"]))
    assert d.find("call +44 20 7946 0958 at 10.1.2.3") == []
    d2 = Detectors(RedactionConfig(ip_allowlist=["10.0.0.0/8"]))
    assert [s.kind for s in d2.find("10.1.2.3 and 11.1.2.3")] == ["IPV4"]


def test_overlaps_resolve_to_one_span(det: Detectors) -> None:
    text = "https://bob:hunter2pass@example.com"
    assert [(s.kind, text[s.start:s.end]) for s in det.find(text)] == [("URL_PASSWORD", "hunter2pass")]


def test_trigger_fires_on_json_escaped_text(det: Detectors) -> None:
    # what the container prefilter sees: a JSON-serialised string with an escaped newline
    assert det.triggered('{"a":"line\\nAlice Smith"}')
    assert det.triggered('"555\\t123\\t4567"')
    assert not det.triggered('{"tool":"read_file","args":{"path":"notes.txt"}}')


def test_entropy_plugins_do_not_flag_hex_ids() -> None:
    d = Detectors(RedactionConfig(secret_plugins=["HexHighEntropyString", "AWSKeyDetector"]))
    text = "aws id c06c93e5fedd499ea5c591d923b26936f758a9fb9d70ee954387a2fc6ede1e0c"
    assert d.find(text) == []


def test_non_ascii_text_still_triggers_and_detects() -> None:
    d = Detectors(RedactionConfig(terms={"NAME": ["José Müller"]}))
    text = "plan → call ＋４４ ２０ ７９４６ ０９５８ and ask JOSÉ MÜLLER at jo@example.com"
    assert d.triggered(text) and d.triggered(text.encode())
    kinds = {s.kind for s in d.find(text)}
    assert {"NAME", "EMAIL"} <= kinds
    assert d.triggered("plan → ٤١٥٥٥٥٢٦٧١")  # Arabic-Indic digits
    assert not d.triggered("plan → describe_table → submit_answer")


@pytest.mark.parametrize("text,value", [("call \u212aim now", "\u212aim"), ("ask Je\u017f\u017fica", "Je\u017f\u017fica"),
                                        ("M\u0130A said", "M\u0130A"), ("Jo\u017fé Müller wrote", "Jo\u017fé Müller")])
def test_terms_written_with_letters_unicode_folds_to_ascii_are_found(text: str, value: str) -> None:
    # the terms' patterns fold case as re does (the Kelvin sign, the long s, the dotted and the
    # dotless i are k, s, i): the trigger must see them too, or find misses what scan finds
    d = Detectors(RedactionConfig(terms={"NAME": ["kim", "Jessica", "Mia", "José Müller"]}))
    assert ("NAME", value) in [(s.kind, text[s.start:s.end]) for s in d.scan(text)]
    assert d.find(text) == d.scan(text)
    assert d.triggered(text.encode()) and d.triggered(orjson.dumps({"output": [text]}))
    assert not d.triggered("an \u017f, a \u212a and an \u0131 alone")


def test_phone_numbers_in_digit_runs() -> None:
    d = Detectors(RedactionConfig(phone_regions=["DE"]))
    assert d.find("order 4992 0203 8087 1235") == []  # "0203 8087" is a valid German number, but mid-run
    text = "Tel. 030 123456 / 0171 1234567, Fax 030/654321"
    assert [text[s.start:s.end] for s in d.find(text)] == ["030 123456", "0171 1234567", "030/654321"]
    assert d.find("id 30123456 and 2026-060945") == []  # national numbers need their trunk prefix and grouping


@pytest.mark.parametrize("text", ["12:30 415-555-2671", "2026-01-23 415-555-2671", "order 12 415-555-2671",
                                  "[09:41:07] 12 (415) 555-2671", "v2 1-415-555-2671", "12:30 415 555 2671",
                                  "2026-01-23 415 555 2671", "v1.2 415 555 2671", "2026-01-23 4155552671 (mobile)"])
def test_phone_after_another_number_in_its_own_style(text: str) -> None:
    # a log line's time or date, or a count, right before the number: the number is grouped in
    # another style than the space in front of it, or the run changes style there, so it starts
    # mid-run (it used to be missed)
    d = Detectors(RedactionConfig(phone_regions=["US"]))
    found = [text[s.start:s.end] for s in d.find(text) if s.kind == "PHONE"]
    assert len(found) == 1 and re.sub(r"\D", "", found[0]).endswith("4155552671"), found
    assert d.triggered(text)
    assert d.find("ORD-2021-6403466894") == [] and d.find("4111 0203 8087 1234") == []  # one group, or same style
    assert d.find("order 12 415 555 2671") == []  # evenly spaced from the run's start: no telling where it begins
    assert d.find("值为5514 0051 8369 9418") == []  # a letter in front is no change of style (an order number)


# Numbers of a phone number's length that are no phone number, each next to one of the same
# digits that is: (text, what is refused, regions, text holding a phone number, the number).
NOT_PHONES = [
    # NANP's leading 1 before 10 digits written as NANP writes them, not over a date, an OID or a path
    ("13.01.2027 - 1.3.6.1.4.1.22206.45", ["US"], "13.01.2027 - 1 301 202 7136", "1 301 202 7136"),
    ("1.3.6.1.4.1.43445.43   978-5-6271-1329-6", ["US"], "OID 1.3.6.1.4.1, tel 1-434-454-3978", "1-434-454-3978"),
    ("src/utils.py:2076:120   23/08/2026", ["US"], "src/utils.py:2076, tel 1 202 308 2026", "1 202 308 2026"),
    ("on 13/10/2022 at", ["US"], "on 13102022 or 1 (310) 202-2555", "1 (310) 202-2555"),  # 1 + 7 digits
    # a bare run after a numero sign is an id, one before a unit or a plural count a quantity
    ("order #4148422466 shipped", ["US"], "order shipped, call 4148422466", "4148422466"),
    ("PR №2176667456", ["US"], "PR (217) 666-7456", "(217) 666-7456"),
    ("wrote 2176667456 bytes", ["US"], '"phone": "2176667456", wrote 10 bytes', "2176667456"),
    ("16133868065 KiB in 7085693719 ms, 4642306471 rows", ["US"], "call 16133868065 now", "16133868065"),
    # ... and one after a label of size, count, checksum or seed, or an ls -l size before its date
    ("-rw-r--r-- 1 bob staff 2147483648 Nov 29 13:00 model.safetensors", ["US"],
     "bob's cell 2147483648 Nov 29 at 13:00", "2147483648"),
    ("RSS 4194304000, inode 2834756123, crc32 2596996162, tokens_seen=3276800000, random.seed(4155552671)",
     ["US"], "call 4155552671 now, toll_free: 8005551234", "4155552671"),
    ('{"size": "2147483648", "file_size": 2147483648}', ["US"], '{"phone": "2147483648"}', "2147483648"),
    # a phone number takes no groups of an IPv4 address, allowlisted (loopback) or not
    ("- $67,913.97 127.0.0.9", ["US"], "- $67,913.97 at 127.0.0.9, (913) 971-2700", "(913) 971-2700"),
    # a dotted date is no phone number even where the region has no trunk prefix (Denmark)
    ("due 27.11.2026 and 2026.11.27", ["DK"], "tlf 27 11 20 26", "27 11 20 26"),
    ("21.12.2026 14:30", ["DK"], "tlf 21 12 20 26", "21 12 20 26"),
]


@pytest.mark.parametrize("text,regions,real,value", NOT_PHONES, ids=[t for t, *_ in NOT_PHONES])
def test_ids_dates_and_oids_are_no_phone_numbers(text: str, regions: list[str], real: str, value: str) -> None:
    d = Detectors(RedactionConfig(phone_regions=regions))
    assert [s for s in d.scan(text) if s.kind == "PHONE"] == []
    assert ("PHONE", value) in [(s.kind, real[s.start:s.end]) for s in d.find(real)]


# Credential placeholders (the random part one repeated character), each with a real value of the
# same shape: (text before it, placeholder, kind, real value).
PLACEHOLDERS = [
    ("GITHUB_TOKEN=", "ghp_" + "X" * 36, "GITHUB_TOKEN", "ghp_k7jNpxDKwJBqAGcaIUmZQ43lGsbtcRZvc8q6"),
    ("key=", "AKIA" + "X" * 16, "AWS_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key = ", "0" * 40, "AWS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("OPENAI_API_KEY=", "sk-proj-" + "x" * 32, "OPENAI_KEY", "sk-proj-abcdefghijklmnopqrstuvwxyz0123"),
    ("token ", "glpat-" + "x" * 20, "GITLAB_TOKEN", "glpat-abcdefghij1234567890"),
    ("SLACK=", "xoxb-0000000000-0000000000-" + "x" * 24, "SLACK_TOKEN",
     "xoxb-1234567890-1234567890-abcdefghijklmnopqrstuvwx"),
    ("STRIPE=", "sk_test_" + "X" * 24, "STRIPE_KEY", "sk_test_A2ypO7PTpAYZJmFeXw8t1uCj"),
    # GitHub's plugin yields only "ghp": a short placeholder in a text with a real token is no token
    ("  ", "ghp_XXXX", "GITHUB_TOKEN", "ghp_k7jNpxDKwJBqAGcaIUmZQ43lGsbtcRZvc8q6"),
]


def _with_real(before: str, fake: str, real: str) -> str:
    """The placeholder's line, then the same line with the real value in its place."""
    return f"{before}{fake}\n{before}{real}"


@pytest.mark.parametrize("before,fake,kind,real", PLACEHOLDERS, ids=[f[:12] for _, f, _, _ in PLACEHOLDERS])
def test_credential_placeholders_are_not_secrets(det: Detectors, before: str, fake: str, kind: str, real: str) -> None:
    assert det.scan(before + fake) == []
    text = _with_real(before, fake, real)
    assert [(s.kind, text[s.start:s.end]) for s in det.find(text)] == [(kind, real)]


def _prefilter_cases() -> list[tuple[RedactionConfig, str]]:
    """Every test string of the detectors: this file's positives and negatives, and the PII
    corpus (each planted value alone and each rendered document) with the corpus config."""
    ours = RedactionConfig(terms={"NAME": ["Alice Smith"], "HOST": ["db01.corp.internal"]})
    cases = [(ours, text) for _, text, _ in POSITIVES] + [(ours, text) for text in NEGATIVES]
    cases += [(cfg, t) for text, regions, real, _ in NOT_PHONES
              for cfg in [RedactionConfig(phone_regions=regions)] for t in (text, real)]
    cases += [(ours, _with_real(before, fake, real)) for before, fake, _, real in PLACEHOLDERS]
    cfg = corpus_config()
    for doc in build_corpus(seed=3):
        cases.append((cfg, doc.text))
        cases += [(cfg, doc.text[lab.start:lab.end]) for lab in doc.labels]
    return cases


def test_prefilter_covers_every_detector_hit() -> None:
    # The triggers (on text, UTF-8 bytes and JSON) and the redaction walk's container checks may
    # skip only what the detectors, run unfiltered (scan), find nothing in.
    by_cfg: dict[int, tuple[Detectors, Scanner]] = {}
    hits = 0
    for cfg, text in _prefilter_cases():
        det, scanner = by_cfg.setdefault(id(cfg), (Detectors(cfg), Scanner(cfg)))
        spans = det.scan(text)
        if not spans:
            continue
        hits += 1
        assert det.find(text) == spans, text  # the groups that fired run every detector that finds something
        assert det.triggered(text) and det.triggered(text.encode()), text
        assert det.triggered(orjson.dumps({"text": text})), text
        for payload in ({"call_id": "call_1", "result": text}, {"call_id": "call_1", "args": [{"a": text}]}):
            event = {"run_id": "r", "event_type": "worker_tool_call", "event_id": "e", "payload": payload}
            assert sum(scanner.scan(event).values()) == len(spans), (payload, text)
    assert hits > 500  # the corpus was really exercised
