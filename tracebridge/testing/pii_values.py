"""Planted values for the labelled PII/secret corpus (``tracebridge.testing.pii_corpus``): one
seeded generator per detector type, each producing a valid value (Luhn-valid cards of several
networks, IBANs with correct check digits, phone numbers valid per ``phonenumbers``, tokens with
their real prefixes and lengths, JWTs, PEM blocks), and the hard negatives that look close but are
not PII (versions, UUIDs, hashes, timestamps, Luhn-failing order numbers, placeholders...).
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"
UPPER32 = string.ascii_uppercase + "234567"
NAMES = ["Alice Smith", "José Müller", "François Dupont", "María García", "Ольга Иванова", "Yuki Tanaka",
         "Fatima Al-Sayed", "Søren Nielsen", "Li Wei Chen", "Giulia Rossi"]
HOSTS = ["db01.corp.internal", "build-agent-7.lab.example.net", "jenkins.intra.acme.local", "vault-2.prod.acme.local",
         "mail-relay.hq.contoso.lan"]
PHONE_REGIONS = ["US", "GB", "DE"]  # national formats are planted only for these (the corpus config's regions)
FOREIGN_REGIONS = ["FR", "ES", "JP", "CN", "RU", "IN", "BR", "AU", "AE", "IT"]


@dataclass(frozen=True)
class Item:
    """A planted value: ``before + value + after`` is written, ``value`` is labelled ``kind``."""

    kind: str
    value: str
    before: str = ""
    after: str = ""


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# ---------------------------------------------------------------------------------------- positives

def gen_email(rng: random.Random) -> Item:
    """An ``EMAIL``: a name-based address at one of several domains (1 in 10 with ``%40``)."""
    first, last = rng.choice(NAMES[:1] + ["bob jones", "anna kowalski", "wei zhang", "lena fischer"]).split()[:2]
    first, last = first.lower(), last.lower()
    local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}",
                        f"{first}+{rng.choice(['billing', 'trace', 'x'])}", f"{last}-{first}"])
    local = local.encode("ascii", "ignore").decode() or "user"
    domain = rng.choice(["example.com", "mail.example.co.uk", "corp-mail.beispiel.de", "exemple.fr", "ejemplo.es",
                         "example.jp", "company.io", "uni-example.edu", "sub.domain.example.org"])
    if rng.random() < 0.1:
        return Item("EMAIL", f"{local}%40{domain}")  # percent-encoded, as in a query string
    return Item("EMAIL", f"{local}@{domain}")


def _valid_phone(rng: random.Random, region: str) -> object:
    import phonenumbers as pn

    ptype = rng.choice([pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE])
    ex = pn.example_number_for_type(region, ptype)
    nat = str(ex.national_number)
    for _ in range(200):
        k = rng.randint(3, min(6, len(nat) - 2))
        cand = pn.PhoneNumber(country_code=ex.country_code, national_number=int(nat[:-k] + _s(rng, string.digits, k)))
        if pn.is_valid_number(cand) and not nat.endswith(str(cand.national_number)[-k:]):
            return cand
    return ex


def gen_phone(rng: random.Random) -> Item:
    """A ``PHONE`` valid per ``phonenumbers``: E.164 or international (national only in
    ``PHONE_REGIONS``)."""
    import phonenumbers as pn

    region = rng.choice(PHONE_REGIONS + FOREIGN_REGIONS)
    num = _valid_phone(rng, region)
    styles = ["e164", "intl", "intl_dash"] + (["national"] * 2 if region in PHONE_REGIONS else [])
    style = rng.choice(styles)
    if style == "e164":
        return Item("PHONE", pn.format_number(num, pn.PhoneNumberFormat.E164))
    if style == "national":
        return Item("PHONE", pn.format_number(num, pn.PhoneNumberFormat.NATIONAL))
    text = pn.format_number(num, pn.PhoneNumberFormat.INTERNATIONAL)
    return Item("PHONE", text.replace(" ", "-") if style == "intl_dash" else text)


CARD_BRANDS = [  # (prefixes, length, grouping)
    (["4"], 16, (4, 4, 4, 4)), (["51", "52", "53", "54", "55", "2221", "2720"], 16, (4, 4, 4, 4)),
    (["34", "37"], 15, (4, 6, 5)), (["6011", "65"], 16, (4, 4, 4, 4)), (["36"], 14, (4, 6, 4)),
    (["3528", "3589"], 16, (4, 4, 4, 4)), (["62"], 19, (4, 4, 4, 4, 3)),
]


def luhn_digit(body: str) -> str:
    """The check digit that makes ``body + digit`` Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def gen_card(rng: random.Random) -> Item:
    """A Luhn-valid ``CARD`` of a random brand, plain or grouped by spaces or dashes."""
    prefixes, length, groups = rng.choice(CARD_BRANDS)
    body = rng.choice(prefixes)
    body += _s(rng, string.digits, length - 1 - len(body))
    number = body + luhn_digit(body)
    sep = rng.choice(["", " ", "-", " "])
    if not sep:
        return Item("CARD", number)
    parts, i = [], 0
    for g in groups:
        parts.append(number[i:i + g])
        i += g
    return Item("CARD", sep.join(parts))


