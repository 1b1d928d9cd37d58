"""A seeded, labelled PII/secret corpus: planted items with exact spans, and hard negatives.

``build_corpus(seed, items)`` returns ``Doc``s. Each holds one to three planted values (every
detector type of ``tracebridge.curate.detectors``, generated valid by
``tracebridge.testing.pii_values``: Luhn-valid cards of several networks, IBANs with correct check
digits, phone numbers valid per ``phonenumbers``, tokens with their real prefixes and lengths,
JWTs, PEM blocks) and look-alike negatives (versions, UUIDs,
hashes, timestamps, Luhn-failing order numbers, placeholders, code identifiers...), rendered in a
context: prose (English and six other languages around the value), log lines, nested JSON
(escaped once or twice), source code and config files, URLs (query strings, userinfo) and
markdown. A label is the exact span of the value as it appears in the text (so an escaped PEM
block is labelled in its escaped form).

Deliberate labelling choices: a bare, valid dotted quad is an IPv4 address even when it could be a
version; a version is a negative when written as one (``v1.2.3.4``, ``1.2.3.4-rc1``). Random digit
runs are planted as negatives at lengths 5, 6, 8, 20, 24 and 32: a 10-digit run that is a valid
US number in national format is a phone number by any rule, so it is not planted as a negative
(an 8-digit run starting with 0 can still be a valid German number; those few are counted as
false positives).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field

from tracebridge.curate.config import RedactionConfig
from tracebridge.testing.pii_values import (
    CREDENTIALS,
    GENERATORS,
    HOSTS,
    KEYS,
    NAMES,
    NEGATIVES,
    PHONE_REGIONS,
    Item,
)


def corpus_config() -> RedactionConfig:
    """The redaction config the corpus is scored with: defaults plus its terms and phone regions."""
    return RedactionConfig(terms={"NAME": list(NAMES), "HOST": list(HOSTS)}, phone_regions=list(PHONE_REGIONS))


@dataclass(frozen=True)
class Label:
    """``text[start:end]`` is a planted value of ``kind`` (``NEG:<what>`` for a hard negative)."""

    start: int
    end: int
    kind: str


@dataclass
class Doc:
    """One rendered document with its labels."""

    text: str
    context: str
    labels: list[Label] = field(default_factory=list)
    negatives: list[Label] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- contexts

def _mark(i: int, depth: int = 0) -> str:
    """A slot marker in a template; ``depth`` = how many times the value is JSON-escaped there."""
    return f"\ue000{i}:{depth}\ue001"


_MARK = re.compile("\ue000(\\d+):(\\d+)\ue001")
PROSE = {
    "en": ["Please contact {} before Friday.", "The value {} showed up in the tool output.",
           "Customer record: {} (verified)."],
    "de": ["Bitte kontaktieren Sie {} bis morgen.", "Der Wert {} wurde im Protokoll gefunden.",
           "Kundendaten: {} – bitte vertraulich behandeln."],
    "fr": ["Veuillez contacter {} avant vendredi.", "La valeur « {} » a été trouvée dans le journal."],
    "es": ["Por favor, escriba a {} mañana.", "El valor es {}; no lo compartas."],
    "ja": ["詳細は{}までご連絡ください。", "ログに{}が記録されました。", "値（{}）を確認してください。"],
    "zh": ["请联系{}获取详情。", "配置中的值为{}，请勿外传。"],
    "ar": ["يرجى التواصل عبر {} في أقرب وقت.", "القيمة هي {} حسب السجل."],
    "ru": ["Пожалуйста, свяжитесь по {} завтра.", "Значение: {}. Не передавайте его."],
}
LOG_MSGS = ["request from {k}={v} took {ms}ms", "auth ok for {v}", "retrying call with {k}: {v}",
            "user supplied {v} in form field {k}"]
MULTILINE = {"PRIVATE_KEY"}


def ctx_prose(rng: random.Random, items: list[Item]) -> tuple[str, str]:
    """The items in sentences of one language; returns ``(prose_<lang>, template)``."""
    lang = rng.choice(sorted(PROSE))
    return f"prose_{lang}", " ".join(rng.choice(PROSE[lang]).format(_mark(i)) for i in range(len(items)))


def ctx_log(rng: random.Random, items: list[Item]) -> tuple[str, str]:
    """The items as values in timestamped log lines, one each; returns ``(log, template)``."""
    lines = []
    for i, it in enumerate(items):
        ts = f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        msg = rng.choice(LOG_MSGS).format(k=KEYS.get(it.kind, "value"), v=_mark(i, 1 if it.kind in MULTILINE else 0),
                                          ms=rng.randint(1, 900))
        lines.append(f"{ts}.{rng.randint(0, 999):03d}Z {rng.choice(['INFO', 'WARN', 'DEBUG'])} "
                     f"[worker-{rng.randint(1, 9)}] {msg}")
    return "log", "\n".join(lines)


def _payload(rng: random.Random, items: list[Item]) -> dict:
    rows = [{"id": rng.randint(1, 500), KEYS.get(it.kind, "value"): _mark(i, 0)} for i, it in enumerate(items)]
    return {"tool": rng.choice(["http_get", "sql_query", "read_file"]), "status": 200,
            "result": {"items": rows, "meta": {"page": 1, "note": "ok"}}}


def ctx_json(rng: random.Random, items: list[Item]) -> tuple[str, str]:
    """The items in a nested JSON tool result (compact or indented), escaped once; returns
    ``(json, template)``."""
    text = json.dumps(_payload(rng, items), ensure_ascii=False, indent=rng.choice([None, 2]))
    return "json", text.replace(":0\ue001", ":1\ue001")


def ctx_json_escaped(rng: random.Random, items: list[Item]) -> tuple[str, str]:
    """The items in a JSON tool result held as a string in a message, escaped twice; returns
    ``(json_escaped, template)``."""
    inner = json.dumps(_payload(rng, items), ensure_ascii=False)
    text = json.dumps({"role": "tool", "content": inner}, ensure_ascii=False)
    return "json_escaped", text.replace(":0\ue001", ":2\ue001")


def ctx_code(rng: random.Random, items: list[Item]) -> tuple[str, str]:
    """The items assigned in a Python, .env, YAML, JS or curl snippet; returns
    ``(code_<style>, template)``."""
    style = rng.choice(["python", "env", "yaml", "js", "curl"])
    lines = []
    for i, it in enumerate(items):
        key, m = KEYS.get(it.kind, "value"), _mark(i, 1 if it.kind in MULTILINE else 0)
        if style == "python":
            lines.append(f'{key.upper()} = "{m}"  # TODO: move to vault' if it.kind not in MULTILINE
                         else f'{key.upper()} = """{_mark(i)}"""')
        elif style == "env":
            lines.append(f"export {key.upper()}={m}" if rng.random() < 0.5 else f'{key.upper()}="{m}"')
        elif style == "yaml":
            lines.append(f'  {key.lower()}: "{m}"')
        elif style == "js":
            lines.append(f"const {key.lower()} = '{m}';")
        else:
            hdr = f"{key}: {m}" if it.kind == "AUTH_HEADER" else f"X-Debug-{key}: {m}"
            lines.append(f"curl -s -H '{hdr}' https://api.example.com/v1/orders")
    head = {"python": "import os\n", "env": "# .env\n", "yaml": "service:\n", "js": "// config.js\n", "curl": "#!/bin/sh\n"}
    return f"code_{style}", head[style] + "\n".join(lines)


def ctx_url(rng: random.Random, items: list[Item]) -> tuple[str, str]:
    """The items in query strings, or as URL userinfo (some credentials); returns
    ``(url, template)``."""
    out = []
    for i, it in enumerate(items):
        m = _mark(i, 1 if it.kind in MULTILINE else 0)
        if it.kind in CREDENTIALS and it.kind not in MULTILINE | {"URL_PASSWORD", "AUTH_HEADER"} and rng.random() < 0.5:
            out.append(f"git clone https://oauth2:{m}@git.example.com/acme/app.git")  # userinfo
        else:
            out.append(f"GET https://api.example.com/v2/search?q=report&{KEYS.get(it.kind, 'v').lower()}={m}&limit=50")
    return "url", "\n".join(out)


def ctx_markdown(rng: random.Random, items: list[Item]) -> tuple[str, str]:
    """The items in a Markdown table or bullet list; returns
    ``(markdown_table|markdown_list, template)``."""
    if rng.random() < 0.5:
        rows = [f"| {i + 1} | {KEYS.get(it.kind, 'value')} | {_mark(i, 1 if it.kind in MULTILINE else 0)} |"
                for i, it in enumerate(items)]
        return "markdown_table", "## Findings\n\n| # | field | value |\n|---|---|---|\n" + "\n".join(rows)
    bullets = [f"- **{KEYS.get(it.kind, 'value')}**: `{_mark(i)}`" for i, it in enumerate(items)]
    return "markdown_list", "### Notes\n\n" + "\n".join(bullets)


CONTEXTS = [ctx_prose, ctx_prose, ctx_log, ctx_json, ctx_json_escaped, ctx_code, ctx_url, ctx_markdown]


def _escape(text: str, depth: int) -> str:
    for _ in range(depth):
        text = json.dumps(text, ensure_ascii=False)[1:-1]
    return text


def render(template: str, items: list[Item], context: str) -> Doc:
    """Fill the slot markers of ``template`` with ``items`` and record each value's span."""
    doc = Doc(text="", context=context)
    parts, pos, out_len = [], 0, 0
    for m in _MARK.finditer(template):
        parts.append(template[pos:m.start()])
        out_len += len(parts[-1])
        it, depth = items[int(m.group(1))], int(m.group(2))
        before, value, after = (_escape(x, depth) for x in (it.before, it.value, it.after))
        start = out_len + len(before)
        label = Label(start, start + len(value), it.kind)
        (doc.negatives if it.kind.startswith("NEG:") else doc.labels).append(label)
        parts.append(before + value + after)
        out_len += len(parts[-1])
        pos = m.end()
    parts.append(template[pos:])
    doc.text = "".join(parts)
    return doc


def build_corpus(seed: int = 0, items: int = 525, negatives: int | None = None) -> list[Doc]:
    """A labelled corpus: ``items`` planted values spread evenly over every type (at least 25 each)
    and ``negatives`` hard negatives (default ``max(300, 0.6 * items)``), 1–3 per document."""
    rng = random.Random(seed)
    per_type = max(25, -(-items // len(GENERATORS)))
    pool = [GENERATORS[k](rng) for k in GENERATORS for _ in range(per_type)]
    n_neg = negatives if negatives is not None else max(300, int(0.6 * items))
    neg_kinds = sorted(NEGATIVES)
    pool += [Item(f"NEG:{k}", NEGATIVES[k](rng)) for k in (neg_kinds[i % len(neg_kinds)] for i in range(n_neg))]
    rng.shuffle(pool)
    docs, i = [], 0
    while i < len(pool):
        n = rng.randint(1, 3)
        chunk = pool[i:i + n]
        i += n
        name, template = rng.choice(CONTEXTS)(rng, chunk)
        docs.append(render(template, chunk, name))
    return docs
