"""Execute the book's notebooks two (or --jobs) at a time into Jupyter Book's execution cache.

Jupyter Book 1.x (MyST-NB, execute_notebooks: cache) runs the notebooks one after the
other, so on a 2-core machine one core idles through the longest part of a build after
the runs are trained. This fills the same cache (jupyter-cache, _build/.jupyter_cache)
beforehand, several notebooks at once, each in its own kernel with its own folder as the
working directory, as MyST-NB would run it; the build then finds every notebook cached.
A notebook that fails here is left out of the cache: the build runs it again and reports
its error the usual way. Notebooks already cached with the same code are skipped.

    python _ext/execute_notebooks.py --cache _build/.jupyter_cache notebooks/*.ipynb
"""

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

# The slowest first (seconds in the last full build), so that the workers end together.
SLOW_FIRST = ("21.4-evaluation", "21.5-wgan-mnist", "21.6-dcgan", "appendix-a1-recipes")


def _execute(path, timeout):
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(notebook, cwd=str(Path(path).parent), allow_errors=False,
                                 timeout=timeout, meta_override=True)
    return notebook, result.time, (result.exc_string if result.err is not None else None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("_build/.jupyter_cache"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell (as _config.yml)")
    args = parser.parse_args(argv)
    cache = get_cache(str(args.cache))
    waiting = []
    for path in args.notebooks:
        path = path.resolve()
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            waiting.append(path)
    waiting.sort(key=lambda p: SLOW_FIRST.index(p.stem) if p.stem in SLOW_FIRST else len(SLOW_FIRST))
    print(f"notebooks to execute: {len(waiting)} of {len(args.notebooks)}, {args.jobs} at a time", flush=True)
    start, failed = time.perf_counter(), 0
    # "spawn": a forked worker inherits the parent's ZeroMQ state, and its kernels died at start
    with ProcessPoolExecutor(max_workers=max(1, args.jobs),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_execute, str(path), args.timeout): path for path in waiting}
        for future in as_completed(futures):
            path = futures[future]
            try:
                notebook, seconds, error = future.result()
            except Exception as err:   # e.g. a kernel that did not start: the build tries again
                notebook, seconds, error = None, 0.0, f"{type(err).__name__}: {err}"
            if error is None:   # written by this process alone: one writer for the cache's database
                cache.add_nb_to_project(str(path))
                cache.cache_notebook_bundle(CacheBundleIn(notebook, str(path),
                                                          data={"execution_seconds": seconds}),
                                            check_validity=False, overwrite=True)
                print(f"  {path.name}: {seconds:.0f} s", flush=True)
            else:
                failed += 1
                print(f"  {path.name}: FAILED after {seconds:.0f} s (the build runs it again and "
                      f"reports the error)\n{error[-2000:]}", flush=True)
    print(f"executed in {time.perf_counter() - start:.0f} s" + (f", {failed} failed" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
