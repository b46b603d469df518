"""What each evaluator's feature space sees (issue 27, part 2): the FD between the
10,000 training images and the 10,000 test images (the real-vs-real floor), and
between the same training images and the test images changed slightly and
systematically (npgan.sensitivity: every pixel +0.02, a 1-pixel shift, contrast
×0.95), for the retired MLP evaluator (version 2) and the book's CNN (version 3),
each as the FD and as its ratio to that evaluator's floor.

    make data    # the evaluators, once (or they are trained here, a few minutes)
    OPENBLAS_NUM_THREADS=1 python experiments/evaluator_sensitivity.py [--dataset fashion]
    # → evaluator_sensitivity.csv (evaluator_sensitivity-fashion.csv)

Export the Makefile's OPENBLAS_CORETYPE and NPY_DISABLE_CPU_FEATURES first, so
that the evaluators are the book's. Target (issue 27): the brightness row moves
the CNN's FD by at most 1.3× its floor.
"""

import argparse
import csv
import datetime
import io
import platform
from pathlib import Path

from npgan.evaluator import load_evaluator
from npgan.evaluator_mlp import load_mlp_evaluator
from npgan.files import atomic_write
from npgan.sensitivity import sensitivity_table

HERE = Path(__file__).parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    parser.add_argument("--n", type=int, default=10_000, help="images of each set (default 10,000)")
    args = parser.parse_args(argv)
    evaluators = {"mlp": load_mlp_evaluator(args.dataset, log=print),
                  "cnn": load_evaluator(dataset=args.dataset, log=print)}
    rows = sensitivity_table(evaluators, args.dataset, args.n)
    print(f"{'change':<18}{'MLP FD':>10}{'× floor':>9}{'CNN FD':>10}{'× floor':>9}")
    for row in rows:
        print(f"{row['change']:<18}{row['mlp_fd']:>10.3f}{row['mlp_ratio']:>9.2f}"
              f"{row['cnn_fd']:>10.3f}{row['cnn_ratio']:>9.2f}")
    text = io.StringIO()
    accuracy = {name: f"{e.meta.get('test_accuracy', float('nan')):.4f}" for name, e in evaluators.items()}
    text.write(f"# evaluator_sensitivity.py, {datetime.date.today()}, {platform.node()}; {args.dataset}, "
               f"FD of {args.n:,} training images against {args.n:,} test images, changed as the row says; "
               f"mlp = evaluator v2 (test accuracy {accuracy['mlp']}), "
               f"cnn = evaluator v3 (test accuracy {accuracy['cnn']}, weights SHA-256 "
               f"{evaluators['cnn'].weights_sha256()[:16]})\n")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()} for row in rows)
    out = HERE / ("evaluator_sensitivity.csv" if args.dataset == "mnist"
                  else f"evaluator_sensitivity-{args.dataset}.csv")
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write(text.getvalue())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
