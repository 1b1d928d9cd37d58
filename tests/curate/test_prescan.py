"""The Hyperscan prescan (``tracebridge.curate.prescan``) before the triggers: wherever a check
fires, one of its alternatives matches (so skipping the checks it rules out loses nothing), the
findings are the same with and without it, and it rules out the common clean text."""

from __future__ import annotations

import base64
import itertools
import pickle
import random
import subprocess
import sys

import orjson
import pytest

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.detectors import Detectors
from tracebridge.curate.prescan import Prescan, check_patterns, prescan
from tracebridge.curate.redact import Redactor
from tracebridge.testing.pii_corpus import build_corpus, corpus_config
from tracebridge.testing.pii_values import GENERATORS

pytest.importorskip("hyperscan")

KEYS = ["email", "ipv4", "iban", "digits", "ipv6", "credential", "terms"]
# what the checks look at beside the planted values: flags, clients, names, markers, escapes
NEIGHBOURS = ["mysql -p", "-u bob", "tsc -p .", "mongo -p x", "login bob password hunter2", "machine h password x",
              "--db-password=x", "-passin pass:x", "keytool -storepass x", "smbclient -U a%b", "redis-cli -a x",
              "api_key: x", 'env["TOKEN"] = "x"', "secret=", "Bearer abc", "basic", "AKIA", "ghp_", "sk-", "xoxb-",
              "eyJhbGciOi", "SG.", "aws", "hooks.slack.com", "-----BEGIN PRIVATE KEY-----", "https://u:p@h/x",
              "SecretAccessKey", "%40", "@", "::", "1.2.3", "\\n", "\\t", "\\u00e9", "\t", "\n", "é", "٤١٥", "ｱ",
              "Alice Smith", "ALICE SMITH", "Jeſſica", "db01.corp.internal", "x" * 20, "Zm9vOmJhcg==", " ", '"',
              "de89 3704 0044 0532 0130 00", "nl91 abna 0417 1643 00", "\\nde89 3704 0044 0532 0130 00",
              "discord.com/api/webhooks/123456789012345678/", "?sv=2021-06-08&sig=", "&sig=", "&sv=2022-11-02",
              "AC0123456789abcdef0123456789abcdef", "hooks.slack.com/workflows/T0123456/",
              "Cookie: session=", "set-cookie:", "curl -b 'sid=", "--cookie", "\\t-b",
              "jane dot doe", " at ", " dot com", "[at]", "(at)", "[.]", "<dot>", " DOT ", "example"]


def _samples(seed: int = 3) -> list[str]:
    """Texts to hold the prescan to: the labelled PII corpus, every generator's values, and random
    glue of values and the neighbours the checks look for."""
    rng = random.Random(seed)
    out = [d.text for d in build_corpus(seed, 525)]
    for _ in range(3000):
        parts = [GENERATORS[rng.choice(sorted(GENERATORS))](rng).value if rng.random() < 0.4 else rng.choice(NEIGHBOURS)
                 for _ in range(rng.randint(1, 5))]
        out.append(rng.choice(["", " ", "\n", "=", ":", "/"]).join(parts))
    return out


@pytest.mark.parametrize("cfg", [corpus_config(), RedactionConfig(),
                                 RedactionConfig(terms={"NAME": ["Alice Smith", "Jörg Müller"]})],
                         ids=["corpus", "default", "terms"])
def test_every_check_that_fires_has_an_alternative_that_matches(cfg: RedactionConfig) -> None:
    det = Detectors(cfg)
    ps = det._prescan
    assert isinstance(ps, Prescan)
    fired = 0
    for text in _samples():
        for data in (text.encode("utf-8", "surrogatepass"), orjson.dumps({"k": [text]})):
            hits = ps.hits(data)
            for i, (_, check) in enumerate(det._checks):
                if check(data):
                    fired += 1
                    assert i in hits, (i, data[:300])
            if not data.isascii() and det._non_ascii(text, data):
                assert len(det._checks) in hits, data[:300]
    assert fired > 3000


