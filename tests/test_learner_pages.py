"""The learner's pages teach; the appendix (book/appendix-lab-notes.md and its notebooks)
records. These tests read the learner's pages and notebooks as text and fail on the
team's lab vocabulary: its own targets and whether they were met, validation boards,
seed tables, CPU kernels, BLAS and threads, build bookkeeping and run names."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each pattern is a kind of lab-notebook talk, with an example of why it is out of place.
LAB_TALK = {
    r"BLAS|threadpool|线程|NUM_THREADS": "how many BLAS threads a run used",
    r"AVX|SkylakeX|Haswell|NPY_DISABLE|CPU ?内核|计算内核": "which CPU kernels did the arithmetic",
    r"计分板|scoreboard|验证板": "the team's validation boards",
    r"种子表|各种子|种子波动|seed table": "seed tables",
    r"事先定下|定下的目标|没有达到|未达到|达到了目标|达标|冲刺": "our own targets and whether we met them",
    r"提交记录|commit|冷构建|构建记录|缓存的运行": "build and commit bookkeeping",
    r"batch_last|NCHW|run\s+`?\w+-\w+`?": "internal names a learner never meets",
}
LAB_PATTERN = re.compile("|".join(f"(?:{p})" for p in LAB_TALK), re.IGNORECASE)


def learner_texts():
    """(name, text) of every learner page and notebook: the markdown of the pages and of
    the notebooks' markdown cells, and the notebooks' code (comments included)."""
    pages = [ROOT / "index.md"] + sorted((ROOT / "book").glob("21.*.md"))
    for page in pages:
        yield page.relative_to(ROOT).as_posix(), page.read_text(encoding="utf-8")
    for notebook in sorted((ROOT / "notebooks").glob("21.*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        yield (notebook.relative_to(ROOT).as_posix(),
               "\n".join("".join(cell["source"]) for cell in cells))


def lab_talk(text):
    """The lines of `text` that hold lab vocabulary, as 'line N: …' strings."""
    return [f"line {n}: {line.strip()[:120]}" for n, line in enumerate(text.splitlines(), 1)
            if LAB_PATTERN.search(line)]


def test_the_pattern_catches_lab_talk_and_spares_teaching():
    assert lab_talk("我们事先定下的目标是 FD 低于 5，这次没有达到。")
    assert lab_talk("评估器用 2 个 BLAS 线程训练。")
    assert lab_talk("在 AVX-512 的机器上结果不同。")
    assert lab_talk("计分板上，去掉 dropout 的那一行最差。")
    assert not lab_talk("判别器的目标是把真假分开；卷积核在图片上滑动。")
    assert not lab_talk("平均的权重让样本更干净，换几个随机种子试试看。")


@pytest.mark.parametrize("name,text", list(learner_texts()), ids=lambda v: v if
                         isinstance(v, str) and len(v) < 60 else "")
def test_learner_pages_keep_the_lab_talk_in_the_appendix(name, text):
    found = lab_talk(text)
    assert not found, (f"{name} speaks of the lab (move it to book/appendix-lab-notes.md):\n"
                       + "\n".join(found))


def test_the_appendix_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert "book/appendix-lab-notes" in toc
    assert toc.index("book/21.8-references") < toc.index("book/appendix-lab-notes")
