"""What an evaluator's feature space notices (chapter 21.4).

The Fréchet distance between the 10,000 training images and the 10,000 test
images is the real-vs-real floor. Changing the test images slightly, the same
way for every image, and measuring again shows what moves the FD:

  * brightness: every pixel 0.02 brighter (on the 0…1 scale), clipped;
  * shift: every image one pixel to the right (the uncovered column blank);
  * contrast: every pixel ×0.95 on the 0…1 scale: the strokes 5 % fainter, the
    black background unchanged (the measurement of issue 27, which gave the MLP
    evaluator 1.28× its floor; blending towards each image's mean grey instead,
    as PIL's ImageEnhance.Contrast does, would also lift the background).

A person sees no difference in the first; the second is a real, if small,
change in where the digits sit. An FD that grows several times over for the
first measures pixels more than shapes.
"""

import numpy as np

from .evaluator_training import IMAGE_SIDE, load_images
from .metrics import _mean_cov, frechet_from_stats

BRIGHTNESS = 0.02   # added to every pixel, on the 0…1 scale
SHIFT = 1           # pixels, to the right
CONTRAST = 0.95     # every pixel × this on the 0…1 scale (contrast about black)


def _unit(images):
    return (np.asarray(images, np.float32) + 1) / 2


def _back(unit):
    return np.clip(unit, 0, 1) * 2 - 1


def brighter(images, amount=BRIGHTNESS):
    """Images (N, 784) in [−1, 1] with every pixel ``amount`` brighter on the 0…1 scale."""
    return _back(_unit(images) + amount)


def shifted(images, pixels=SHIFT):
    """Images (N, 784) in [−1, 1] moved ``pixels`` to the right; the uncovered columns blank."""
    square = np.asarray(images, np.float32).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    out = np.full_like(square, -1.0)
    out[:, :, pixels:] = square[:, :, :IMAGE_SIDE - pixels]
    return out.reshape(len(square), -1)


def lower_contrast(images, factor=CONTRAST):
    """Images (N, 784) in [−1, 1] with every pixel × ``factor`` on the 0…1 scale
    (contrast about black: the background stays 0)."""
    return _back(_unit(images) * factor)


CHANGES = {"brightness +0.02": brighter, "shift 1 px": shifted, "contrast x0.95": lower_contrast}


def sensitivity_table(evaluators, dataset="mnist", n=10_000):
    """FD between the first ``n`` training images and the first ``n`` test images
    (the floor), then between the same training images and the test images under
    each change of CHANGES, for every evaluator in ``evaluators`` ({name: evaluator}).

    Returns rows {"change": …, "<name>_fd": FD, "<name>_ratio": FD / floor} in that order."""
    x_train = load_images(dataset, "train", subset=n)[0]
    x_test = load_images(dataset, "test")[0][:n]
    versions = {"none (floor)": x_test, **{name: change(x_test) for name, change in CHANGES.items()}}
    rows = [{"change": change} for change in versions]
    for name, evaluator in evaluators.items():
        train_stats = _mean_cov(evaluator.features(x_train))
        fds = [frechet_from_stats(*train_stats, *_mean_cov(evaluator.features(x))) for x in versions.values()]
        for row, fd in zip(rows, fds):
            row[f"{name}_fd"] = fd
            row[f"{name}_ratio"] = fd / fds[0]
    return rows
