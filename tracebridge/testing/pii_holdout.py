"""Hold-out PII/secret corpus, written independently of the detectors and of ``pii_corpus``.

Each document is realistic agent-trace text (tool output: logs, stack traces, ``ls -l``,
``git log``, SQL results, CSV, JSON API responses, HTML, env/INI files, code; chat in eight
languages) with planted values whose type and exact span are known. The surrounding text is full
of hard negatives (timestamps, versions, UUIDs, SHAs, hashes, file:line:col, ports, order ids,
ISBNs, counters, prices, coordinates, MACs, C++/Rust paths, non-key base64, loopback addresses).

What counts as a value follows issue 5's definition, not whether it looks "fake":

- an e-mail at ``example.com`` IS an e-mail; a documentation IP (192.0.2.0/24, 2001:db8::/32) IS an
  IP; a URL-encoded e-mail (``bob%40corp.io``) is still the person's address;
- the configured ``ip_allowlist`` (loopback, unspecified) is NOT personal data: planted as negative;
- phones: ``phone_regions`` defaults to US, so foreign numbers are planted in +CC form only and US
  numbers in national forms too;
- for a PEM block, the value is its base64 body (the BEGIN/END lines are not secret); for an
  Authorization header, the credential after the scheme; for a URL, its password.

Matching (``score``) asks what leaves the host: a planted value is recalled when findings cover all
its characters, whatever their type; a finding is a true positive when it overlaps a planted value.
Recalled values whose covering findings are of an incompatible type (not the same type, nor two
credential types: a URL password redacted as part of an "e-mail") are listed as mislabelled. Findings are taken the way export takes them: ``Redactor.redact`` on a
record (the JSON prefilter must fire), then ``Detectors.find`` on the string it rewrites.
"""

from __future__ import annotations

import base64
import json
import random
import string
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Span
from tracebridge.curate.redact import Redactor

PII = ("EMAIL", "PHONE", "CARD", "IBAN", "IPV4", "IPV6")
CREDS = ("AWS_KEY_ID", "AWS_SECRET", "GITHUB", "GITLAB", "SLACK", "SLACK_WEBHOOK", "OPENAI", "SK_COMPAT", "ANTHROPIC",
         "STRIPE", "JWT", "PEM", "BEARER", "BASIC", "URL_PASSWORD")
TERMS = {"NAME": ["Ingrid Kowalczyk", "Tomás Ferreira"], "HOST": ["db01.corp.acme"]}
TYPES = PII + CREDS + tuple(TERMS)


def holdout_config() -> RedactionConfig:
    """The redaction config the hold-out is scored under: defaults plus the user terms above."""
    return RedactionConfig(terms={k: list(v) for k, v in TERMS.items()})


def is_credential(kind: str) -> bool:
    """Planted credential types, and any finding type that is not PII or a user term."""
    return kind in CREDS or (kind not in PII and kind not in TERMS)


def compatible(planted: str, found: str) -> bool:
    """Whether a finding of type ``found`` counts for a planted value of type ``planted``."""
    return planted == found or (is_credential(planted) and is_credential(found))


@dataclass(frozen=True)
class Item:
    """A planted value (``kind`` in ``TYPES``) or a labelled hard negative (``kind`` = its label)."""

    kind: str
    start: int
    end: int


@dataclass
class Doc:
    """One trace string with its planted values and labelled negatives."""

    context: str
    text: str = ""
    planted: list[Item] = field(default_factory=list)
    negatives: list[Item] = field(default_factory=list)

    def t(self, s: str) -> Doc:
        """Append plain text."""
        self.text += s
        return self

    def v(self, kind: str, s: str) -> Doc:
        """Append a planted value of ``kind``."""
        self.planted.append(Item(kind, len(self.text), len(self.text) + len(s)))
        self.text += s
        return self

    def n(self, label: str, s: str) -> Doc:
        """Append a hard negative labelled ``label`` (for the report; any finding on it is false)."""
        self.negatives.append(Item(label, len(self.text), len(self.text) + len(s)))
        self.text += s
        return self


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


# ---------------------------------------------------------------------------------- contexts

