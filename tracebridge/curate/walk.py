"""The walk of a trace record's scannable strings (``Walker``), shared by pass 1 and pass 2 (``redact``).

What is scanned: every string value (and dict key) of a record except structural fields — ids, hashes, timestamps and
the governance/capture blocks (``STRUCTURAL_KEYS``) — so ``run_id`` or ``goal_hash`` never turn into placeholders.
Those names are structural only where the schema puts them: at the record's top level and directly inside the blocks
that hold ids of their own (``payload.call_id``, ``llm.prompt_hash``, ``goal.goal_hash``: ``ID_HOLDERS``). Anywhere
else (tool ``args``, outputs, histories, labels) a key named ``step``, ``role`` or ``event_id`` is the user's data and
is scanned like any other (a name/value entry's ``value`` as under its name: ``pairs.pair_key``). Findings are named
by field (``worker_tool_result.payload.output``), never with their values. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from tracebridge.curate.credentials import SECRET_NAME, argv_clients
from tracebridge.curate.detectors import Detectors, Span
from tracebridge.curate.memo import ScanMemo
from tracebridge.curate.pairs import _VALUE_KEYS, pair_key
from tracebridge.curate.phone_context import phone_key
from tracebridge.curate.secret_shape import secret_shaped
from tracebridge.curate.ssn import ssn_key

STRUCTURAL_KEYS = frozenset({
    "run_id", "event_id", "parent_event_id", "event_type", "timestamp", "root", "step", "role", "schema_version",
    "started_at", "finished_at", "goal_hash", "prompt_hash", "config_hash", "toolset_hash", "call_id", "retry_of",
    "hashes", "data_governance", "capture",
})
EVENT_KEYS = frozenset({"run_id", "step", "event_id", "event_type", "timestamp", "parent_event_id", "root", "role",
                        "payload", "labels", "llm"})
USAGE_KEYS = frozenset({"input_tokens", "output_tokens", "cost_usd", "latency_ms"})  # schema.events.Usage
HASH_HOLDERS = frozenset({"llm", "goal"})  # blocks whose hash fields would trip the token trigger
ID_HOLDERS = HASH_HOLDERS | {"payload"}  # top-level blocks with structural fields of their own (call_id, *_hash)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # one string token of serialised JSON
_HEADER_KEYS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})  # judged by name (``keyed``)
_BARE = re.compile(r"(?ai)-{0,2}(?:secret|token)")  # plurals that hold no secrets: ``list_key``
_NAME_CHARS = re.compile(rb"[A-Za-z0-9_.\-]{1,64}")  # a name ``_held_hit`` judges
_PHONE_NAME_KEYS = ("name", "Name", "type", "Type", "label", "Label", "key", "Key")  # what names a value's phone
_KEYED_NUMBER = re.compile(rb'"([A-Za-z0-9_.\-]{1,64})":\[?\d{7,15}[,}\]]')  # a long integer under a key
_STRONG = re.compile(r"(?ai)pass|secret")  # as ``credentials._STRONG_NAME``
Fn = Callable[[str, str, list[Span]], str]  # (text, field, spans it holds by its place) -> new text


def record_prefix(record: dict[str, Any]) -> str:
    """How findings of a record are named: its event type, ``session``, or nothing."""
    if isinstance(record.get("event_type"), str):
        return record["event_type"]
    if "schema_version" in record and "goal" in record:
        return "session"
    return ""


def _free(v: Any) -> Any:
    """A dict without its structural keys (skipped by the walk at every level), itself with none; else ``v``."""
    if isinstance(v, dict) and not v.keys().isdisjoint(STRUCTURAL_KEYS):
        return {k: x for k, x in v.items() if k not in STRUCTURAL_KEYS}
    return v


def _free_llm(v: Any) -> Any:
    """``_free`` of an event's ``llm`` block, also without a ``usage`` block of the schema's numbers
    only: the walk never rewrites a number, and cost floats (``0.00783788``) would trip the
    digit trigger on most model calls. Any other ``usage`` (a string, an unknown key) stays in."""
    if v is None:  # most events: no model call
        return v
    out = _free(v)
    usage = out.get("usage") if isinstance(out, dict) else None
    if isinstance(usage, dict) and usage.keys() <= USAGE_KEYS and all(
            type(x) in (int, float) for x in usage.values()):
        return {k: x for k, x in out.items() if k != "usage"}  # a copy: ``out`` may be the record's own
    return out


def list_key(name: str, plural: bool = True) -> str | None:
    """The dict key the strings of a list held by the key ``name`` are judged under, or None: ``name`` when
    it names a secret (``SECRET_NAME``), a cookie or ``Authorization`` header or an SSN, else (``plural``)
    its singular, less an ``s`` (``api_keys``, ``passwords``, ``cookies``), but for bare ``secrets``
    (the names of secrets: Compose, GitHub Actions) and ``tokens`` (a tokenizer's output)."""
    n = name.strip().strip("\"'")
    one = n[:-1] if plural and n[-1:] in ("s", "S") and not _BARE.fullmatch(n[:-1]) else ""
    for k in (n, one):
        if k and (SECRET_NAME.fullmatch(k) or k.lower() in _HEADER_KEYS or ssn_key(k)):
            return k
    return None


def _is_cookies(name: str) -> bool:
    """Whether a dict under the key ``name`` holds cookies (``cookies``, ``Cookie``; a ``list_key``)."""
    return (list_key(name) or "").lower() == "cookie"


def _held_hit(data: bytes) -> bool:
    """Whether serialised JSON may hold a list the walk judges by a name outside its strings (``list_key``),
    which the triggers, looking for a name before a separator, miss: ``"api_keys":[``, ``["X-Api-Key","``.
    Found by ``bytes.find`` and each name judged once per process (``_held_name``): the capture path pays
    this for every event (a regex over the record cost as much as all of pass 1 before it)."""
    i = data.find(b'":[')
    while i != -1:
        if _held_name(data[data.rfind(b'"', 0, i) + 1:i], True):
            return True
        i = data.find(b'":[', i + 3)
    i = data.find(b'":{"')
    while i != -1:  # ``"api_keys":{"0":"…"}``: a list by index (a digit opens its first key)
        if 48 <= data[i + 4] <= 57 and _held_name(data[data.rfind(b'"', 0, i) + 1:i], True):
            return True
        i = data.find(b'":{"', i + 4)
    i = data.find(b'["')
    while i != -1:
        j = data.find(b'"', i + 2)
        if j != -1 and data.startswith(b'","', j) and _held_name(data[i + 2:j], False):
            return True
        i = data.find(b'["', i + 2)
    return False


@lru_cache(maxsize=4096)
def _held_name(name: bytes, plural: bool) -> bool:
    """``list_key`` of a name found in serialised JSON (a key opening a list, or a list's first string)."""
    return _NAME_CHARS.fullmatch(name) is not None and list_key(name.decode("ascii"), plural) is not None


def _indexed(v: dict[Any, Any]) -> bool:
    """Whether the dict ``v`` is a list written by index (``{"0": …, "1": …}``; int keys as orjson writes them)."""
    return all(type(k) is int or (isinstance(k, str) and k.isascii() and k.isdigit()) for k in v)


@lru_cache(maxsize=4096)
def _number_key(name: str) -> bool:
    """Whether a number under the dict key ``name`` is a phone number's (``phone``, ``mobile_number``, ``phones``)."""
    return phone_key(name) or (name[-1:] in ("s", "S") and phone_key(name[:-1]))


def _entry_key(entry: dict[Any, Any], key: Any) -> Any:
    """The name ``entry[key]`` is read under (``pairs.pair_key``), or the phone its entry names: a ``value`` beside a
    ``name``/``type``/``label`` naming a phone (``{"type": "mobile", "value": "4155552671"}``, Google's People API)."""
    name = pair_key(entry, key)
    if name is key and key in _VALUE_KEYS:
        for k in _PHONE_NAME_KEYS:
            n = entry.get(k)
            if isinstance(n, str) and phone_key(n):
                return n
    return name


def _top_int(key: Any, v: Any) -> bool:
    """Whether a record's own field ``key`` is an integer the walk looks at (``_number_key``: a bare JSONL line's
    ``{"phone": 4155552671}``)."""
    return type(v) is int and isinstance(key, str) and _number_key(key)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Walker:
    """Applies ``fn(text, field, keyed) -> text`` to every scannable string of a record.

    Containers are serialised once (orjson) and skipped whole when the cheap prefilter finds no
    trigger in them, which is the common case. ``keyed`` are the spans a string holds by its place
    alone (``Detectors.keyed``: under a dict key such as ``api_key``, after an argv ``--password``).
    ``fn`` gets every string of a container that fired and must return a string in which the
    detectors find nothing unchanged: both callers go through ``Detectors.find``, which checks the
    triggers first, so the walk does not check each string again (a string holding a value was
    checked twice: pass 1 of 40 sessions with 758 findings 0.74-0.88 -> 0.59-0.63 s CPU).

    With a ``memo`` (``tracebridge.curate.memo``: for a bundle's rows, which repeat their context) a
    list is walked without a check of its own and a dict's check is remembered by its bytes: what a
    row shares with the rows before it is checked once, and every string still reaches ``fn``
    wherever its dict fires, so the findings are the same. A counting scan (``Scanner``: ``fn`` adds
    findings to ``sink``) also remembers a dict's findings by its bytes, fields named below it (within
    a dict nothing else counts): a repeated message that fires is not walked again, under any field.
    """

    def __init__(self, detectors: Detectors, memo: ScanMemo | None = None) -> None:
        self.det = detectors
        self._pre = detectors.triggered
        self.memo = memo
        self.sink: dict[tuple[str, str], int] | None = None  # a counting scan's findings (``Scanner`` sets it)

    @staticmethod
    def body(rec: dict[str, Any]) -> list[Any] | dict[str, Any]:
        """What of a record is scanned (no structural keys or hashes): an event's three blocks, else its fields, keyed."""
        if "event_type" in rec and rec.keys() <= EVENT_KEYS:  # an event: only these three hold free text
            # payload ids (call_id, retry_of) are skipped by the walk too: left in, they trip the triggers
            return [_free(rec.get("payload")), rec.get("labels"), _free_llm(rec.get("llm"))]
        return {k: ({kk: vv for kk, vv in v.items() if kk not in STRUCTURAL_KEYS} if k in HASH_HOLDERS else v)
                for k, v in rec.items() if k not in STRUCTURAL_KEYS and (isinstance(v, (str, dict, list)) or _top_int(k, v))}

    def _fires(self, data: bytes) -> bool:
        """Trigger check of serialised JSON. When it fires, check again on the string tokens only:
        numbers (ids, seeds, counts) trip the digit trigger but are never scanned as text, but for one
        under a key naming a phone (``"phone":4155552671``: a CSV's column read as integers)."""
        return (self._pre(data) and (self._pre(b"\0".join(_JSON_STRING.findall(data))) or any(
            _number_key(m.group(1).decode("ascii")) for m in _KEYED_NUMBER.finditer(data)))) or _held_hit(data)

    def record(self, rec: dict[str, Any], fn: Fn) -> dict[str, Any]:
        """A copy of ``rec`` with ``fn`` applied (the same object when nothing changed)."""
        body = self.body(rec)
        if not body or (self.memo is None and not self._fires(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS))):
            return rec  # the common case: one serialisation, one trigger check
        prefix = record_prefix(rec)
        out = rec
        for k, v in rec.items():
            if k in STRUCTURAL_KEYS or not (isinstance(v, (str, dict, list)) or _top_int(k, v)):
                continue
            new = self._walk(v, _join(prefix, k), fn, _entry_key(rec, k), skip=STRUCTURAL_KEYS if k in ID_HOLDERS else frozenset())
            if new is not v:
                if out is rec:
                    out = dict(rec)
                out[k] = new
        return out

    def _hit(self, v: Any) -> bool:
        data = orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)
        memo = self.memo
        if memo is None or len(data) < memo.min_bytes:
            return self._fires(data)
        return bool(memo.of(data, len(data), lambda: self._fires(data)))

    def _walk(self, v: Any, path: str, fn: Fn, name: Any = None, argv: bool = False,
              skip: frozenset[str] = frozenset(), client: str = "") -> Any:
        """Descend only into containers whose serialisation trips a trigger. ``name``: the dict key
        of ``v`` or (``argv``) the list element before it; ``client``: the client named before it in
        that list (``argv_clients``: ``"http"`` after curl or wget, ``"mysql"`` after a MySQL client).
        ``skip``: keys of ``v`` itself left alone (a top-level block's structural fields); every deeper
        key is scanned."""
        if isinstance(v, str):
            keyed = self.det.keyed(name, v, argv, client) if isinstance(name, str) else []
            return fn(v, path, keyed)  # fn checks the triggers first (see the class docstring)
        if type(v) is int and isinstance(name, str) and not argv and _number_key(name):  # ``{"phone": 4155552671}``
            text = str(v)
            new = fn(text, path, self.det.keyed(name, text))
            return v if new == text else new  # a placeholder string where the number was one
        if isinstance(v, dict) and v and isinstance(name, str) and not argv and _is_cookies(name):
            return self._fields(v, path, fn, skip, self._jar_value(v))  # walked unchecked: its key is outside it
        if isinstance(v, dict) and v and isinstance(name, str) and not argv and _indexed(v) \
                and (held := list_key(name)) is not None:  # ``{"set-cookie": {"0": …}}``: a list as PHP and JS write it
            return self._fields(v, path, fn, skip, held=held)
        if isinstance(v, dict) and isinstance(name, str) and not argv and not _VALUE_KEYS.isdisjoint(v) \
                and (held := list_key(name, plural=False)) is not None:  # ``terraform output -json``'s
            return self._fields(v, path, fn, skip, self._wrapped_value(held))  # ``{"db_password": {"value": …}}``
        if isinstance(v, dict) and isinstance(name, str) and not argv and not _VALUE_KEYS.isdisjoint(v) \
                and phone_key(name):  # ``{"phoneNumbers": [{"value": "4155552671"}]}``
            return self._fields(v, path, fn, skip, self._wrapped_value(name))
        if isinstance(v, dict) and v and self.sink is not None and self.memo is not None:
            return self._counted(v, path, fn, skip)
        if isinstance(v, (list, tuple)) and v:  # a tuple is written as a JSON array: the capture path must see into it
            return self._list(v, path, fn, name if isinstance(name, str) and not argv else None)
        if not isinstance(v, dict) or not v or not self._hit(v):
            return v
        return self._fields(v, path, fn, skip)

    def _list(self, v: list[Any] | tuple[Any, ...], path: str, fn: Fn, key: str | None) -> Any:
        """``v`` with ``fn`` applied to its strings, judged as an argv list (each after the element before
        it), or, held by a dict key that names a secret (``key``, ``list_key``: ``{"set-cookie": […]}``,
        ``{"api_keys": […]}``), each as a string under that key, in nested lists too; the value of a
        name/value pair (``["Authorization", "Token …"]``, as WSGI and ASGI log headers) as under its name."""
        held = list_key(key) if key is not None else None
        names = key is not None and key[-1:] in ("s", "S") and _BARE.fullmatch(key[:-1]) is not None  # ``secrets``
        pair = None if held is not None or names or len(v) != 2 or not isinstance(v[1], str) \
            or not isinstance(v[0], str) or v[0][:1] == "-" else list_key(v[0], plural=False)  # ``["--password", …]``: argv
        phones = held is None and key is not None and not names and phone_key(key)
        if held is None and pair is None and not phones and self.memo is None and not self._hit(v):
            return v  # a held list is walked unchecked: its key, which makes it a secret, is outside it
        if held is not None:
            new = [self._held(x, path, fn, held) for x in v]
        elif phones:  # ``{"phones": ["4155552671", 2125550123]}``: each under the key
            new = [self._walk(x, path, fn, key if isinstance(x, (str, int, dict)) else None) for x in v]
        elif pair is not None:
            new = [self._walk(v[0], path, fn), self._walk(v[1], path, fn, pair)]
        else:
            new = [self._walk(x, path, fn, prev, True, client=c) for prev, x, c in zip((None, *v), v, argv_clients(v))]
        return v if all(a is b for a, b in zip(new, v)) else new

    def _held(self, x: Any, path: str, fn: Fn, key: str) -> Any:
        """An element of a list under the secret name ``key``. Under a password or secret name one with a
        blank is no password: that is where APIs put their messages (``{"password": ["This field is
        required."]}``, Django REST framework's errors); the detectors still scan it as text."""
        if not isinstance(x, str):
            return self._walk(x, path, fn, key if isinstance(x, (list, tuple)) or _is_cookies(key) else None)
        keyed = [] if _STRONG.search(key) and any(c.isspace() for c in x.strip()) else self.det.keyed(key, x)
        return fn(x, path, keyed)

    def _counted(self, v: dict[Any, Any], path: str, fn: Fn, skip: frozenset[str]) -> dict[Any, Any]:
        """A counting scan of the dict ``v``: what it adds to ``sink``, remembered by its bytes."""
        memo, sink = self.memo, self.sink
        assert memo is not None and sink is not None
        data = orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)
        if len(data) < memo.min_bytes or not path:
            if self._fires(data):
                self._fields(v, path, fn, skip)
            return v
        key = (skip, data)
        added = memo.get(key)
        if added is None:  # walked under a stand-in path: a message recurs under ``messages`` and ``prompt``
            self.sink = {}
            try:
                if self._fires(data):
                    self._fields(v, "\0", fn, skip)
                added = memo.put(key, len(data), tuple(self.sink.items()))
            finally:
                self.sink = sink
        for (kind, below), n in added:
            at = (kind, path + below[1:])
            sink[at] = sink.get(at, 0) + n
        return v

    def _wrapped_value(self, held: str) -> Callable[[Any, str], list[Span]]:
        """The spans of a dict's string under the secret or phone name ``held`` by its key: its ``value`` field
        (Terraform's outputs, ``{"sensitive": true, "type": "string", "value": "…"}``) as under ``held`` itself."""
        return lambda k, x: self.det.keyed(held, x) if k in _VALUE_KEYS else []

    def _jar_value(self, v: dict[Any, Any]) -> Callable[[Any, str], list[Span]]:
        """The spans of a dict's string under a ``cookies`` key, by its key: a browser's cookie object
        (``{"name": "sessionid", "value": "…", "domain": …}``: Playwright, Selenium, CDP) its ``value``,
        else a jar's (``{"sessionid": "…"}``: requests, httpx) every value; each where it looks like a
        secret (``secret_shaped``: ``theme=dark`` stays)."""
        obj = "name" in v and "value" in v

        def value(k: Any, x: str) -> list[Span]:
            if "secrets" not in self.det.on or (obj and k != "value") or not secret_shaped(x.strip()):
                return []
            start = x.index(x.strip())
            return [Span(start, start + len(x.strip()), "SECRET")]
        return value

    def _fields(self, v: dict[Any, Any], path: str, fn: Fn, skip: frozenset[str],
                value: Callable[[Any, str], list[Span]] | None = None, held: str | None = None) -> dict[Any, Any]:
        """``v`` with ``fn`` applied to its keys and values (a copy when one changed); ``value``: the
        spans a string value holds by its key, when ``v``'s place decides them (a cookie jar); ``held``:
        the secret name ``v``'s values are judged under, as a held list's (``_held``)."""
        out = v
        keys_hit = self._hit([k for k in v if isinstance(k, str) and k not in skip])
        for k, x in v.items():
            if k in skip:
                continue
            key_hit = keys_hit and isinstance(k, str) and self._pre(k)
            nk = fn(k, path + ".<key>", []) if key_hit else k
            # a key that may hold PII is not named in the field paths of findings (report, manifest)
            at = _join(path, "<key>" if key_hit else str(k))
            if value is not None and isinstance(x, str):
                nx = fn(x, at, value(k, x))
            elif held is not None:
                nx = self._held(x, at, fn, held)
            else:
                nx = self._walk(x, at, fn, _entry_key(v, k))  # {"name": "DB_PASSWORD", "value": …}
            if nk is not k or nx is not x:
                if out is v:
                    out = dict(v)
                if nk is not k:
                    del out[k]
                out[nk] = nx
        return out
