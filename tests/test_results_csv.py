"""experiments/results_csv.py: the one writer of the experiments' committed CSVs."""

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import results_csv  # noqa: E402


def read(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_append_row_writes_the_header_once_and_keeps_the_old_rows(tmp_path):
    path = tmp_path / "r.csv"
    results_csv.append_row(path, ["a", "b"], {"a": 1, "b": "x"})
    results_csv.append_row(path, ["a", "b"], {"a": 2, "b": "y"})
    assert path.read_text(encoding="utf-8") == "a,b\n1,x\n2,y\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]   # no temporary file left


def test_write_csv_fills_missing_columns_and_replaces_the_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("old\n", encoding="utf-8")
    results_csv.write_csv(path, [{"a": 1}, {"a": 2, "b": 3}], columns=["a", "b"])
    assert read(path) == [{"a": "1", "b": ""}, {"a": "2", "b": "3"}]


def test_a_row_with_an_unknown_column_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "r.csv"
    results_csv.append_row(path, ["a"], {"a": 1})
    with pytest.raises(ValueError, match="b"):
        results_csv.append_row(path, ["a"], {"a": 2, "b": 3})
    assert read(path) == [{"a": "1"}]


def test_code_commit_is_this_checkouts_short_hash():
    commit = results_csv.code_commit()
    assert commit == "" or (4 <= len(commit) <= 40 and all(c in "0123456789abcdef" for c in commit))