LANG = {
    "en": ("Sure, I'll reach out to {} about the invoice.", "Please contact {} before {}."),
    "de": ("Bitte schreib an {} wegen der Rechnung.", "Ruf bitte {} an, spätestens am {}."),
    "fr": ("Merci d'écrire à {} au sujet de la facture.", "Vous pouvez joindre {} avant le {}."),
    "es": ("Por favor, escribe a {} sobre la factura.", "Llama a {} antes del {}."),
    "pt": ("Pode mandar para {} a nota fiscal?", "Entre em contato com {} até {}."),
    "ja": ("請求書について{}に連絡してください。", "{}まで、{}の前にご連絡ください。"),
    "zh": ("请把发票发送到{}，谢谢。", "请在{}之前联系{}。"),
    "ru": ("Пожалуйста, напишите на {} по поводу счёта.", "Свяжитесь с {} до {}."),
}


def _ctx_value(doc: Doc, r: random.Random, kind: str, value: str) -> None:
    """Embed one value in a context that suits its type (how it appears in real traces)."""
    neg = negative(r)
    if kind == "AWS_KEY_ID":
        style = r.randrange(3)
        if style == 0:
            doc.t("AWS_ACCESS_KEY_ID=").v(kind, value).t("\nAWS_DEFAULT_REGION=eu-west-1\n")
        elif style == 1:
            doc.t('{"AccessKeyId": "').v(kind, value).t('", "Expiration": "').n(*neg).t('"}\n')
        else:
            doc.t("[default]\naws_access_key_id = ").v(kind, value).t("\n")
    elif kind == "AWS_SECRET":
        style = r.randrange(3)
        if style == 0:
            doc.t("export AWS_SECRET_ACCESS_KEY=").v(kind, value).t("\n")
        elif style == 1:
            doc.t('  "SecretAccessKey": "').v(kind, value).t('",\n')
        else:
            doc.t("[prod]\naws_secret_access_key = ").v(kind, value).t("\nregion = us-east-1\n")
    elif kind == "PEM":
        label = r.choice(["RSA ", "EC ", "OPENSSH ", ""])
        doc.t(f"$ cat ~/.ssh/id_key\n-----BEGIN {label}PRIVATE KEY-----\n").v(kind, pem_body(r, label.strip()))
        doc.t(f"\n-----END {label}PRIVATE KEY-----\n")
    elif kind == "BEARER":
        style = r.randrange(3)
        if style == 0:
            doc.t("> GET /v1/users HTTP/1.1\n> Authorization: Bearer ").v(kind, value).t("\n> Accept: */*\n")
        elif style == 1:
            doc.t("curl -s -H 'authorization: bearer ").v(kind, value).t("' https://api.internal/v2/items\n")
        else:
            doc.t('headers = {"Authorization": "Bearer ').v(kind, value).t('"}\n')
    elif kind == "BASIC":
        if r.random() < 0.5:
            doc.t("Authorization: Basic ").v(kind, value).t("\r\nHost: registry.internal\r\n")
        else:
            doc.t('{"headers": {"Authorization": "Basic ').v(kind, value).t('"}}\n')
    elif kind == "URL_PASSWORD":
        scheme, host = r.choice([("postgres", "db.prod.internal:5432/app"), ("https", "github.com/org/repo.git"),
                                 ("redis", "cache:6379/0"), ("amqp", "rabbit.svc:5672/"), ("mysql", ""),
                                 ("mongodb+srv", "cluster0.ab1cd.mongodb.net/test")])
        user = r.choice(["admin", "deploy", "app_user", ""])  # redis://:pass@host has no user
        doc.t(r.choice(["DATABASE_URL=", "Cloning into 'repo'... ", "connecting to ", "dsn: "]))
        doc.t(f"{scheme}://{user}:").v(kind, value).t("@")
        if host:
            doc.t(host + "\n")
        else:  # a database host given by address: that address is planted too
            doc.v("IPV4", ipv4(r)).t("/shop\n")
    elif kind in ("GITHUB", "GITLAB", "SLACK", "OPENAI", "SK_COMPAT", "ANTHROPIC", "STRIPE", "JWT", "SLACK_WEBHOOK"):
        var = {"GITHUB": "GITHUB_TOKEN", "GITLAB": "GITLAB_TOKEN", "SLACK": "SLACK_BOT_TOKEN", "OPENAI": "OPENAI_API_KEY",
               "STRIPE": "STRIPE_SECRET_KEY", "JWT": "id_token", "SLACK_WEBHOOK": "webhook_url",
               "SK_COMPAT": "DEEPSEEK_API_KEY", "ANTHROPIC": "ANTHROPIC_API_KEY"}[kind]
        style = r.randrange(4)
        if style == 0:
            doc.t(f"{var}=").v(kind, value).t("\n")
        elif style == 1:
            doc.t(f'{{"{var.lower()}": "').v(kind, value).t('", "created": "').n(*neg).t('"}\n')
        elif style == 2:
            doc.t('client = Client(api_key="').v(kind, value).t('")  # ').n(*neg).t("\n")
        else:
            doc.t("Traceback (most recent call last):\n  File \"/srv/app.py\", line 42, in <module>\n"
                  "AuthError: token rejected: ").v(kind, value).t("\n")
    elif kind in TERMS:
        term = r.choice(TERMS[kind])
        term = r.choice([term, term.upper(), term.lower()])
        if kind == "HOST":
            doc.t("ssh: connect to host ").v(kind, term).t(" port 22: Connection refused\n")
        else:
            doc.t(r.choice(["Assigned to ", "Bitte frag ", "Merci à ", "cc: "])).v(kind, term)
            doc.t(" — see ticket ").n(*neg).t("\n")
    else:
        _ctx_pii(doc, r, kind, value, neg)


