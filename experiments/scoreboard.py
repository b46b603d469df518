"""The scoreboard of section 21.5: each lever of the book's recipe changed on its
own, over several seeds, for a fixed number of epochs.

Every run trains on train[:50000] and is scored against train[50000:60000]
(metrics.evaluate(..., against="validation")): the test images are kept for the
book's final figures, so choosing a recipe from this table does not tune on them.
One run = one (model, lever, seed); its figures go to a JSON file of its own in
$NPGAN_DATA/scoreboard/, so an interrupted sweep goes on where it stopped and two
sweeps (e.g. one per model, one per core) can run at once. ``--table`` gathers
them into experiments/scoreboard.csv, with the command, machine and date in
experiments/scoreboard.json.

    OPENBLAS_NUM_THREADS=1 python experiments/scoreboard.py --model gan --epochs 10 --seeds 0 1 2
    python experiments/scoreboard.py --table

``--final`` trains the book recipe itself, as the book does (all 60,000 images,
the book's epochs, scored on the test images), for more seeds than the book's
own run (seed 0): the seed spread of the final figures, in experiments/book_seeds.csv.
"""

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import npgan
from npgan import metrics
from npgan.data import data_dir
from npgan.files import atomic_write

HERE = Path(__file__).resolve().parent
TRAIN = slice(0, 50_000)   # metrics.VALIDATION (train[50000:60000]) is held out

# The recipe each board started from, written as changes to today's book recipe
# (npgan.book_config), so that re-running any stored row trains the same model:
# the 10-epoch board started before the average of G's weights and the batch
# spread, the 60-epoch board (scoreboard-e60.csv) with the average, before the
# batch spread; D's dropout was then 0.3 in the GAN, its average had β = 0.999,
# and the CGAN's D had no projection (projection.py) on either board. The GAN's
# longer runs (72 epochs; 70 with β = 0.9999, the lever "EMA 0.9999") started from
# the recipe with the spread and dropout 0.15.
BASELINES = {
    10: {"gan": {"ema_decay": 0.0, "d_batch_std": 0, "d_dropout": 0.3},
         "cgan": {"ema_decay": 0.0, "d_batch_std": 0, "d_projection": False}},
    60: {"gan": {"d_batch_std": 0, "d_dropout": 0.3, "ema_decay": 0.999},
         "cgan": {"d_batch_std": 0, "d_projection": False}},
    72: {"gan": {"ema_decay": 0.999}},
    # the DCGAN's boards started from the D with two convs and DCGAN's rate 2e-4
    # (the third conv, the larger rate and its decay came out of them)
    6: {"dcgan": {"d_channels": (16, 32), "lr_d": 2e-4, "lr_g": 2e-4, "lr_decay": 0.0}},
    30: {"dcgan": {"d_channels": (16, 32), "lr_d": 2e-4, "lr_g": 2e-4, "lr_decay": 0.0}},
}

# the DCGAN's three-conv D, and one Adam rate for both nets: parts of its levers below
D3 = {"d_channels": (16, 32, 64)}


def rates(lr):
    return {"lr_d": lr, "lr_g": lr}


