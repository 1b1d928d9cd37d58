"""The ``docs`` family: multi-hop lookups over a local document store (``kb/<id>.json``: companies,
people, cities with linked facts), answered through ``search`` and ``lookup`` and checked
against the fact the generator linked.

A question needs two hops, e.g. company → founder → birthplace: the second lookup's argument is
a fact of the first document, so a plan refers to it as ``$prev.facts.founder``.
"""

from __future__ import annotations

import json
import random
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
from tracebridge.sim.tools import STR, Sandbox, ToolSpec, params

KB = "kb"
_ON = ("ka", "lo", "mi", "ra", "ven", "tor", "sa", "quil", "de", "bru", "no", "fin", "zor", "pel", "ix", "um")
COUNTRIES = ("Aldoria", "Belmark", "Corvena", "Drusk", "Estmere")
MAX_HITS = 5
KINDS = ("company", "person", "city")


def _word(rng: random.Random, parts: int, taken: set[str]) -> str:
    while True:
        w = "".join(rng.choice(_ON) for _ in range(parts)).capitalize()
        if w not in taken:
            taken.add(w)
            return w


def _doc_id(title: str) -> str:
    return title.lower().replace(" ", "-")


def _load(sb: Sandbox) -> list[dict[str, Any]]:
    folder = sb.root / KB
    need(folder.is_dir(), ErrorKind.NOT_FOUND, f"{KB}/: no document store")
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def _search(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    q = a["query"].strip().lower()
    hits = [{"id": d["id"], "title": d["title"], "kind": d["kind"]} for d in _load(sb)
            if (q in d["title"].lower() or q in json.dumps(d["facts"]).lower())
            and a.get("kind") in (None, d["kind"])]
    need(bool(hits), ErrorKind.NOT_FOUND, f"no document matches {a['query']!r}")
    return {"results": hits[:MAX_HITS]}


def _lookup(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    name = a["name"].strip()
    need(bool(name), ErrorKind.BAD_ARGS, "name must not be empty")
    path = sb.root / KB / f"{_doc_id(name)}.json"
    need(path.is_file(), ErrorKind.NOT_FOUND, f"no document titled {name!r}")
    return json.loads(path.read_text(encoding="utf-8"))


TOOLS = [
    ToolSpec("search", "Find documents whose title or facts contain a text, optionally of one kind.",
             params({"query": STR}, {"kind": {"type": "string", "enum": list(KINDS)}}), _search),
    ToolSpec("lookup", "Read the document with exactly this title.", params({"name": STR}), _lookup),
    SUBMIT_ANSWER,
]


class DocsFamily:
    """Two-hop questions over a generated document store; see the module docstring."""

    name = "docs"

    def tools(self) -> list[ToolSpec]:
        """``search``, ``lookup`` and ``submit_answer``."""
        return list(TOOLS)

    def _world(self, rng: random.Random) -> list[dict[str, Any]]:
        taken: set[str] = set()
        cities = [{"kind": "city", "title": _word(rng, 2, taken), "facts": {"country": rng.choice(COUNTRIES),
                                                                     "population": rng.randint(2, 900) * 1000}}
                  for _ in range(5)]
        people = [{"kind": "person", "title": f"{_word(rng, 2, taken)} {_word(rng, 3, taken)}",
                   "facts": {"born_in": rng.choice(cities)["title"], "born": rng.randint(1940, 1995)}}
                  for _ in range(5)]
        companies = [{"kind": "company", "title": _word(rng, 3, taken) + " " + rng.choice(("Labs", "Works", "Corp")),
                      "facts": {"founder": p["title"], "headquarters": rng.choice(cities)["title"],
                                "founded": rng.randint(1970, 2020)}} for p in people]
        docs = cities + people + companies
        for d in docs:
            d["id"] = _doc_id(d["title"])
        return docs

    def generate(self, rng: random.Random, sandbox: Sandbox, *, unsatisfiable: bool) -> Task:
        """Write a document store to ``kb/`` and ask a question about a company (unsatisfiable:
        one the store does not know)."""
        docs = self._world(rng)
        (sandbox.root / KB).mkdir()
        by_title = {d["title"]: d for d in docs}
        for d in docs:
            (sandbox.root / KB / f"{d['id']}.json").write_text(json.dumps(d, sort_keys=True), encoding="utf-8")
        company = rng.choice([d for d in docs if d["kind"] == "company"])
        kind = rng.choice(("birthplace", "country", "founded_by"))
        name = company["title"]
        if unsatisfiable:  # a company the store does not know
            name = _word(rng, 3, {d["title"].split()[0] for d in docs}) + " Systems"
            kind = rng.choice(("birthplace", "country"))
        if kind == "founded_by":
            person = company["facts"]["founder"]
            q_args = {"query": person, "kind": "company"}
            steps = [OracleStep(f"search the companies for {person}", "search", q_args, q_args,
                                _search(sandbox, q_args)),
                     OracleStep("submit the company's title", "submit_answer", {"answer": "$prev.results.0.title"},
                                {"answer": name})]
            return Task(self.name, f"Which company was founded by {person}?", steps, expected=name,
                        facts={"names": [person]})
        link, fact, q = (("founder", "born_in", f"In which city was the founder of {name} born?") if kind == "birthplace"
                         else ("headquarters", "country", f"In which country is the headquarters of {name}?"))
        mid = company["facts"][link] if not unsatisfiable else None
        answer = by_title[mid]["facts"][fact] if mid else None
        steps = [OracleStep(f"look up {name}", "lookup", {"name": name}, {"name": name},
                            None if unsatisfiable else company),
                 OracleStep(f"look up the {link}", "lookup", {"name": f"$prev.facts.{link}"}, {"name": mid},
                            by_title[mid] if mid else None),
                 OracleStep("submit the answer", "submit_answer", {"answer": f"$prev.facts.{fact}"}, {"answer": answer})]
        return Task(self.name, q, steps, expected=answer, unsatisfiable=unsatisfiable,
                    blocking=(ErrorKind.NOT_FOUND,), facts={"names": [name]})

    def observe(self, sandbox: Sandbox, task: Task) -> Any:
        """How many documents the store holds, and the first four ids."""
        titles = sorted(p.stem for p in (sandbox.root / KB).glob("*.json"))
        return {"documents": len(titles), "ids_sample": titles[:4]}

    def mislead(self, rng: random.Random, sandbox: Sandbox, task: Task) -> Misleading | None:
        """A note that files the first step's name or query under a wrong spelling."""
        first = task.steps[0]
        key = "name" if first.tool == "lookup" else "query"
        wrong = first.plan_args[key].replace(" ", "") + "s"
        obs = self.observe(sandbox, task)
        obs["note"] = f"{first.plan_args[key]} is filed as {wrong!r}"
        return Misleading(obs, 0, {**first.plan_args, key: wrong})

    def check(self, task: Task, sandbox: Sandbox) -> bool:
        """Whether the submitted answer matches the expected fact (trimmed, case-folded)."""
        return not task.unsatisfiable and answers_match(read_answer(sandbox), task.expected)
