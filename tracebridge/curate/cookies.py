"""Cookies: a session cookie is a login, so its value leaves the host no more than a password does.

Found in an HTTP ``Cookie:`` header (every ``name=value`` pair of it: ``Cookie: session=…; csrftoken=…``),
a ``Set-Cookie:`` header (its first pair: the attributes after it, ``Path=/; HttpOnly``, are none), in
curl's ``--cookie`` and, after curl in the same command, ``-b`` (``curl -b 'sid=…'``; a value without
``=`` is a cookie jar's file name), also as a record's string under a ``Cookie``/``Set-Cookie`` key or
after such an argv flag (``cookie_keyed``). A value is taken where it looks like a secret
(``secret_shape.secret_shaped``: ``theme=dark``, ``lang=en-US``, ``session=deleted`` stay). In JSON text
the header's quotes may be escaped, at any depth. ``cookie_hit`` is the trigger, on folded bytes (a
superset). Pure; no I/O; imports nothing of the triggers, which import it.
"""

from __future__ import annotations

import re

from tracebridge.curate.secret_shape import secret_shaped

# the header's name and separator (``Cookie: ``, ``"set-cookie": "``, ``\"Cookie\": \"``)
_HEADER = re.compile(r"(?ai)(?<![\w-])(?P<set>set-)?cookie\\*[\"']?[ \t]*[:=][ \t]*\\*[\"']?")
# curl's flag, maybe quoted after it
_FLAG = re.compile(r"(?<![\w-])(?P<flag>-b|--cookie)(?:[ \t]+|=)\\*[\"']?")
_CURL = re.compile(r"(?<![\w.-])curl(?:\.exe)?(?![\w.-])(?:[^;|&\n]|&(?!&))*\Z")  # before it in the same command
# ``name=value`` pairs, ``; `` between: a cookie-octet is no blank, quote, comma, semicolon or backslash
_PAIR = re.compile(r"[ \t]*(?P<name>[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64})=(?P<value>[^\s\";,\\']{1,4096})")
_SEP = re.compile(r"[ \t]*;")
_COOKIE_B = re.compile(rb"ookie(?<=cookie)").search
_DASH_B = re.compile(rb"-b[ \t\\\"'=\0]").search


def _pairs(text: str, pos: int, first_only: bool) -> list[tuple[int, int]]:
    """The secret-shaped values of the ``name=value`` pairs from ``pos`` on (``first_only``: one)."""
    out = []
    while (m := _PAIR.match(text, pos)) is not None:
        if secret_shaped(m.group("value")):
            out.append(m.span("value"))
        if first_only or (sep := _SEP.match(text, m.end())) is None:
            break
        pos = sep.end()
    return out


def cookie_spans(text: str) -> list[tuple[int, int]]:
    """The cookie values of ``text``'s ``Cookie``/``Set-Cookie`` headers and curl's ``-b``/``--cookie``."""
    out: list[tuple[int, int]] = []
    low = text.lower()
    if "cookie" in low:
        for m in _HEADER.finditer(text):
            out += _pairs(text, m.end(), m.group("set") is not None)
    if "--cookie" in text or ("-b" in text and "curl" in text):
        for m in _FLAG.finditer(text):
            if m.group("flag") == "--cookie" or _CURL.search(text, max(0, m.start() - 1024), m.start()):
                out += _pairs(text, m.end(), False)
    return out


def cookie_keyed(name: str, value: str, argv: bool = False, client: str = "") -> list[tuple[int, int]]:
    """The cookie values of ``value``, a record's string under the dict key ``name`` (``Cookie``,
    ``Set-Cookie``), or (``argv``) after the argv element ``name``: ``--cookie``, or ``-b`` after curl
    (``client`` ``"http"``)."""
    low = name.strip().strip("\"'").lower()
    if argv:
        return _pairs(value, 0, False) if low == "--cookie" or (low == "-b" and client == "http") else []
    return _pairs(value, 0, low == "set-cookie") if low in ("cookie", "set-cookie") else []


def cookie_hit(low: bytes, data: bytes) -> bool:
    """Whether ``data`` (``low``: folded) may hold what ``cookie_spans`` or ``cookie_keyed`` find:
    ``cookie``, or ``-b`` and ``curl``."""
    return _COOKIE_B(low) is not None or (_DASH_B(data) is not None and b"curl" in low)
