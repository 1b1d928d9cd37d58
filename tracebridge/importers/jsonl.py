"""Reading other tools' JSON lines: why a line does not parse, located for the quarantine.

Kept apart from the importers so that the feedback harvest (getUpdates dumps, OpenClaw
transcripts) can share it without importing an importer.
"""

from __future__ import annotations

import orjson


def json_error(raw: bytes) -> str:
    """orjson's message for a bad line, without the newline confusing it; bytes that are not UTF-8
    are located here (orjson puts every encoding error at line 1 column 1)."""
    line = raw.rstrip(b"\r\n")
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (f"not UTF-8: byte 0x{line[exc.start]:02x} at byte {exc.start + 1} of the line "
                "(latin-1 or binary data?)")
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return str(exc)
    return "invalid JSON"
