"""Copy the full build's outputs into the committed notebooks (`make notebook-outputs`).

`make book` executes every notebook of the chapter once, in full mode, and keeps each
executed copy in its execution cache (_build/.jupyter_cache, a jupyter-cache folder). This
script asks that cache, through jupyter-cache's own matching (the code cells and their
metadata), for the run of each notebook in notebooks/, and writes that run's outputs and
execution counts into the notebook; markdown cells, tags and the rest stay as committed.
Anyone who opens a notebook in a code browser then sees the numbers the book shows.

    python _ext/notebook_outputs.py                          # from _build/.jupyter_cache
    python _ext/notebook_outputs.py --cache DIR/_build/.jupyter_cache
    python _ext/notebook_outputs.py --check                  # report only, write nothing

It refuses, with one line each and exit status 2, a notebook whose code changed after the
build (no cached run matches: run `make book` again) and a cached run made in quick mode
(NPGAN_QUICK=1, e.g. the cache of _build_quick): the parameter cell of such a run prints
快速模式. Images stay PNG as the kernel drew them, at the size the book shows; the one
change is that a glued image the cell also displays (glue(..., display=False) followed by
display(fig)) is kept once, as the displayed image/png: the glued copy
(application/papermill.record/image/png) is read by the build from its cache, never from
the committed notebook. At the end it prints each notebook's size and the total.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_CACHE = ROOT / "_build" / ".jupyter_cache"
QUICK_MARK = "快速模式"          # what the parameter cell prints in quick mode
FULL_MARK = "完整模式"
GLUED_PNG = "application/papermill.record/image/png"


class OutputsError(Exception):
    """A notebook that cannot be refreshed: the message says why and what to do."""


def text_of(output):
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    data = output.get("data", {})
    return "".join(data.get("text/plain", "")) + "".join(data.get("text/html", ""))


def check_full_mode(name, nb):
    """Raise if the run is a quick-mode run (or shows no mode where it should)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = "".join(code[0].source) if code else ""
    printed = "".join(text_of(o) for o in code[0].get("outputs", [])) if code else ""
    everything = "".join(text_of(o) for c in code for o in c.get("outputs", []))
    if QUICK_MARK in everything:
        raise OutputsError(f"{name}: the cached run is a quick-mode run (its outputs say {QUICK_MARK}); "
                           "use the cache of the full build (make book), not of a quick build")
    if "NPGAN_QUICK" in first and FULL_MARK not in printed:
        raise OutputsError(f"{name}: the cached run's parameter cell does not print {FULL_MARK}; "
                           "re-run the full build (make book)")


def drop_glued_copies(nb):
    """A glued PNG that the same cell also displays is stored once (as image/png)."""
    dropped = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        shown = {"".join(o["data"]["image/png"]).strip() for o in cell.get("outputs", [])
                 if "image/png" in o.get("data", {})}
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if GLUED_PNG in data and "".join(data[GLUED_PNG]).strip() in shown:
                del data[GLUED_PNG]
                dropped += 1
                if not data:
                    continue
            kept.append(out)
        cell.outputs = kept
    return dropped


def merged(path, cache):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    try:
        _, result = cache.merge_match_into_notebook(nb)
    except KeyError:
        raise OutputsError(f"{path.relative_to(ROOT)}: no run in the execution cache matches its code "
                           "cells (the code changed after the full build?); run `make book` first") from None
    check_full_mode(path.name, result)
    drop_glued_copies(result)
    result.metadata.pop("widgets", None)      # no widget state in the repository
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="the full build's execution cache (default: _build/.jupyter_cache)")
    parser.add_argument("--check", action="store_true", help="only check that every notebook can be refreshed")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    args = parser.parse_args(argv)
    if not (args.cache / "global.db").is_file():
        print(f"notebook_outputs: {args.cache} is not an execution cache (no global.db); "
              "build the book first (make book)", file=sys.stderr)
        return 2

    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(args.cache)
    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    try:
        results = {path: merged(path, cache) for path in paths}
    except OutputsError as err:
        print(f"notebook_outputs: {err}", file=sys.stderr)
        return 2
    total = 0
    for path, nb in results.items():
        text = nbformat.writes(nb) + "\n"
        size = len(text.encode("utf-8"))
        total += size
        if not args.check:
            tmp = path.with_name(path.name + ".part")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        n_out = sum(len(c.get("outputs", [])) for c in nb.cells if c.cell_type == "code")
        print(f"{'checked' if args.check else 'wrote'} {path.relative_to(ROOT)}: "
              f"{n_out} outputs, {size / 1024:.0f} KiB")
    print(f"notebooks in all: {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
