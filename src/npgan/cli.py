"""Command line: python -m npgan {fetch-data, train, sample, evaluate}.

Wrong use prints one line on stderr and exits with code 2: a wrong argument, a
bad data file or checkpoint, an output that cannot be written (checked before
the work where it can be), a file-system error or too little memory. SIGTERM
ends it like Ctrl-C, removing half-written files. NPGAN_DEBUG=1 shows the
traceback of an OSError or MemoryError too; any other exception is a bug and
always shows it.
"""

import argparse
import codecs
import os
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import checkpoint, data, models
from .files import NotWritable, atomic_write, check_writable, describe, reason
from .models import BOOK_EPOCHS, book_config
from .plot import save_png, to_uint8


class UsageError(Exception):
    """Wrong use of the command line: reported in one line, exit code 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs."""


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


def _seed(text):
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {text!r}") from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 0, got {seed}")
    return seed


def _check_output(path, size=None, checkpoint_path=None, option="--out"):
    """UsageError unless ``path`` can be written (files.check_writable), and is
    not the checkpoint being read: writing that would destroy it."""
    if checkpoint_path is not None:
        try:
            same = os.path.samefile(path, checkpoint_path)
        except OSError:
            same = os.path.abspath(path) == os.path.abspath(checkpoint_path)
        if same:
            raise UsageError(f"{option} {path} is the checkpoint itself, which writing it would "
                             "destroy; choose another file name")
    try:
        check_writable(path, size=size)
    except NotWritable as err:
        raise UsageError(str(err)) from None


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
        from .evaluator import evaluator_path, load_evaluator

        load_evaluator(must_cache=True)   # caching it is the point: say so before training
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
    try:   # e.g. --batch-size 100000: the config says what is wrong, before any work
        config.validate()
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    out = _writable_dir(args.out)
    # every file the run will write, checked now rather than after the first epoch
    checkpoint_bytes = 3 * np.dtype(config.dtype).itemsize * config.num_parameters() + 1_000_000
    _check_output(out / "checkpoint.npz", size=checkpoint_bytes)
    _check_output(out / "history.csv")
    for epoch in sorted({0, epochs} | {e for e in args.snapshot_epochs if e <= epochs}):
        _check_output(out / f"epoch_{epoch:03d}.png")
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


SAMPLE_BATCH = 1000   # sample --n 10000000000 streams to disk; memory stays at one batch


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
    _check_output(out, size=128 + args.n * 784, checkpoint_path=args.checkpoint)
    rng = np.random.default_rng(args.seed)
    header = {"descr": "|u1", "fortran_order": False, "shape": (args.n, 28, 28)}
    try:
        with atomic_write(out) as f:   # the .npy that np.save writes, a batch at a time
            np.lib.format.write_array_header_1_0(f, header)
            for start in range(0, args.n, SAMPLE_BATCH):
                b = min(SAMPLE_BATCH, args.n - start)
                labels = None
                if model.conditional:
                    labels = np.full(b, args.label) if args.label is not None else \
                        np.arange(start, start + b) % model.config.n_classes
                g_in = model.sample_noise(b, rng)
                if args.code:  # z and every code are drawn first, so a sweep changes only the set codes
                    try:
                        model.set_codes(g_in, dict(args.code))
                    except ValueError as err:
                        raise UsageError(f"--code: {err}") from None
                f.write(to_uint8(model.generate(g_in, labels)).tobytes())
    except OSError as err:
        raise UsageError(f"cannot write {out}: {reason(err)}") from None
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
        _check_output(out, checkpoint_path=args.checkpoint, option="--json")
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
            raise UsageError(f"cannot write {out}: {reason(err)}") from None
    print(text)


def cmd_book_runs(args):
    from . import bookruns

    if args.only == "evaluator":   # the evaluator of a data set, trained beside the runs
        from .evaluator import load_evaluator

        load_evaluator(dataset=args.dataset, log=print)
        print(f"the {args.dataset} evaluator is ready")
        return
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
    p.add_argument("--seed", type=_seed, default=0)
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
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", required=True, help="output .npy: uint8 (N, 28, 28), 0–255")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="score a checkpoint: digit shares, Fréchet distance, "
                       "label accuracy (CGAN), Parzen log-likelihood")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--parzen", action="store_true",
                   help="also the Parzen-window log-likelihood of the test set (about a minute more)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the JSON object to OUT")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the noise of the 10,000 samples")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("book-runs", help="train the book's runs side by side (what `make book` "
                       "does before the pages; each reused when it is already there)")
    p.add_argument("--jobs", type=int, default=None, help="runs at once (default: the cores)")
    p.add_argument("--only", choices=(*models.names(), "evaluator"), default=None,
                   help="train just this model's run (or the data set's evaluator), here, "
                        "in this process")
    p.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    p.add_argument("--subset", type=int, default=None, help="the first N images only (tests)")
    p.add_argument("--epochs", type=int, default=None, help="default: the book's")
    p.set_defaults(func=cmd_book_runs)
    return parser


def _plain_terminal_output():
    """On a terminal that cannot show 'Fréchet' or '第21章' (LC_ALL=C without UTF-8
    mode, PYTHONIOENCODING=ascii), print such characters as escapes like \\xe9
    instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if codecs.lookup(stream.encoding).name != "utf-8":
                stream.reconfigure(errors="backslashreplace")
        except (AttributeError, LookupError, TypeError, ValueError):
            pass   # not a text stream we can reconfigure: leave it


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None):
    _plain_terminal_output()
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:   # not the main thread: leave SIGTERM alone
        previous = None
    try:
        args = make_parser().parse_args(argv)
        args.func(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (data.DataError, checkpoint.CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:   # a full disk, a file that vanished, …: not a bug of ours
        if os.environ.get("NPGAN_DEBUG"):
            raise
        print(f"error: {describe(err)}", file=sys.stderr)
        return 2
    except MemoryError as err:
        if os.environ.get("NPGAN_DEBUG"):
            raise
        print(f"error: not enough memory{f' ({err})' if str(err) else ''}; ask for less "
              "(--n, --subset, --batch-size) or close other programs", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