# lever name → changes to its board's baseline. "original recipe" is the
# original chapter's: ReLU, no dropout, real label 1 (with our Adam).
LEVERS = {
    "gan": {
        "book": {},
        "ReLU": {"activation": "relu"},
        "no dropout": {"d_dropout": 0.0},
        "no smoothing": {"real_label": 1.0},
        "EMA 0.999": {"ema_decay": 0.999},
        "lr_d 4e-4, lr_g 1e-4": {"lr_d": 4e-4, "lr_g": 1e-4},
        "batch 128": {"batch_size": 128},
        "original recipe": {"activation": "relu", "d_dropout": 0.0, "real_label": 1.0},
        # second round, from the recipe with the average (60 epochs: scoreboard-e60.csv)
        "EMA 0.9999": {"ema_decay": 0.9999},
        "dropout 0.15": {"d_dropout": 0.15},
        # the learning rates fall linearly to 0 over the last third of the run
        "lr decay 1/3": {"lr_decay": 1 / 3},
        # D also reads the spread of its batch, in groups of 4 (batchstd.py)
        "batch std": {"d_batch_std": 4},
        "batch std, no dropout": {"d_batch_std": 4, "d_dropout": 0.0},
        "batch std, dropout 0.15": {"d_batch_std": 4, "d_dropout": 0.15},
        "batch std, dropout 0.15, EMA 0.9999": {"d_batch_std": 4, "d_dropout": 0.15, "ema_decay": 0.9999},
    },
    "cgan": {
        "book": {},
        "ReLU": {"activation": "relu"},
        "dropout 0.3": {"d_dropout": 0.3},
        "no smoothing": {"real_label": 1.0},
        "EMA 0.999": {"ema_decay": 0.999},
        "lr_d 4e-4, lr_g 1e-4": {"lr_d": 4e-4, "lr_g": 1e-4},
        "batch 128": {"batch_size": 128},
        "original recipe": {"activation": "relu", "real_label": 1.0},
        "EMA 0.9999": {"ema_decay": 0.9999},
        "lr decay 1/3": {"lr_decay": 1 / 3},
        "batch std": {"d_batch_std": 4},
        "batch std 16": {"d_batch_std": 16},
        "batch std, EMA 0.9999": {"d_batch_std": 4, "ema_decay": 0.9999},
        # the label also picks D's last weights (projection.py), with and without the spread
        "projection": {"d_projection": True},
        "batch std, projection": {"d_batch_std": 4, "d_projection": True},
    },
    # the DCGAN (21.4): its D's dropout and widths on a short board (6 epochs), then
    # a board of 30 epochs (scoreboard-e30.csv); both start from a D with two convs
    # (BASELINES), the levers "D 16/32/64…" add a third and a fourth
    "dcgan": {
        "book": {},
        "no dropout": {"d_dropout": 0.0},
        "dropout 0.15": {"d_dropout": 0.15},
        "D 32/32": {"d_channels": (32, 32)},
        "G 64/16": {"g_channels": (64, 16)},
        # twice the widths: does capacity limit the 30-epoch FD? (each about twice the time)
        "D 32/64": {"d_channels": (32, 64)},
        "G 64/32": {"g_channels": (64, 32)},
        # a third 4×4 stride-2 conv in D (7×7 → 3×3): one unit sees 22 of the 28 pixels, not 10
        "D 16/32/64": {"d_channels": (16, 32, 64)},
        "D 16/32/32": {"d_channels": (16, 32, 32)},
        "D 16/32/64, EMA 0.999": {"d_channels": (16, 32, 64), "ema_decay": 0.999},
        "D 16/32/64, batch std": {"d_channels": (16, 32, 64), "d_batch_std": 4},
        "D 16/32/64/128": {"d_channels": (16, 32, 64, 128)},
        "D 16/32/64/128, dropout 0.15": {"d_channels": (16, 32, 64, 128), "d_dropout": 0.15},
        # on the three-conv D: a hidden Linear that sees all of D's last maps at once
        # (the MLP GAN's D sees the whole image from its first layer), and a wider G
        "D 16/32/64, FC 256": {**D3, "d_fc": (256,)},
        "D 16/32/64, G 64/32": {**D3, "g_channels": (64, 32)},
        # faster learning: the step's cost limits the epochs, so each step must do more
        "D 16/32/64, lr 5e-4": {**D3, **rates(5e-4)},
        "D 16/32/64, lr 1e-3": {**D3, **rates(1e-3)},
        "D 16/32/64, lr 2e-3": {**D3, **rates(2e-3)},
        "D 16/32/64, lr 4e-3": {**D3, **rates(4e-3)},
        "D 16/32/64, lr 2e-3, decay 1/3": {**D3, **rates(2e-3), "lr_decay": 1 / 3},
        "D 16/32/64, lr 2e-3, G 64/32": {**D3, **rates(2e-3), "g_channels": (64, 32)},
        "D 16/32/64, lr 2e-3, dropout 0.5": {**D3, **rates(2e-3), "d_dropout": 0.5},
        "D 16/32/64/128, lr 2e-3": {"d_channels": (16, 32, 64, 128), **rates(2e-3)},
        "D 16/32/64, lr 2e-3, real label 1": {**D3, **rates(2e-3), "real_label": 1.0},
        "D 16/32/64, lr 2e-3, batch 32": {**D3, **rates(2e-3), "batch_size": 32},
        "D 16/32/64, lr 2e-3, G 64/16": {**D3, **rates(2e-3), "g_channels": (64, 16)},
        "D 16/32/64, lr 2e-3, decay 1/3, EMA 0.999": {**D3, **rates(2e-3), "lr_decay": 1 / 3,
                                                      "ema_decay": 0.999},
        "D 16/32/64, batch 128, lr 4e-4": {**D3, "batch_size": 128, **rates(4e-4)},
        "EMA 0.999": {"ema_decay": 0.999},
        "EMA 0.9999": {"ema_decay": 0.9999},
        # D's last Linear also reads the batch's spread (batchstd.py), as the MLP GAN's D
        "batch std": {"d_batch_std": 4},
        "batch std, dropout 0.15": {"d_batch_std": 4, "d_dropout": 0.15},
        # on the book's recipe (8-epoch board, scoreboard-e8.csv): a D that sees all of its
        # last maps at once, G's ×2 steps without the checkerboard, D of twice the widths
        "FC 256": {"d_fc": (256,)},
        "resize": {"g_upsample": "resize"},
        "D 32/64/128": {"d_channels": (32, 64, 128)},
    },
    # no levers: only the seed spread of the book's own recipe (--final)
    "infogan": {"book": {}},
}
COLUMNS = ("model", "lever", "seed", "epochs", "max_share", "min_share", "kl_uniform", "fd",
           "fd_floor", "fd_ratio", "parzen", "parzen_se", "label_accuracy",
           "c1_accuracy", "c2_slant", "c2_width", "c3_slant", "c3_width", "train_seconds")   # c…: InfoGAN


