"""Every book run scored by the retired MLP evaluator (version 2) and by the book's
CNN (version 3), side by side (issue 27, part 3): the old → new figures for the note.

    make runs    # the book's runs must exist: nothing is trained here but a missing evaluator
    OPENBLAS_NUM_THREADS=1 python experiments/rescore_book_runs.py   # → rescored_book_runs.csv

The book's pages score through npgan.metrics, so a build re-scores them by itself;
this script only puts both evaluators' figures in one table. Each run's last
checkpoint, 10,000 samples (seed 0) against the 10,000 test images of its data
set: FD, the real-vs-real floor, FD / floor, the digit shares' KL from uniform,
the CGAN's label accuracy and the InfoGAN's c1 matched accuracy.
"""

import argparse
import csv
import datetime
import io
import platform
import sys
from pathlib import Path

from npgan import bookruns, checkpoint, metrics, models
from npgan.evaluator_mlp import load_mlp_evaluator
from npgan.files import atomic_write

OUT = Path(__file__).with_name("rescored_book_runs.csv")


def last_checkpoint(name, dataset, subset=None):
    facts = bookruns.stored_facts(name, dataset, subset)
    if facts is None:
        return None
    return bookruns.run_folder(name, dataset, subset) / f"epoch_{facts['epochs']:03d}.npz"


def scores(model, evaluator):
    r = metrics.evaluate(model, evaluator=evaluator)
    c1 = r.get("codes", {}).get("c1", {}).get("matched_accuracy")
    return {"fd": r["fd"], "fd_floor": r["fd_floor"], "fd_over_floor": r["fd"] / r["fd_floor"],
            "kl_uniform": r["kl_uniform"], "label_accuracy": r.get("label_accuracy"), "c1_accuracy": c1}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", type=int, default=None,
                        help="score the quick-mode runs on this many images instead (a check of the script)")
    args = parser.parse_args(argv)
    rows, missing = [], []
    for name, dataset, *labels in bookruns.BOOK_RUNS:
        if name not in models.names() or labels:
            continue   # the MNIST evaluator (trained beside the runs); the labelled InfoGAN (issue 28, after this table)
        path = last_checkpoint(name, dataset, args.subset)
        if path is None or not path.is_file():
            missing.append(f"{name} ({dataset}{f', subset {args.subset}' if args.subset else ''})")
            continue
        model, _ = checkpoint.load(path)
        evaluators = {"2 (MLP)": load_mlp_evaluator(dataset, log=print),
                      "3 (CNN)": metrics.load_evaluator(dataset=dataset, log=print)}
        for version, evaluator in evaluators.items():
            rows.append({"model": name, "dataset": dataset, "checkpoint": path.name,
                         "evaluator": version, **scores(model, evaluator)})
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    if missing:
        print("no finished book run (make runs): " + ", ".join(missing), file=sys.stderr)
    if not rows:
        sys.exit("error: no book run to score; train them first with `make runs`")
    text = io.StringIO()
    text.write(f"# rescore_book_runs.py, {datetime.date.today()}, {platform.node()}; each book run's last "
               "checkpoint, 10,000 samples (seed 0) against the test images, by evaluator 2 and 3\n")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: (f"{v:.4f}" if isinstance(v, float) else ("" if v is None else v))
                      for k, v in row.items()} for row in rows)
    out = OUT if args.subset is None else OUT.with_name(f"{OUT.stem}-subset{args.subset}.csv")
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write(text.getvalue())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
