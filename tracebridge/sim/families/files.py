"""The ``files`` family: file-system chores in the sandbox (make folders, move files, grep,
count lines, write results), checked against the real files afterwards.

Layout the generator writes: ``inbox/note_*.txt`` (a few lines each), ``docs/*.md`` (each with
one distinctive keyword) and ``locked/`` (read-only by sandbox policy).
"""

from __future__ import annotations

import random
import shutil
from typing import Any

from tracebridge.schema.events import ErrorKind
from tracebridge.sim.families.base import Misleading, OracleStep, Task, need
from tracebridge.sim.tools import STR, Sandbox, ToolSpec, params

WORDS = ("amber", "basalt", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
         "kelp", "lumen", "marble", "nectar", "onyx", "pewter", "quartz", "russet", "saffron", "tundra")
FOLDERS = ("archive", "done", "reports", "old", "keep", "review")
MAX_GREP_HITS = 20


# --------------------------------------------------------------------------- tools


def _list_dir(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    p = sb.resolve(a.get("path", ".") or ".")
    need(p.exists(), ErrorKind.NOT_FOUND, f"{a.get('path')}: no such folder")
    need(p.is_dir(), ErrorKind.BAD_ARGS, f"{a.get('path')}: not a folder")
    entries = sorted(e.name + ("/" if e.is_dir() else "") for e in p.iterdir() if not e.name.startswith("."))
    return {"path": a.get("path", "."), "entries": entries}


def _read_file(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    p = sb.resolve(a["path"])
    need(p.is_file(), ErrorKind.NOT_FOUND, f"{a['path']}: no such file")
    return {"path": a["path"], "content": p.read_text(encoding="utf-8")}


def _write_file(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    p = sb.resolve(a["path"], write=True)
    need(p.parent.is_dir(), ErrorKind.NOT_FOUND, f"{a['path']}: parent folder does not exist")
    text = a["content"] if isinstance(a["content"], str) else repr(a["content"])
    p.write_text(text, encoding="utf-8")
    return {"path": a["path"], "bytes": len(text.encode())}


def _make_dir(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    p = sb.resolve(a["path"], write=True)
    need(not p.is_file(), ErrorKind.BAD_ARGS, f"{a['path']}: a file has that name")
    need(p.parent.is_dir(), ErrorKind.NOT_FOUND, f"{a['path']}: parent folder does not exist")
    p.mkdir(exist_ok=True)
    return {"path": a["path"], "created": True}


def _move_file(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    src, dst = sb.resolve(a["src"], write=True), sb.resolve(a["dst"], write=True)
    need(src.is_file(), ErrorKind.NOT_FOUND, f"{a['src']}: no such file")
    if dst.is_dir():
        dst = dst / src.name
    need(dst.parent.is_dir(), ErrorKind.NOT_FOUND, f"{a['dst']}: destination folder does not exist")
    need(not dst.exists(), ErrorKind.BAD_ARGS, f"{sb.rel(dst)}: already exists")
    shutil.move(src, dst)
    return {"moved": a["src"], "to": sb.rel(dst)}


def _grep(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    base = sb.resolve(a.get("path", ".") or ".")
    need(base.exists(), ErrorKind.NOT_FOUND, f"{a.get('path')}: no such file or folder")
    files = [base] if base.is_file() else sorted(q for q in base.rglob("*") if q.is_file()
                                                 and not any(s.startswith(".") for s in q.relative_to(sb.root).parts))
    hits = []
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if a["pattern"].lower() in line.lower():
                hits.append({"file": sb.rel(f), "line": n, "text": line[:120]})
    need(bool(hits), ErrorKind.NOT_FOUND, f"no line matches {a['pattern']!r} under {a.get('path', '.')}")
    return {"files": sorted({h["file"] for h in hits}), "matches": hits[:MAX_GREP_HITS]}


def _count_lines(sb: Sandbox, a: dict[str, Any]) -> dict[str, Any]:
    p = sb.resolve(a["path"])
    need(p.is_file(), ErrorKind.NOT_FOUND, f"{a['path']}: no such file")
    return {"path": a["path"], "lines": len(p.read_text(encoding="utf-8").splitlines())}


PATH = {"type": "string", "minLength": 1, "description": "path relative to the working folder"}
TOOLS = [
    ToolSpec("list_dir", "List a folder's entries.", params({}, {"path": PATH}), _list_dir),
    ToolSpec("read_file", "Read a text file.", params({"path": PATH}), _read_file),
    ToolSpec("write_file", "Create or overwrite a text file.",
             params({"path": PATH, "content": {"type": ["string", "number"]}}), _write_file, mutates=True),
    ToolSpec("make_dir", "Create a folder (its parent must exist).", params({"path": PATH}), _make_dir,
             mutates=True),
    ToolSpec("move_file", "Move a file; dst may be a folder.", params({"src": PATH, "dst": PATH}), _move_file,
             mutates=True),
    ToolSpec("grep", "Find lines containing a text (case-insensitive) in a file or folder.",
             params({"pattern": STR}, {"path": PATH}), _grep),
    ToolSpec("count_lines", "Count the lines of a text file.", params({"path": PATH}), _count_lines),
]


# --------------------------------------------------------------------------- family


class FilesFamily:
    """File-system chores; see the module docstring."""

    name = "files"

    def tools(self) -> list[ToolSpec]:
        """``list_dir``, ``read_file``, ``write_file``, ``make_dir``, ``move_file``, ``grep`` and
        ``count_lines``."""
        return list(TOOLS)

    def generate(self, rng: random.Random, sandbox: Sandbox, *, unsatisfiable: bool) -> Task:
        """Write ``inbox/``, ``docs/`` and ``locked/`` and set an archive, find or count chore
        (unsatisfiable: a read-only target, or a missing word or file)."""
        root = sandbox.root
        for d in ("inbox", "docs", "locked"):
            (root / d).mkdir()
        notes = [f"note_{i}.txt" for i in rng.sample(range(1, 40), 4)]
        counts = {}
        for n in notes:
            lines = [" ".join(rng.choices(WORDS[:8], k=4)) for _ in range(rng.randint(2, 9))]
            (root / "inbox" / n).write_text("\n".join(lines) + "\n", encoding="utf-8")
            counts[f"inbox/{n}"] = len(lines)
        keys = rng.sample(WORDS[8:], 4)
        for i, k in enumerate(keys):
            (root / "docs" / f"doc_{i}.md").write_text(f"# Doc {i}\nplain text\nmentions {k} once\n", encoding="utf-8")
        (root / "locked" / "readme.txt").write_text("read-only\n", encoding="utf-8")
        kind = rng.choice(("archive", "find", "count"))
        return getattr(self, f"_{kind}")(rng, notes, keys, counts, unsatisfiable)

    def _archive(self, rng: random.Random, notes: list[str], keys: list[str], counts: dict[str, int],
                 unsat: bool) -> Task:
        note, folder = rng.choice(notes), rng.choice(FOLDERS)
        if unsat:
            folder = f"locked/{folder}"
        dst = f"{folder}/{note}"
        steps = [OracleStep(f"create folder {folder}", "make_dir", {"path": folder}, {"path": folder}),
                 OracleStep(f"move inbox/{note} into {folder}", "move_file",
                            {"src": f"inbox/{note}", "dst": dst}, {"src": f"inbox/{note}", "dst": dst})]
        return Task(self.name, f"Create the folder {folder} and move inbox/{note} into it.", steps,
                    unsatisfiable=unsat, blocking=(ErrorKind.PERMISSION,), facts={"src": f"inbox/{note}", "dst": dst})

    def _find(self, rng: random.Random, notes: list[str], keys: list[str], counts: dict[str, int],
              unsat: bool) -> Task:
        i = rng.randrange(len(keys))
        word = rng.choice([w for w in WORDS[8:] if w not in keys]) if unsat else keys[i]
        doc = f"docs/doc_{i}.md"
        steps = [OracleStep(f"search docs/ for {word}", "grep", {"pattern": word, "path": "docs"},
                            {"pattern": word, "path": "docs"}),
                 OracleStep("write the matching file's path to answer.txt", "write_file",
                            {"path": "answer.txt", "content": "$prev.files.0"}, {"path": "answer.txt", "content": doc})]
        return Task(self.name, f"Find the file in docs/ that mentions '{word}' and write its path to answer.txt.",
                    steps, expected=doc, unsatisfiable=unsat, blocking=(ErrorKind.NOT_FOUND,),
                    facts={"out": "answer.txt"})

    def _count(self, rng: random.Random, notes: list[str], keys: list[str], counts: dict[str, int],
               unsat: bool) -> Task:
        note = f"inbox/{rng.choice(notes)}" if not unsat else f"inbox/note_{rng.randint(40, 99)}.txt"
        out = rng.choice(("count.txt", "lines.txt"))
        n = counts.get(note)
        steps = [OracleStep(f"count the lines of {note}", "count_lines", {"path": note}, {"path": note},
                            None if unsat else {"path": note, "lines": n}),
                 OracleStep(f"write the count to {out}", "write_file", {"path": out, "content": "$prev.lines"},
                            {"path": out, "content": n})]
        return Task(self.name, f"Count the lines of {note} and write the number to {out}.", steps, expected=n,
                    unsatisfiable=unsat, blocking=(ErrorKind.NOT_FOUND,), facts={"out": out, "note": note})

    def observe(self, sandbox: Sandbox, task: Task) -> Any:
        """The sandbox's file tree (hidden entries left out) and its read-only folders."""
        tree = sorted(sandbox.rel(p) + ("/" if p.is_dir() else "") for p in sandbox.root.rglob("*")
                      if not any(s.startswith(".") for s in p.relative_to(sandbox.root).parts))
        return {"files": tree, "read_only": ["locked/"]}

    def mislead(self, rng: random.Random, sandbox: Sandbox, task: Task) -> Misleading | None:
        """A file tree that shows the task's note in ``docs/`` instead of ``inbox/``; None for a
        find task."""
        if "src" in task.facts:  # claim the note sits in docs/
            src = task.facts["src"]
            wrong = "docs/" + src.split("/", 1)[1]
            obs = self.observe(sandbox, task)
            obs["files"] = sorted(wrong if f == src else f for f in obs["files"])
            return Misleading(obs, 1, {"src": wrong, "dst": task.facts["dst"]})
        if "note" in task.facts:
            src = task.facts["note"]
            wrong = src.replace("inbox/", "docs/")
            obs = self.observe(sandbox, task)
            obs["files"] = sorted(wrong if f == src else f for f in obs["files"])
            return Misleading(obs, 0, {"path": wrong})
        return None

    def check(self, task: Task, sandbox: Sandbox) -> bool:
        """Whether the files are as asked: the note moved, or the output file holds the expected
        count or path."""
        if task.unsatisfiable:
            return False
        root = sandbox.root
        if "dst" in task.facts:
            return (root / task.facts["dst"]).is_file() and not (root / task.facts["src"]).exists()
        out = root / task.facts["out"]
        if not out.is_file():
            return False
        text = out.read_text(encoding="utf-8").strip()
        if "note" in task.facts:
            return text == str(task.expected)
        return text in (task.expected, task.expected.split("/")[-1])
