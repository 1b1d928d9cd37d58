"""E-mail addresses written so that scrapers miss them, which ``detectors.EMAIL`` (an ``@``) misses too.

Two forms (``obfuscated_emails``), each redacted whole as ``EMAIL``:

- bracketed: ``jane[at]example[.]com``, ``jane (at) example (dot) com``, ``jane{at}example.com``,
  ``jane.doe <at> mail <dot> example <dot> org``: an ``at`` in brackets is written on purpose, so any
  address-shaped text around it counts (no blank inside the brackets: ``[ at ]`` is not looked for);
- spelled out: ``jane dot doe at example dot com``, ``JANE AT EXAMPLE DOT COM``: the domain must end in
  `` dot `` and a common top-level domain (``TLDS``) and a one-word local part must be no word of prose
  before "at" (``_PROSE``), so "look at the data", "meet at example.com" and "looked at example dot com"
  stay. A spelled-out address with a one-word name that is also such a word (``me at example dot com``)
  is missed.

``obfuscated_hit`` is the trigger on bytes (text and JSON-serialised text), a superset. Pure; no I/O.
"""

from __future__ import annotations

import re

TLDS = ("com", "org", "net", "edu", "gov", "mil", "int", "io", "co", "uk", "de", "fr", "nl", "es", "it", "ch", "at",
        "be", "se", "no", "dk", "fi", "pl", "cz", "ru", "jp", "cn", "in", "au", "ca", "us", "br", "mx", "info", "biz",
        "me", "dev", "ai", "app", "xyz", "eu", "tv")
_WORD = r"[A-Za-z0-9_%+\-]{1,64}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_OPEN, _CLOSE = r"[ \t]*[\[({<]", r"[\])}>][ \t]*"  # no blank inside: ``[ at ]`` (rare) made the prescan ~15% slower
_AT = rf"{_OPEN}(?i:at|@){_CLOSE}"
_DOT = rf"(?:{_OPEN}(?i:dot|\.){_CLOSE}|\.|[ \t]+(?:dot|DOT)[ \t]+)"
BRACKETED = re.compile(rf"(?<![\w.%+\-])[A-Za-z0-9_%+\-]{{1,64}}(?:{_DOT}{_WORD})*{_AT}{_LABEL}(?:{_DOT}{_LABEL})*"
                       rf"{_DOT}[A-Za-z]{{2,24}}(?![\w\-])")
_TLD = "(?:" + "|".join(TLDS) + ")"
SPELLED = re.compile(rf"(?<![\w.%+\-])(?P<local>{_WORD}(?: (?:dot|DOT) {_WORD})*) (?:at|AT) {_LABEL}"
                     rf"(?: (?:dot|DOT) {_LABEL})* (?:dot|DOT) (?i:{_TLD})(?![\w\-])")
# Words that stand before "at" in prose (a verb, a pronoun, a function word), never taken for a one-word name.
_PROSE = frozenset((
    "a", "all", "am", "an", "and", "any", "are", "as", "at", "back", "based", "be", "been", "being", "best",
    "but", "by", "can", "could", "data", "did", "do", "does", "done", "down", "each", "email", "even", "file",
    "files", "find", "first", "found", "from", "go", "good", "got", "great", "had", "has", "have", "he", "her",
    "here", "him", "his", "home", "hosted", "how", "i", "if", "in", "is", "it", "its", "just", "last", "least",
    "listed", "live", "lives", "living", "located", "look", "looked", "looking", "looks", "mail", "me", "meet",
    "more", "most", "my", "no", "not", "now", "of", "off", "on", "once", "one", "only", "or", "our", "out",
    "over", "posted", "published", "reach", "reached", "s", "see", "seen", "set", "she", "so", "some", "stay",
    "still", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "up", "us",
    "was", "we", "were", "what", "when", "where", "which", "who", "will", "with", "work", "works", "would", "you",
    "your"
))
_BRACKET_AT = re.compile(r"(?i)[\[({<](?:at|@)[\])}>]").search
_BRACKET_AT_B = re.compile(_BRACKET_AT.__self__.pattern.encode()).search
# brackets -> "(" and ")", "a"/"A" -> "a", "t"/"T" -> "t", the rest "." (the trigger's first, C-speed pass)
_BRACKETS = bytes(40 if chr(i) in "[({<" else 41 if chr(i) in "])}>" else 97 if chr(i) in "aA" else 116 if chr(i) in "tT"
                  else 46 for i in range(256))
_SPELLED_B = re.compile(rb"(?i) dot " + _TLD.encode() + rb"(?![A-Za-z0-9_\-])").search
# the prescan's patterns of ``obfuscated_hit`` (case-blind; the end of the spelled form left open)
PRESCAN = (_BRACKET_AT_B.__self__.pattern.removeprefix(b"(?i)"), rb" dot " + _TLD.encode())


def obfuscated_emails(text: str) -> list[tuple[int, int]]:
    """The bracketed and spelled-out addresses of ``text``, as ``(start, end)``."""
    out = []
    if _BRACKET_AT(text) is not None:
        out += [m.span() for m in BRACKETED.finditer(text)]
    if " dot " in text.lower():
        out += [m.span() for m in SPELLED.finditer(text)
                if " " in m.group("local") or m.group("local").lower() not in _PROSE]
    return out


def obfuscated_hit(data: bytes) -> bool:
    """Whether ``data`` may hold what ``obfuscated_emails`` finds: an ``at`` in brackets, or `` dot `` and a
    top-level domain (``[@]`` holds an ``@``, which opens the e-mail group before this). C-speed first (a
    translation, literal finds): most text holds neither."""
    if data.translate(_BRACKETS).find(b"(at)") >= 0 and _BRACKET_AT_B(data) is not None:
        return True
    return (data.find(b" dot ") >= 0 or data.find(b" DOT ") >= 0) and _SPELLED_B(data) is not None
