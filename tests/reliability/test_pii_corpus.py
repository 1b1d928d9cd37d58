"""PII/secret recall and precision on the seeded labelled corpus, and the two redaction passes over it.

The corpus is checked first (every planted card passes Luhn, every IBAN mod 97, every phone is
valid per ``phonenumbers``, tokens have their real shapes...), so the figures cannot come from a
corpus that plants nothing real.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jwt
import phonenumbers
import pytest

from tracebridge.curate.detectors import Detectors
from tracebridge.curate.redact import Redactor, Scanner
from tracebridge.testing.pii_corpus import (
    GENERATORS,
    HOSTS,
    NAMES,
    PHONE_REGIONS,
    Doc,
    build_corpus,
    corpus_config,
)
from tracebridge.testing.pii_score import Score, score

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 525  # 25 per type
# Token shapes as the issuers document them (written here, apart from the generator and the detectors).
SHAPES = {
    "AWS_KEY": r"(AKIA|ASIA)[A-Z2-7]{16}",
    "GITHUB_TOKEN": r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
    "GITLAB_TOKEN": r"gl(pat|dt|rt|soat)-[A-Za-z0-9_-]{20,}",
    "SLACK_TOKEN": r"xox[bpas]-\d{10,13}-\d{10,13}(-\d{10,13})?-[A-Za-z0-9]{24,32}"
                   r"|https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{24}",
    "OPENAI_KEY": r"sk-([a-z]+-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
    "STRIPE_KEY": r"[sr]k_live_[A-Za-z0-9]{24,99}",
    "SENDGRID_KEY": r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
    "NPM_TOKEN": r"npm_[A-Za-z0-9]{36}",
    "PYPI_TOKEN": r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{70,}",
    "EMAIL": r"[a-z0-9._+-]+(@|%40)[a-z0-9.-]+\.[a-z]{2,}",
    "URL_PASSWORD": r"[A-Za-z0-9!$*._~%-]{6,}",
}
CARD_PREFIX = re.compile(r"4|5[1-5]|222[1-9]|2720|3[47]|6011|65|36|35(2[89]|[3-8]\d)|62")


@pytest.fixture(scope="module")
def corpus() -> list[Doc]:
    return build_corpus(seed=0, items=ITEMS)


@pytest.fixture(scope="module")
def result(corpus: list[Doc]) -> Score:
    return score(corpus, Detectors(corpus_config()))


def _values(corpus: list[Doc], kind: str) -> list[str]:
    """Planted values of ``kind`` as written, JSON escapes undone."""
    out = []
    for doc in corpus:
        for lab in doc.labels:
            if lab.kind == kind:
                v = doc.text[lab.start:lab.end]
                while "\\" in v:
                    v = json.loads(f'"{v}"')
                out.append(v)
    return out


def _luhn(digits: str) -> bool:
    doubled = [int(c) * (1 + i % 2) for i, c in enumerate(reversed(digits))]
    return sum(d // 10 + d % 10 for d in doubled) % 10 == 0


def test_corpus_size_and_coverage(corpus: list[Doc]) -> None:
    kinds = Counter(lab.kind for d in corpus for lab in d.labels)
    assert sum(kinds.values()) >= 500 and set(kinds) == set(GENERATORS)
    assert min(kinds.values()) >= 25, kinds
    negatives = Counter(n.kind for d in corpus for n in d.negatives)
    assert sum(negatives.values()) >= 300 and len(negatives) >= 20
    contexts = {d.context.split("_")[0] for d in corpus}
    assert {"prose", "log", "json", "code", "url", "markdown"} <= contexts
    assert {"prose_de", "prose_fr", "prose_es", "prose_ja", "prose_zh", "prose_ar", "prose_ru"} <= {d.context for d in corpus}
    for doc in corpus:  # labels do not overlap each other or a negative
        spans = sorted((lab.start, lab.end) for lab in doc.labels + doc.negatives)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), doc.text
    assert build_corpus(seed=0, items=ITEMS)[5].text == corpus[5].text  # seeded


def test_corpus_values_are_really_valid(corpus: list[Doc]) -> None:
    cards = [re.sub(r"[ -]", "", v) for v in _values(corpus, "CARD")]
    assert all(_luhn(c) and CARD_PREFIX.match(c) and 14 <= len(c) <= 19 for c in cards), cards
    assert len({len(c) for c in cards}) >= 3  # several networks
    for iban in (v.replace(" ", "") for v in _values(corpus, "IBAN")):
        assert int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1, iban
    assert len({v[:2] for v in _values(corpus, "IBAN")}) >= 5
    regions = set()
    for phone in _values(corpus, "PHONE"):
        num = next(n for n in (phonenumbers.parse(phone, r) for r in PHONE_REGIONS) if phonenumbers.is_valid_number(n))
        regions.add(phonenumbers.region_code_for_number(num))
    assert len(regions) >= 5, regions
    for token in _values(corpus, "JWT"):
        assert jwt.get_unverified_header(token)["typ"] == "JWT"
        assert "sub" in jwt.decode(token, options={"verify_signature": False})
    for block in _values(corpus, "PRIVATE_KEY"):
        lines = block.replace("\r\n", "\n").split("\n")
        assert re.fullmatch(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", lines[0]) and lines[-1] == lines[0].replace("BEGIN", "END")
        assert base64.b64decode("".join(lines[1:-1]), validate=True)
    for cred in _values(corpus, "AUTH_HEADER"):  # Basic user:password, or a bearer token68
        basic = re.fullmatch(r"[A-Za-z0-9+/]+=*", cred) and b":" in base64.b64decode(cred + "=" * (-len(cred) % 4))
        assert basic or re.fullmatch(r"[A-Za-z0-9._~+/-]{25,}", cred), cred
    for kind, shape in SHAPES.items():
        values = _values(corpus, kind)
        assert values and all(re.fullmatch(shape, v) for v in values), (kind, values)
    assert {v.lower() for v in _values(corpus, "NAME")} <= {n.lower() for n in NAMES}
    assert {v.lower() for v in _values(corpus, "HOST")} <= set(HOSTS)


def test_recall_and_precision(result: Score) -> None:
    assert result.recall() >= 0.99, result.misses
    assert result.precision() >= 0.95, result.false_pos
    for kind in GENERATORS:  # at most one miss of the 25 planted values of each type
        assert result.recall(kind) >= 0.96, (kind, [m for m in result.misses if m[0] == kind])


def test_negatives_alone_find_nothing_but_rare_lookalikes(corpus: list[Doc], result: Score) -> None:
    on_negatives = [f for f in result.false_pos if f[3]]
    assert len(on_negatives) <= 0.02 * sum(len(d.negatives) for d in corpus), on_negatives


def test_pass2_finds_nothing_after_pass1(corpus: list[Doc]) -> None:
    cfg = corpus_config()
    records = [{"run_id": "pii-run", "event_id": f"e{i}", "event_type": "worker_tool_result", "step": i,
                "payload": {"output": d.text, "steps": [{"args": {"note": d.text}}]}} for i, d in enumerate(corpus)]
    redactor = Redactor(cfg, key=b"k" * 32)
    redacted = redactor.redact_all(records, scope="pii-run")
    assert sum(redactor.findings("pii-run").values()) >= ITEMS
    assert redactor.rewritten_findings("pii-run") == Counter()  # the exporter's pass 2 after its own pass 1
    assert Scanner(cfg).scan_all(redacted) == Counter()  # the exporter's pass 2 over captured runs
    for doc, rec in zip(corpus, redacted):
        for text in (rec["payload"]["output"], rec["payload"]["steps"][0]["args"]["note"]):
            leaked = [doc.text[lab.start:lab.end] for lab in doc.labels if doc.text[lab.start:lab.end] in text]
            assert not leaked, (doc.context, leaked)


def test_chaos_pii_smoke() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "chaos_pii.py"), "--smoke"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    m = re.search(r"recall ([\d.]+) \((\d+)/(\d+).*precision ([\d.]+)", last)
    assert m and int(m.group(3)) >= 500 and float(m.group(1)) >= 0.99 and float(m.group(4)) >= 0.95, last
