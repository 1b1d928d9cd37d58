"""When a bare digit run that parses as a phone number is one: the context it needs (``phone_context``).

A number written as people write phone numbers (``(212) 555-0123``, ``212-555-0123``, ``+1 212 555 0123``)
stands alone. A bare run of digits (``2125550123``) is how agent traces write ids: order and user ids in
URL paths and queries (``/orders/2125550123/items``, ``?id=4155550199``), under id keys (``"user_id":
"6505550100"``), epoch-like numbers. Such a run is a phone number only with a phone word nearby: a label
naming a phone (``phone: …``, ``"mobile_number": "…"``, ``Tel. …``, ``?phone=…``, ``tel:…``, ``wa.me/…``),
or, where no label stands right before it, a phone word in the text around it (``call me at …``, ``my cell
is …``, ``… (mobile)``). A label of an id (``user_id``, ``orderId``, ``order number``) or a URL path or query
that names no phone makes it no phone number whatever else is near. Under a record's dict key the key is the
label (``phone_key``: ``{"phone": "4155552671"}``). Pure; no I/O.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Words that name a phone in any identifier or text (``phone_number``, ``mobilePhone``, ``tel_no``, ``SMS``)
_PHONE = (r"phone|phones|telephone|tel|mobile|cellphone|sms|whatsapp|msisdn|fax|landline|hotline"
          # ... and in the languages chats are written in (``Telefon``, ``Handy``, ``portable``, ``電話``)
          r"|telefon|telefono|teléfono|telefone|téléphone|tél|handy|mobil|móvil|movil|cellulare|celular|portable"
          r"|rufnummer|natel|gsm|電話|电话|手机|手機|携帯|전화|휴대폰|телефон|тел|моб")
# ... and words that do only as whole words (``call me``, not ``call_id`` or ``tool_call``)
_PHONE_WORD = (r"call|calls|called|calling|callback|cell|dial|dialed|dialled|ring|text\s+me|text\s+us|txt|ph"
               r"|signal|viber|my\s+number|your\s+number|his\s+number|her\s+number|their\s+number|number\s+is"
               r"|reach\s+me|reach\s+us|contact\s+me|contact\s+us")
_FIRST = "".join(sorted({c for w in f"{_PHONE}|{_PHONE_WORD}".split("|") for c in (w[0].lower(), w[0].upper())}))
# a word's first letter first: most places of a text fail on it, not on each of the words (15 us -> 1 us a window)
_NEAR = re.compile(rf"(?i)(?=[{_FIRST}])(?:(?<![A-Za-z])(?:{_PHONE})(?![a-z])"
                   rf"|(?<![A-Za-z0-9_])(?:{_PHONE_WORD})(?![A-Za-z0-9_]))")
# A phone link right before the number: ``tel:``, ``sms:``, ``callto:``, ``wa.me/``, ``?phone=`` (``_near`` takes those)
_LINKS = tuple(f"{s}{e}" for s in ("tel", "sms", "callto", "whatsapp") for e in (":", ":/", "://")) + ("wa.me/",)
# The text the number continues without a blank: a path, a URL, ``key=``
_TOKEN = re.compile(r"[^\s\"'<>(){}\[\]`,;|]*")  # matched on the text before it reversed: linear
_QUERY = re.compile(r"[?&;]([A-Za-z][\w.\-]*)=\Z")
# A label right before the number, up to three words (``Phone number:``, ``"user_id": "``, ``id=``), in JSON inside a
# string too (``\"tel\": \"``)
# matched on the text before it reversed (linear: a search ending at the number tried every place of its window)
_LABEL = re.compile(r"[ \t]*[\"']?\\*[ \t]*[:=][ \t]*(?P<q>[\"']\\*)?\.?(?P<label>[\w\-]*[A-Za-z](?:[ \t][\w.\-]*[A-Za-z]){0,2})")
_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# A label's last part that makes the value an id, a time or a reference, not a phone number
_ID_PARTS = frozenset({
    "id", "ids", "uid", "uuid", "guid", "pk", "key", "ref", "hash", "sha", "ts", "time", "timestamp", "epoch", "seq",
    "serial", "version", "rev", "nonce", "seed", "offset", "count", "size", "order", "invoice", "ticket", "sku",
    "isbn", "code", "token", "session", "trace", "span", "build", "run", "job", "pid", "port",
})
# Keys that hold a phone number by their whole name (a message's addressee, as SMS APIs write it)
_PHONE_PARTS = frozenset(_PHONE.split("|")) | {"contact"}  # in a label (``Emergency contact:``); ``contact_id`` is an id
_PHONE_IDS = frozenset({"wa_id", "waid"})  # ids that are phone numbers (WhatsApp's Cloud API: ``"wa_id": "1415…"``)
_ADDRESSEE = frozenset({"to", "from", "recipient", "recipients", "sender", "caller", "callee", "destination"})
_BEFORE, _AFTER = 40, 24  # characters of text around the number looked at for a phone word


@lru_cache(maxsize=2048)
def _label_says(label: str) -> bool | None:
    """What a label says of the number after it: True a phone (``phone``, ``Mobile no``, ``call me at``), False
    an id (``user_id``, ``orderId``, ``order number``), None nothing (``output``, ``result``)."""
    words = label.lower().split()
    parts = [p.lower() for p in _PARTS.findall(label)]
    if not parts:
        return None
    if label.lower().replace("-", "_") in _PHONE_IDS:
        return True
    if parts[-1] in _ID_PARTS:
        return False
    if _PHONE_PARTS.intersection(parts) or _NEAR.search(label) or (len(words) == 1 and words[0] in _ADDRESSEE):
        return True
    if parts[-1] in ("number", "num", "no", "nr", "nbr") or len(words) > 1:
        return False  # a number named as something else (``order number``, ``account no``)
    return None


def phone_key(name: str) -> bool:
    """Whether a record's dict key ``name`` names a phone number (``phone``, ``mobile_number``, ``to``)."""
    return len(name) <= 64 and _label_says(name.strip().strip("\"'")) is True


def phone_context(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]``, a valid phone number, is one: written with a separator or ``+`` it is; a
    bare digit run (in parentheses too) needs the context of one."""
    if not text[start:end].lstrip("(（").rstrip(")）").isdigit():
        return True  # ``(2125550123)`` is a bare run too: a call's argument
    before = text[max(0, start - 200):start][::-1]
    token = before[:_TOKEN.match(before).end()][::-1]  # type: ignore[union-attr]
    if token[-12:].lower().endswith(_LINKS):
        return True
    if "/" in token or "?" in token or "&" in token:  # in a URL or a path: only a query key naming a phone
        q = _QUERY.search(token)
        return q is not None and _label_says(q.group(1)) is True
    if text[end:end + 1] in ("/", "?", "&", "#") or text[start - 1:start] in ("-", "_"):
        return False  # a path's part (``2125550123/items``), an id's (``ORD-2125550123``)
    label = _LABEL.match(text[max(0, start - _BEFORE):start][::-1])
    says = _label_says(label.group("label")[::-1]) if label else None
    if says is not None or (label and label.group("q")):  # a quoted key decides alone, as a record's dict key
        return bool(says)  # does (``phone_key``): pass 1 of a record and push's check of its row agree
    return _NEAR.search(text, max(0, start - _BEFORE), start) is not None or \
        _NEAR.search(text, end, end + _AFTER) is not None