IBAN_BBAN = {"DE": "n18", "GB": "a4n14", "FR": "n23", "ES": "n20", "IT": "a1n22", "NL": "a4n10", "CH": "n17",
             "AT": "n16", "BE": "n12", "PL": "n24"}


def iban_check(country: str, bban: str) -> str:
    """The two IBAN check digits for ``country`` + ``bban`` (ISO 13616, mod 97)."""
    num = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{98 - num % 97:02d}"


def gen_iban(rng: random.Random) -> Item:
    """An ``IBAN`` with correct check digits, half of them grouped in fours."""
    country = rng.choice(sorted(IBAN_BBAN))
    bban = ""
    for kind, n in re.findall(r"([an])(\d+)", IBAN_BBAN[country]):
        bban += _s(rng, string.ascii_uppercase if kind == "a" else string.digits, int(n))
    iban = country + iban_check(country, bban) + bban
    if rng.random() < 0.5:
        iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return Item("IBAN", iban)


def gen_ipv4(rng: random.Random) -> Item:
    """An ``IPV4`` dotted quad with a common first octet (``192`` always as ``192.168``)."""
    first = rng.choice([10, 172, 192, 34, 52, 81, 185, 203, 8, 91])
    second = 168 if first == 192 else rng.randint(0, 255)
    return Item("IPV4", f"{first}.{second}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")


def gen_ipv6(rng: random.Random) -> Item:
    """An ``IPV6`` under one of four prefixes, compressed or (1 in 4) exploded, some upper-case."""
    import ipaddress

    prefix = rng.choice([0x20010db8, 0x2a001450, 0x26001f18, 0xfe800000])
    addr = ipaddress.IPv6Address((prefix << 96) | rng.getrandbits(rng.choice([16, 32, 64, 96])))
    text = addr.exploded if rng.random() < 0.25 else addr.compressed
    return Item("IPV6", text.upper() if rng.random() < 0.15 else text)


def gen_aws(rng: random.Random) -> Item:
    """An ``AWS_KEY``: an ``AKIA``/``ASIA`` access key id."""
    return Item("AWS_KEY", rng.choice(["AKIA", "ASIA"]) + _s(rng, UPPER32, 16))


def gen_github(rng: random.Random) -> Item:
    """A ``GITHUB_TOKEN``: a classic ``gh?_`` token or (1 in 4) a ``github_pat_`` one."""
    if rng.random() < 0.25:
        return Item("GITHUB_TOKEN", f"github_pat_11{_s(rng, UPPER32, 20)}_{_s(rng, ALNUM, 59)}")
    return Item("GITHUB_TOKEN", rng.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + _s(rng, ALNUM, 36))


def gen_gitlab(rng: random.Random) -> Item:
    """A ``GITLAB_TOKEN`` with a real prefix (``glpat-``, ``gldt-``, ``glrt-``, ``glsoat-``)."""
    prefix = rng.choice(["glpat-", "glpat-", "gldt-", "glrt-", "glsoat-"])
    return Item("GITLAB_TOKEN", prefix + _s(rng, B64URL, 20 if prefix == "glpat-" else rng.randint(20, 30)))


