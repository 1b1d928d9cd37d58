"""Planted secrets and a scan for them, raw or encoded, in every file a run wrote: the check
behind "no secret value appears in any config, manifest, log or report"."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import orjson

SECRETS = {"aws_key": "AKIAQWERTYUIOPASDFGH", "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQwErTyUiO",
           "github": "ghp_" + "Zx9" * 12, "url_password": "Hunter2Sup3rS3cret",
           "email": "planted.person@example.net", "card": "4242 4242 4242 4242"}


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


def scan(roots: Iterable[Path]) -> tuple[int, list[str]]:
    """(files scanned, ``path: secret`` for each planted value found in any encoding)."""
    needles = {name: encodings(v) for name, v in SECRETS.items()}
    n, leaks = 0, []
    for root in roots:
        for p in sorted(Path(root).rglob("*")):
            if not p.is_file() or p.is_symlink():
                continue
            try:
                data = p.read_bytes()
            except OSError:
                continue
            n += 1
            leaks += [f"{p}: {name}" for name, es in needles.items() if any(e in data for e in es)]
    return n, leaks
