"""Figure, table and equation numbers (the scheme is in _ext/numbering.py's docstring):
the chapter itself, small made-up books for each kind of mistake, --fix, and the
Sphinx extension that numbers equations across pages."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "_ext"))
import numbering  # noqa: E402


def test_the_chapter_is_numbered_in_reading_order():
    problems = numbering.check()
    assert not problems, "\n".join(problems)


def test_the_chapter_has_captions_and_numbered_equations():
    blocks = numbering.book_blocks()
    kinds = [c.kind for b in blocks for c in numbering.captions_in(b)]
    assert kinds.count("图") >= 10 and kinds.count("表") >= 3
    assert len(numbering.equation_numbers()) >= 10


# ---------------------------------------------------------------- made-up books

def notebook(*markdown, code="x = 1\n"):
    cells = [{"cell_type": "markdown", "id": f"m{i}", "metadata": {}, "source": text.splitlines(True)}
             for i, text in enumerate(markdown)]
    cells.append({"cell_type": "code", "id": "code", "metadata": {}, "execution_count": None,
                  "outputs": [], "source": code.splitlines(True)})
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def make_book(root, pages):
    """pages: {file name: text} in reading order; the first is the root page."""
    names = list(pages)
    toc = [f"root: {Path(names[0]).with_suffix('')}", "chapters:"]
    toc += [f"  - file: {Path(n).with_suffix('')}" for n in names[1:]]
    (root / "_toc.yml").write_text("format: jb-book\n" + "\n".join(toc) + "\n", encoding="utf-8")
    for name, text in pages.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


FIGURE = """```{{figure}} a.png
:name: {label}

{caption}
```
"""


def test_a_clean_made_up_book_passes(tmp_path):
    make_book(tmp_path, {
        "index.md": "# 首页\n\n见 {ref}`图21-1 <fig-a>` 和图21-2。\n",
        "a.md": FIGURE.format(label="fig-a", caption="图21-1 第一张图"),
        "b.ipynb": notebook("(tab-b)=\n表21-1 一张表\n\n图21-2 第二张图\n", "前面的 {ref}`表21-1 <tab-b>`"),
    })
    assert numbering.check(tmp_path) == []


def test_a_caption_in_a_code_cell_or_a_source_file_is_only_a_reference(tmp_path):
    make_book(tmp_path, {
        "index.md": "# 首页\n\n图21-1 唯一的图\n",
        "a.ipynb": notebook("正文", code="# 图21-2 不是图注\nx = 1\n"),
    })
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("# 画的是图21-1，不是图21-3\n", encoding="utf-8")
    problems = numbering.check(tmp_path)
    assert len(problems) == 2, problems
    assert "a.ipynb cell 1 line 1: 图21-2 names no caption" in problems[0]
    assert "m.py:1: 图21-3 names no caption" in problems[1]


def test_out_of_order_duplicate_missing_and_dangling_are_reported(tmp_path):
    make_book(tmp_path, {
        "index.md": "# 首页\n\n图21-2 先出现的图\n\n图21-1 后出现的图\n",
        "a.md": "图21-1 同号的第二个图注\n\n图21-4 跳过了 3\n\n正文提到图21-7 和 {ref}`图21-1 <fig-x>`。\n",
    })
    problems = "\n".join(numbering.check(tmp_path))
    assert "caption 图21-2 is out of reading order; it should be 图21-1" in problems
    assert "图21-1 has 2 captions" in problems
    assert "图21-3 has no caption" in problems
    assert "图21-7 names no caption" in problems
    assert "<fig-x>` names no caption" in problems


def test_a_labelled_reference_with_the_wrong_number_is_reported(tmp_path):
    make_book(tmp_path, {
        "index.md": FIGURE.format(label="fig-a", caption="图21-1 甲") + "\n"
                    + FIGURE.format(label="fig-b", caption="图21-2 乙") + "\n见 {ref}`图21-1 <fig-b>`。\n",
    })
    assert any("points at 图21-2" in p for p in numbering.check(tmp_path))


def test_fix_renumbers_captions_and_every_reference(tmp_path):
    # a page inserted in front: its caption 图21-5 comes first, the old 图21-1, 图21-2 follow
    make_book(tmp_path, {
        "index.md": "# 首页\n\n先看 {ref}`图21-2 <fig-b>`，再看图21-1 和新的图21-5。\n",
        "new.ipynb": notebook("图21-5 新插入的图\n\n(tab-n)=\n表21-3 新表\n"),
        "a.md": FIGURE.format(label="fig-a", caption="图21-1 甲") + "\n(fig-b)=\n图21-2 乙\n\n"
                "表21-1 旧表，见图21-2\n",
    })
    changed, left = numbering.fix(tmp_path)
    assert left == []
    assert {p.name for p in changed} == {"index.md", "new.ipynb", "a.md"}
    index = (tmp_path / "index.md").read_text(encoding="utf-8")
    assert "先看 {ref}`图21-3 <fig-b>`，再看图21-2 和新的图21-1。" in index
    a = (tmp_path / "a.md").read_text(encoding="utf-8")
    assert "\n图21-2 甲\n" in a and "\n图21-3 乙\n" in a and "表21-2 旧表，见图21-3" in a
    cells = json.loads((tmp_path / "new.ipynb").read_text(encoding="utf-8"))["cells"]
    assert "".join(cells[0]["source"]) == "图21-1 新插入的图\n\n(tab-n)=\n表21-1 新表\n"
    assert numbering.check(tmp_path) == []
    # a second run changes nothing
    assert numbering.fix(tmp_path)[0] == []


def test_fix_leaves_an_ambiguous_plain_reference_and_says_so(tmp_path):
    make_book(tmp_path, {
        "index.md": "# 首页\n\n见图21-1。\n",
        "a.md": "图21-1 甲\n",
        "b.md": "图21-1 乙\n",
    })
    changed, left = numbering.fix(tmp_path)
    assert any("index.md" in p and "ambiguous" in p for p in left)
    assert "见图21-1。" in (tmp_path / "index.md").read_text(encoding="utf-8")


EQUATION = "$$\n{body}\n$$ ({label})\n"


def test_equations_are_numbered_across_pages_in_reading_order(tmp_path):
    make_book(tmp_path, {
        "index.md": "# 首页\n\n" + EQUATION.format(body="a=1", label="eq-a"),
        "z.md": EQUATION.format(body="b=2", label="eq-b") + EQUATION.format(body="c=3", label="eq-c"),
        "m.md": "由式 {eq}`eq-c` 可得\n\n" + EQUATION.format(body="d=4", label="eq-d"),
    })
    assert numbering.equation_numbers(tmp_path) == {"eq-a": "21-1", "eq-b": "21-2", "eq-c": "21-3",
                                                     "eq-d": "21-4"}
    assert numbering.check(tmp_path) == []


def test_hand_written_duplicate_and_unknown_equation_numbers_are_reported(tmp_path):
    make_book(tmp_path, {
        "index.md": "# 首页\n\n" + EQUATION.format(body="a=1", label="eq-a"),
        "b.md": EQUATION.format(body="b=2", label="eq-a") + "\n代入式 (3) 和式（21-2），再看式 {eq}`eq-z`。\n",
    })
    problems = "\n".join(numbering.check(tmp_path))
    assert "equation label eq-a is used twice" in problems
    assert "'式 (3)' is an equation number written by hand" in problems
    assert "'式（21-2）' is an equation number written by hand" in problems
    assert "{eq}`eq-z` names no labelled equation" in problems


# ---------------------------------------------------------------- the Sphinx extension

def test_sphinx_numbers_equations_across_pages(tmp_path):
    sphinx_build = pytest.importorskip("sphinx.cmd.build")
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO / '_ext')!r})\n"
        "extensions = ['myst_parser', 'numbering']\n"
        "myst_enable_extensions = ['dollarmath', 'amsmath']\n", encoding="utf-8")
    (src / "index.md").write_text(
        "# 首页\n\n```{toctree}\nfirst\nsecond\n```\n", encoding="utf-8")
    (src / "first.md").write_text(
        "# 一\n\n" + EQUATION.format(body="a=1", label="eq-a") + EQUATION.format(body="b=2", label="eq-b")
        + "\n见式 {eq}`eq-c`。\n", encoding="utf-8")
    (src / "second.md").write_text(
        "# 二\n\n" + EQUATION.format(body="c=3", label="eq-c") + "\n见式 {eq}`eq-a`。\n", encoding="utf-8")
    out = tmp_path / "html"
    assert sphinx_build.main(["-q", "-W", "-b", "html", str(src), str(out)]) == 0
    first = (out / "first.html").read_text(encoding="utf-8")
    second = (out / "second.html").read_text(encoding="utf-8")
    assert '<span class="eqno">(21-1)' in first and '<span class="eqno">(21-2)' in first
    assert '<span class="eqno">(21-3)' in second
    assert 'href="second.html#equation-eq-c">(21-3)</a>' in first      # a reference to another page
    assert 'href="first.html#equation-eq-a">(21-1)</a>' in second
