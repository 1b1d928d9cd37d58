"""US Social Security numbers: ``123-45-6789`` anywhere, and after a label (``SSN: 123456789``,
``social security number 123 45 6789``) without dashes too; in records also under an ``ssn`` key (``ssn_keyed``).

A number the SSA never issues is none: area ``000``, ``666`` or ``9xx`` (ITINs and the like), group
``00``, serial ``0000``. Dashed, the shape is rare enough in tool output to stand alone (dates are
4-2-2, phone numbers 3-3-4); bare nine digits or groups split by blanks are ids and table columns
unless a label says otherwise. Pure; no I/O.
"""

from __future__ import annotations

import re

_NUMBER = r"(?!000|666|9)\d{3}(?P<sep>[- ]?)(?!00)\d{2}(?P=sep)(?!0000)\d{4}"
_DASHED = re.compile(r"(?<![\w\-.+/])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w\-]|\.\d)")
_LABELLED = re.compile(
    rf"(?ai)(?<![A-Za-z0-9_])(?:ssn|social[ _-]?security(?:[ _-]?(?:number|no\.?|#))?)[\"']?"
    rf"[ \t:=#\"']{{1,6}}(?P<n>{_NUMBER})(?![\w\-]|\.\d)"
)


_KEY = re.compile(r"(?ai)(?:[a-z]+_)?(?:ssn|social_?security(?:_?(?:number|no|num))?)")
_KEYED = re.compile(rf"[ \t]*(?P<n>{_NUMBER})[ \t]*")


def ssn_key(name: str) -> bool:
    """Whether a record's dict key ``name`` holds a Social Security number (``ssn``, ``applicant_ssn``)."""
    return _KEY.fullmatch(name) is not None


def ssn_keyed(name: str, value: str) -> tuple[int, int] | None:
    """Where ``value``, a record's string under the dict key ``name``, is a Social Security number of any
    grouping (``{"ssn": "078051120"}``, ``{"applicant_ssn": "078 05 1120"}``), else None."""
    m = _KEYED.fullmatch(value) if _KEY.fullmatch(name) else None
    return m.span("n") if m else None


def ssn_spans(text: str) -> list[tuple[int, int]]:
    """The Social Security numbers of ``text`` as ``(start, end)``: dashed ones, and labelled ones of any grouping."""
    out = {(m.start(), m.end()) for m in _DASHED.finditer(text)}
    out.update((m.start("n"), m.end("n")) for m in _LABELLED.finditer(text))
    return sorted(out)
