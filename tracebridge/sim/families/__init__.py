"""Goal families: each a seeded generator, real tools, an observation and a ground-truth checker.

``FAMILIES`` maps a family name (as configs and ``session.goal.family`` spell it) to its class.
"""

from __future__ import annotations

from tracebridge.sim.families.base import Family, Misleading, OracleStep, Task
from tracebridge.sim.families.calc import CalcFamily
from tracebridge.sim.families.docs import DocsFamily
from tracebridge.sim.families.files import FilesFamily
from tracebridge.sim.families.sqldb import SqlFamily

FAMILIES: dict[str, type] = {f.name: f for f in (FilesFamily, SqlFamily, CalcFamily, DocsFamily)}


def get_family(name: str) -> Family:
    """A family instance by name. Raises KeyError naming the known families."""
    try:
        return FAMILIES[name]()
    except KeyError:
        raise KeyError(f"unknown goal family {name!r}; known: {', '.join(FAMILIES)}") from None


__all__ = ["FAMILIES", "Family", "Misleading", "OracleStep", "Task", "get_family"]
