"""No merge-conflict marker is left in what the book builds from: Sphinx would print it
as text and the build would pass."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(<{7}|>{7}|={7})( |$)", re.M)
FOLDERS = ("book", "notebooks", "src", "tests", "_ext", "images", "experiments", "benchmarks")


def test_no_conflict_markers():
    files = [p for f in FOLDERS for p in (ROOT / f).rglob("*")
             if p.is_file() and p.suffix in {".md", ".ipynb", ".py", ".js", ".csv", ".yml", ".bib"}]
    files += [ROOT / name for name in ("README.md", "_toc.yml", "_config.yml", "references.bib", "Makefile")]
    hits = [f"{p.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
            for p in files for text in [p.read_text(encoding="utf-8", errors="replace")]
            for m in MARKER.finditer(text)]
    assert not hits, hits


def test_the_pattern_finds_a_marker():
    assert MARKER.search("text\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> branch\n")
    assert not MARKER.search("a table rule ======== and <<<<<<<< eight")
