"""Keep the step timings of the last `make bench` in benchmarks/recorded.json,
the file that section 21.4.7 reads (results/ is git-ignored; this file is committed).

    .venv/bin/python benchmarks/record.py      # the last step of `make bench`

It takes the two timing runs that `make bench` makes, results/latest.json (as many
threads as `npgan train` uses) and results/threads-2.json (--threads 2), and keeps
of each the machine, the settings and the per-step rows of the three models.
"""

import json
import sys
from pathlib import Path

from npgan.files import atomic_write

HERE = Path(__file__).resolve().parent
RUNS = (HERE / "results" / "latest.json", HERE / "results" / "threads-2.json")
OUT = HERE / "recorded.json"
MACHINE_KEYS = ("date", "cpu", "cores", "numpy", "torch", "git_commit", "load_average_at_start")
ROW_KEYS = ("key", "model", "name", "mflop", "ms_per_step", "p25_ms", "p75_ms",
            "ratio_to_floor", "npgan_speedup")


def summary(path):
    """What 21.4.7 needs of one bench_train.py result file."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        machine, settings = result["machine"], result["settings"]
        return {
            "source": path.name,
            "threads": machine["blas"].get("openblas_threads", settings["threads"]),
            "openblas_core": machine["blas"].get("openblas_core"),
            **{k: machine.get(k) for k in MACHINE_KEYS},
            "load_average_at_end": result.get("load_average_at_end"),
            "rounds": settings["rounds_done"], "steps_per_sample": settings["steps"],
            "steps": [{k: row[k] for k in ROW_KEYS} for row in result["steps"]],
        }
    except FileNotFoundError:
        sys.exit(f"record.py: {path} is missing: run `make bench` first")
    except (ValueError, KeyError, TypeError) as err:
        sys.exit(f"record.py: {path} is not a bench_train.py result ({err!r}): run `make bench` again")


def main():
    runs = [summary(path) for path in RUNS]
    with atomic_write(OUT, "w", encoding="utf-8") as f:
        json.dump({"runs": runs}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for run in runs:
        dcgan = {row["key"]: row for row in run["steps"] if row["model"] == "dcgan"}
        print(f"{run['threads']} thread(s): DCGAN npgan {dcgan['dcgan/npgan']['ms_per_step']:.2f} ms, "
              f"{dcgan['dcgan/npgan']['ratio_to_floor']:.2f}× its floor")
    print(f"wrote {OUT}: commit it, and the book's section 21.4.7 shows these figures")


if __name__ == "__main__":
    main()
