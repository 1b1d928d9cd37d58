"""Value generators for the PII hold-out (``pii_holdout``): what gets planted, and what must not be found.

Here: the planted values per type (``VALUES``: e-mails, phones, Luhn-valid cards, mod-97 IBANs, IPs,
JWTs, PEM bodies, cloud/API keys and tokens, Basic credentials, URL passwords) and the hard
negatives (``negative``, ``negative_ts``). ``pii_holdout`` keeps the type lists, the ``Doc``
builder, the contexts that embed these values in trace text, ``build_holdout`` and ``score``.
Every generator draws only from the ``random.Random`` it is given, so a seed fixes the corpus.
"""

from __future__ import annotations

import base64
import json
import random
import string
import urllib.parse
from collections.abc import Callable

import phonenumbers

# ---------------------------------------------------------------------------------- values

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"


def _s(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(digits: str) -> bool:
    """The Luhn check (for labelling negatives that must fail it)."""
    return _luhn_digit(digits[:-1]) == digits[-1]


# (brand, prefixes, length, grouping)
CARD_BRANDS = [
    ("visa", ["4"], 16, (4, 4, 4, 4)), ("visa13", ["4"], 13, (4, 3, 3, 3)),
    ("mastercard", ["51", "52", "53", "54", "55", "2221", "2500", "2720"], 16, (4, 4, 4, 4)),
    ("amex", ["34", "37"], 15, (4, 6, 5)), ("discover", ["6011", "644", "65"], 16, (4, 4, 4, 4)),
    ("jcb", ["3528", "3555", "3589"], 16, (4, 4, 4, 4)), ("diners", ["36", "300", "305"], 14, (4, 6, 4)),
    ("unionpay", ["62"], 19, (4, 4, 4, 4, 3)), ("maestro", ["6759", "5018"], 16, (4, 4, 4, 4)),
]


def card(r: random.Random) -> str:
    """A Luhn-valid card number of a random brand, compact or grouped by space or dash."""
    _, prefixes, length, groups = r.choice(CARD_BRANDS)
    p = r.choice(prefixes)
    body = p + _s(r, string.digits, length - len(p) - 1)
    num = body + _luhn_digit(body)
    sep = r.choice(["", " ", "-", " ", "-"])
    if not sep:
        return num
    out, i = [], 0
    for g in groups:
        out.append(num[i:i + g])
        i += g
    return sep.join(out)


# country: BBAN pattern (a = upper letter, n = digit, c = alnum upper)
IBAN_BBAN = {"DE": "n" * 18, "GB": "aaaa" + "n" * 14, "FR": "n" * 10 + "c" * 11 + "nn", "ES": "n" * 20,
             "IT": "a" + "n" * 10 + "c" * 12, "NL": "aaaa" + "n" * 10, "BE": "n" * 12, "CH": "n" * 5 + "c" * 12,
             "PL": "n" * 24, "AT": "n" * 16, "SE": "n" * 20, "NO": "n" * 11, "IE": "aaaa" + "n" * 14,
             "PT": "n" * 21, "DK": "n" * 14, "FI": "n" * 14, "SA": "nn" + "c" * 18, "BR": "n" * 23 + "ac"}


def iban(r: random.Random) -> str:
    """A mod-97-valid IBAN of a random country: electronic, print (groups of 4) or dashed form."""
    cc = r.choice(sorted(IBAN_BBAN))
    pools = {"a": string.ascii_uppercase, "n": string.digits, "c": string.ascii_uppercase + string.digits}
    bban = "".join(r.choice(pools[ch]) for ch in IBAN_BBAN[cc])
    num = "".join(str(int(ch, 36)) for ch in bban + cc + "00")
    full = f"{cc}{98 - int(num) % 97:02d}{bban}"
    form = r.random()
    if form < 0.4:
        return full
    grouped = [full[i:i + 4] for i in range(0, len(full), 4)]
    return ("-" if form > 0.9 else " ").join(grouped)


PHONE_REGIONS = ["GB", "DE", "FR", "IN", "JP", "BR", "AU", "ES", "IT", "NL", "MX", "ZA", "SG", "CA", "US"]


def phone(r: random.Random) -> str:
    """A valid phone number (phonenumbers): +CC forms for any region, national forms for US."""
    region = r.choice(PHONE_REGIONS)
    ptype = r.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    ex = phonenumbers.example_number_for_type(region, ptype)
    nat = str(ex.national_number)
    for _ in range(200):
        cand = phonenumbers.PhoneNumber(country_code=ex.country_code,
                                        national_number=int(nat[:-4] + _s(r, string.digits, 4)))
        if phonenumbers.is_valid_number(cand):
            break
    else:
        cand = ex
    intl = phonenumbers.format_number(cand, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    forms = [intl, phonenumbers.format_number(cand, phonenumbers.PhoneNumberFormat.E164),
             intl.replace(" ", "-"), intl.replace(" ", ".")]
    if region == "US":
        d = str(cand.national_number)
        forms += [f"({d[:3]}) {d[3:6]}-{d[6:]}", f"{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}",
                  f"1-{d[:3]}-{d[3:6]}-{d[6:]}", f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}"]
    return r.choice(forms)


def email(r: random.Random) -> str:
    """An e-mail: plus tags, dots, subdomains, digits, unicode local parts and IDN domains."""
    first = r.choice(["alice", "bob", "j.smith", "maria.garcia", "dev-ops", "o'brien", "li.wei", "x", "jean-luc",
                      "müller", "josé.garcía", "søren", "андрей", "山田", "ngozi_okafor", "first.last+test"])
    if r.random() < 0.3:
        first += "+" + r.choice(["newsletter", "ci", "2024", "spam", "tag.sub"])
    if r.random() < 0.3:
        first += str(r.randint(1, 999))
    dom = r.choice(["example.com", "gmail.com", "corp.acme.io", "mail.eu-west-1.company.co.uk", "uni-heidelberg.de",
                    "students.uni.edu.au", "example.org", "yandex.ru", "outlook.fr", "münchen.de", "xn--mnchen-3ya.de",
                    "startup.ai", "sub.domain.museum", "posteo.net"])
    return f"{first}@{dom}"


def ipv4(r: random.Random) -> str:
    """A non-loopback, non-unspecified IPv4 address (public, private or documentation range)."""
    return r.choice([
        lambda: f"{r.choice([r.randint(11, 126), r.randint(128, 223)])}.{r.randint(0, 255)}.{r.randint(0, 255)}"
                f".{r.randint(1, 254)}",
        lambda: f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
        lambda: f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}",
        lambda: f"172.{r.randint(16, 31)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
        lambda: f"203.0.113.{r.randint(1, 254)}",
    ])()


def ipv6(r: random.Random) -> str:
    """An IPv6 address: full, compressed (``::`` anywhere), link-local, IPv4-mapped, upper case."""
    hextets = [f"{r.randint(0, 0xffff):x}" for _ in range(8)]
    form = r.randrange(7)
    if form == 0:
        out = ":".join(hextets)
    elif form == 1:
        out = ":".join(f"{int(h, 16):04x}" for h in hextets)
    elif form == 2:
        i = r.randint(1, 6)
        j = r.randint(i + 1, 7)
        out = ":".join(hextets[:i]) + "::" + ":".join(hextets[j:])
    elif form == 3:
        out = f"fe80::{hextets[4]}:{hextets[5]}:{hextets[6]}:{hextets[7]}"
    elif form == 4:
        out = f"2001:db8:{hextets[2]}::{hextets[7]}"
    elif form == 5:
        out = f"::ffff:{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
    else:
        out = f"2a00:{hextets[1]}:{hextets[2]}::{hextets[7]}".upper()
    return out


def jwt(r: random.Random) -> str:
    """A JWT with a real JSON header and payload and a random signature."""
    def enc(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
    alg = r.choice(["HS256", "RS256", "ES256"])
    head = enc({"alg": alg, "typ": "JWT"} if r.random() < 0.7 else {"typ": "JWT", "alg": alg, "kid": _s(r, ALNUM, 12)})
    body = enc({"sub": str(r.randint(1, 10 ** 9)), "iat": r.randint(1.6e9, 1.8e9), "scope": "read write",
                "email": "svc@internal"})
    sig = _s(r, B64URL, {"HS256": 43, "RS256": 342, "ES256": 86}[alg])
    return f"{head}.{body}.{sig}"


def pem_body(r: random.Random, kind: str) -> str:
    """The base64 body of a private-key PEM block (64-char lines; 70 for OpenSSH)."""
    if kind == "OPENSSH":
        raw = b"openssh-key-v1\0" + r.randbytes(380)
        width = 70
    else:
        raw = bytes([0x30, 0x82]) + r.randbytes({"RSA": 1190, "EC": 119, "": 1215}[kind])
        width = 64
    b = base64.b64encode(raw).decode()
    return "\n".join(b[i:i + width] for i in range(0, len(b), width))


VALUES: dict[str, Callable[[random.Random], str]] = {
    "EMAIL": email, "PHONE": phone, "CARD": card, "IBAN": iban, "IPV4": ipv4, "IPV6": ipv6, "JWT": jwt,
    "AWS_KEY_ID": lambda r: r.choice(["AKIA", "ASIA"]) + _s(r, string.ascii_uppercase + "234567", 16),
    "AWS_SECRET": lambda r: _s(r, B64, 40),
    "GITHUB": lambda r: r.choice([r.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + _s(r, ALNUM, 36),
                                  "github_pat_11" + _s(r, string.ascii_uppercase + string.digits, 20) + "_"
                                  + _s(r, ALNUM, 59)]),
    "GITLAB": lambda r: "glpat-" + _s(r, B64URL, 20),
    "SLACK": lambda r: r.choice([
        f"{r.choice(['xoxb', 'xoxp'])}-{r.randint(10 ** 10, 10 ** 12)}-{r.randint(10 ** 10, 10 ** 12)}-{_s(r, ALNUM, 24)}",
        (f"xapp-1-A{_s(r, string.ascii_uppercase + string.digits, 10)}-{r.randint(10 ** 12, 10 ** 13)}-"
         f"{_s(r, '0123456789abcdef', 64)}")]),
    "SLACK_WEBHOOK": lambda r: "https://hooks.slack.com/services/T" + _s(r, string.ascii_uppercase + string.digits, 8)
                               + "/B" + _s(r, string.ascii_uppercase + string.digits, 10) + "/" + _s(r, ALNUM, 24),
    "OPENAI": lambda r: r.choice(["sk-" + _s(r, ALNUM, 20) + "T3BlbkFJ" + _s(r, ALNUM, 20),
                                  "sk-proj-" + _s(r, B64URL, 74) + "T3BlbkFJ" + _s(r, B64URL, 74),
                                  "sk-svcacct-" + _s(r, B64URL, 74) + "T3BlbkFJ" + _s(r, B64URL, 74)]),
    # OpenAI-compatible providers agents call (DeepSeek-style hex, proxy/gateway keys) without the T3BlbkFJ marker
    "SK_COMPAT": lambda r: r.choice(["sk-" + _s(r, "0123456789abcdef", 32), "sk-" + _s(r, ALNUM, 48)]),
    "ANTHROPIC": lambda r: "sk-ant-api03-" + _s(r, B64URL, 93) + "AA",
    "STRIPE": lambda r: r.choice(["sk_live_", "rk_live_", "sk_test_"]) + _s(r, ALNUM, r.choice([24, 99])),
    "BEARER": lambda r: r.choice([_s(r, B64URL, 40), "ya29." + _s(r, B64URL, 120), _s(r, string.hexdigits[:16], 32)]),
    "BASIC": lambda r: base64.b64encode(f"{r.choice(['admin', 'deploy', 'svc-ci'])}:{_s(r, ALNUM + '!#%', 14)}"
                                        .encode()).decode(),
    "URL_PASSWORD": lambda r: r.choice([_s(r, ALNUM, 16), "S3cr3t!" + _s(r, ALNUM, 6), "hunter2" + _s(r, string.digits, 3),
                                        urllib.parse.quote("p@ss/w:rd" + _s(r, ALNUM, 4), safe="")]),
}


# ---------------------------------------------------------------------------------- negatives


def negative(r: random.Random) -> tuple[str, str]:
    """A hard negative ``(label, text)``: not PII/secret by issue 5's definition."""
    y, mo, d = r.randint(2019, 2027), r.randint(1, 12), r.randint(1, 28)
    h, mi, s = r.randint(0, 23), r.randint(0, 59), r.randint(0, 59)
    isbn12 = "978" + _s(r, string.digits, 9)
    isbn_chk = str((10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(isbn12)) % 10) % 10)
    order = _s(r, "123456789", 1) + _s(r, string.digits, r.randint(7, 11))
    hexd = "0123456789abcdef"
    choices = [
        ("iso_ts", f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{r.randint(0, 999999):06d}Z"),
        ("iso_ts_tz", f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}+02:00"),
        ("rfc2822", f"Fri, {d:02d} Nov {y} {h:02d}:{mi:02d}:{s:02d} +0000"),
        ("date_eu", f"{d:02d}/{mo:02d}/{y}"), ("date_dots", f"{d:02d}.{mo:02d}.{y}"),
        ("date_compact", f"{y}{mo:02d}{d:02d}"), ("time", f"{h:02d}:{mi:02d}:{s:02d}.{r.randint(0, 999):03d}"),
        ("epoch_s", str(r.randint(1_600_000_000, 1_800_000_000))),
        ("epoch_ms", str(r.randint(1_600_000_000_000, 1_800_000_000_000))),
        ("semver", f"{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 200)}"),
        ("semver_pre", f"v{r.randint(0, 9)}.{r.randint(0, 40)}.{r.randint(0, 9)}-rc.{r.randint(1, 5)}+build.{r.randint(1, 999)}"),
        ("kernel", f"{r.randint(4, 6)}.{r.randint(0, 19)}.0-{r.randint(10, 200)}-generic"),
        ("win_build", f"10.0.{r.randint(10000, 26000)}.{r.randint(1, 5000)}"),
        ("uuid", "-".join(_s(r, hexd, n) for n in (8, 4, 4, 4, 12))),
        ("git_sha", _s(r, hexd, 40)), ("git_short", _s(r, hexd, 7)), ("sha256", _s(r, hexd, 64)),
        ("md5", _s(r, hexd, 32)),
        ("file_line_col", f"src/{r.choice(['app', 'core/io', 'utils'])}.py:{r.randint(1, 3000)}:{r.randint(1, 120)}"),
        ("port", f"localhost:{r.randint(1024, 65535)}"), ("loopback4", f"127.0.0.{r.randint(1, 9)}"),
        ("unspecified", f"0.0.0.0:{r.randint(1024, 9999)}"), ("loopback6", f"[::1]:{r.randint(1024, 9999)}"),
        ("order_id", f"ORD-{y}-{order}"), ("order_num", f"order #{order}"),
        ("isbn13", f"{isbn12[:3]}-{isbn12[3]}-{isbn12[4:8]}-{isbn12[8:]}-{isbn_chk}"),
        ("counter", f"{r.randint(100_000, 9_999_999_999):,} rows"),
        ("bytes", f"{r.randint(10 ** 8, 10 ** 11)} bytes"),
        ("price", r.choice([f"${r.randint(1, 99999):,}.{r.randint(0, 99):02d}", f"€ {r.randint(1, 99999):,}".replace(",", ".")
                            + f",{r.randint(0, 99):02d}", f"¥{r.randint(100, 9999999):,}"])),
        ("coords", f"{r.uniform(-90, 90):.6f}, {r.uniform(-180, 180):.6f}"),
        ("mac", ":".join(_s(r, hexd, 2) for _ in range(6))),
        ("cpp_path", r.choice(["std::vector<int>::iterator", "tokio::sync::mpsc", "Foo::bar::baz()",
                               "::testing::Test", "a::b"])),
        ("b64_png", "iVBORw0KGgoAAAANSUhEUgAA" + _s(r, B64, 60)),
        ("b64_text", base64.b64encode(r.choice([b"hello world, this is a plain log message",
                                                b'{"page":2,"per_page":50,"cursor":"next"}'])).decode()),
        ("luhn_fail_16", None), ("hex_color", f"#{_s(r, hexd, 6)}"), ("docker_digest", "sha256:" + _s(r, hexd, 64)),
        ("oid", f"1.3.6.1.4.1.{r.randint(300, 60000)}.{r.randint(1, 99)}"),
        ("placeholder_key", r.choice(["sk-...", "YOUR_API_KEY", "<token>", "ghp_XXXX", "AKIA****", "${GITHUB_TOKEN}"])),
    ]
    label, text = r.choice(choices)
    if text is None:  # a 16-digit number that fails Luhn: tracking / order numbers
        while True:
            text = _s(r, "123456789", 1) + _s(r, string.digits, 15)
            if not luhn_ok(text):
                break
    return label, text


def negative_ts(r: random.Random) -> str:
    """An ISO timestamp (the commonest neighbour of any value in a log)."""
    return f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z"
