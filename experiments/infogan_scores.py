"""Score every InfoGAN run of experiments/infogan_runs.py: for each checkpoint,
c1's matched accuracy, the four Spearman ρ (codes × slant, width), and Q's c1 on
the test images (matched as c1, and Q's mean top probability), written
to experiments/infogan_runs.csv with the settings that differ from the book's.
Runs whose checkpoints are not in this data folder (trained on another machine)
keep their rows as the file has them.

    python experiments/infogan_scores.py             # every run found
    python experiments/infogan_scores.py qhead128    # only these runs
"""

import csv
import datetime
import io
import json
import platform
import sys
from pathlib import Path

import numpy as np

from npgan import book_config, checkpoint, load_mnist
from npgan.codes import evaluate_codes, q_digit_accuracy
from npgan.files import atomic_write
from npgan.metrics import load_evaluator

OUT = Path(__file__).with_name("infogan_runs.csv")


def kept_rows(scored):
    """The CSV's rows of the runs that are not scored again now."""
    if not OUT.exists():
        return []
    lines = [line for line in OUT.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return [row for row in list(csv.reader(lines))[1:] if row[0] not in scored]


def main():
    evaluator, rows = load_evaluator(), []
    book = json.loads(book_config("infogan").to_json())
    paths = sorted(checkpoint.run_dir("x").parent.glob("infogan-*/epoch_*.npz"))
    if sys.argv[1:]:
        paths = [p for p in paths if p.parent.name.removeprefix("infogan-") in sys.argv[1:]]
    scored = {p.parent.name.removeprefix("infogan-") for p in paths}
    x_test, y_test = load_mnist("test")       # the labels only score Q's reading of c1
    for path in paths:
        model, meta = checkpoint.load(path)
        config = json.loads(model.config.to_json())
        settings = " ".join(f"{k}={v}" for k, v in config.items() if book.get(k) != v)
        r = evaluate_codes(model, evaluator=evaluator, n_per_value=500, n_z=100)
        # the partition Q makes of the real test digits, and how sure Q is of it
        q_test, q_sure = q_digit_accuracy(model, r["c1"]["digit_of_value"], x_test, y_test)
        rows.append([path.parent.name.removeprefix("infogan-"), settings or "(the book's)",
                     meta["epoch"], f"{r['c1']['matched_accuracy']:.3f}",
                     *(f"{r[c][m]:+.3f}" for c in ("c2", "c3") for m in ("slant", "width")),
                     f"{q_test:.3f}", f"{q_sure:.3f}"])
        print(*rows[-1], sep="\t", flush=True)
    buf = io.StringIO()
    buf.write(f"# {Path(sys.argv[0]).name}, {datetime.date.today()}, {platform.node()} "
              f"({platform.processor() or platform.machine()}), numpy {np.__version__}; "
              "c1: 500 samples per value; ρ: 100 z, codes swept over −2…2; settings: "
              "fields that differ from the book's recipe of this commit\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "settings", "epoch", "c1_matched_accuracy", "c2_slant_rho",
                     "c2_width_rho", "c3_slant_rho", "c3_width_rho", "q_test_accuracy",
                     "q_test_sure"])
    # one table, sorted by run and epoch; rows scored before the Q columns existed get them empty
    kept = [row + [""] * (len(rows[0]) - len(row)) if rows else row for row in kept_rows(scored)]
    writer.writerows(sorted(kept + rows, key=lambda row: (row[0], int(row[2]))))
    with atomic_write(OUT, "w", encoding="utf-8") as f:
        f.write(buf.getvalue())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
