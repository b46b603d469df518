"""How many labels does c1's meaning cost, and what does the paper's recipe do
without any (issue 28)? One InfoGAN training per (recipe, n_labels, seed), each
scored and appended as one row to experiments/infogan_labels.csv; a run whose
row is there is skipped, so the script can be stopped and started again.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python experiments/infogan_labels.py            # the plan, in order
    OPENBLAS_NUM_THREADS=1 python experiments/infogan_labels.py --run book 100 0      # one run
    python experiments/infogan_labels.py --list                                       # the plan and what is done
    python experiments/infogan_labels.py --rescore    # rows of an older evaluator scored again

Every run trains on all 60,000 training images without their labels, as the book
does; with n_labels = n > 0, n of them (n/10 per digit, from train[:50000],
chosen by the seed: npgan.semisup) also teach Q's c1 head their labels. Scores:
c1's matched accuracy (1,000 samples per value, read by the evaluator) and the
share with digit = value (what the labels should give); Q's reading of the
10,000 test images, through c1's matching and as labelled; the FD to the
validation images train[50000:] beside the real-vs-real floor; and how often
sweeping c2 or c3 over [−1, 1] (and [−2, 2]) with z and c1 fixed changes the
digit the evaluator reads (500 z). The checkpoints stay in
$NPGAN_DATA/runs/infogan-labels/<recipe>-n<N>-s<seed>/ (git-ignored).

Recipes: "book" is the book's recipe of this commit; the others change one
setting of it each (the part-1 pieces: Chen et al. 2016 and their released code,
and the reimplementations), and "paper" takes them all together.
"""

import argparse
import csv
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from npgan import book_config, build, checkpoint, load_mnist, metrics, train
from npgan.codes import q_digit_accuracy
from npgan.evaluator import EVALUATOR_VERSION

import results_csv   # experiments/results_csv.py

OUT = Path(__file__).with_name("infogan_labels.csv")
LABELS = (0, 10, 20, 50, 100, 300, 1000)
RECIPES = {
    "book": {},
    "con01": dict(lambda_con=0.1),                       # λ of the continuous codes 0.1
    "lrq1e3": dict(lr_q=1e-3),                           # Q's own weights at G's 1e-3, D at 2e-4
    "uniform62": dict(noise="uniform", z_std=1.0),       # z: 62 numbers ~ U(−1, 1)
    "batch128": dict(batch_size=128),
    "qhead128bn": dict(q_hidden=128, q_batch_norm=True),  # Q's own FC 128 + BN on the shared trunk
    "paper": dict(lambda_con=0.1, lr_q=1e-3, noise="uniform", z_std=1.0, batch_size=128,
                  q_hidden=128, q_batch_norm=True),
    # the labelled images moved by up to ±2 pixels each time Q reads them (semi-supervised only)
    "shift2": dict(label_shift=2),
    "shift1": dict(label_shift=1),
    # the same on the DCGAN's networks (dcgan.py; BN in D, so no dropout), as Chen et al. had it
    "conv-paper": dict(arch="conv", d_dropout=0.0, lambda_con=0.1, lr_q=1e-3, noise="uniform",
                       z_std=1.0, batch_size=128, q_hidden=128, q_batch_norm=True),
}
# The order the runs are made in (what a short session most needs first): the two first
# runs, the curve for seeds 0 and 1, three part-1 variants, the paper's recipe on both
# nets, the curve's third seed, the last two variants, and the paper's recipes' seeds 1, 2.
PLAN = ([("book", 0, 0), ("book", 100, 0)]
        + [("book", n, 0) for n in LABELS if n not in (0, 100)]
        + [("book", n, s) for s in (1, 2) for n in (0, 100)]
        + [("book", n, 1) for n in LABELS if n not in (0, 100)]
        + [("con01", 0, 0), ("lrq1e3", 0, 0), ("uniform62", 0, 0)]
        + [("paper", 0, 0), ("conv-paper", 0, 0)]
        + [("book", n, 2) for n in LABELS if n not in (0, 100)]
        + [("batch128", 0, 0), ("qhead128bn", 0, 0)]
        + [(r, 0, s) for s in (1, 2) for r in ("paper", "conv-paper")])
COLUMNS = ("recipe", "settings", "n_labels", "seed", "epochs", "c1_matched_accuracy",
           "c1_as_labelled", "q_test_accuracy", "q_test_as_labelled", "q_test_sure", "fd_validation",
           "fd_floor", "c2_digit_change", "c3_digit_change", "c2_digit_change_wide",
           "c3_digit_change_wide", "train_seconds", "date", "machine", "commit", "evaluator")


def config_of(recipe, n_labels):
    config = book_config("infogan")
    return replace(config, **RECIPES[recipe], n_labels=n_labels)


