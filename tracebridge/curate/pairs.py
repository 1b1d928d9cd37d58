"""A secret whose name and value are two fields of one entry, and the secret-name patterns it shares
with ``tracebridge.curate.credentials``.

Kubernetes and ECS ``env`` lists, SSM and CloudFormation parameters, ``docker inspect`` and many
APIs write a variable as ``{"name": "DB_PASSWORD", "value": "…"}`` (or ``Name``/``Value``,
``ParameterKey``/``ParameterValue``, maybe a short field between: SSM's ``"Type": "SecureString"``),
in YAML as ``- name: DB_PASSWORD`` with ``value: …`` on the next line. No secret name stands before
the value, so the credentials by context missed it. Here: ``pair_key`` (a record's dict: the name its
``value`` field is read under), ``pair_spans`` (the same in text, JSON inside a string included) and
``pair_hit`` (their trigger on folded bytes, a superset). The value is judged as after a dict key of
that name (``secret_shape.secret_shaped``). The name is read before the value (the order these tools
write) and after it (``PAIR_AFTER``: ``{"value": "…", "name": "DB_PASSWORD"}``, ``- value: …`` with
``name: …`` on the next line), as a serialiser that sorts keys or a hand-written list puts it. Pure; no
I/O; imports nothing of the triggers, which import it.
"""

from __future__ import annotations

import re
from typing import Any

from tracebridge.curate.secret_shape import secret_shaped

# ASCII case folding only (``(?a)``): under Unicode folding "ſ" and "K" (Kelvin) would match "s"
# and "k", which the byte trigger, lowering ASCII only, would not see.
NAME = r"(?:passw(?:or)?d|passphrase|secret|token|(?:api|secret|access|private|auth|client|account)[_-]?key)"
# A value in quotes (escaped ones too, at any depth: JSON inside a string, ``\\\"`` of JSON inside
# JSON inside a string, as tool outputs of tool outputs hold it), which may hold blanks, or bare, up to
# whitespace, a quote or ``` , ; & < > ( ) [ ] { }``, also after a quote that is not closed on its
# line (a cut-off output: ``password: "hunter2x9``). In JSON inside a string, whitespace is written
# as an escape (``token:\\n檢查…`` is ``token:`` at a line's end; deeper, ``\\\\\\n``): a bare value
# ends before one, and ``\\t`` is a blank of the separator.
VALUE = (
    r"(?=(?P<q>\\*[\"'])(?P<quoted>(?:(?!(?P=q))[^\r\n]){1,512})(?P=q)"
    r"|(?:\\*[\"'])?(?P<bare>(?:(?!\\+[nrt])[^\s\"'`,;&<>()\[\]{}]){1,512}))"
)
BLANK = r"(?:[ \t]|\\+t)"  # a blank, raw or escaped
_NAME_KEYS = ("name", "Name", "key", "Key", "ParameterKey", "ParameterName")
_VALUE_KEYS = frozenset({"value", "Value", "ParameterValue"})
_PAIR_NAME = re.compile(rf"(?ai)[A-Za-z0-9_.\-]*{NAME}")  # the name's last ``/`` part, whole
_QUOTE, _GAP = (
    r"\\*[\"']?",
    rf"{BLANK}{{0,8}}",
)  # blanks between the fields: bounded, as the trigger's window
PAIR = re.compile(
    rf"(?ai)(?<![A-Za-z0-9_])(?:parameter)?(?:name|key){_QUOTE}{_GAP}[:=]{_GAP}{_QUOTE}"
    rf"(?P<name>[A-Za-z0-9_.\-/]{{0,64}}?{NAME}){_QUOTE}"
    rf"(?:{_GAP},{_GAP}(?:\\*\"[A-Za-z]{{1,16}}\\*\"{_GAP}:{_GAP}\\*\"[^\"\\\r\n]{{0,32}}\\*\"{_GAP},{_GAP})?"
    rf"|{_GAP}(?:\r?\n|\\+r\\+n|\\+n)[ \t]{{0,32}}(?:-[ \t]{{0,4}})?)"
    rf"{_QUOTE}(?:parameter)?value{_QUOTE}{_GAP}:{_GAP}{VALUE}"
)
# The value wrapped in an object under the secret's name, maybe after a few short fields (``terraform output
# -json``: ``"db_password": {"sensitive": true, "type": "string", "value": "…"}``), over lines too
_WS = r"(?:[ \t]|\r?\n|\\+[rnt]){0,40}"
_FIELD = rf"\\*\"[A-Za-z_]{{1,16}}\\*\"{_GAP}:{_GAP}(?:true|false|null|-?\d{{1,12}}|\\*\"[^\"\\\r\n]{{0,32}}\\*\"){_GAP},"
WRAPPED = re.compile(
    rf"(?ai)(?<![A-Za-z0-9_])(?P<name>[A-Za-z0-9_.\-]{{0,64}}?{NAME}){_QUOTE}{_GAP}:{_GAP}\{{"
    rf"(?:{_WS}{_FIELD}){{0,4}}{_WS}{_QUOTE}value{_QUOTE}{_GAP}:{_GAP}{VALUE}"
)
_LINE_END = re.compile(r"[ \t]*(?:#|\r?\n|\\+[rn]|\\*\"|\Z)")
# The value first, then the name (``{"value": "…", "name": "DB_PASSWORD"}``, ``Value``/``Key`` too): the
# value's quote (escaped ones too: JSON inside a string) closed, a ``,`` (or a line end, YAML) and maybe a
# short field between, then the name field. The value is matched whole here (``PAIR``'s is a lookahead).
PAIR_AFTER = re.compile(
    rf"(?ai)(?<![A-Za-z0-9_])(?:parameter)?value{_QUOTE}{_GAP}:{_GAP}"
    rf"(?:(?P<q>\\*[\"'])(?P<quoted>(?:(?!(?P=q))[^\r\n]){{1,512}})(?P=q)"
    rf"|(?P<bare>(?:(?!\\+[nrt])[^\s\"'`,;&<>()\[\]{{}}]){{1,512}}))"
    rf"(?:{_GAP},{_GAP}(?:\\*\"[A-Za-z]{{1,16}}\\*\"{_GAP}:{_GAP}\\*\"[^\"\\\r\n]{{0,32}}\\*\"{_GAP},{_GAP})?"
    rf"|{_GAP}(?:\r?\n|\\+r\\+n|\\+n)[ \t]{{0,32}})"
    rf"{_QUOTE}(?:parameter)?(?:name|key){_QUOTE}{_GAP}[:=]{_GAP}{_QUOTE}"
    rf"(?P<name>[A-Za-z0-9_.\-/]{{0,64}}?{NAME})(?![A-Za-z0-9_.\-/])"
)
# The trigger: a ``value`` key, and within the 320 bytes before it a secret name closing a field and
# a ``,`` or line end after it (``PAIR`` spans at most ~200 bytes between the two). ``\0`` ends a dict
# key in the walk's check of a record's strings joined (``tracebridge.curate.walk.Walker``).
_VALUE_KEY = re.compile(rb"alue(?<=value)\\*[\"']?(?:[ \t]|\\+t){0,8}[:\0]").search
PAIR_HEAD = re.compile(
    rb"(?:pass(?:word|wd|phrase)|secret|token|key)\\*[\"']?(?:[ \t]|\\+t){0,8}(?:,|\r?\n|\\+r\\+n|\\+n"
    rb"|:(?:[ \t]|\\+t){0,8}\{)"  # ... or opening an object (``WRAPPED``)
)
# ``PAIR_AFTER``'s trigger (any depth of escaped quotes: JSON in JSON in a string): a name field holding a secret name within the 1024 bytes after a ``value`` key
PAIR_TAIL = re.compile(rb"(?:name|key)\\*[\"']?(?:[ \t]|\\+t){0,8}[:=\0](?:[ \t]|\\+t){0,8}\\*[\"']?"
                       rb"[a-z0-9_.\-/]{0,64}?(?:pass(?:word|wd|phrase)|secret|token|key)")


