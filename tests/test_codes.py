"""Measures of InfoGAN's codes (npgan.codes): the one-to-one matching, the rank
correlation, slant and width from image moments, on cases with known answers."""

import itertools

import numpy as np
import pytest

from npgan import InfoGAN, InfoGANConfig
from npgan.codes import (assignment, c1_accuracy, code_sweeps, digit_change_rate, evaluate_codes,
                         q_digit_accuracy, slant_and_width,
                         spearman_rows, sweep_inputs)


@pytest.mark.parametrize("n,seed", [(1, 0), (3, 1), (5, 2), (6, 3), (7, 4)])
def test_assignment_is_the_best_permutation(n, seed):
    gain = np.random.default_rng(seed).integers(0, 50, (n, n))
    cols = assignment(gain)
    assert sorted(cols) == list(range(n))
    best = max(sum(gain[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n)))
    assert sum(gain[i, cols[i]] for i in range(n)) == best


def test_assignment_undoes_a_shuffle_of_a_confusion_matrix():
    rng = np.random.default_rng(0)
    confusion = np.diag(rng.integers(800, 1000, 10)) + rng.integers(0, 30, (10, 10))
    perm = rng.permutation(10)
    cols = assignment(confusion[:, perm])          # value i now lives in column perm⁻¹(i)
    np.testing.assert_array_equal(perm[cols], np.arange(10))
    with pytest.raises(ValueError, match="square"):
        assignment(np.ones((2, 3)))


def test_spearman_rows():
    rows = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [1, 5, 2, 9], [2, 2, 2, 2], [1, 3, 3, 9]], float)
    rho = spearman_rows(rows)
    np.testing.assert_allclose(rho[:2], [1, -1])
    # [1, 5, 2, 9] has ranks [0, 2, 1, 3]: ρ = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/60
    assert rho[2] == pytest.approx(0.8)
    assert rho[3] == 0                                    # a constant row
    assert rho[4] == pytest.approx(np.corrcoef([0, 1.5, 1.5, 3], [0, 1, 2, 3])[0, 1])


def stroke(shear, half_width, n=1):
    """A bar of ink: rows 4…23, around column 14 + shear·(14 − row), ±half_width."""
    ink = np.zeros((28, 28))
    cols = np.arange(28)
    for row in range(4, 24):   # anti-aliased, so that every row holds the same ink
        centre = 14 + shear * (14 - row)
        ink[row] = np.clip(half_width + 0.5 - np.abs(cols - centre), 0, 1)
    return np.repeat(ink.reshape(1, 784) * 2 - 1, n, axis=0)


def test_slant_and_width_of_drawn_strokes():
    slants, widths = zip(*(slant_and_width(stroke(s, 1))[0:2] for s in (-0.4, 0, 0.4)))
    # a bar sheared by s columns per row has slant s; > 0 when its top leans right
    np.testing.assert_allclose([s[0] for s in slants], [-0.4, 0, 0.4], atol=0.02)
    # leaning does not make a bar wider; a thicker bar is wider
    assert widths[0][0] == pytest.approx(widths[1][0], rel=0.1)
    assert slant_and_width(stroke(0, 3))[1][0] > 1.8 * slant_and_width(stroke(0, 1))[1][0]


class FakeEvaluator:
    """Reads the digit straight off the image: pixel 0 holds (digit − 4.5)/5."""

    def predict(self, images):
        return np.clip(np.rint(images[:, 0] * 5 + 4.5), 0, 9).astype(int)


class ScriptedInfoGAN(InfoGAN):
    """A 'generator' whose c1 = v draws digit perm[v] and whose c2 sets the slant:
    a known answer for the measures."""

    perm = np.array([3, 0, 9, 1, 2, 8, 7, 4, 6, 5])

    def generate(self, g_in, labels=None):
        _, cat, cont = self.code_slices
        digits = self.perm[g_in[:, cat].argmax(axis=1)]
        out = np.concatenate([stroke(0.2 * s, 1) for s in g_in[:, cont.start]])
        out[:, 0] = (digits - 4.5) / 5
        return out


