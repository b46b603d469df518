"""The bodies of the subcommands of ``python -m npgan`` (cli.py parses the
arguments and turns errors into one line).

Each command checks what it can before the work (an output that cannot be
written, a checkpoint of the wrong kind, a setting the config refuses) and
raises UsageError with the one line to show; cli.main prints it and exits 2.
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import checkpoint, data
from .files import NotWritable, atomic_write, check_writable, link_target, reason
from .models import BOOK_EPOCHS, book_config
from .plot import save_png, to_uint8


class UsageError(Exception):
    """Wrong use of the command line: reported in one line, exit code 2."""


def say(text):
    """Print a command's result on stdout, or UsageError saying that stdout (a full
    disk, a closed pipe) could not take it."""
    try:
        print(text, flush=True)
    except OSError as err:
        try:   # what is still buffered would fail again at exit, with a traceback of its own
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        raise UsageError(f"cannot write to standard output: {reason(err)}") from None


def checkpoint_bytes(model):
    """The size of ``model``'s checkpoint: its arrays (G, D, the average of G's
    weights, layer statistics, both optimizers' state) and 64 KB for the rest (the
    zip's and the arrays' headers, the meta JSON: about 3 KB)."""
    nets = [net for net, _ in checkpoint._networks(model).values()]
    arrays = [a for net in nets for a in (net.flat_params, net.flat_buffers)]
    arrays += [np.asarray(v) for opt in (model.opt_g, model.opt_d) for v in opt.state().values()]
    return sum(a.nbytes for a in arrays) + 64_000


def _made_folders(path):
    """Make the folder ``path`` and its missing parents; the ones made, outermost first."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
    _writable_dir(path)
    return [p for p in missing if p.is_dir()]


def _remove_if_empty(folders):
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:   # not empty (the run wrote something), or gone: leave it
            pass


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
    say(f"MNIST is ready in {folder}")
    if args.evaluator:
        from .evaluator import evaluator_path, load_evaluator

        load_evaluator(must_cache=True)   # caching it is the point: say so before training
        say(f"the evaluator is ready in {evaluator_path()}")
        # the retired MLP evaluator too: 21.4 and experiments/evaluator_sensitivity.py compare
        # what the two feature spaces see, and a test pins that comparison's order
        from .evaluator_mlp import load_mlp_evaluator, mlp_path

        load_mlp_evaluator(must_cache=True)
        say(f"the retired MLP evaluator, for comparison, is ready in {mlp_path()}")


def cmd_train(args):
    if not args.out.strip():   # "" would be the current folder, and its checkpoint.npz replaced
        raise UsageError("--out is empty; give the folder for the run, such as --out runs/gan")
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
    if args.labels is not None:
        _set_labels(config, args)
    try:   # e.g. --batch-size 100000: the config says what is wrong, before any work
        config.validate()
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    made = _made_folders(args.out)
    try:
        _train_into(Path(args.out), config, epochs, args)
    except BaseException:   # the folders this run made, if it wrote nothing into them
        _remove_if_empty(made)
        raise


def _train_into(out, config, epochs, args):
    from .models import build
    from .train import TrainingDiverged, train

    model = build(config, seed=args.seed)
    # every file the run will write, checked now rather than after the first epoch
    _check_output(out / "checkpoint.npz", size=checkpoint_bytes(model))
    _check_output(out / "history.csv")
    for epoch in sorted({0, epochs} | {e for e in args.snapshot_epochs if e <= epochs}):
        _check_output(out / f"epoch_{epoch:03d}.png")
    if args.dataset == "fashion":   # from Debian's dataset-fashion-mnist, not the MNIST cache
        images, labels = data.load_fashion_mnist("train", subset=args.subset)
    else:
        images, labels = data.load_mnist("train", subset=args.subset, directory=args.data_dir)
    if getattr(config, "n_labels", 0):   # semi-supervised InfoGAN: its labelled images, by the seed
        try:
            model.use_labels(images, labels, seed=args.seed)
        except ValueError as err:
            raise UsageError(f"--labels {config.n_labels}: {err}") from None

    def save_checkpoint(epoch, history):
        checkpoint.save(model, out / "checkpoint.npz", epoch=epoch, seed=args.seed)
        history.to_csv(out / "history.csv")
        if epoch in history.snapshots:
            save_png(history.snapshots[epoch], out / f"epoch_{epoch:03d}.png")

    snapshots = args.snapshot_epochs
    try:
        # a diverging run is reported once, by TrainingDiverged, not by NumPy's warnings
        with np.errstate(all="ignore"):
            history = train(model, images, labels if model.conditional else None, epochs=epochs,
                            seed=args.seed, snapshot_epochs=snapshots, progress=not args.quiet,
                            on_epoch_end=save_checkpoint)
    except TrainingDiverged as err:
        raise UsageError(str(err)) from None
    save_png(history.snapshots[0], out / "epoch_000.png")
    steps = len(history.records) // epochs
    say(f"trained {args.model.upper()} for {epochs} epochs ({steps} steps each) in "
        f"{history.seconds:.1f} s ({history.seconds / epochs:.2f} s/epoch); wrote {out}/checkpoint.npz")


