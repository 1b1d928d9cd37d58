"""Planted secrets and a scan for them, raw or encoded, in every file a run wrote: the check
behind "no secret value appears in any config, manifest, log or report"."""

from __future__ import annotations

import base64
import os
import random
import string
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import orjson


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    digits.append((10 - total % 10) % 10)
    return " ".join("".join(map(str, digits[i:i + 4])) for i in range(0, 16, 4))


def make_secrets(seed: int | None = None) -> dict[str, str]:
    """Fresh values of each planted kind (random per run, so no copy of the source that defines
    them, e.g. a job's shipped working dir, can hold them)."""
    rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8), "big"))
    up, alnum = string.ascii_uppercase + string.digits, string.ascii_letters + string.digits

    def pick(chars: str, n: int) -> str:
        return "".join(rng.choice(chars) for _ in range(n))

    return {"aws_key": "AKIA" + pick(up, 16), "aws_secret": pick(alnum + "/+", 40), "github": "ghp_" + pick(alnum, 36),
            "url_password": pick(alnum, 18), "email": f"planted.{pick(string.ascii_lowercase, 8)}@example.net",
            "card": _luhn_card(rng)}


SECRETS = make_secrets()


def planted_text() -> str:
    """Every secret in a context the detectors are built for (agent output, env dump, URL)."""
    s = SECRETS
    return (f"token {s['github']} key {s['aws_key']} AWS_SECRET_ACCESS_KEY=\"{s['aws_secret']}\" "
            f"db https://admin:{s['url_password']}@db.example.com/x mail {s['email']} card {s['card']}")


def planted_env() -> dict[str, str]:
    """The secrets as the environment a config names them by (credentials, tokens, URLs)."""
    return {"GITHUB_TOKEN": SECRETS["github"], "AWS_ACCESS_KEY_ID": SECRETS["aws_key"],
            "AWS_SECRET_ACCESS_KEY": SECRETS["aws_secret"],
            "DATABASE_URL": f"postgres://admin:{SECRETS['url_password']}@db.example.com/x"}


def encodings(value: str) -> list[bytes]:
    """``value`` raw, base64 (both alphabets), URL-quoted, JSON-escaped and without spaces."""
    raw = value.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw), urllib.parse.quote(value).encode(),
            urllib.parse.quote_plus(value).encode(), orjson.dumps(value)[1:-1], value.replace(" ", "").encode()]


def scan(roots: Iterable[Path], since: float | None = None) -> tuple[int, list[str]]:
    """(files scanned, ``path: secret`` for each planted value found in any encoding); with
    ``since``, only files modified at or after that epoch time (a shared folder's new files)."""
    needles = {name: encodings(v) for name, v in SECRETS.items()}
    n, leaks = 0, []
    for root in roots:
        for p in sorted(Path(root).rglob("*")):
            try:
                if not p.is_file() or p.is_symlink() or (since is not None and p.stat().st_mtime < since):
                    continue
                data = p.read_bytes()
            except OSError:
                continue
            n += 1
            leaks += [f"{p}: {name}" for name, es in needles.items() if any(e in data for e in es)]
    return n, leaks