def test_findings_are_the_same_with_and_without_the_prescan(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = corpus_config()
    with_ps = Detectors(cfg)
    monkeypatch.setenv("TRACEBRIDGE_PRESCAN", "off")
    without = Detectors(cfg)
    assert with_ps._prescan is not None and without._prescan is None
    texts = _samples(5)
    assert [with_ps.find(t) for t in texts] == [without.find(t) for t in texts]
    assert [with_ps.fired(t) for t in texts] == [without.fired(t) for t in texts]
    event = {"run_id": "r", "event_type": "worker_tool_result", "event_id": "e", "payload": {"out": texts[:50]}}
    assert Redactor(cfg, key=b"k" * 32).redact(event) == _redact_off(cfg, event, monkeypatch)


def _redact_off(cfg: RedactionConfig, event: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("TRACEBRIDGE_PRESCAN", "off")
    red = Redactor(cfg, key=b"k" * 32)
    assert red.detectors._prescan is None
    return red.redact(event)


def test_base64_pattern_is_exactly_sixteen_characters_of_printable_text() -> None:
    ps = Prescan(["credential"])
    rng = random.Random(1)
    for _ in range(500):
        raw = bytes(rng.choice(b"\t\n\r" + bytes(range(32, 127))) for _ in range(12))
        assert ps.hits(b" " + base64.b64encode(raw) + b" ") == {0}, raw
    # a hex hash, a path, base64 of binary: no match
    for clean in (b"c06c93e5fedd499ea5c591d923b26936f758a9fb", b"/home/u/proj/src/index", base64.b64encode(bytes(range(200, 212)))):
        assert ps.hits(clean) == set(), clean


def test_clean_tool_output_is_ruled_out_and_each_check_is_named_by_its_hit() -> None:
    det = Detectors(RedactionConfig())
    ps = det._prescan
    assert ps is not None
    for clean in (b'{"out":"tsc -p . && ls -la src/"}', b"at Object.<anonymous> (/home/u/proj/src/index.ts:42:13)",
                  "naïve café".encode()):
        assert ps.hits(clean) == set(), clean
    keys = [k for k in KEYS if k != "terms"]
    assert ps.hits(b"mail bob@example.com") == {keys.index("email")}
    assert ps.hits(b"call 415-555-2671") == {keys.index("digits")}
    assert ps.hits(b"mongo -p hunter2") == {keys.index("credential")}  # a flag with its client
    assert ps.hits("٤١٥٥٥٥٢٦٧١".encode()) == {len(keys)}  # digits of another script


def test_prescan_can_be_turned_off_and_every_key_has_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(check_patterns(words_b=[b"x"], other_digits=True)) == {*KEYS, "non_ascii"}
    assert all(check_patterns(words_b=[b"x"], other_digits=True, words_u=True).values())
    assert prescan(["email"]) is prescan(["email"])  # compiled once per process
    monkeypatch.setenv("TRACEBRIDGE_PRESCAN", "off")
    assert prescan(["email"]) is None



def test_a_prescan_travels_by_pickle_as_its_arguments() -> None:
    ps = Prescan(["email", "digits", "terms"], words_b=[b"alice smith"])
    again = pickle.loads(pickle.dumps(ps))
    assert again is not ps
    for data in (b"bob@example.com", b"call 415-555-2671", b"ALICE Smith", b"nothing here"):
        assert again.hits(data) == ps.hits(data)
    assert ps.hits(b"ALICE Smith") == {2}


def test_without_hyperscan_the_checks_all_run() -> None:
    # a process where the wheel cannot be imported: the triggers still fire (every check runs)
    code = ("import sys; sys.modules['hyperscan'] = None\n"
            "from tracebridge.curate.detectors import Detectors\n"
            "d = Detectors(); assert d._prescan is None\n"
            "assert d.triggered(b'bob@example.com') and d.triggered(b'mongo -p x') and not d.triggered(b'hello')\n"
            "print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_threads_share_one_database_with_a_scratch_each() -> None:
    # a Recorder's redactor may serve agent threads at once: Hyperscan needs a scratch per thread
    from concurrent.futures import ThreadPoolExecutor

    det = Detectors(corpus_config())
    assert det._prescan is not None
    data = [t.encode("utf-8", "surrogatepass") for t in _samples(7)] * 3
    alone = [det._prescan.hits(d) for d in data]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(det._prescan.hits, data, chunksize=16))
    assert together == alone


def test_the_compiled_database_is_kept_and_loaded_again(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracebridge.curate.prescan import CACHE_KEEP, cache_dir

    monkeypatch.setenv("TRACEBRIDGE_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    keys = ["email", "digits", "credential", "non_ascii"]
    samples = [t.encode("utf-8", "surrogatepass") for t in _samples(9)[:400]]
    first = Prescan(keys, other_digits=True)
    (kept,) = (tmp_path / "cache").glob("prescan-*.hsdb")
    expect = [first.hits(d) for d in samples]
    assert any(expect)
    loaded = Prescan(keys, other_digits=True)
    assert [loaded.hits(d) for d in samples] == expect  # loaded, same answers
    assert len(list((tmp_path / "cache").iterdir())) == 1  # no temporary file left, no second entry
    # a cut or changed file is compiled again (and kept again); so is a cache that cannot be written
    for broken in (kept.read_bytes()[:1000], kept.read_bytes()[:-1] + b"x"):
        kept.write_bytes(broken)
        again = Prescan(keys, other_digits=True)
        assert [again.hits(d) for d in samples] == expect
        assert kept.read_bytes() != broken
    monkeypatch.setenv("TRACEBRIDGE_CACHE_DIR", str(kept))  # a file where the folder should be
    uncached = Prescan(keys, other_digits=True)
    assert [uncached.hits(d) for d in samples] == expect
    # other patterns: another entry
    monkeypatch.setenv("TRACEBRIDGE_CACHE_DIR", str(tmp_path / "cache"))
    Prescan(["email"])
    assert len(list((tmp_path / "cache").glob("prescan-*.hsdb"))) == 2
    Prescan(["email", "terms"], words_b=[b"alice smith"])  # user terms (personal data): never written
    assert len(list((tmp_path / "cache").glob("prescan-*.hsdb"))) == 2
    for pair in list(itertools.combinations(KEYS[:-1], 2))[:20]:  # each set of checks makes one
        Prescan(list(pair))
    left = list((tmp_path / "cache").glob("prescan-*.hsdb"))
    assert len(left) == CACHE_KEEP and not list((tmp_path / "cache").glob("*.tmp"))
    assert all(b"alice" not in p.read_bytes() for p in left)