def pair_hit(low: bytes) -> bool:
    """Whether ``low`` (ASCII lower-cased bytes) may hold a ``PAIR``."""
    m = _VALUE_KEY(low)
    while m is not None:
        if PAIR_HEAD.search(low, max(0, m.start() - 320), m.start()) is not None \
                or PAIR_TAIL.search(low, m.end(), m.end() + 1024) is not None:
            return True
        m = _VALUE_KEY(low, m.end())
    return False


def pair_key(entry: dict[Any, Any], key: Any) -> Any:
    """The name ``entry[key]`` is read under: the secret's name when ``key`` is the value field of a
    name/value entry naming a secret (``{"name": "DB_PASSWORD", "value": …}`` -> ``DB_PASSWORD``;
    SSM's ``/prod/db/password`` -> ``password``), else ``key`` itself."""
    if key not in _VALUE_KEYS:
        return key
    for k in _NAME_KEYS:
        name = entry.get(k)
        if isinstance(name, str):
            name = name.rstrip("/").rpartition("/")[2]
            return name if _PAIR_NAME.fullmatch(name) else key
    return key


def pair_spans(text: str) -> list[tuple[int, int]]:
    """The values of ``PAIR`` entries in ``text`` that are secrets, as ``(start, end)``: a quoted one
    as a dict key's string (any shape after a ``pass``/``secret`` name), a bare one as after ``name:``."""
    out: list[tuple[int, int]] = []
    # no value field: nothing to find (PAIR's search tries every n and k of the text)
    if "alue" not in text and "ALUE" not in text:
        return out
    for m in (*PAIR.finditer(text), *PAIR_AFTER.finditer(text), *WRAPPED.finditer(text)):
        password = re.search(r"(?ai)pass|secret", m.group("name")) is not None
        if m.group("quoted") is not None:
            ok = secret_shaped(m.group("quoted"), password, "upper")
            g = "quoted"
        else:
            g = "bare"
            word = ("any" if password else "upper") if _LINE_END.match(text, m.end(g)) else ""
            ok = secret_shaped(m.group(g), False, word)
        if ok:
            out.append((m.start(g), m.end(g)))
    return out
