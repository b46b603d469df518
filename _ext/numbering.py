"""Figure, table and equation numbers of chapter 21, in reading order.

The scheme (checked by tests/test_numbering.py):

* Figures 图21-N and tables 表21-N are numbered 1, 2, …, N separately, in reading order:
  the pages of _toc.yml (root first, then every chapter and its sections, depth first),
  markdown pages and the markdown cells of notebooks alike. Each number has exactly one
  caption.
* A caption is a line that starts with the number and a space ("图21-3 两种生成器损失…"),
  either the caption of a ```{figure}``` directive or a line of its own right after a
  ``(label)=`` line. Every other 图21-N / 表21-N is a reference to a caption. Refer to a
  labelled figure as {ref}`图21-N <label>` (a link), to an unlabelled one as plain 图21-N.
  So a prose paragraph never starts with a figure number.
* Display equations with a label (``$$ … $$ (eq-name)``) are numbered (21-1), (21-2), …
  across the whole chapter in reading order: Sphinx numbers equations per page, and the
  extension below (setup()) replaces those numbers by the chapter's. In the text an
  equation is always 式 {eq}`eq-name`, never a number written by hand such as 式 (3).

After inserting, moving or deleting a page or a figure, run

    python _ext/numbering.py --fix     # renumber captions 1..N, rewrite every reference
    python _ext/numbering.py           # check only: list the problems, exit 1 if any

--fix follows a labelled reference through its label, a plain one through its old number
(on the same page first); what it cannot resolve it lists and leaves alone. References in
README.md, src/, images/, benchmarks/ and experiments/ are checked and fixed too.
"""

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "21"
KINDS = ("图", "表")
# files outside the book that may name a figure (code comments, the README)
EXTRA_GLOBS = ("README.md", "src/**/*.py", "images/*.py", "benchmarks/**/*.py", "experiments/**/*.py")

CAPTION = re.compile(rf"^(?P<kind>[图表]){CHAPTER}-(?P<n>\d+)(?=\s)")
# a labelled reference {ref}`图21-3 <fig-x>` or a plain 图21-3
REFERENCE = re.compile(rf"\{{ref\}}`(?P<rkind>[图表]){CHAPTER}-(?P<rn>\d+)\s*<(?P<label>[^>`]+)>`"
                       rf"|(?P<kind>[图表]){CHAPTER}-(?P<n>\d+)")
LABEL_LINE = re.compile(r"^\((?P<label>[^)\s]+)\)=\s*$")
NAME_OPTION = re.compile(r"^:name:\s*(?P<label>\S+)\s*$")
EQUATION_LABEL = re.compile(r"\$\$\s*\((?P<label>[^)\s]+)\)\s*$|^:label:\s*(?P<option>\S+)\s*$", re.M)
EQ_ROLE = re.compile(r"\{eq\}`(?P<label>[^`]+)`")
HAND_EQUATION = re.compile(r"式\s*[（(]\s*\d+(?:[-.]\d+)?\s*[)）]")


@dataclass
class Block:
    """One piece of text: a markdown page, or one cell of a notebook."""
    path: Path
    cell: int | None      # index of the notebook cell; None for a markdown or code file
    text: str
    is_page: bool         # part of the book (captions allowed), not an extra file

    def where(self, line):
        rel = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{rel}:{line + 1}" if self.cell is None else f"{rel} cell {self.cell} line {line + 1}"


@dataclass
class Caption:
    kind: str
    number: int
    label: str | None
    block: Block
    line: int

    @property
    def name(self):
        return f"{self.kind}{CHAPTER}-{self.number}"


# ---------------------------------------------------------------- reading the book