def gen_slack(rng: random.Random) -> Item:
    """A ``SLACK_TOKEN``: a webhook URL, a ``xoxp-`` token or a ``xoxb-``/``xoxa-``/``xoxs-``
    one."""
    r = rng.random()
    if r < 0.2:
        return Item("SLACK_TOKEN", f"https://hooks.slack.com/services/T{_s(rng, UPPER32, 8)}/B{_s(rng, UPPER32, 10)}/"
                                   f"{_s(rng, ALNUM, 24)}")
    if r < 0.5:
        return Item("SLACK_TOKEN", f"xoxp-{rng.randint(10**10, 10**12)}-{rng.randint(10**10, 10**12)}-"
                                   f"{rng.randint(10**10, 10**12)}-{_s(rng, '0123456789abcdef', 32)}")
    return Item("SLACK_TOKEN", f"xox{rng.choice('bas')}-{rng.randint(10**10, 10**12)}-{rng.randint(10**10, 10**12)}-"
                               f"{_s(rng, ALNUM, 24)}")


def gen_openai(rng: random.Random) -> Item:
    """An ``OPENAI_KEY``: legacy ``sk-...T3BlbkFJ...`` or ``sk-proj-``/``svcacct-``/``admin-``."""
    if rng.random() < 0.4:
        return Item("OPENAI_KEY", f"sk-{_s(rng, ALNUM, 20)}T3BlbkFJ{_s(rng, ALNUM, 20)}")
    kind = rng.choice(["proj", "proj", "svcacct", "admin"])
    return Item("OPENAI_KEY", f"sk-{kind}-{_s(rng, B64URL, rng.randint(40, 80))}T3BlbkFJ{_s(rng, B64URL, 40)}")


def gen_jwt(rng: random.Random) -> Item:
    """A ``JWT`` with a real header and payload and a random HS256/RS256/ES256-sized signature."""
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    if rng.random() < 0.5:
        header["kid"] = _s(rng, ALNUM, 12)
    payload = {"sub": str(rng.randint(10**6, 10**9)), "iat": 1764000000 + rng.randint(0, 10**6),
               "scope": rng.choice(["read", "read write", "admin"])}
    sig = bytes(rng.getrandbits(8) for _ in range({"HS256": 32, "RS256": 256, "ES256": 64}[header["alg"]]))
    parts = [_b64url(json.dumps(x, separators=(",", ":")).encode()) for x in (header, payload)]
    return Item("JWT", ".".join([*parts, _b64url(sig)]))


def gen_private_key(rng: random.Random) -> Item:
    """A ``PRIVATE_KEY``: a PEM block of random bytes under one of six labels."""
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
                        "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY"])
    body = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(rng.randint(90, 400)))).decode()
    width = 70 if label.startswith("OPENSSH") else 64
    nl = "\r\n" if rng.random() < 0.1 else "\n"
    lines = [body[i:i + width] for i in range(0, len(body), width)]
    return Item("PRIVATE_KEY", nl.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]))


def gen_stripe(rng: random.Random) -> Item:
    """A ``STRIPE_KEY``: a live secret or restricted key (``sk_live_``, ``rk_live_``)."""
    return Item("STRIPE_KEY", rng.choice(["sk_live_", "rk_live_"]) + _s(rng, ALNUM, rng.choice([24, 34, 99])))


def gen_sendgrid(rng: random.Random) -> Item:
    """A ``SENDGRID_KEY``: ``SG.`` and two base64url parts (22 and 43 characters)."""
    return Item("SENDGRID_KEY", f"SG.{_s(rng, B64URL, 22)}.{_s(rng, B64URL, 43)}")


def gen_npm(rng: random.Random) -> Item:
    """An ``NPM_TOKEN``: ``npm_`` and 36 alphanumerics."""
    return Item("NPM_TOKEN", "npm_" + _s(rng, ALNUM, 36))


def gen_pypi(rng: random.Random) -> Item:
    """A ``PYPI_TOKEN``: the ``pypi-AgEIcHlwaS5vcmc`` prefix and a base64url body."""
    return Item("PYPI_TOKEN", "pypi-AgEIcHlwaS5vcmc" + _s(rng, B64URL, rng.randint(70, 160)))


URL_PW_CHARS = ALNUM + "!$*-_.~"