def _ctx_pii(doc: Doc, r: random.Random, kind: str, value: str, neg: tuple[str, str]) -> None:
    """PII in tool output (log, git log, ls -l, SQL, CSV, JSON, HTML, URL) or chat in a language."""
    style = r.randrange(10)
    if kind == "EMAIL" and r.random() < 0.15:  # URL-encoded, as in query strings and redirects
        doc.t("GET /unsubscribe?email=").v(kind, urllib.parse.quote(value, safe="")).t("&ts=").n(*neg).t(" 200\n")
    elif style == 0:
        doc.t("[").n("iso_ts", negative_ts(r)).t("] INFO  svc.auth: login ok user=").v(kind, value).t(" latency_ms=")
        doc.n("counter", str(r.randint(1, 900))).t(" build=").n(*neg).t("\n")
    elif style == 1 and kind == "EMAIL":
        doc.t("commit ").n("git_sha", _s(r, "0123456789abcdef", 40)).t("\nAuthor: Ann Lee <").v(kind, value)
        doc.t(">\nDate:   ").n("rfc2822", "Thu Nov 26 18:04:11 2026 +0100").t("\n\n    fix ").n(*neg).t("\n")
    elif style == 2:
        doc.t("-rw-r--r--  1 dev staff  ").n("size", str(r.randint(100, 10 ** 7))).t(" Nov 26 18:04 export_")
        doc.n(*neg).t(".csv\n").t(" id | contact              | created\n----+----------------------+--------\n ")
        doc.n("row_id", str(r.randint(1, 99999))).t(" | ").v(kind, value).t(" | ").n("date", negative_ts(r)).t("\n")
    elif style == 3:
        doc.t("id,name,contact,amount\n").n("row_id", str(r.randint(1, 99999))).t(",Lee,").v(kind, value).t(",")
        doc.n("price", f"{r.randint(1, 9999)}.{r.randint(0, 99):02d}").t("\n")
    elif style == 4:
        key = {"EMAIL": "email", "PHONE": "phone_number", "CARD": "card_number", "IBAN": "iban", "IPV4": "client_ip",
               "IPV6": "remote_addr"}[kind]
        doc.t('{"data": {"id": "').n("uuid", "-".join(_s(r, "0123456789abcdef", n) for n in (8, 4, 4, 4, 12)))
        doc.t(f'", "{key}": "').v(kind, value).t('", "updated_at": "').n(*neg).t('"}}\n')
    elif style == 5:
        if kind == "EMAIL":
            doc.t('<a href="mailto:').v(kind, value).t('">Contact</a> <span class="v">').n(*neg).t("</span>\n")
        else:
            doc.t("<td>").v(kind, value).t("</td><td>").n(*neg).t("</td>\n")
    elif style == 6 and kind in ("IPV4", "IPV6"):
        doc.t("curl: (7) Failed to connect to " + ("[" if kind == "IPV6" else "")).v(kind, value)
        doc.t(("]" if kind == "IPV6" else "") + f" port {r.randint(1, 65535)}: Connection refused\n")
        if kind == "IPV6" and r.random() < 0.5:
            doc.t("ping6 ").v(kind, value).t(f"%{r.choice(['eth0', 'en0', '12'])}\n")
    elif style == 7:
        doc.t('  File "/app/handlers.py", line ').n("line", str(r.randint(1, 999))).t(", in charge\n    raise ValueError(")
        doc.t('f"invalid value: ').v(kind, value).t('")\nValueError: invalid value\n')
    else:
        lang = r.choice(sorted(LANG))
        tmpl = r.choice(LANG[lang])
        a, _, b = tmpl.partition("{}")
        doc.t(a).v(kind, value)
        if "{}" in b:
            b1, _, b2 = b.partition("{}")
            doc.t(b1).n(*neg).t(b2 + "\n")
        else:
            doc.t(b + "\n")