def run_path(model_name, lever, seed, epochs, final=False):
    slug = "".join(ch if ch.isalnum() else "-" for ch in lever.lower()).strip("-")
    folder = data_dir() / "scoreboard" / ("final" if final else "")
    return folder / f"{model_name}-{slug}-seed{seed}-e{epochs}.json"


def run_one(model_name, lever, changes, seed, epochs, final=False):
    """Train one variant and score it against the validation images; returns its row.
    final=True: the book's own protocol instead (all 60,000 training images, scored
    against the test images), for the seed spread of the chosen recipe."""
    baseline = {} if final else BASELINES.get(epochs, {}).get(model_name, {})
    config = replace(npgan.book_config(model_name), **{**baseline, **changes})
    images, labels = npgan.load_mnist("train")
    if not final:
        images, labels = images[TRAIN], labels[TRAIN]
    model = npgan.build(config, seed=seed)
    history = npgan.train(model, images, labels if model.conditional else None, epochs=epochs,
                          seed=seed, progress=False)
    scores = metrics.evaluate(model, parzen=True, seed=seed, against="test" if final else "validation")
    shares = np.array(scores["digit_shares"])
    return {"model": model_name, "lever": lever, "seed": seed, "epochs": epochs,
            "max_share": float(shares.max()), "min_share": float(shares.min()),
            "kl_uniform": scores["kl_uniform"], "fd": scores["fd"], "fd_floor": scores["fd_floor"],
            "fd_ratio": scores["fd"] / scores["fd_floor"], "parzen": scores["parzen_mean"],
            "parzen_se": scores["parzen_se"], "label_accuracy": scores.get("label_accuracy"),
            **codes_columns(scores.get("codes")),
            "train_seconds": history.seconds, "config": json.loads(config.to_json())}