def toc_pages(root=ROOT):
    """The files of _toc.yml in reading order (root, then chapters and sections depth first)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("chapters"))
            walk(entry.get("sections"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    pages = []
    for name in names:
        candidates = ([root / name] if name.endswith((".md", ".ipynb"))
                      else [root / f"{name}.md", root / f"{name}.ipynb"])
        found = [p for p in candidates if p.is_file()]
        if not found:
            raise SystemExit(f"numbering: _toc.yml names {name}, but no such .md or .ipynb file exists")
        pages.append(found[0])
    return pages


def read_blocks(path, is_page):
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return [Block(path, i, "".join(c["source"]), is_page and c["cell_type"] == "markdown")
                for i, c in enumerate(nb["cells"])]
    return [Block(path, None, path.read_text(encoding="utf-8"), is_page)]


def book_blocks(root=ROOT):
    """Every block of the book in reading order, then the extra files (references only)."""
    blocks = [b for page in toc_pages(root) for b in read_blocks(page, True)]
    seen = {b.path for b in blocks}
    for pattern in EXTRA_GLOBS:
        for path in sorted(root.glob(pattern)):
            if path not in seen and path.is_file():
                seen.add(path)
                blocks += read_blocks(path, False)
    return blocks


def captions_in(block):
    """The captions of one block, each with the label just before it (if any)."""
    found, pending = [], None
    if not block.is_page:
        return found
    for i, line in enumerate(block.text.splitlines()):
        if m := (LABEL_LINE.match(line) or NAME_OPTION.match(line)):
            pending = m["label"]
        elif m := CAPTION.match(line):
            found.append(Caption(m["kind"], int(m["n"]), pending, block, i))
            pending = None
        elif line.strip() and not line.startswith((":", "```", ":::")):
            pending = None          # blank lines, directive options and fences keep the label
    return found


def references_in(block):
    """(kind, number, label or None, line) of every reference (captions excluded)."""
    refs = []
    for i, line in enumerate(block.text.splitlines()):
        start = CAPTION.match(line).end() if block.is_page and CAPTION.match(line) else 0
        for m in REFERENCE.finditer(line, start):
            if m["rkind"]:
                refs.append((m["rkind"], int(m["rn"]), m["label"], i))
            else:
                refs.append((m["kind"], int(m["n"]), None, i))
    return refs


# ---------------------------------------------------------------- checking

def check(root=ROOT):
    """Every problem with the figure, table and equation numbers, as readable lines."""
    blocks = book_blocks(root)
    captions = [c for b in blocks for c in captions_in(b)]
    problems = []
    for kind in KINDS:
        ours = [c for c in captions if c.kind == kind]
        for expected, c in enumerate(ours, start=1):
            if c.number != expected:
                problems.append(f"{c.block.where(c.line)}: caption {c.name} is out of reading order; "
                                f"it should be {kind}{CHAPTER}-{expected} (run python _ext/numbering.py --fix)")
        numbers = [c.number for c in ours]
        for n in sorted(set(numbers)):
            if numbers.count(n) > 1:
                where = ", ".join(c.block.where(c.line) for c in ours if c.number == n)
                problems.append(f"{kind}{CHAPTER}-{n} has {numbers.count(n)} captions: {where}")
        for n in range(1, max(numbers, default=0) + 1):
            if n not in numbers:
                problems.append(f"{kind}{CHAPTER}-{n} has no caption (the numbers skip it)")
    by_label = {c.label: c for c in captions if c.label}
    names = {c.name for c in captions}
    for block in blocks:
        for kind, n, label, line in references_in(block):
            name = f"{kind}{CHAPTER}-{n}"
            if label is not None:
                target = by_label.get(label)
                if target is None:
                    problems.append(f"{block.where(line)}: {{ref}}`{name} <{label}>` names no caption "
                                    f"(no caption follows a label {label})")
                elif target.name != name:
                    problems.append(f"{block.where(line)}: {{ref}}`{name} <{label}>` points at "
                                    f"{target.name} ({target.block.where(target.line)})")
            elif name not in names:
                problems.append(f"{block.where(line)}: {name} names no caption")
    problems += check_equations(blocks)
    return problems


def equations_in(block):
    """Labels of the numbered equations of one block, in order."""
    if not block.is_page:
        return []
    return [m["label"] or m["option"] for m in EQUATION_LABEL.finditer(block.text)]


def equation_numbers(root=ROOT):
    """{label: "21-k"}: the chapter's equation numbers, in reading order."""
    labels = [label for b in book_blocks(root) for label in equations_in(b)]
    return {label: f"{CHAPTER}-{k}" for k, label in enumerate(labels, start=1)}


def check_equations(blocks):
    problems, where = [], {}
    for block in blocks:
        for label in equations_in(block):
            if label in where:
                problems.append(f"equation label {label} is used twice: {where[label]} and "
                                f"{block.where(0)}")
            where.setdefault(label, block.where(0))
    for block in blocks:
        if not block.is_page:
            continue
        for i, line in enumerate(block.text.splitlines()):
            for m in HAND_EQUATION.finditer(line):
                problems.append(f"{block.where(i)}: {m[0]!r} is an equation number written by hand; "
                                "write 式 {eq}`label`")
            for m in EQ_ROLE.finditer(line):
                if m["label"] not in where:
                    problems.append(f"{block.where(i)}: {{eq}}`{m['label']}` names no labelled equation")
    return problems


# ---------------------------------------------------------------- fixing

