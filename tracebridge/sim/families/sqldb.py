"""The ``sql`` family: data questions over a SQLite database the generator writes into the
sandbox (``shop.db``: customers and orders), answered through read-only SQL and checked against
the value the generator computed.

``sql_query`` opens the database read-only (``mode=ro``), lets only SELECT through an authorizer
(no ATTACH, no PRAGMA, no writes), caps the rows returned and interrupts a query that runs too
long (``timeout``).
"""

from __future__ import annotations

import random
import sqlite3
from typing import Any

from tracebridge.schema.events import ErrorKind
from tracebridge.sim.families.base import (
    SUBMIT_ANSWER,
    Misleading,
    OracleStep,
    Task,
    answers_match,
    need,
    read_answer,
)
from tracebridge.sim.tools import STR, Sandbox, ToolFailure, ToolSpec, params

DB = "shop.db"
MAX_ROWS = 50
MAX_VM_STEPS = 2_000_000
NAMES = ("Ana", "Bo", "Chen", "Dara", "Eli", "Femi", "Gus", "Hana", "Ivo", "Juno", "Kai", "Lea")
CITIES = ("Porto", "Lyon", "Graz", "Turku", "Cork", "Brno")
YEARS = (2022, 2023, 2024)
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _authorize(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED else sqlite3.SQLITE_DENY


def _connect(sb: Sandbox, trusted: bool) -> sqlite3.Connection:
    path = sb.root / DB
    need(path.is_file(), ErrorKind.NOT_FOUND, f"{DB}: no database")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    if not trusted:
        con.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # load the schema first
        con.set_authorizer(_authorize)
    return con


def _query(sb: Sandbox, sql: str, trusted: bool = False) -> dict[str, Any]:
    """Run ``sql`` read-only; ``trusted`` (our own introspection queries) skips the authorizer."""
    con = _connect(sb, trusted)
    steps = [0]

    def tick() -> int:
        steps[0] += 1000
        return 1 if steps[0] > MAX_VM_STEPS else 0

    con.set_progress_handler(tick, 1000)
    try:
        cur = con.execute(sql)
        rows = cur.fetchmany(MAX_ROWS + 1)
        cols = [d[0] for d in cur.description or []]
    except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:  # e.g. two statements at once
        raise ToolFailure(ErrorKind.BAD_ARGS, str(exc)) from exc
    except sqlite3.Error as exc:
        raise _classify(exc) from exc
    finally:
        con.close()
    return {"columns": cols, "rows": [list(r) for r in rows[:MAX_ROWS]], "truncated": len(rows) > MAX_ROWS}


def _classify(exc: sqlite3.Error) -> ToolFailure:
    msg = str(exc)
    if "interrupted" in msg:
        return ToolFailure(ErrorKind.TIMEOUT, "query interrupted: too much work")
    if "not authorized" in msg or "readonly" in msg:
        return ToolFailure(ErrorKind.PERMISSION, f"only SELECT is allowed ({msg})")
    if "syntax error" in msg or "incomplete input" in msg or "unrecognized token" in msg:
        return ToolFailure(ErrorKind.BAD_ARGS, f"SQL syntax: {msg}")
    return ToolFailure(ErrorKind.RUNTIME_ERROR, msg)


def _list_tables(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    out = _query(sb, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", trusted=True)
    return {"tables": [r[0] for r in out["rows"]]}


def _describe(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    tables = _list_tables(sb, {})["tables"]
    need(a["table"] in tables, ErrorKind.NOT_FOUND, f"no table {a['table']!r}; tables: {', '.join(tables)}")
    # the name is one of the listed tables, so it is safe to inline
    out = _query(sb, f"SELECT name, type FROM pragma_table_info('{a['table']}')", trusted=True)
    return {"table": a["table"], "columns": [{"name": n, "type": t} for n, t in out["rows"]]}


def _sql(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    return _query(sb, a["query"])


TOOLS = [
    ToolSpec("list_tables", "List the database's tables.", params({}), _list_tables),
    ToolSpec("describe_table", "Show a table's columns.", params({"table": STR}), _describe),
    ToolSpec("sql_query", "Run one read-only SQL SELECT on shop.db.", params({"query": STR}), _sql),
    SUBMIT_ANSWER,
]


def _norm(x: Any) -> Any:
    return round(x, 2) if isinstance(x, float) else x


class SqlFamily:
    """Data questions over a generated SQLite database; see the module docstring."""

    name = "sql"

    def tools(self) -> list[ToolSpec]:
        """``list_tables``, ``describe_table``, ``sql_query`` and ``submit_answer``."""
        return list(TOOLS)

    def generate(self, rng: random.Random, sandbox: Sandbox, *, unsatisfiable: bool) -> Task:
        """Write ``shop.db`` (customers, orders) and ask a total, count or top-customer question
        (unsatisfiable: refunds, which have no table)."""
        names = rng.sample(NAMES, 8)
        customers = [(i + 1, n, rng.choice(CITIES)) for i, n in enumerate(names)]
        orders = [(j + 1, rng.randint(1, len(customers)), round(rng.uniform(5, 300), 2), rng.choice(YEARS))
                  for j in range(40)]
        con = sqlite3.connect(sandbox.root / DB)
        with con:
            con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
            con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL, year INTEGER)")
            con.executemany("INSERT INTO customers VALUES (?, ?, ?)", customers)
            con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", orders)
        con.close()
        kind = "refund" if unsatisfiable else rng.choice(("total", "count", "top"))
        goal, sql, table = self._question(kind, rng, customers, orders)
        q_out = None if unsatisfiable else _query(sandbox, sql)
        expected = None if q_out is None else _norm(q_out["rows"][0][0])
        steps = [OracleStep(f"look at the columns of {table}", "describe_table", {"table": table}, {"table": table}),
                 OracleStep("query the answer", "sql_query", {"query": sql}, {"query": sql}, q_out),
                 OracleStep("submit the answer", "submit_answer", {"answer": "$prev.rows.0.0"}, {"answer": expected})]
        return Task(self.name, goal, steps, expected=expected, unsatisfiable=unsatisfiable,
                    blocking=(ErrorKind.NOT_FOUND, ErrorKind.RUNTIME_ERROR), facts={"table": table})

    @staticmethod
    def _question(kind: str, rng: random.Random, customers: list[tuple], orders: list[tuple]) -> tuple[str, str, str]:
        if kind == "total":
            cid = rng.choice(sorted({o[1] for o in orders}))
            name, year = customers[cid - 1][1], rng.choice(YEARS)
            sql = ("SELECT ROUND(COALESCE(SUM(o.amount), 0), 2) FROM orders o JOIN customers c ON c.id = "
                   f"o.customer_id WHERE c.name = '{name}' AND o.year = {year}")
            return f"What is the total amount of the orders {name} placed in {year}?", sql, "orders"
        if kind == "count":
            city = rng.choice(sorted({c[2] for c in customers}))
            return (f"How many customers live in {city}?",
                    f"SELECT COUNT(*) FROM customers WHERE city = '{city}'", "customers")
        if kind == "top":
            sql = ("SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id "
                   "ORDER BY SUM(o.amount) DESC, c.id LIMIT 1")
            return "Which customer has the highest total order amount?", sql, "orders"
        name = rng.choice(customers)[1]
        sql = f"SELECT SUM(r.amount) FROM refunds r JOIN customers c ON c.id = r.customer_id WHERE c.name = '{name}'"
        return f"What is the total amount refunded to {name}?", sql, "refunds"

    def observe(self, sandbox: Sandbox, task: Task) -> Any:
        """The database file name and its tables."""
        return {"database": DB, "tables": _list_tables(sandbox, {})["tables"]}

    def mislead(self, rng: random.Random, sandbox: Sandbox, task: Task) -> Misleading | None:
        """A table list that names the task's table wrongly (``purchases``, ``clients``); else
        None."""
        table = task.facts["table"]
        if table not in ("orders", "customers"):
            return None
        wrong = {"orders": "purchases", "customers": "clients"}[table]
        obs = self.observe(sandbox, task)
        obs["tables"] = sorted(wrong if t == table else t for t in obs["tables"])
        return Misleading(obs, 0, {"table": wrong})

    def check(self, task: Task, sandbox: Sandbox) -> bool:
        """Whether the submitted answer equals the expected value (relative tolerance 1e-4)."""
        return not task.unsatisfiable and answers_match(read_answer(sandbox), task.expected, tol=1e-4)
