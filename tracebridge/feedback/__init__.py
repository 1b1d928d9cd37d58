"""Weak labels from users: the Telegram reaction ledger, the emoji→score mapping, the join of
reactions on chunked messages to runs and events, and the daily audit.

Public API: ``labels_for_runs`` / ``labels_for_run_factory`` (the join, ``join.py``),
``record_batch`` (the chunk registry), ``harvest_dumps`` / ``harvest_openclaw`` /
``harvest_updates`` (the ledger), ``audit_day`` / ``write_audit``.
"""

from tracebridge.feedback.audit import audit_day, write_audit
from tracebridge.feedback.chunks import record_batch
from tracebridge.feedback.harvest import harvest_dumps, harvest_updates
from tracebridge.feedback.harvest_openclaw import harvest_openclaw
from tracebridge.feedback.join import labels_for_run_factory, labels_for_runs

__all__ = ["audit_day", "harvest_dumps", "harvest_openclaw", "harvest_updates", "labels_for_run_factory",
           "labels_for_runs", "record_batch", "write_audit"]
