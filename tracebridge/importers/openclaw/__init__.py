"""OpenClaw session transcripts → schema-v2 runs (see docs/openclaw-mapping.md)."""

from tracebridge.importers.openclaw.importer import import_openclaw
from tracebridge.importers.openclaw.report import ImportReport

__all__ = ["ImportReport", "import_openclaw"]