def codes_columns(codes):
    """An InfoGAN's codes (codes.evaluate_codes): c1's matched accuracy and each
    continuous code's Spearman ρ with slant and width; nothing for other models."""
    if not codes:
        return {}
    return {"c1_accuracy": codes["c1"]["matched_accuracy"],
            **{f"{c}_{m}": codes[c][m] for c in ("c2", "c3") for m in ("slant", "width")}}


def sweep(model_name, levers, seeds, epochs, final=False):
    for seed in seeds:            # seed by seed: a partial sweep already covers every lever
        for lever in levers:
            path = run_path(model_name, lever, seed, epochs, final)
            if path.exists():
                continue
            start = time.perf_counter()
            row = run_one(model_name, lever, LEVERS[model_name][lever], seed, epochs, final)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path, "w", encoding="utf-8") as f:
                json.dump(row, f, indent=1)
            print(f"{model_name} / {lever} / seed {seed}: FD {row['fd']:.2f} "
                  f"({row['fd_ratio']:.2f}× floor), Parzen {row['parzen']:.1f}, shares "
                  f"{row['min_share']:.1%}–{row['max_share']:.1%}"
                  + (f", label accuracy {row['label_accuracy']:.2%}" if row["label_accuracy"] else "")
                  + (f", c1 {row['c1_accuracy']:.1%}" if row.get("c1_accuracy") is not None else "")
                  + f"  [{time.perf_counter() - start:.0f} s]", flush=True)


def summary(rows):
    """(model, lever) → {column: (mean, sd, n)} over seeds, in LEVERS' order."""
    table = {}
    for model_name, levers in LEVERS.items():
        for lever in levers:
            group = [r for r in rows if r["model"] == model_name and r["lever"] == lever]
            if not group:
                continue
            table[(model_name, lever)] = {
                key: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
                for key in COLUMNS[4:] if (v := [r[key] for r in group if r.get(key) is not None])}
    return table


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gather_final():
    """The book recipe's other seeds (``--final``) → experiments/book_seeds.csv, each
    row with its config as JSON, so that 21.5 can check it is still the book's recipe."""
    rows = [json.loads(p.read_text()) for p in sorted((data_dir() / "scoreboard" / "final").glob("*.json"))]
    if not rows:
        sys.exit(f"no --final runs in {data_dir() / 'scoreboard' / 'final'}")
    write_csv(HERE / "book_seeds.csv", (*COLUMNS, "config"),
              sorted(rows, key=lambda r: (r["model"], r["seed"])))
    print(f"wrote {HERE / 'book_seeds.csv'} ({len(rows)} runs)")