def negative_ts(r: random.Random) -> str:
    """An ISO timestamp (the commonest neighbour of any value in a log)."""
    return f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z"


def _negatives_only(doc: Doc, r: random.Random) -> None:
    """A block of tool output with hard negatives only (how most trace text looks)."""
    for _ in range(r.randint(3, 8)):
        label, text = negative(r)
        doc.t(r.choice(["", "  ", "DEBUG ", "- ", "| ", '"value": "', "at "])).n(label, text)
        doc.t(r.choice(["\n", " ", ", ", " | ", '",\n']))


def build_holdout(seed: int = 0, docs: int = 600) -> list[Doc]:
    """``docs`` seeded documents; each holds 1-4 planted values of random types plus negatives."""
    r = random.Random(seed)
    out = []
    for i in range(docs):
        doc = Doc(context=f"doc{i}")
        for _ in range(r.randint(1, 4)):
            if r.random() < 0.35:
                _negatives_only(doc, r)
            kind = TYPES[r.randrange(len(TYPES))] if r.random() < 0.5 else TYPES[(i + _) % len(TYPES)]
            _ctx_value(doc, r, kind, VALUES[kind](r) if kind in VALUES else "")
        out.append(doc)
    return out


# ---------------------------------------------------------------------------------- scoring


def export_spans(redactor: Redactor, text: str) -> list[Span]:
    """The spans export redacts in ``text``: none unless the record walker fires, then ``find``."""
    rec = {"run_id": "holdout", "text": text}
    return [] if redactor.redact(rec) is rec else redactor.detectors.find(text)


@dataclass
class Score:
    """Counts per type, plus every miss ``(type, value, context)`` and false positive
    ``(finding type, text, negative label or '-', context)``."""

    planted: Counter[str] = field(default_factory=Counter)
    recalled: Counter[str] = field(default_factory=Counter)
    found: int = 0
    true_pos: int = 0
    misses: list[tuple[str, str, str]] = field(default_factory=list)
    mislabelled: list[tuple[str, str, str]] = field(default_factory=list)  # (planted type, finding types, value)
    false_pos: list[tuple[str, str, str, str]] = field(default_factory=list)

    def recall(self, kind: str | None = None) -> float:
        p = self.planted[kind] if kind else sum(self.planted.values())
        got = self.recalled[kind] if kind else sum(self.recalled.values())
        return got / p if p else 1.0

    @property
    def precision(self) -> float:
        return self.true_pos / self.found if self.found else 1.0


def _line(text: str, start: int, end: int) -> str:
    a = text.rfind("\n", 0, start) + 1
    b = text.find("\n", end)
    return text[a:b if b >= 0 else len(text)][:200]


def score(docs: list[Doc], redactor: Redactor) -> Score:
    """Recall per planted type and overall precision of ``redactor`` on ``docs``."""
    sc = Score()
    for doc in docs:
        spans = export_spans(redactor, doc.text)
        for it in doc.planted:
            sc.planted[it.kind] += 1
            cover = [s for s in spans if s.start < it.end and s.end > it.start]
            covered = set()
            for s in cover:
                covered.update(range(max(s.start, it.start), min(s.end, it.end)))
            if len(covered) == it.end - it.start:
                sc.recalled[it.kind] += 1
                if any(not compatible(it.kind, s.kind) for s in cover):
                    sc.mislabelled.append((it.kind, ",".join(sorted({s.kind for s in cover})),
                                           doc.text[it.start:it.end]))
            else:
                sc.misses.append((it.kind, doc.text[it.start:it.end], _line(doc.text, it.start, it.end)))
        for s in spans:
            sc.found += 1
            if any(s.start < it.end and s.end > it.start for it in doc.planted):
                sc.true_pos += 1
                continue
            neg = next((n.kind for n in doc.negatives if s.start < n.end and s.end > n.start), "-")
            sc.false_pos.append((s.kind, doc.text[s.start:s.end], neg, _line(doc.text, s.start, s.end)))
    return sc
