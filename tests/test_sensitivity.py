"""npgan.sensitivity: the slight, systematic changes of real images, and what the
two evaluators' feature spaces make of the brightness change (issue 27, part 2)."""

import numpy as np
import pytest

from npgan import data, metrics, sensitivity
from npgan.evaluator_mlp import load_mlp_evaluator


@pytest.fixture(scope="module")
def digits():
    return data.load_mnist("test", subset=200)[0]


def test_brighter_adds_to_every_pixel_and_clips(digits):
    out = sensitivity.brighter(digits, 0.02)
    unit, unit_out = (digits + 1) / 2, (out + 1) / 2
    np.testing.assert_allclose(unit_out, np.minimum(unit + 0.02, 1), atol=1e-6)
    assert out.min() == pytest.approx(-1 + 0.04, abs=1e-6)   # the background is no longer black
    assert out.max() <= 1


def test_shifted_moves_every_digit_one_column(digits):
    out = sensitivity.shifted(digits, 1).reshape(-1, 28, 28)
    square = digits.reshape(-1, 28, 28)
    np.testing.assert_array_equal(out[:, :, 1:], square[:, :, :-1])
    assert np.all(out[:, :, 0] == -1)


def test_lower_contrast_fades_the_strokes_and_keeps_the_background(digits):
    out = sensitivity.lower_contrast(digits, 0.95)
    unit, unit_out = (digits + 1) / 2, (out + 1) / 2
    np.testing.assert_allclose(unit_out, 0.95 * unit, atol=1e-6)
    assert np.all(out[digits == -1] == -1)


def test_brightness_moves_the_cnn_features_less_than_the_mlp_ones():
    """The point of evaluator version 3: every pixel 0.02 brighter, which nobody sees,
    moves the retired MLP's FD over its floor more than the CNN's (on 2,000 images each:
    the order, not the figures, which experiments/evaluator_sensitivity.py gives)."""
    evaluators = {"mlp": load_mlp_evaluator(), "cnn": metrics.load_evaluator()}
    rows = {row["change"]: row for row in sensitivity.sensitivity_table(evaluators, n=2000)}
    floor, bright = rows["none (floor)"], rows["brightness +0.02"]
    assert floor["mlp_ratio"] == floor["cnn_ratio"] == 1
    assert bright["cnn_ratio"] < bright["mlp_ratio"]
    assert bright["mlp_ratio"] > 1   # the MLP does see it: the comparison is not between two nothings
