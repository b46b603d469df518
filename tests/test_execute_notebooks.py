"""_ext/execute_notebooks.py: notebooks run side by side into Jupyter Book's execution
cache, where MyST-NB's own lookup (match_cache_notebook) finds them; a failing notebook
is left out, and a cached one is not run again."""

import subprocess
import sys
from pathlib import Path

import nbformat
from jupyter_cache import get_cache

SCRIPT = Path(__file__).resolve().parents[1] / "_ext" / "execute_notebooks.py"


def execute(*args):
    done = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout


def notebook(path, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_side_by_side_into_the_cache(tmp_path):
    good = notebook(tmp_path / "good.ipynb", "from pathlib import Path\nprint(Path.cwd().name)")
    bad = notebook(tmp_path / "bad.ipynb", "raise ValueError('no')")
    cache_dir = tmp_path / "cache"
    out = execute("--cache", cache_dir, "--jobs", 2, good, bad)
    assert "notebooks to execute: 2 of 2" in out and "bad.ipynb: FAILED" in out
    cache = get_cache(str(cache_dir))
    record = cache.match_cache_notebook(nbformat.read(good, as_version=4))   # what MyST-NB asks
    _, merged = cache.merge_match_into_notebook(nbformat.read(good, as_version=4))
    assert merged.cells[0].outputs[0]["text"].strip() == tmp_path.name   # run in its own folder
    assert record.data["execution_seconds"] > 0
    assert "notebooks to execute: 0 of 1" in execute("--cache", cache_dir, good)