def test_c1_accuracy_and_sweeps_on_a_known_generator():
    model = ScriptedInfoGAN(InfoGANConfig(g_hidden=(8,), d_hidden=(8,)), seed=0)
    result = c1_accuracy(model, n_per_value=20, evaluator=FakeEvaluator())
    assert result["matched_accuracy"] == 1.0
    assert result["digit_of_value"] == model.perm.tolist()
    assert np.trace(np.array(result["confusion"])[:, model.perm]) == 200
    sweeps = code_sweeps(model, n_z=5)
    assert sweeps["c2"]["slant"] == pytest.approx(1.0)     # c2 turns the slant, always the same way
    assert sweeps["c3"]["slant"] == 0                       # c3 does nothing here
    assert sweeps["c2"]["slant_curve"][0] < 0 < sweeps["c2"]["slant_curve"][-1]
    assert np.all(np.diff(sweeps["c2"]["slant_curve"]) > 0)
    # the z draws differ only in the digit's pixel: a small spread around the curve
    c2_range = np.ptp(sweeps["c2"]["slant_curve"])
    assert 0 < max(sweeps["c2"]["slant_curve_se"]) < 0.05 * c2_range
    # c3 does nothing: each draw's image is the same at every value, so are mean and spread
    assert np.ptp(sweeps["c3"]["width_curve"]) < 1e-12
    assert np.ptp(sweeps["c3"]["width_curve_se"]) < 1e-12


def test_sweep_inputs_change_only_the_swept_code():
    model = InfoGAN(InfoGANConfig(latent_dim=5, n_cat=4, n_cont=2, g_hidden=(8,), d_hidden=(8,)), seed=0)
    rows = model.sample_noise(3, np.random.default_rng(1))
    values = [-2.0, 0.5, 2.0]
    g_in = sweep_inputs(model, "c3", values, rows)
    z, cat, cont = model.code_slices
    assert g_in.shape == (9, model.input_size)
    grid = g_in.reshape(3, 3, -1)                   # [row of rows][value]
    np.testing.assert_array_equal(grid[:, :, cont.start + 1], np.tile(values, (3, 1)))
    for r in range(3):                              # z, c1 and c2 stay as drawn along a row
        keep = np.r_[z, cat, cont.start]
        np.testing.assert_array_equal(grid[r][:, keep], np.repeat(rows[r:r + 1, keep], 3, axis=0))
    c1 = sweep_inputs(model, "c1", range(4), rows[:1])
    np.testing.assert_array_equal(c1[:, cat], np.eye(4))
    np.testing.assert_array_equal(c1[:, cont], np.repeat(rows[:1, cont], 4, axis=0))
    with pytest.raises(ValueError, match="unknown code 'c4'"):
        sweep_inputs(model, "c4", values, rows)
    with pytest.raises(ValueError, match="c1 must be a whole number"):
        sweep_inputs(model, "c1", [4], rows)
    with pytest.raises(ValueError, match="shape"):
        sweep_inputs(model, "c2", values, rows[:, :5])


def test_q_digit_accuracy_reads_values_through_the_matching():
    """Q's most likely value of each image, mapped by c1's matching, against the labels."""
    class FixedQ:
        def read_codes(self, x):
            return x, None             # the "images" are Q's c1 probabilities themselves
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6], [0.5, 0.0, 0.5]])
    digit_of_value = [2, 0, 1]      # value 0 draws digit 2, value 1 digit 0, value 2 digit 1
    labels = np.array([2, 0, 0, 2])   # right, right, wrong (read 1), right (tie: value 0)
    accuracy, sure = q_digit_accuracy(FixedQ(), digit_of_value, probs, labels)
    assert accuracy == pytest.approx(0.75)
    assert sure == pytest.approx((0.9 + 0.7 + 0.6 + 0.5) / 4)


class DigitSwitchingInfoGAN(ScriptedInfoGAN):
    """As ScriptedInfoGAN, but c2 above 0.5 turns the digit into the next one for the
    rows whose first z number is positive: c2 then changes the digit for those z only."""

    def generate(self, g_in, labels=None):
        out = super().generate(g_in)
        _, cat, cont = self.code_slices
        digits = self.perm[g_in[:, cat].argmax(axis=1)]
        switched = (g_in[:, cont.start] > 0.5) & (g_in[:, 0] > 0)
        out[:, 0] = (np.where(switched, (digits + 1) % 10, digits) - 4.5) / 5
        return out


