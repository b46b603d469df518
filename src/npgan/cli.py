"""Command line: python -m npgan {fetch-data, train, sample, evaluate}.

Wrong use prints one line on stderr and exits with code 2."""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import checkpoint, data, models
from .files import atomic_write
from .models import BOOK_EPOCHS, book_config
from .plot import save_png, to_uint8


class UsageError(Exception):
    """Wrong use of the command line: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _epoch_list(text):
    try:
        epochs = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected epochs like 0,5,20, got {text!r}") from None
    if any(e < 0 for e in epochs):
        raise argparse.ArgumentTypeError("epochs cannot be negative")
    return epochs


def _code(text):
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as c1=3 or c2=0.5, "
                                         f"got {text!r}") from None


def _writable_dir(path):
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UsageError(f"cannot write to {path}: {err.strerror or err}") from None
    return path


def cmd_fetch(args):
    folder = data.fetch_mnist(args.data_dir)
    print(f"MNIST is ready in {folder}")
    if args.evaluator:
        from .metrics import evaluator_path, load_evaluator

        load_evaluator()
        print(f"the evaluator is ready in {evaluator_path()}")


def cmd_train(args):
    from .models import build
    from .train import TrainingDiverged, train

    config = book_config(args.model)
    if args.dataset != "mnist" and not hasattr(config, "dataset"):
        raise UsageError(f"--dataset {args.dataset}: only the DCGAN trains on it; add --model dcgan")
    if hasattr(config, "dataset"):
        config.dataset = args.dataset
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        config.batch_size = args.batch_size
    if args.lr is not None:
        if not 0 < args.lr < float("inf"):
            raise UsageError(f"--lr must be a positive number, got {args.lr}")
        config.lr_d = config.lr_g = args.lr
    epochs = BOOK_EPOCHS[args.model] if args.epochs is None else args.epochs
    if epochs < 1:
        raise UsageError("--epochs must be at least 1")
    if args.subset is not None and not config.batch_size <= args.subset <= 60000:
        raise UsageError(f"--subset must be between the batch size ({config.batch_size}) "
                         f"and 60000, got {args.subset}")
    out = _writable_dir(args.out)
    if args.dataset == "fashion":   # from Debian's dataset-fashion-mnist, not the MNIST cache
        images, labels = data.load_fashion_mnist("train", subset=args.subset)
    else:
        images, labels = data.load_mnist("train", subset=args.subset, directory=args.data_dir)
    model = build(config, seed=args.seed)

    def save_checkpoint(epoch, history):
        checkpoint.save(model, out / "checkpoint.npz", epoch=epoch, seed=args.seed)
        history.to_csv(out / "history.csv")
        if epoch in history.snapshots:
            save_png(history.snapshots[epoch], out / f"epoch_{epoch:03d}.png")

    snapshots = args.snapshot_epochs
    try:
        # a diverging run is reported once, by TrainingDiverged, not by NumPy's warnings
        with np.errstate(over="ignore", invalid="ignore"):
            history = train(model, images, labels if model.conditional else None, epochs=epochs,
                            seed=args.seed, snapshot_epochs=snapshots, progress=not args.quiet,
                            on_epoch_end=save_checkpoint)
    except TrainingDiverged as err:
        raise UsageError(str(err)) from None
    save_png(history.snapshots[0], out / "epoch_000.png")
    steps = len(history.records) // epochs
    print(f"trained {args.model.upper()} for {epochs} epochs ({steps} steps each) in "
          f"{history.seconds:.1f} s ({history.seconds / epochs:.2f} s/epoch); wrote {out}/checkpoint.npz")


def cmd_sample(args):
    try:
        model, _ = checkpoint.load(args.checkpoint)
    except checkpoint.CheckpointError as err:
        raise UsageError(str(err)) from None
    if args.label is not None and not model.conditional:
        raise UsageError(f"--label needs a CGAN checkpoint; this one is a {model.name.upper()}")
    if args.code and not hasattr(model, "set_codes"):
        raise UsageError(f"--code needs an InfoGAN checkpoint; this one is a {model.name.upper()}, "
                         "which has no codes")
    if args.label is not None and not 0 <= args.label < model.config.n_classes:
        raise UsageError(f"--label must be a digit 0–{model.config.n_classes - 1}, got {args.label}")
    if args.n < 1:
        raise UsageError("--n must be at least 1")
    out = Path(args.out)
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist or is not writable")
    if out.is_dir():
        raise UsageError(f"cannot write {out}: it is a folder; give a file name such as {out / 'samples.npy'}")
    rng = np.random.default_rng(args.seed)
    labels = None
    if model.conditional:
        labels = np.full(args.n, args.label) if args.label is not None else np.arange(args.n) % 10
    g_in = model.sample_noise(args.n, rng)
    if args.code:  # z and every code are drawn first, so a sweep changes only the set codes
        try:
            model.set_codes(g_in, dict(args.code))
        except ValueError as err:
            raise UsageError(f"--code: {err}") from None
    images = to_uint8(model.generate(g_in, labels)).reshape(-1, 28, 28)
    try:
        with atomic_write(out) as f:
            np.save(f, images)
    except OSError as err:
        raise UsageError(f"cannot write {out}: {err.strerror or err}") from None
    print(f"wrote {args.n} samples, uint8 (N, 28, 28), to {out}")


def cmd_evaluate(args):
    import json

    from . import metrics

    try:
        model, _ = checkpoint.load(args.checkpoint)
    except checkpoint.CheckpointError as err:
        raise UsageError(str(err)) from None
    out = None
    if args.json is not None:  # checked before the minutes of work, not after
        out = Path(args.json)
        if out.is_dir():
            raise UsageError(f"cannot write {out}: it is a folder; give a file name such as {out / 'eval.json'}")
        if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
            raise UsageError(f"cannot write {out}: folder {out.parent} does not exist or is not writable")
    try:
        result = {"checkpoint": str(args.checkpoint),
                  **metrics.evaluate(model, parzen=args.parzen, seed=args.seed)}
    except ValueError as err:  # e.g. a diverged generator's NaN images
        raise UsageError(f"{args.checkpoint}: {err}") from None
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if out is not None:
        try:
            with atomic_write(out, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as err:
            raise UsageError(f"cannot write {out}: {err.strerror or err}") from None
    print(text)


def cmd_book_runs(args):
    from . import bookruns

    if args.only:
        _, history = bookruns.book_run(args.only, epochs=args.epochs, subset=args.subset,
                                       dataset=args.dataset)
        print(f"book run {args.only} ({args.dataset}): "
              f"{'reused' if history.reused else 'trained in'} {history.seconds:.0f} s of training")
        return
    try:
        bookruns.train_side_by_side(jobs=args.jobs, subset=args.subset, epochs=args.epochs)
    except RuntimeError as err:
        raise UsageError(str(err)) from None


def make_parser():
    parser = Parser(prog="python -m npgan", description="A small NumPy GAN, CGAN and InfoGAN for MNIST (第21章).")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST cache folder (default: $NPGAN_DATA or ~/.cache/npgan)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("fetch-data", help="download and verify MNIST into the cache")
    p.add_argument("--evaluator", action="store_true",
                   help="also train and cache the MNIST classifier that `evaluate` uses (once, a few minutes)")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("train", help="train a model of the chapter on MNIST with the book's settings")
    p.add_argument("--model", choices=models.names(), default="gan")
    p.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist",
                   help="fashion: Fashion-MNIST (Debian's dataset-fashion-mnist); DCGAN only")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"default: the book's ({', '.join(f'{k} {v}' for k, v in BOOK_EPOCHS.items())})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="folder for checkpoint.npz, history.csv, epoch_NNN.png")
    p.add_argument("--batch-size", type=int, default=None, help="default: the book's (64)")
    p.add_argument("--lr", type=float, default=None, help="learning rate of both D and G (default: the book's)")
    p.add_argument("--subset", type=int, default=None, help="train on the first N images only")
    p.add_argument("--snapshot-epochs", type=_epoch_list, default=[0, 5, 20],
                   help="epochs whose sample grid is saved (0 and the last are always saved)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a checkpoint into a .npy file")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--label", type=int, default=None, help="CGAN: the digit to draw (default: 0–9 in turn)")
    p.add_argument("--code", type=_code, action="append", default=[], metavar="NAME=VALUE",
                   help="InfoGAN: set a code in every sample, e.g. --code c1=3 --code c2=0.5 "
                        "(repeatable; codes not given are drawn from their prior)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output .npy: uint8 (N, 28, 28), 0–255")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="score a checkpoint: digit shares, Fréchet distance, "
                       "label accuracy (CGAN), Parzen log-likelihood")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--parzen", action="store_true",
                   help="also the Parzen-window log-likelihood of the test set (about a minute more)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the JSON object to OUT")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise of the 10,000 samples")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("book-runs", help="train the book's runs side by side (what `make book` "
                       "does before the pages; each reused when it is already there)")
    p.add_argument("--jobs", type=int, default=None, help="runs at once (default: the cores)")
    p.add_argument("--only", choices=models.names(), default=None,
                   help="train just this model's run, here, in this process")
    p.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    p.add_argument("--subset", type=int, default=None, help="the first N images only (tests)")
    p.add_argument("--epochs", type=int, default=None, help="default: the book's")
    p.set_defaults(func=cmd_book_runs)
    return parser


def main(argv=None):
    try:
        args = make_parser().parse_args(argv)
        args.func(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (data.DataError, checkpoint.CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