def fix(root=ROOT):
    """Renumber the captions 1..N in reading order and rewrite every reference.
    Returns (files changed, problems left)."""
    blocks = book_blocks(root)
    captions = [c for b in blocks for c in captions_in(b)]
    new = {}                                    # id(caption) → new number
    for kind in KINDS:
        for k, c in enumerate((c for c in captions if c.kind == kind), start=1):
            new[id(c)] = k
    by_label = {c.label: c for c in captions if c.label}
    problems = []

    def resolve(kind, n, label, block, line):
        if label is not None:
            target = by_label.get(label)
            if target is not None and target.kind == kind:
                return new[id(target)]
            problems.append(f"{block.where(line)}: {{ref}}`{kind}{CHAPTER}-{n} <{label}>` names no caption")
            return n
        same = [c for c in captions if c.kind == kind and c.number == n]
        if len(same) > 1:
            same = [c for c in same if c.block.path == block.path]
        if len(same) == 1:
            return new[id(same[0])]
        problems.append(f"{block.where(line)}: {kind}{CHAPTER}-{n} is "
                        + ("ambiguous (several captions had that number); use {ref} with a label"
                           if same else "not a caption's number"))
        return n

    caption_at = {(id(c.block), c.line): c for c in captions}
    changed = set()
    for block in blocks:
        lines = block.text.split("\n")
        for i, line in enumerate(lines):
            head, rest = "", line
            c = caption_at.get((id(block), i))
            if c is not None:
                m = CAPTION.match(line)
                head, rest = f"{c.kind}{CHAPTER}-{new[id(c)]}", line[m.end():]

            def replace(m, i=i):
                if m["rkind"]:
                    k = resolve(m["rkind"], int(m["rn"]), m["label"], block, i)
                    return f"{{ref}}`{m['rkind']}{CHAPTER}-{k} <{m['label']}>`"
                k = resolve(m["kind"], int(m["n"]), None, block, i)
                return f"{m['kind']}{CHAPTER}-{k}"

            lines[i] = head + REFERENCE.sub(replace, rest)
        text = "\n".join(lines)
        if text != block.text:
            block.text = text
            changed.add(block.path)
    for path in sorted(changed):
        write_blocks(path, [b for b in blocks if b.path == path])
    return sorted(changed), problems


def write_blocks(path, blocks):
    if path.suffix != ".ipynb":
        path.write_text(blocks[0].text, encoding="utf-8")
        return
    nb = json.loads(path.read_text(encoding="utf-8"))
    for b in blocks:
        nb["cells"][b.cell]["source"] = b.text.splitlines(keepends=True)
    # nbformat's own layout, so that a renumbering changes only the renumbered lines
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")


# ---------------------------------------------------------------- Sphinx: the chapter's equation numbers

def _reading_order(env):
    order, seen = [], set()

    def visit(doc):
        if doc not in seen:
            seen.add(doc)
            order.append(doc)
            for child in env.toctree_includes.get(doc, []):
                visit(child)

    visit(env.config.root_doc)
    return order + sorted(set(env.found_docs) - seen)


def _number_equations(app, env):
    """After every page is read: number the labelled equations (21-1), (21-2), … in reading
    order, instead of Sphinx's 1, 2, … on each page."""
    domain = env.get_domain("math")
    rank = {doc: i for i, doc in enumerate(_reading_order(env))}

    def position(item):
        label, (doc, number) = item
        within = int(str(number).rsplit("-", 1)[-1])   # a number this function gave last time
        return rank.get(doc, len(rank)), within

    for k, (label, (doc, _)) in enumerate(sorted(domain.equations.items(), key=position), start=1):
        domain.equations[label] = (doc, f"{CHAPTER}-{k}")


def _show_equation_numbers(app, doctree, docname):
    from docutils import nodes

    equations = app.env.get_domain("math").equations
    for node in doctree.findall(nodes.math_block):
        if node.get("label") in equations:
            node["number"] = equations[node["label"]][1]


def setup(app):
    app.connect("env-updated", _number_equations)
    app.connect("doctree-resolved", _show_equation_numbers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# ---------------------------------------------------------------- command line

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fix", action="store_true",
                        help="renumber the captions in reading order and rewrite every reference")
    args = parser.parse_args(argv)
    if args.fix:
        changed, left = fix()
        for path in changed:
            print(f"renumbered {path.relative_to(ROOT)}")
        if not changed:
            print("numbers already in reading order; nothing changed")
        for problem in left:
            print(f"numbering: not fixed: {problem}", file=sys.stderr)
    problems = check()
    for problem in problems:
        print(f"numbering: {problem}", file=sys.stderr)
    if not problems:
        print("numbering: figures, tables and equations are numbered in reading order")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
