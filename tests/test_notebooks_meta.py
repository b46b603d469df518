"""Static checks of the chapter's notebooks (nothing is executed here except
each notebook's first cell, the parameter cell).

nbval (``make test-notebooks``) runs the notebooks in quick mode and compares the
stored outputs of the checked cells; these tests guard what nbval cannot see:
that the book's glue keys exist and are produced in cells nbval will not compare,
that the checked cells keep mode-independent text outputs, that the committed
files stay small and hold no widget state, and that the parameter cell switches
between the quick settings and the book's settings (read from npgan).
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# notebook → the glue keys the chapters use (agreed names; see the book pages)
def chapter_glue_keys():
    """{notebook name: keys} that the chapters take from the notebooks, read
    from book/*.md: ```{glue} KEY + :doc: lines, and {glue:text} roles."""
    wanted = {}
    for chapter in sorted((Path(__file__).resolve().parents[1] / "book").glob("*.md")):
        text = chapter.read_text(encoding="utf-8")
        pairs = re.findall(r"```\{glue\}\s+(\w+)\s*\n:doc:\s*\.\./notebooks/([\w.-]+\.ipynb)", text)
        pairs += [(k, nb) for nb, k in
                  re.findall(r"\{glue:\w+\}`\.\./notebooks/([\w.-]+\.ipynb)::(\w+)", text)]
        for key, notebook in pairs:
            wanted.setdefault(notebook, set()).add(key)
    return wanted


GLUE_KEYS = chapter_glue_keys()


def test_the_chapters_use_every_notebook():
    # the appendix's notebooks (appendix-*.ipynb) record experiments; pages may glue from
    # them too, and the checks below then apply to them as well
    learner = {name for name in GLUE_KEYS if not name.startswith("appendix")}
    assert learner == {"21.2-gan-mnist.ipynb", "21.3-cgan-mnist.ipynb",
                       "21.1a-minimax-1d.ipynb", "21.7-infogan-mnist.ipynb",
                       "21.6-dcgan.ipynb", "21.4-evaluation.ipynb",
                       "21.5a-wgan-1d.ipynb", "21.5-wgan-mnist.ipynb"}


# the MNIST notebooks: model name in npgan.BOOK_EPOCHS
MNIST = {"21.2-gan-mnist.ipynb": "gan", "21.3-cgan-mnist.ipynb": "cgan",
         "21.7-infogan-mnist.ipynb": "infogan", "21.6-dcgan.ipynb": "dcgan",
         "21.5-wgan-mnist.ipynb": "wgan"}
MAX_BYTES = 1_200_000      # with the full run's outputs (PNG at the book's size, see make notebook-outputs;
                           # measured: 21.3 1,006 KiB, 21.4 759 KiB, the others 228–439 KiB)
CHECK = "nbval-check-output"
IGNORE = "nbval-ignore-output"


def load(name):
    path = NOTEBOOKS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


def is_checked(cell):
    return CHECK in tags(cell) or any(
        line.strip().lstrip("#").strip() == "NBVAL_CHECK_OUTPUT"
        for line in source(cell).splitlines() if line.strip().startswith("#"))


@pytest.mark.parametrize("name", sorted(GLUE_KEYS))
def test_glue_keys_are_produced(name):
    found = set()
    for cell in code_cells(load(name)):
        text = source(cell)
        found |= set(re.findall(r"""\bglue\(\s*["']([A-Za-z0-9_]+)["']""", text))
        if re.search(r"\bglue\(\s*key\b", text):  # for key, value in {...}.items(): glue(key, ...)
            found |= set(re.findall(r"""["']([A-Za-z0-9_]+)["']\s*:""", text))
        # keys made in a loop (glue(f"eval_board_{m}_…")): the committed full run's outputs name them
        found |= {out.get("metadata", {}).get("scrapbook", {}).get("name") for out in cell.get("outputs", [])}
    missing = GLUE_KEYS[name] - found
    assert not missing, f"{name} does not glue {sorted(missing)} (the chapters use these keys)"


@pytest.mark.parametrize("name", sorted(GLUE_KEYS))
def test_glue_cells_are_not_compared(name):
    # glued images are stored as application/papermill.record/image/png, which
    # nbval compares byte for byte: such cells must never be checked
    for cell in code_cells(load(name)):
        if re.search(r"\bglue\(", source(cell)):
            assert IGNORE in tags(cell), f"{name}: glue cell without tag {IGNORE}:\n{source(cell)}"
            assert not is_checked(cell), f"{name}: glue cell marked for output checking:\n{source(cell)}"


@pytest.mark.parametrize("name", sorted(GLUE_KEYS))
def test_checked_cells_store_plain_text(name):
    checked = [c for c in code_cells(load(name)) if is_checked(c)]
    assert checked, f"{name} has no checked cell: nbval would compare nothing"
    for cell in checked:
        assert cell["outputs"], f"{name}: checked cell without stored output:\n{source(cell)}"
        assert cell["execution_count"] is not None, \
            f"{name}: checked cell has outputs but no execution count (nbval fails it as unrun)"
        for out in cell["outputs"]:
            assert out["output_type"] == "stream" and out["name"] == "stdout", \
                f"{name}: checked cell stores {out['output_type']} {out.get('name', '')}; " \
                f"print mode-independent text only:\n{source(cell)}"
            text = "".join(out["text"])
            assert not re.search(r"/(work|root|home|tmp)/", text), f"{name}: a path in a stored output"
            assert not re.search(r"quick|快速模式|完整模式", text), \
                f"{name}: a checked output mentions the mode, so it differs between modes"


@pytest.mark.parametrize("name", sorted(GLUE_KEYS))
def test_committed_file_is_small_and_clean(name):
    path = NOTEBOOKS / name
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{name} is {size:,} bytes: an output is too large (images are PNG at the size the book shows them)"
    nb = load(name)
    assert "widgets" not in nb["metadata"], f"{name} stores ipywidgets state"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in code_cells(nb):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{name}: a stored error output"
            assert out.get("name") != "stderr", f"{name}: a stored stderr output"


@pytest.mark.parametrize("name", sorted(GLUE_KEYS))
def test_first_code_cell_holds_the_parameters(name):
    first = source(code_cells(load(name))[0])
    assert "SEED" in first
    if name in MNIST:
        for word in ("NPGAN_QUICK", "EPOCHS", "SUBSET", "TABLE_EPOCHS"):
            assert word in first, f"{name}: {word} is not set in the first code cell"


def run_parameters(name, monkeypatch, quick):
    """Execute the first code cell (the parameters) with or without NPGAN_QUICK."""
    if quick:
        monkeypatch.setenv("NPGAN_QUICK", "1")
    else:
        monkeypatch.delenv("NPGAN_QUICK", raising=False)
    namespace = {}
    exec(compile(source(code_cells(load(name))[0]), name, "exec"), namespace)
    return namespace


@pytest.mark.parametrize("name", sorted(MNIST))
def test_quick_mode_is_small(name, monkeypatch, capsys):
    p = run_parameters(name, monkeypatch, quick=True)
    assert p["QUICK"] is True
    assert p["SUBSET"] is not None and p["SUBSET"] * p["EPOCHS"] <= 12_000
    assert set(p["TABLE_EPOCHS"]) <= set(range(p["EPOCHS"] + 1))
    assert p["EPOCHS"] in p["TABLE_EPOCHS"]


@pytest.mark.parametrize("name", sorted(MNIST))
def test_full_mode_reads_the_book_recipe(name, monkeypatch, capsys):
    import npgan

    p = run_parameters(name, monkeypatch, quick=False)
    assert p["QUICK"] is False
    assert p["SUBSET"] is None
    assert p["EPOCHS"] == npgan.BOOK_EPOCHS[MNIST[name]]
    assert set(p["TABLE_EPOCHS"]) <= set(range(p["EPOCHS"] + 1))
    assert p["EPOCHS"] in p["TABLE_EPOCHS"]