def gen_url_password(rng: random.Random) -> Item:
    """A ``URL_PASSWORD``: a connection URL's password, with scheme, user and host around it."""
    scheme = rng.choice(["postgres", "postgresql", "mysql", "redis", "amqp", "https", "mongodb+srv", "ftp"])
    user = rng.choice(["admin", "app_user", "deploy", "svc-etl", "bob"])
    pw = _s(rng, ALNUM, rng.randint(6, 10)) + (_s(rng, URL_PW_CHARS, 3) if rng.random() < 0.4 else "")
    if rng.random() < 0.15:
        pw = pw[:4] + "%40" + pw[4:]  # a percent-encoded '@'
    host = rng.choice(["db.example.com:5432", "pg-main:5432", "cache.internal:6379", "mq.example.org", "ftp.example.net"])
    return Item("URL_PASSWORD", pw, before=f"{scheme}://{user}:", after=f"@{host}/{rng.choice(['app', 'prod', '0'])}")


def gen_auth_header(rng: random.Random) -> Item:
    """An ``AUTH_HEADER``: the credentials after ``Basic `` (base64) or ``Bearer ``."""
    if rng.random() < 0.4:
        user = rng.choice(["admin", "ci-bot", "bob"])
        raw = f"{user}:{_s(rng, ALNUM, rng.randint(8, 16))}".encode()
        return Item("AUTH_HEADER", base64.b64encode(raw).decode(), before=rng.choice(["Basic ", "basic "]))
    tok = _s(rng, ALNUM, 4) + str(rng.randint(0, 9)) + _s(rng, ALNUM + "-._~", rng.randint(20, 60))
    return Item("AUTH_HEADER", tok, before=rng.choice(["Bearer ", "Bearer ", "bearer "]))


def gen_name(rng: random.Random) -> Item:
    """A ``NAME`` from ``NAMES``, some upper- or lower-cased."""
    name = rng.choice(NAMES)
    return Item("NAME", rng.choice([name, name, name.upper() if name.isascii() else name, name.lower()]))


def gen_host(rng: random.Random) -> Item:
    """A ``HOST`` from ``HOSTS``, 1 in 5 upper-cased."""
    host = rng.choice(HOSTS)
    return Item("HOST", host.upper() if rng.random() < 0.2 else host)


GENERATORS: dict[str, Callable[[random.Random], Item]] = {
    "EMAIL": gen_email, "PHONE": gen_phone, "CARD": gen_card, "IBAN": gen_iban, "IPV4": gen_ipv4, "IPV6": gen_ipv6,
    "AWS_KEY": gen_aws, "GITHUB_TOKEN": gen_github, "GITLAB_TOKEN": gen_gitlab, "SLACK_TOKEN": gen_slack,
    "OPENAI_KEY": gen_openai, "JWT": gen_jwt, "PRIVATE_KEY": gen_private_key, "STRIPE_KEY": gen_stripe,
    "SENDGRID_KEY": gen_sendgrid, "NPM_TOKEN": gen_npm, "PYPI_TOKEN": gen_pypi, "URL_PASSWORD": gen_url_password,
    "AUTH_HEADER": gen_auth_header, "NAME": gen_name, "HOST": gen_host,
}
KEYS = {"EMAIL": "email", "PHONE": "phone", "CARD": "card_number", "IBAN": "iban", "IPV4": "client_ip",
        "IPV6": "remote_addr", "AWS_KEY": "AWS_ACCESS_KEY_ID", "GITHUB_TOKEN": "GITHUB_TOKEN",
        "GITLAB_TOKEN": "GITLAB_TOKEN", "SLACK_TOKEN": "SLACK_TOKEN", "OPENAI_KEY": "OPENAI_API_KEY", "JWT": "id_token",
        "PRIVATE_KEY": "private_key", "STRIPE_KEY": "STRIPE_SECRET_KEY", "SENDGRID_KEY": "SENDGRID_API_KEY",
        "NPM_TOKEN": "NPM_TOKEN", "PYPI_TOKEN": "TWINE_PASSWORD", "URL_PASSWORD": "database_url",
        "AUTH_HEADER": "Authorization", "NAME": "customer", "HOST": "hostname"}
CREDENTIALS = frozenset({"AWS_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN", "OPENAI_KEY", "JWT", "PRIVATE_KEY",
                         "STRIPE_KEY", "SENDGRID_KEY", "NPM_TOKEN", "PYPI_TOKEN", "URL_PASSWORD", "AUTH_HEADER",
                         "SECRET"})


