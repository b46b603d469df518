"""The DCGAN's levers that the earlier boards did not try (issue 27, part 4), one change
at a time against the book's recipe (dcgan.book_recipe), each trained with seed 0 on
train[:50000] for 10 epochs (the recipe's lr_decay = 1/3 within those 10) and scored
against the validation images train[50000:60000] by this commit's evaluator. One row per
run is appended to experiments/dcgan_levers.csv; a lever whose row is there is skipped,
so the script can be stopped and started again.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python experiments/dcgan_levers.py     # the plan, in order
    python experiments/dcgan_levers.py --list                                # the plan and what is done
    OPENBLAS_NUM_THREADS=1 python experiments/dcgan_levers.py --run "batch 128"
    OPENBLAS_NUM_THREADS=1 nice -n 10 python experiments/dcgan_levers.py --matched   # second pass

--matched: a second pass at the same training time. Each lever whose 10-epoch row has a
lower FD than the recipe's but a dearer step (by more than 5 %, as timed side by side by
benchmarks/dcgan_levers_step.py: the seconds per epoch of the rows depend on what else
the machine was running) trains again for round(10 / that ratio) epochs, with the decay
in its last third as ever; its row has that number in "epochs".

Levers, after the anchors they come from:
  * G wider where it is cheap: 128 channels out of the Linear at 7×7, then a stride-1 3×3
    conv down to the recipe's 32 (TensorFlow's MNIST DCGAN tutorial: 256 at 7×7 and a
    stride-1 transposed conv there; with 256 a step cost about 2.6 times the recipe's,
    with 128 about 1.7 times: benchmarks/dcgan_levers_step.py; 64 and 256 trained last);
  * a stride-1 3×3 conv at 7×7 in D, after the conv that makes the 7×7 maps;
  * 5×5 kernels in G's transposed convs and D's convs (stride 2, padding 2);
  * BN in D on real and fake batches apart, with the batch spread in groups of 4;
  * hinge loss with spectral normalisation of D's weights (Miyato et al. 2018);
  * two time scales (Heusel et al. 2017): G's rate a quarter of D's, 5e-4 against 2e-3
    (as the TTUR paper's DCGAN runs), and D's twice G's, 4e-3 against 2e-3;
  * batches of 128.
A lever whose config fields this commit does not have yet is skipped with a message.
"""

import argparse
import csv
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from npgan import book_config, build, load_mnist, metrics, train

import results_csv   # experiments/results_csv.py

OUT = Path(__file__).with_name("dcgan_levers.csv")
STEP_COSTS = Path(__file__).resolve().parents[1] / "benchmarks" / "dcgan_levers_step.csv"   # the step, timed side by side
TRAIN = slice(0, 50_000)   # metrics.VALIDATION (train[50000:60000]) is held out
EPOCHS = 10
SEED = 0
# the order of the plan: the levers that are settings of today's code first
LEVERS = {
    "book recipe": {},
    "BN in D (real/fake apart) + batch spread 4": {"d_batch_norm": True, "d_bn_batches": "separate",
                                                   "d_batch_std": 4},
    "TTUR: lr_g 5e-4, lr_d 2e-3": {"lr_g": 5e-4},
    "batch 128": {"batch_size": 128},
    "G 128 channels at 7x7 + stride-1 3x3 conv": {"g_linear_channels": 128},
    "D stride-1 3x3 conv at 7x7": {"d_stride1_conv": True},
    "5x5 kernels": {"kernel_size": 5},
    "hinge loss + spectral norm in D": {"loss": "hinge", "d_spectral_norm": True},
    # the TTUR the other way round: D faster than the recipe, G at the recipe's rate
    "TTUR: lr_d 4e-3, lr_g 2e-3": {"lr_d": 4e-3},
    # G's 7×7 maps narrower and as wide as TensorFlow's (after the 128 maps had helped)
    "G 64 channels at 7x7 + stride-1 3x3 conv": {"g_linear_channels": 64},
    "G 256 channels at 7x7 + stride-1 3x3 conv": {"g_linear_channels": 256},
}
COLUMNS = ("lever", "changes", "seed", "epochs", "fd", "fd_floor", "fd_ratio", "max_share",
           "min_share", "train_seconds", "seconds_per_epoch", "date", "commit")


