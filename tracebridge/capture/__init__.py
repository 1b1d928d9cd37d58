"""Capture: the ``Recorder`` that agents use to emit schema-v2 events (lineage, steps, hashes),
the append-only crash-safe writer, the streaming reader of trace roots, and the redaction hook
point applied before anything reaches disk.

``from tracebridge.capture import Recorder`` works; the recorder (pydantic schemas and all) is
imported on first use only, so ``from tracebridge.capture import writer`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CaptureError", "Recorder", "RecorderArgumentError", "RedactionHook", "make_goal", "new_run_id",
           "payload_types"]
_PUBLIC = dict.fromkeys(__all__, "recorder")  # name -> the module that defines it


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
