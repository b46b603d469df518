"""What every experiment script writes its results with: the commit of the code that
ran, a CSV written whole, and a CSV grown one row at a time. Each file is written
through a temporary file and a rename (npgan.files.atomic_write), so a crash leaves
the old file or the new one, never half of one."""

import csv
import io
import subprocess
from pathlib import Path

from npgan.files import atomic_write


def code_commit():
    """The short hash of the commit this checkout is at ("" outside git). Read it once at
    the start of a process: the code that ran, not the code when a row was written."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def write_csv(path, rows, columns=None):
    """rows (dicts) → a CSV with a header (``columns``, default the first row's keys)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns or rows[0]), lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text.getvalue())


def append_row(path, columns, row):
    """``path`` with one more row (and the header ``columns`` if the file is new)."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    if not old:
        writer.writeheader()
    writer.writerow(row)
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(old + text.getvalue())
