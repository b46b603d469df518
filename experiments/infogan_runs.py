"""Train InfoGAN variants on MNIST (no labels) and keep a checkpoint every N epochs.

    python experiments/infogan_runs.py --name base --epochs 30
    python experiments/infogan_runs.py --name drop03 --set d_dropout=0.3

Checkpoints go to $NPGAN_DATA/runs/infogan-<name>/epoch_NNN.npz (git-ignored);
score them with `python -m npgan evaluate --checkpoint …`.
"""

import argparse
import json
import time

from npgan import book_config, build, checkpoint, load_mnist, train


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a config field, e.g. lambda_con=0.5")
    args = parser.parse_args()
    config = book_config("infogan")
    for item in args.set:
        key, value = item.split("=", 1)
        setattr(config, key, type(getattr(config, key))(json.loads(value)))
    images, _ = load_mnist("train")          # the labels are never used
    model = build(config, seed=args.seed)
    folder = checkpoint.run_dir(f"infogan-{args.name}")
    start = time.perf_counter()
    history = train(model, images, epochs=args.epochs, seed=args.seed, progress=False,
                    on_epoch_end=checkpoint.epoch_saver(model, folder, args.epochs, args.every,
                                                        args.seed))
    print(f"{args.name}: {args.epochs} epochs in {history.seconds:.0f} s of training "
          f"({time.perf_counter() - start:.0f} s in all); {folder}")


if __name__ == "__main__":
    main()
