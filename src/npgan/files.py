"""Writing files atomically: the whole new file, or the old one, never half of one.

Also what comes with it: ``check_writable`` finds an output problem before
minutes of work, ``sweep_stale`` removes the temporaries that a killed process
(SIGKILL, a power cut) left behind, and ``describe`` turns an OSError into the
one line the command line prints.
"""

import errno
import os
import re
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

# Our temporaries are named "<target name>.<8 random characters>.part" (mkstemp's
# random part is 8 of [a-z0-9_]); one left alone for an hour belongs to a dead process.
PART_SUFFIX = ".part"
STALE_SECONDS = 3600
_RANDOM = r"[a-z0-9_]{8}"
_NAME_ROOM = 200   # bytes of the target's name kept in a temporary's name: it must fit 255 too


class NotWritable(OSError):
    """A target npgan will not or cannot write; the message says why and what to do."""


def kind_of(mode):
    """'a folder', 'a FIFO (named pipe)', … for a file that is not a regular file."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def blocking_file(path):
    """The first existing ancestor of ``path`` that is not a folder, or None:
    'a-file/run/x.npy' cannot be written while 'a-file' is a regular file."""
    for parent in reversed(Path(path).parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def refuse_special(path):
    """Raise NotWritable if ``path`` exists and is not a regular file (a folder, a
    FIFO, a device, a socket): atomic_write would rename a new file over it."""
    path = Path(path)
    try:
        st = os.stat(path)   # follows links: a link to /dev/null is a device
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise NotWritable(f"cannot write {path}: {blocking_file(path)} is a file, not a folder") from None
    except OSError as err:
        raise NotWritable(f"cannot write {path}: {err.strerror}{_hint(err.errno)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise NotWritable(f"cannot write {path}: it is a folder; give the name of a file")
    if not stat.S_ISREG(st.st_mode):
        raise NotWritable(f"cannot write {path}: it is {kind_of(st.st_mode)}, not a regular file, "
                          "and npgan never replaces one; choose another file name")


def link_target(path):
    """The file that the symbolic link ``path`` points to (links followed to the
    end), or None if ``path`` is not a link."""
    path = Path(path)
    return Path(os.path.realpath(path)) if os.path.islink(path) else None   # False on any OSError


def through_link(path):
    """Where writing ``path`` goes: ``path`` itself, or, for a symbolic link, the
    file it points to. A link is written through, as the shell's ``>`` does, and
    stays a link (never replaced by a file); a link into a folder that does not
    exist is refused like a missing folder."""
    target = link_target(path)
    if target is None:
        return Path(path)
    if not target.parent.is_dir():
        raise NotWritable(f"cannot write {path}: it is a link to {target}, whose folder "
                          f"{target.parent} does not exist")
    return target


def _temp_prefix(name):
    encoded = os.fsencode(name)
    return os.fsdecode(encoded[:_NAME_ROOM]) + "."


def check_writable(path, size=None):
    """Raise NotWritable (one line: what is wrong, what to do) unless
    ``atomic_write(path)`` can work: the folder exists and takes a new file, the
    name fits, an existing ``path`` is a regular file that may be replaced, and
    (if ``size`` bytes are given) the file system has room for them. Checked
    before a long job, so that it fails in a second rather than after minutes.
    A symbolic link is checked as the file it points to (see ``through_link``)."""
    path = through_link(path)
    folder = path.parent
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(path.name)) > limit:
        raise NotWritable(f"cannot write {path}: the file name is {len(os.fsencode(path.name))} "
                          f"bytes long, the limit is {limit}; choose a shorter name")
    refuse_special(path)
    if not folder.is_dir():
        blocker = blocking_file(path)
        if blocker is not None:
            raise NotWritable(f"cannot write {path}: {blocker} is a file, not a folder")
        raise NotWritable(f"cannot write {path}: folder {folder} does not exist")
    try:   # root may write anywhere by permission: only trying tells (read-only, immutable)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(path.name), suffix=PART_SUFFIX)
        try:
            os.close(fd)
        finally:   # removed even if Ctrl-C comes now
            os.unlink(probe)
    except OSError as err:
        raise NotWritable(f"cannot write {path}: {err.strerror} in folder {folder}"
                          f"{_hint(err.errno)}") from None
    if path.exists():
        try:   # an immutable or append-only file cannot be replaced, even by root
            os.close(os.open(path, os.O_WRONLY))
        except PermissionError as err:
            if err.errno == errno.EPERM:
                raise NotWritable(f"cannot write {path}: {err.strerror} (an immutable file? "
                                  "see lsattr); choose another file name") from None
    if size is not None:
        free = shutil.disk_usage(folder).free
        if size > free:
            raise NotWritable(f"cannot write {path}: it needs {_bytes(size)}, "
                              f"only {_bytes(free)} are free in {folder}")


def _bytes(n):
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


def sweep_stale(folder, names, max_age=STALE_SECONDS):
    """Remove from ``folder`` our own temporaries of the targets ``names``
    (regular files '<name>.<8 random>.part') that nobody touched for
    ``max_age`` seconds. Anything else, and every error, is left alone.
    Returns the paths removed."""
    removed = []
    patterns = [re.compile(re.escape(_temp_prefix(n)) + _RANDOM + re.escape(PART_SUFFIX) + "$")
                for n in names]
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    cutoff = time.time() - max_age
    for entry in entries:
        try:
            if (any(p.match(entry.name) for p in patterns) and entry.is_file(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def sweep_stale_dirs(folder, prefix, max_age=STALE_SECONDS):
    """Remove the temporary folders '<prefix><8 random>' (tempfile.mkdtemp) in
    ``folder`` left for ``max_age`` seconds, e.g. a killed download's. Returns them."""
    removed = []
    pattern = re.compile(re.escape(prefix) + _RANDOM + "$")
    cutoff = time.time() - max_age
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            if (pattern.match(entry.name) and entry.is_dir(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff):
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


@contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Open a temporary file beside ``path`` for writing; when the ``with``
    block ends normally, rename it to ``path`` (permissions rw-r--r--). On an
    error the temporary file is removed and ``path`` is left as it was.

    An existing ``path`` that is not a regular file (a folder, FIFO, device,
    socket) is refused with NotWritable, never replaced. An OSError while
    writing (a full disk) names ``path``. A symbolic link ``path`` is written
    through: the file it points to is replaced, the link stays (``through_link``)."""
    path = through_link(path)
    refuse_special(path)
    sweep_stale(path.parent, [path.name])
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=PART_SUFFIX)
    except OSError as err:
        err.filename = str(path)   # not mkstemp's random name
        raise
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary files
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno is not None and err.filename in (None, tmp):
            err.filename, err.filename2 = str(path), None   # "No space left": on which file
        raise


_HINTS = {
    errno.ENOSPC: "free some space or write somewhere else",
    errno.EDQUOT: "free some space or write somewhere else",
    errno.EFBIG: "the file is too large for this file system or your limit (ulimit -f)",
    errno.EROFS: "write somewhere else",
    errno.EPERM: "an immutable folder or file? (see lsattr)",
    errno.EACCES: "check the permissions, or write somewhere else",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder; give the name of a file",
    errno.ENOENT: "check the path",
    errno.ELOOP: "too many symbolic links; check the path",
}


def _hint(code):
    hint = _HINTS.get(code)
    return f"; {hint}" if hint else ""


def reason(err):
    """What went wrong and what to do, for an OSError, without the file's name."""
    if err.errno is None or err.strerror is None:
        return str(err)
    return f"{err.strerror}{_hint(err.errno)}"


def describe(err):
    """One line for an OSError: which file, what went wrong, what to do
    (no '[Errno N]', no traceback)."""
    if err.errno is None or err.strerror is None:
        return str(err)
    return f"{err.filename}: {reason(err)}" if err.filename else reason(err)
