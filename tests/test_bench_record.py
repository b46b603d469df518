"""benchmarks/record.py: what section 21.4.7 reads of a `make bench` run."""

import importlib
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def record(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    module = importlib.import_module("record")
    monkeypatch.setattr(module, "RUNS", (tmp_path / "latest.json", tmp_path / "threads-2.json"))
    monkeypatch.setattr(module, "OUT", tmp_path / "recorded.json")
    return module


def fake_result(threads, dcgan_ms):
    row = {"mflop": 978.6, "p25_ms": dcgan_ms, "p75_ms": dcgan_ms, "npgan_speedup": None}
    return {"machine": {"date": "2026-12-02T00:00:00+00:00", "cpu": "cpu", "cores": 2, "numpy": "2",
                        "torch": None, "git_commit": "abc", "load_average_at_start": [0, 0, 0],
                        "blas": {"openblas_threads": threads}},
            "settings": {"threads": threads, "rounds_done": 3, "steps": 10},
            "steps": [dict(row, key="dcgan/floor", model="dcgan", name="floor", ms_per_step=8.0, ratio_to_floor=1.0),
                      dict(row, key="dcgan/npgan", model="dcgan", name="npgan", ms_per_step=dcgan_ms,
                           ratio_to_floor=dcgan_ms / 8.0)],
            "load_average_at_end": [0, 0, 0]}


def test_both_runs_are_kept_in_order(record, capsys):
    for path, threads, ms in zip(record.RUNS, (1, 2), (14.0, 18.0)):
        path.write_text(json.dumps(fake_result(threads, ms)))
    record.main()
    runs = json.loads(record.OUT.read_text())["runs"]
    assert [r["threads"] for r in runs] == [1, 2]
    assert [r["steps"][1]["ms_per_step"] for r in runs] == [14.0, 18.0]
    assert "2.25× its floor" in capsys.readouterr().out


def test_a_missing_or_broken_run_says_what_to_do(record):
    with pytest.raises(SystemExit, match="latest.json is missing: run `make bench` first"):
        record.main()
    record.RUNS[0].write_text("{}")
    with pytest.raises(SystemExit, match="is not a bench_train.py result"):
        record.main()
    assert not record.OUT.exists()      # nothing half-written
