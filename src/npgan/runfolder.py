"""A run folder written by one process at a time, and replaced in one step.

Two callers may want the same book run at once (a notebook under nbval beside
``make book``): the second waits for the first (``run_lock``) and then finds its
run. A run that replaces another is trained in a folder of its own beside it
(``new_work_folder``) and takes its place only when it is finished (``swap_in``),
so that a reader — 21.5 opening epoch_002.npz — sees the old run or the new one,
never a folder half emptied.
"""

import fcntl
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .files import sweep_stale_dirs


def new_work_folder(folder):
    """A new, empty folder beside ``folder`` to train its replacement in:
    '<name>.<8 random>'. Call it holding the lock: such folders left by a killed
    process are removed first."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_dirs(folder.parent, folder.name + ".", max_age=0)
    return Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))


_RENAME_EXCHANGE = 2   # renameat2's flag (Linux ≥ 3.15): swap two paths in one step


def swap_in(new, folder):
    """Put the finished run ``new`` where ``folder`` is, in one step where the
    system can (the old run ends up at ``new``), else by two renames."""
    if not folder.exists():
        os.rename(new, folder)
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        AT_FDCWD = -100
        if libc.renameat2(AT_FDCWD, os.fsencode(new), AT_FDCWD, os.fsencode(folder),
                          _RENAME_EXCHANGE) == 0:
            return
    except (OSError, AttributeError):
        pass
    old = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    os.rename(folder, old / "run")
    os.rename(new, folder)
    os.rename(old, new)   # removed by the caller, with the old run in it


@contextmanager
def run_lock(folder, log=None):
    """Hold the lock of the run folder ``folder`` (the file <folder>.lock beside it)
    for the ``with`` block. If another process holds it, say so once through ``log``
    (default: stderr) and wait until it is done."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder.parent / (folder.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            (log or (lambda line: print(line, file=sys.stderr, flush=True)))(
                f"book run {folder.name} is being trained by another process (pid {holder}); "
                "waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)   # releases the lock