def _set_labels(config, args):
    """--labels N: a semi-supervised InfoGAN (semisup.py) with N labelled images."""
    if not hasattr(config, "n_labels"):
        raise UsageError(f"--labels needs --model infogan (the semi-supervised InfoGAN); "
                         f"a {args.model.upper()} has no code for labels to name")
    available = min(args.subset or 60000, 50000)   # never the validation images train[50000:]
    if not 0 <= args.labels <= available or args.labels % config.n_cat:
        raise UsageError(f"--labels must be a multiple of {config.n_cat} (the same number of each "
                         f"digit) from 0 to {available:,} (the training images before the validation "
                         f"split{', within --subset' if args.subset else ''}), got {args.labels}")
    config.n_labels = args.labels


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
    if not args.out.strip():
        raise UsageError("--out is empty; give the name of the .npy file to write")
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
                with np.errstate(all="ignore"):   # an overflow is reported below, once
                    if args.code:  # z and every code are drawn first, so a sweep changes only the set codes
                        try:
                            model.set_codes(g_in, dict(args.code))
                        except ValueError as err:
                            raise UsageError(f"--code: {err}") from None
                    images = model.generate(g_in, labels)
                if not np.all(np.isfinite(images)):
                    raise UsageError(_not_finite(args))
                f.write(to_uint8(images).tobytes())
    except OSError as err:
        raise UsageError(f"cannot write {out}: {reason(err)}") from None
    target = link_target(out)   # a link is written through: the file it points to is replaced
    say(f"wrote {args.n} samples, uint8 (N, 28, 28), to {out}"
        + (f" (a link to {target})" if target else ""))


def _not_finite(args):
    """The line for G's images that are NaN or infinite (to_uint8 would make them 0)."""
    if args.code:
        codes = " ".join(f"{name}={value:g}" for name, value in args.code)
        return (f"--code {codes}: G's images are not finite numbers for these codes (G overflows); "
                "use values of a few units, such as c2=-2 to c2=2")
    return (f"{args.checkpoint}: G's images are not finite numbers (its weights make G overflow: the "
            "training had diverged when this was saved); train again with lower learning rates")


def cmd_evaluate(args):
    import json

    from . import metrics

    try:
        model, _ = checkpoint.load(args.checkpoint)
    except checkpoint.CheckpointError as err:
        raise UsageError(str(err)) from None
    out = None
    if args.json is not None:  # checked before the minutes of work, not after
        if not args.json.strip():
            raise UsageError("--json is empty; give the name of the .json file to write")
        out = Path(args.json)
        _check_output(out, size=JSON_BYTES, checkpoint_path=args.checkpoint, option="--json")
    _check_evaluation_inputs(model)
    try:
        with np.errstate(all="ignore"):   # a diverged generator is reported once, below
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
    say(text)


JSON_BYTES = 100_000   # room for evaluate's JSON: about 2 KB, an InfoGAN's sweeps some 20 KB


def _check_evaluation_inputs(model):
    """Every file the evaluation reads, before its minutes of work: the training and
    test images (fetched if missing: a DataError now, not after the evaluator's
    training), and a cache that can keep the evaluator, which is otherwise trained
    again on every run (the same DataError as fetch-data --evaluator)."""
    from .evaluator import dataset_of, load_evaluator, load_images

    dataset = dataset_of(model)
    for split in ("train", "test"):
        load_images(dataset, split)
    load_evaluator(dataset=dataset, must_cache=True)


def cmd_book_runs(args):
    from . import bookruns

    # every argument, before a file is touched or a process started
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.labels < 0:
        raise UsageError(f"--labels must be at least 0, got {args.labels}")
    if args.labels and args.only != "infogan":
        raise UsageError("--labels: only the InfoGAN learns from labelled images; add --only infogan")
    runs = bookruns.BOOK_RUNS if not args.only else \
        ((args.only, args.dataset, *((args.labels,) if args.labels else ())),)
    batch = max((book_config(run[0]).batch_size for run in runs if run[0] != "evaluator"), default=1)
    if args.subset is not None and not batch <= args.subset <= bookruns.TRAIN_IMAGES:
        raise UsageError(f"--subset must be between the batch size ({batch}) and "
                         f"{bookruns.TRAIN_IMAGES}, got {args.subset}")
    if args.only == "evaluator":   # the evaluator of a data set, trained beside the runs
        from .evaluator import load_evaluator

        load_evaluator(dataset=args.dataset, log=say)
        say(f"the {args.dataset} evaluator is ready")
        return
    try:
        if args.only:
            _, history = bookruns.book_run(args.only, epochs=args.epochs, subset=args.subset,
                                           dataset=args.dataset, replace=args.replace,
                                           n_labels=args.labels)
            say(f"book run {bookruns.described_run(runs[0])}: "
                f"{'reused' if history.reused else 'trained in'} {history.seconds:.0f} s of training")
            return
        bookruns.train_side_by_side(jobs=args.jobs, subset=args.subset, epochs=args.epochs,
                                    replace=args.replace)
    except bookruns.RunExists as err:
        epochs = f" --epochs {args.epochs}" if args.epochs else ""
        raise UsageError(f"{err.what}: add --replace to replace it, or try your settings in a folder "
                         f"of your own: python -m npgan train --model {err.model}{epochs} --out DIR") from None
    except RuntimeError as err:
        raise UsageError(str(err)) from None