def test_digit_change_rate_counts_the_z_whose_digit_a_code_changes():
    model = DigitSwitchingInfoGAN(InfoGANConfig(g_hidden=(8,), d_hidden=(8,)), seed=0)
    base = model.sample_noise(400, np.random.default_rng(3))
    expected = float(np.mean(base[:, 0] > 0))
    assert 0.3 < expected < 0.7
    assert digit_change_rate(model, "c2", n_z=400, seed=3, evaluator=FakeEvaluator()) == expected
    assert digit_change_rate(model, "c3", n_z=400, seed=3, evaluator=FakeEvaluator()) == 0.0
    # a sweep that stays below 0.5 never switches
    assert digit_change_rate(model, "c2", values=[-1, 0, 0.4], n_z=50, evaluator=FakeEvaluator()) == 0.0
    codes = evaluate_codes(model, evaluator=FakeEvaluator(), n_per_value=10, n_z=20, n_z_digits=400, seed=3)
    assert codes["c2"]["digit_change"] == codes["c2"]["digit_change_wide"] == expected
    assert codes["c3"]["digit_change"] == 0.0


@pytest.mark.parametrize("n_cat", [5, 12])
def test_c1_accuracy_matches_any_number_of_values(n_cat):
    """K ≠ 10 values: matched one to one to distinct digits; with 12 values two are left over."""
    class Scripted(ScriptedInfoGAN):
        perm = np.array([3, 0, 9, 1, 2, 8, 7, 4, 6, 5, 5, 3])[:n_cat]
    model = Scripted(InfoGANConfig(n_cat=n_cat, g_hidden=(8,), d_hidden=(8,)), seed=0)
    result = c1_accuracy(model, n_per_value=10, evaluator=FakeEvaluator())
    assert result["matched_accuracy"] == pytest.approx(min(n_cat, 10) / n_cat)
    matched = [d for d in result["digit_of_value"] if d is not None]
    assert len(matched) == len(set(matched)) == min(n_cat, 10)
    assert result["digit_of_value"][:5] == [3, 0, 9, 1, 2]
    assert result["accuracy_as_labelled"] == 0.0        # no value draws its own digit here


def test_accuracy_as_labelled_is_the_share_with_digit_equal_to_value():
    class Identity(ScriptedInfoGAN):
        perm = np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 8])    # all but 8 and 9 draw their own digit
    model = Identity(InfoGANConfig(g_hidden=(8,), d_hidden=(8,)), seed=0)
    result = c1_accuracy(model, n_per_value=10, evaluator=FakeEvaluator())
    assert result["matched_accuracy"] == 1.0 and result["accuracy_as_labelled"] == pytest.approx(0.8)


def test_cli_evaluate_reports_c1_for_any_infogan(tmp_path, capsys, mnist_dir):
    """An untrained InfoGAN, with 10 and with 4 values of c1: c1's matched accuracy, Q's
    reading of the test digits and the codes' digit-change rates, all in the JSON."""
    import json

    from npgan import checkpoint, cli
    from npgan.metrics import load_evaluator

    load_evaluator()
    for n_cat in (10, 4):
        cfg = InfoGANConfig(n_cat=n_cat, g_hidden=(16,), d_hidden=(16,))
        path = checkpoint.save(InfoGAN(cfg, seed=0), tmp_path / f"info{n_cat}.npz", epoch=0, seed=0)
        assert cli.main(["evaluate", "--checkpoint", str(path)]) == 0
        printed = json.loads(capsys.readouterr().out)
        c1 = printed["codes"]["c1"]
        assert printed["c1_matched_accuracy"] == c1["matched_accuracy"]
        assert 0 < c1["matched_accuracy"] <= 1 and len(c1["digit_of_value"]) == n_cat
        assert 0 <= c1["q_accuracy"] <= 1 and 1 / n_cat <= c1["q_sure"] <= 1
        for code in ("c2", "c3"):
            for key in ("digit_change", "digit_change_wide"):
                assert 0 <= printed["codes"][code][key] <= 1
