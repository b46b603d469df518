"""Command line: python -m npgan {fetch-data, train, sample, evaluate}.

Wrong use prints one line on stderr and exits with code 2: a wrong argument, a
bad data file or checkpoint, an output that cannot be written (checked before
the work where it can be), a file-system error or too little memory. SIGTERM
and SIGHUP end it like Ctrl-C, removing half-written files; a second signal
while it cleans up is ignored rather than cutting the clean-up short.
NPGAN_DEBUG=1 shows the traceback of an OSError or MemoryError too; any other
exception is a bug and always shows it.

Here: the arguments and how a run ends; the commands themselves are in
cli_commands.py.
"""

import argparse
import codecs
import math
import os
import signal
import sys

from . import checkpoint, data, models, threads
# The parser below binds the commands by these names, so a test (or script) that
# replaces cli.cmd_fetch before main() runs its own command.
from .cli_commands import UsageError, cmd_book_runs, cmd_evaluate, cmd_fetch, cmd_sample, cmd_train
from .files import describe
from .models import BOOK_EPOCHS


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


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


def _code(text):
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as c1=3 or c2=0.5, "
                                         f"got {text!r}") from None
    if not math.isfinite(number):   # 1e400 reads as inf
        raise argparse.ArgumentTypeError(f"{name.strip()} must be a finite number, such as c1=3 or "
                                         f"c2=0.5, got {text!r}")
    return name.strip(), number


def make_parser():
    parser = Parser(prog="python -m npgan", description="A small NumPy GAN, CGAN and InfoGAN for MNIST (第21章).")
    parser.add_argument("--data-dir", default=None,
                        help="MNIST cache folder (default: $NPGAN_DATA or ~/.cache/npgan)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("fetch-data", help="download and verify MNIST into the cache")
    p.add_argument("--evaluator", action="store_true",
                   help="also train and cache the MNIST classifier that `evaluate` uses, and the retired "
                        "one it is compared with (once, a few minutes)")
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
    p.add_argument("--labels", type=int, default=None, metavar="N",
                   help="InfoGAN: N labelled training images teach c1 the digits (semi-supervised; "
                        "a multiple of 10, N/10 of each digit, from the first 50,000; default 0: none)")
    p.add_argument("--snapshot-epochs", type=_epoch_list, default=[0, 5, 20],
                   help="epochs whose sample grid is saved (0 and the last are always saved)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train, trains=True)

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
    p.add_argument("--labels", type=int, default=0, metavar="N",
                   help="with --only infogan: the semi-supervised one, N labelled images (21.7)")
    p.add_argument("--epochs", type=int, default=None, help="default: the book's")
    p.add_argument("--replace", action="store_true",
                   help="replace a finished run that was trained with other settings (without it, "
                        "such a run is never replaced)")
    p.set_defaults(func=cmd_book_runs, trains=True)
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


# Signals that end a run: Ctrl-C, kill's default, and the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_stopping = []   # the signal that is ending this process, once one came


def _on_stop_signal(signum, frame):
    """The first signal ends the run, cleanly; any later one is ignored, so that a
    second Ctrl-C cannot cut the clean-up (a .part file's removal) short."""
    if _stopping:
        return
    _stopping.append(signum)
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _catch_stop_signals():
    """Route STOP_SIGNALS to _on_stop_signal; {signal: previous handler}. A signal
    ignored on purpose (nohup, a background job) stays ignored."""
    previous = {}
    try:
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) != signal.SIG_IGN:
                previous[sig] = signal.signal(sig, _on_stop_signal)
    except ValueError:   # not the main thread: leave the signals alone
        pass
    return previous


def _say_error(line):
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:   # SIGHUP: the terminal is gone
        pass


def main(argv=None):
    _plain_terminal_output()
    previous = _catch_stop_signals()
    try:
        return _main(argv)
    except KeyboardInterrupt as err:   # the signal came as the result was being reported
        return _stopped(err)
    finally:
        if not _stopping:   # after a signal the process is ending: later ones stay ignored
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _stopped(err):
    if isinstance(err, Terminated):
        _say_error("terminated")
        return 128 + err.signum
    _say_error("interrupted")
    return 130


def _main(argv):
    try:
        args = make_parser().parse_args(argv)
        if getattr(args, "trains", False):   # before any folder is made
            try:
                notice = threads.threads_notice()
            except ValueError as err:
                raise UsageError(str(err)) from None
            if notice:
                print(f"notice: {notice}", file=sys.stderr)
        args.func(args)
    except UsageError as err:
        _say_error(f"error: {err}")
        return 2
    except (data.DataError, checkpoint.CheckpointError) as err:
        _say_error(f"error: {err}")
        return 2
    except KeyboardInterrupt as err:
        return _stopped(err)
    except OSError as err:   # a full disk, a file that vanished, …: not a bug of ours
        if os.environ.get("NPGAN_DEBUG"):
            raise
        _say_error(f"error: {describe(err)}")
        return 2
    except MemoryError as err:
        if os.environ.get("NPGAN_DEBUG"):
            raise
        _say_error(f"error: not enough memory{f' ({err})' if str(err) else ''}; ask for less "
                   "(--n, --subset, --batch-size) or close other programs")
        return 2
    return 0