# ---------------------------------------------------------------------------------------- negatives

def _bad_luhn(rng: random.Random) -> str:
    body = rng.choice("45") + _s(rng, string.digits, 14)
    return body + str((int(luhn_digit(body)) + rng.randint(1, 9)) % 10)


def _bad_iban(rng: random.Random) -> str:
    iban = gen_iban(rng).value.replace(" ", "")
    return iban[:2] + f"{(int(iban[2:4]) + rng.randint(1, 90)) % 100:02d}" + iban[4:]


def _timestamp(rng: random.Random) -> str:
    date = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    return rng.choice([f"{date}T{clock}.{rng.randint(0, 999):03d}Z", f"{date} {clock}",
                       str(rng.randint(1_700_000_000, 1_800_000_000)), str(rng.randint(1_700_000_000_000, 1_800_000_000_000))])


NEGATIVES: dict[str, Callable[[random.Random], str]] = {
    "version": lambda r: r.choice([f"v{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}.{r.randint(0, 99)}",
                                   f"{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}.{r.randint(1, 9)}-rc{r.randint(1, 4)}",
                                   f"{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 9)}",
                                   f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(1, 9)}"]),
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128))),
    "git_sha": lambda r: _s(r, "0123456789abcdef", r.choice([7, 12, 40])),
    "hash": lambda r: r.choice(["sha256:", "", "md5 "]) + _s(r, "0123456789abcdef", r.choice([32, 64])),
    "sri_hash": lambda r: "sha384-" + base64.b64encode(bytes(r.getrandbits(8) for _ in range(48))).decode(),
    "timestamp": _timestamp,
    "order_number": lambda r: r.choice([_bad_luhn(r), " ".join(re.findall(".{4}", _bad_luhn(r))),
                                        f"ORD-2026-{r.randint(0, 999999):06d}"]),
    "bad_iban": _bad_iban,
    "digit_run": lambda r: _s(r, string.digits, r.choice([5, 6, 8, 20, 24, 32])),
    "telegram_id": lambda r: f"-100{r.randint(10**9, 10**10 - 1)}",
    "snowflake_id": lambda r: str(r.randint(10**17, 10**18)),
    "placeholder": lambda r: r.choice(["<EMAIL_1>", "<PHONE_2>", "<CARD_1>", "<IBAN_3>", "<AWS_KEY_1>", "<JWT_2>",
                                       "<PRIVATE_KEY_1>", "<NAME_4>", "<HOST_1>", "[REDACTED]", "<IPV4_2>"]),
    "code_identifier": lambda r: r.choice(["user_email", "get_phone_number()", "os.environ['GITHUB_TOKEN']",
                                           "Authorization: Bearer ${TOKEN}", "Bearer <token>", "AKIA_PREFIX",
                                           "ghp_prefix", "npm_config_cache", "xoxb-your-token", "sk-learn",
                                           "postgres://app:${DB_PASSWORD}@db/app", "card_ok(number)",
                                           "https://{user}:{password}@host/", "iban_check(country, bban)",
                                           "git@github.com:acme/tracebridge.git", "logo@2x.png", "@dataclass",
                                           "BEGIN_PRIVATE_KEY_MARKER", "eyJ prefix", "-----BEGIN CERTIFICATE-----"]),
    "mac_address": lambda r: ":".join(_s(r, "0123456789abcdef", 2) for _ in range(6)),
    "time_of_day": lambda r: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
    "decimal": lambda r: r.choice([f"{r.randint(10**5, 10**7)}.{r.randint(10, 99)}",
                                   f"{r.uniform(-90, 90):.6f}, {r.uniform(-180, 180):.6f}"]),
    "bad_ip": lambda r: f"{r.randint(256, 999)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}",
    "loopback": lambda r: r.choice(["127.0.0.1", "::1", "0.0.0.0", "localhost:8080"]),
    "base64_blob": lambda r: base64.b64encode(bytes(r.getrandbits(8) for _ in range(r.choice([12, 30])))).decode(),
    "semver_range": lambda r: f">={r.randint(1, 9)}.{r.randint(0, 9)},<{r.randint(10, 20)}.0",
    "isbn": lambda r: f"978-{r.randint(0, 9)}-{r.randint(10, 99)}-{r.randint(100000, 999999)}-{r.randint(0, 9)}",
}