def settings_of(config):
    """The fields that differ from the book's recipe, as "key=value" words."""
    book = json.loads(book_config("infogan").to_json())
    return " ".join(f"{k}={v}" for k, v in json.loads(config.to_json()).items() if book.get(k) != v)


def done_runs():
    if not OUT.exists():
        return set()
    with open(OUT, encoding="utf-8") as f:
        return {(r["recipe"], int(r["n_labels"]), int(r["seed"])) for r in csv.DictReader(f)}


def run(recipe, n_labels, seed, epochs=None):
    config = config_of(recipe, n_labels)
    epochs = epochs or 20
    images, labels = load_mnist("train")
    model = build(config, seed=seed)
    if n_labels:
        model.use_labels(images, labels, seed=seed)
    history = train(model, images, epochs=epochs, seed=seed, progress=False,
                    on_epoch_end=checkpoint.epoch_saver(model, folder_of(recipe, n_labels, seed),
                                                        epochs, epochs, seed))
    row = {"recipe": recipe, "settings": settings_of(config) or "(the book's)", "n_labels": n_labels,
           "seed": seed, "epochs": epochs, **scores(model),
           "train_seconds": f"{history.seconds:.0f}", "date": time.strftime("%Y-%m-%d"),
           "machine": f"{platform.node()} ({platform.machine()})", "commit": COMMIT}
    results_csv.append_row(OUT, COLUMNS, row)
    print(json.dumps(row), flush=True)


def folder_of(recipe, n_labels, seed):
    return checkpoint.run_dir(f"infogan-labels/{recipe}-n{n_labels}-s{seed}")


def scores(model):
    """The row's score columns for a trained InfoGAN, read by this commit's evaluator."""
    r = metrics.evaluate(model, seed=0, against="validation")
    c1, codes = r["codes"]["c1"], r["codes"]
    x_test, y_test = load_mnist("test")       # the test labels only score Q's reading
    q_test, q_sure = q_digit_accuracy(model, c1["digit_of_value"], x_test, y_test)
    p_c1, _ = model.read_codes(x_test)
    return {"c1_matched_accuracy": f"{c1['matched_accuracy']:.4f}",
            "c1_as_labelled": f"{c1['accuracy_as_labelled']:.4f}", "q_test_accuracy": f"{q_test:.4f}",
            "q_test_as_labelled": f"{np.mean(p_c1.argmax(axis=1) == y_test):.4f}",
            "q_test_sure": f"{q_sure:.4f}", "fd_validation": f"{r['fd']:.3f}",
            "fd_floor": f"{r['fd_floor']:.4f}",
            **{f"{c}_digit_change{w}": f"{codes[c]['digit_change' + w]:.3f}"
               for w in ("", "_wide") for c in ("c2", "c3")},
            "evaluator": f"v{EVALUATOR_VERSION}"}


def rescore():
    """Every row scored again from its last checkpoint by this commit's evaluator (the rows
    of an older evaluator version first); training columns are kept."""
    with open(OUT, encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    for row in table:
        if row.get("evaluator") == f"v{EVALUATOR_VERSION}":
            continue
        folder = folder_of(row["recipe"], int(row["n_labels"]), int(row["seed"]))
        last = sorted(folder.glob("epoch_*.npz"))
        if not last:
            print(f"{folder}: no checkpoint, row kept as it is", file=sys.stderr)
            continue
        model, _ = checkpoint.load(last[-1])
        row.update(scores(model))
        results_csv.write_csv(OUT, table, COLUMNS)   # after every row: stoppable
        print(row["recipe"], row["n_labels"], row["seed"], row["c1_matched_accuracy"], flush=True)


COMMIT = results_csv.code_commit()   # the code this process runs: read at its start, not when a row is written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=3, metavar=("RECIPE", "N_LABELS", "SEED"))
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--rescore", action="store_true",
                        help="score every row again with this commit's evaluator (from its checkpoint)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the book's 20")
    args = parser.parse_args()
    done = done_runs()
    if args.list:
        for key in PLAN:
            print(*key, "done" if key in done else "", sep="\t")
        return
    if args.rescore:
        rescore()
        return
    if args.run:
        recipe, n, seed = args.run[0], int(args.run[1]), int(args.run[2])
        if recipe not in RECIPES:
            sys.exit(f"unknown recipe {recipe!r}: use one of {', '.join(RECIPES)}")
        run(recipe, n, seed, args.epochs)
        return
    for key in PLAN:                     # one training at a time, in the plan's order
        if key not in done_runs():
            start = time.perf_counter()
            run(*key, epochs=args.epochs)
            print(f"{key}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
