"""How many BLAS threads npgan's matrix multiplies use — decided here, on
purpose, rather than by whatever the environment happens to say.

Measured on the project's 2-core machine (NumPy 2.4.6 + OpenBLAS 0.3.31, Haswell
kernel, one book GAN step; benchmarks/bench_busy.py, 2026-12-01 11:50 UTC), ms per
step idle / beside a busy loop / beside a second training:

    1 thread                                  7.19 /  7.28 /  7.95
    2 threads                                 5.86 / 16.82 / 13.78
    2 threads, OPENBLAS_THREAD_TIMEOUT=4      6.28 /  9.21 /  8.45
    load check at the start (2 if idle)       5.92 /  7.13 /  8.00

Two threads win only on an idle machine (1.23×) and are 1.7–2.3× slower than
one under load (on a SkylakeX kernel, earlier, up to 60×): OpenBLAS threads spin
while they wait, and two processes of two threads starve each other on two cores.
Letting them sleep at once (the timeout, which OpenBLAS reads only when it loads)
still leaves them 1.06–1.27× slower than one thread. Looking at /proc/stat when
training starts picks one thread under load, but it looks once: trainings started
together, as the book's side-by-side runs are, all see an idle machine and all take two. So the default
is one thread per training process, and the book trains its models side by side,
one process per core.

Who decides, first match wins:
  1. ``threads=`` given to ``train`` (or to ``blas_threads``);
  2. the environment variable NPGAN_THREADS (a whole number ≥ 1; more than the
     machine's cores only makes the threads wait for each other — measured 75×
     slower with 64 on 2 cores — so it is capped at the cores, see
     ``threads_notice``);
  3. the user's own OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS /
     BLIS_NUM_THREADS: if any is set, npgan leaves the thread pools as they are;
  4. otherwise DEFAULT_THREADS.
"""

import os
from contextlib import contextmanager

DEFAULT_THREADS = 1
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def available_cores():
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_threads(threads=None):
    """The number of BLAS threads to use, or None to leave the pools alone (rule 3).
    ValueError if NPGAN_THREADS (or ``threads``) is not a whole number ≥ 1."""
    if threads is not None:
        return _whole(threads, "threads=")
    text = os.environ.get("NPGAN_THREADS", "")
    if text.strip():
        return min(_whole(text, "NPGAN_THREADS"), available_cores())
    if any(os.environ.get(name, "").strip() for name in BLAS_VARIABLES):
        return None
    return DEFAULT_THREADS


def _whole(value, where):
    try:
        n = int(str(value).strip())
        if n >= 1 and not isinstance(value, bool):
            return n
    except ValueError:
        pass
    raise ValueError(f"{where} must be a whole number of threads ≥ 1, got {value!r}")


def threads_notice():
    """The one line to show when NPGAN_THREADS asks for more threads than there
    are cores (choose_threads uses the cores then), or None. ValueError if
    NPGAN_THREADS is not a whole number ≥ 1: the command line checks this before
    any work."""
    text = os.environ.get("NPGAN_THREADS", "")
    if not text.strip():
        return None
    asked, cores = _whole(text, "NPGAN_THREADS"), available_cores()
    if asked <= cores:
        return None
    return (f"NPGAN_THREADS={text.strip()} is more than the {cores} cores of this machine, "
            f"which only slows training down; using {cores}")


@contextmanager
def blas_threads(threads=None):
    """Run the ``with`` block with the chosen number of BLAS threads (threadpoolctl),
    and restore the previous setting afterwards. Yields the number, or None."""
    n = choose_threads(threads)
    if n is None:
        yield None
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield n