def write_csv(path, columns, rows):
    """rows (dicts) → a CSV of ``columns``, floats to 6 significant digits, the
    config (if a column) as sorted JSON; written atomically."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: json.dumps(v, sort_keys=True) if k == "config" else
                             (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def table_stem(epochs):
    """experiments/scoreboard.csv for the 10-epoch board of 21.5, scoreboard-e<N>.csv else."""
    return "scoreboard" if epochs == 10 else f"scoreboard-e{epochs}"


def kept_rows(path, runs):
    """The rows of the CSV at ``path`` whose runs (model, lever, seed) are not among
    ``runs``: runs trained on another machine stay in the table."""
    if not path.exists():
        return []
    done = {(r["model"], r["lever"], int(r["seed"])) for r in runs}

    def value(key, text):
        if text == "" or key in ("model", "lever"):
            return None if text == "" else text
        return int(text) if key in ("seed", "epochs") else float(text)
    with path.open(encoding="utf-8") as f:
        rows = [{k: value(k, v) for k, v in r.items()} for r in csv.DictReader(f)]
    return [r for r in rows if (r["model"], r["lever"], r["seed"]) not in done]


def gather(epochs):
    rows = [json.loads(p.read_text()) for p in sorted((data_dir() / "scoreboard").glob(f"*-e{epochs}.json"))]
    if not rows:
        sys.exit(f"no scoreboard runs of {epochs} epochs in {data_dir() / 'scoreboard'}")
    stem = table_stem(epochs)
    rows += kept_rows(HERE / f"{stem}.csv", rows)
    write_csv(HERE / f"{stem}.csv", COLUMNS, sorted(
        rows, key=lambda r: (r["model"], list(LEVERS[r["model"]]).index(r["lever"]), r["seed"])))
    commands = []   # what was run, read off the runs themselves
    for model_name in LEVERS:
        mine = [r for r in rows if r["model"] == model_name]
        if mine:
            levers = [lever for lever in LEVERS[model_name] if any(r["lever"] == lever for r in mine)]
            commands.append(f"OPENBLAS_NUM_THREADS=1 python experiments/scoreboard.py --model {model_name} "
                            f"--epochs {epochs} --seeds {' '.join(str(x) for x in sorted({r['seed'] for r in mine}))}"
                            + ("" if levers == list(LEVERS[model_name]) else
                               " --levers " + " ".join(f'"{lever}"' for lever in levers)))
    info = {"command": "; ".join([*commands, f"python experiments/scoreboard.py --table --epochs {epochs}"]),
            "date": time.strftime("%Y-%m-%d"), "machine": f"{cpu_name()}, {os.cpu_count()} cores, "
            f"{platform.system()}, one BLAS thread per run, two runs at once", "numpy": np.__version__,
            "epochs": epochs, "train_images": "train[:50000]",
            "scored_against": "train[50000:60000] (Parzen: sigma on its first 1,000, scored on the other 9,000)",
            "baseline": {m: json.loads(replace(npgan.book_config(m), **changes).to_json())
                         for m, changes in BASELINES.get(epochs, {}).items()},
            "levers": LEVERS}
    with atomic_write(HERE / f"{stem}.json", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    for (model_name, lever), cols in summary(rows).items():
        fmt = lambda key, spec: f"{cols[key][0]:{spec}} ± {cols[key][1]:{spec}}" if key in cols else "—"
        print(f"{model_name:5s} {lever:22s} n={cols['fd'][2]}  FD/floor {fmt('fd_ratio', '.2f')}  "
              f"Parzen {fmt('parzen', '.1f')}  max share {fmt('max_share', '.3f')}  "
              f"min share {fmt('min_share', '.3f')}  label acc {fmt('label_accuracy', '.4f')}")
    print(f"wrote {HERE / (stem + '.csv')} ({len(rows)} runs)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=tuple(LEVERS))
    p.add_argument("--levers", nargs="*", help="default: all of the model's")
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--table", action="store_true", help="gather the runs into experiments/scoreboard.csv")
    p.add_argument("--final", action="store_true",
                   help="the book recipe itself at the book's epochs on all 60,000 images, scored on "
                        "the test images (seed 0 is the book's own run: give --seeds 1 2)")
    args = p.parse_args()
    if args.table:
        return gather_final() if args.final else gather(args.epochs)
    if not args.model:
        p.error(f"give --model {'|'.join(LEVERS)}, or --table")
    if args.final:
        return sweep(args.model, ["book"], args.seeds, npgan.BOOK_EPOCHS[args.model], final=True)
    levers = args.levers or list(LEVERS[args.model])
    unknown = set(levers) - set(LEVERS[args.model])
    if unknown:
        p.error(f"unknown levers {sorted(unknown)}; choose from {list(LEVERS[args.model])}")
    sweep(args.model, levers, args.seeds, args.epochs)


if __name__ == "__main__":
    main()