def config_of(changes):
    """The book's DCGAN recipe with ``changes``; None if this commit lacks one of their fields."""
    config = book_config("dcgan")
    known = {f.name for f in fields(config)}
    if not set(changes) <= known:
        return None
    return replace(config, **changes)


def read_rows():
    if not OUT.exists():
        return []
    with open(OUT, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def done_runs():
    return {(r["lever"], int(r["epochs"])) for r in read_rows()}


def matched_plan():
    """(lever, epochs) of the second pass: the dearer levers at the recipe's training time."""
    rows = {r["lever"]: r for r in read_rows() if int(r["epochs"]) == EPOCHS}
    if "book recipe" not in rows or not STEP_COSTS.exists():
        return []
    with open(STEP_COSTS, encoding="utf-8") as f:
        cost = {r["lever"]: float(r["vs_recipe"]) for r in csv.DictReader(f)}
    base_fd = float(rows["book recipe"]["fd"])
    return [(lever, max(1, round(EPOCHS / cost[lever]))) for lever in LEVERS
            if lever in rows and lever in cost and cost[lever] > 1.05 and float(rows[lever]["fd"]) < base_fd]


def run(lever, epochs=EPOCHS):
    changes = LEVERS[lever]
    config = config_of(changes)
    if config is None:
        print(f"{lever}: this commit's DCGANConfig has no field among {sorted(changes)}; skipped",
              file=sys.stderr, flush=True)
        return
    images, _ = load_mnist("train")
    model = build(config, seed=SEED)
    history = train(model, images[TRAIN], epochs=epochs, seed=SEED, progress=False)
    scores = metrics.evaluate(model, seed=SEED, against="validation")
    shares = np.array(scores["digit_shares"])
    row = {"lever": lever, "changes": json.dumps(changes), "seed": SEED, "epochs": epochs,
           "fd": f"{scores['fd']:.3f}", "fd_floor": f"{scores['fd_floor']:.4f}",
           "fd_ratio": f"{scores['fd'] / scores['fd_floor']:.3f}",
           "max_share": f"{shares.max():.4f}", "min_share": f"{shares.min():.4f}",
           "train_seconds": f"{history.seconds:.0f}", "seconds_per_epoch": f"{history.seconds / epochs:.1f}",
           "date": time.strftime("%Y-%m-%d"), "commit": COMMIT}
    results_csv.append_row(OUT, COLUMNS, row)
    print(json.dumps(row), flush=True)


COMMIT = results_csv.code_commit()   # the code this process runs: read at its start, not when a row is written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", metavar="LEVER", help="one lever, by its name (see --list)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--matched", action="store_true",
                        help="the second pass: the dearer levers at the recipe's 10-epoch training time")
    args = parser.parse_args()
    plan = matched_plan() if args.matched else [(lever, EPOCHS) for lever in LEVERS]
    if args.list:
        done = done_runs()
        for lever, epochs in plan:
            state = "done" if (lever, epochs) in done else (
                "" if config_of(LEVERS[lever]) else "(no such fields yet)")
            print(lever, epochs, json.dumps(LEVERS[lever]), state, sep="\t")
        return
    if args.run:
        if args.run not in LEVERS:
            sys.exit(f"unknown lever {args.run!r}: use one of {', '.join(map(repr, LEVERS))}")
        run(args.run)
        return
    for lever, epochs in plan:           # one training at a time, in the plan's order
        if (lever, epochs) not in done_runs():
            start = time.perf_counter()
            run(lever, epochs)
            print(f"{lever}, {epochs} epochs: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
