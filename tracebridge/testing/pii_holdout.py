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

This module holds the type lists, the ``Doc`` builder, the contexts that embed a value in trace
text, ``build_holdout`` and ``score``; the value and hard-negative generators live in
``pii_holdout_values``.
"""

from __future__ import annotations

import random
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Span
from tracebridge.curate.redact import Redactor
from tracebridge.testing.pii_holdout_values import VALUES, _s, ipv4, negative, negative_ts, pem_body

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


def _ctx_aws(doc: Doc, r: random.Random, kind: str, value: str, neg: tuple[str, str]) -> None:
    """An AWS key id or secret as env vars, STS JSON or a credentials file hold it."""
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


TOKEN_VARS = {"GITHUB": "GITHUB_TOKEN", "GITLAB": "GITLAB_TOKEN", "SLACK": "SLACK_BOT_TOKEN",
              "OPENAI": "OPENAI_API_KEY", "STRIPE": "STRIPE_SECRET_KEY", "JWT": "id_token",
              "SLACK_WEBHOOK": "webhook_url", "SK_COMPAT": "DEEPSEEK_API_KEY", "ANTHROPIC": "ANTHROPIC_API_KEY"}


def _ctx_token(doc: Doc, r: random.Random, kind: str, value: str, neg: tuple[str, str]) -> None:
    """An API token as an env var, JSON, a client call or a traceback shows it."""
    var = TOKEN_VARS[kind]
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


def _ctx_value(doc: Doc, r: random.Random, kind: str, value: str) -> None:
    """Embed one value in a context that suits its type (how it appears in real traces)."""
    neg = negative(r)
    if kind in ("AWS_KEY_ID", "AWS_SECRET"):
        _ctx_aws(doc, r, kind, value, neg)
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
    elif kind in TOKEN_VARS:
        _ctx_token(doc, r, kind, value, neg)
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
        """Recalled / planted for ``kind`` (None = all types); 1.0 when none was planted."""
        p = self.planted[kind] if kind else sum(self.planted.values())
        got = self.recalled[kind] if kind else sum(self.recalled.values())
        return got / p if p else 1.0

    @property
    def precision(self) -> float:
        """True positives / findings; 1.0 when nothing was found."""
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
