"""npgan.metrics: Parzen window, Fréchet distance, the evaluator, digit shares,
label accuracy, evaluate() and the `evaluate` subcommand."""

import json
import math
import platform

import numpy as np
import pytest

from npgan import checkpoint, cli, data, metrics
from npgan import GANConfig, build
from npgan.losses import softmax_cross_entropy


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def evaluator():
    """The cached evaluator (the very first run trains it: a few minutes)."""
    return metrics.load_evaluator()


@pytest.fixture(scope="module")
def mnist_test():
    return data.load_mnist("test")


class RealDigits:
    """A stand-in generator that 'generates' real MNIST images: a CGAN returns a
    random test image of the asked digit, a plain GAN the test images in order."""

    def __init__(self, images, labels, conditional, digit=None):
        self.images, self.labels = images, labels
        self.conditional = conditional
        self.config = GANConfig(n_classes=10 if conditional else 0)
        self.digit = digit              # plain GAN: only this digit, if given
        self.next = 0

    def sample_noise(self, n, rng=None):
        if self.conditional:
            return rng.random((n, 1))   # which image of the class, as a number in [0, 1)
        z = np.arange(self.next, self.next + n)[:, None].astype(np.float64)
        self.next += n
        return z

    def generate(self, z, labels=None):
        if self.conditional:
            out = np.empty((len(z), 784), np.float32)
            for k in np.unique(labels):
                pool = self.images[self.labels == k]
                rows = labels == k
                out[rows] = pool[(z[rows, 0] * len(pool)).astype(int)]
            return out
        pool = self.images if self.digit is None else self.images[self.labels == self.digit]
        return pool[z[:, 0].astype(int) % len(pool)].copy()


# ------------------------------------------------------------------ Parzen window

def direct_parzen(samples, test, sigma):
    """log p(x) = log mean_i exp(-‖x - μ_i‖²/(2σ²)) - d log(σ √(2π)), with loops, float64."""
    d = samples.shape[1]
    out = []
    for x in test:
        terms = [math.exp(-np.sum((x - mu) ** 2) / (2 * sigma**2)) for mu in samples]
        out.append(np.log(np.mean(terms)) - d * np.log(sigma * np.sqrt(2 * np.pi)))
    return np.array(out)


def test_parzen_matches_direct_computation():
    rng = np.random.default_rng(0)
    samples, test, validation = rng.random((30, 6)), rng.random((11, 6)), rng.random((7, 6))
    sigmas = np.logspace(-1, 0, 10)
    result = metrics.parzen_log_likelihood(samples, test, sigmas, validation, batch_size=4)
    val_direct = [direct_parzen(samples, validation, s).mean() for s in sigmas]
    np.testing.assert_allclose(result["validation_ll"], val_direct, rtol=1e-10)
    best = sigmas[int(np.argmax(val_direct))]
    assert result["sigma"] == pytest.approx(best)
    assert sigmas[0] < result["sigma"] < sigmas[-1]      # an interior choice: the selection matters
    ll = direct_parzen(samples, test, best)
    assert result["mean"] == pytest.approx(ll.mean(), rel=1e-10)
    assert result["se"] == pytest.approx(ll.std() / np.sqrt(len(ll)), rel=1e-10)


def test_parzen_is_stable_for_far_points():
    # exp(-‖x - μ‖²/(2σ²)) underflows to 0 for every centre here: a naive mean would give log 0
    samples = np.zeros((5, 784))
    test = np.ones((3, 784))
    result = metrics.parzen_log_likelihood(samples, test, [0.1])
    expected = -784 / (2 * 0.01) - 784 * np.log(0.1 * np.sqrt(2 * np.pi))
    assert result["mean"] == pytest.approx(expected, rel=1e-12)
    assert result["se"] == pytest.approx(0, abs=1e-9)


def test_parzen_rejects_bad_input():
    rng = np.random.default_rng(1)
    unit = rng.random((4, 5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.parzen_log_likelihood(unit * 2 - 1, unit, [0.2])   # forgot to rescale G's output
    with pytest.raises(ValueError, match="validation"):
        metrics.parzen_log_likelihood(unit, unit)                  # several σ, nothing to choose with
    with pytest.raises(ValueError, match="same number of pixels"):
        metrics.parzen_log_likelihood(unit, unit[:, :3], [0.2])


# ------------------------------------------------------------------ Fréchet distance

def with_exact_moments(rng, mean, cov, n):
    """n points whose sample mean and covariance (divisor n - 1) are exactly mean and cov."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T   # sample cov = I
    return z @ np.linalg.cholesky(cov).T + mean


def test_fd_is_zero_for_identical_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((2000, 16)) @ rng.standard_normal((16, 16))
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0, abs=1e-8)
    distances = [metrics.frechet_distance(feats, feats + delta) for delta in (0.1, 0.5, 1.0, 2.0)]
    assert np.all(np.diff(distances) > 0)
    # equal covariances: FD is exactly the squared distance of the means, 16 δ²
    np.testing.assert_allclose(distances, [16 * d**2 for d in (0.1, 0.5, 1.0, 2.0)], rtol=1e-6)


def test_fd_matches_the_closed_form_for_two_gaussians():
    rng = np.random.default_rng(3)
    h = 5
    a, b = rng.standard_normal((h, h)), rng.standard_normal((h, h))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(h), b @ b.T + 0.1 * np.eye(h)
    mean1, mean2 = rng.standard_normal(h), rng.standard_normal(h)
    # closed form with a general (non-symmetric) eigen-solver: C1 C2 has real positive eigenvalues
    tr_sqrt = np.sum(np.sqrt(np.linalg.eigvals(cov1 @ cov2).real))
    expected = np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt
    got = metrics.frechet_distance(with_exact_moments(rng, mean1, cov1, 500),
                                   with_exact_moments(rng, mean2, cov2, 800))
    assert got == pytest.approx(expected, rel=1e-8)
    # diagonal covariances: FD = Σ (μ1 - μ2)² + Σ (s1 - s2)² with s the standard deviations
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    fd = metrics.frechet_from_stats(np.zeros(3), np.diag(s1**2), np.ones(3), np.diag(s2**2))
    assert fd == pytest.approx(3 + 4 + 1, rel=1e-12)


def test_fd_parts_split_the_mean_from_the_spread():
    rng = np.random.default_rng(4)
    h = 4
    a = rng.standard_normal((h, h))
    cov = a @ a.T + 0.1 * np.eye(h)
    mean1, mean2 = rng.standard_normal(h), rng.standard_normal(h)
    x, y = with_exact_moments(rng, mean1, cov, 400), with_exact_moments(rng, mean2, 4 * cov, 600)
    parts = metrics.frechet_parts(x, y)
    assert parts["mean"] == pytest.approx(np.sum((mean1 - mean2) ** 2), rel=1e-10)
    # C2 = 4 C1: Tr C1 + 4 Tr C1 − 2 Tr (4 C1²)^(1/2) = (1 + 4 − 4) Tr C1
    assert parts["covariance"] == pytest.approx(np.trace(cov), rel=1e-8)
    assert parts["mean"] + parts["covariance"] == pytest.approx(metrics.frechet_distance(x, y), rel=1e-12)
    shifted = metrics.frechet_parts(x, x + 0.5)       # a shift moves the mean only
    assert shifted["mean"] == pytest.approx(h * 0.25, rel=1e-10)
    assert shifted["covariance"] == pytest.approx(0, abs=1e-8)


def test_fd_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same H"):
        metrics.frechet_distance(np.zeros((10, 3)), np.zeros((10, 4)))


# ------------------------------------------------------------------ small pieces

def test_softmax_cross_entropy_value_gradient_and_stability():
    rng = np.random.default_rng(4)
    logits, labels = rng.standard_normal((6, 10)), rng.integers(0, 10, 6)
    loss, grad = softmax_cross_entropy(logits.copy(), labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(6), labels]).mean(), rel=1e-12)
    eps = 1e-6
    for i, j in [(0, 0), (2, labels[2]), (5, 7)]:
        bumped = logits.copy()
        bumped[i, j] += eps
        numeric = (softmax_cross_entropy(bumped, labels)[0] - loss) / eps
        assert grad[i, j] == pytest.approx(numeric, abs=1e-5)
    big = np.array([[1000.0, 0.0], [-1000.0, 1000.0]], dtype=np.float32)
    loss, grad = softmax_cross_entropy(big, np.array([1, 1]))
    assert loss == pytest.approx(500.0) and np.all(np.isfinite(grad))


def test_shares_and_kl_from_uniform():
    shares, kl = metrics.shares_of(np.arange(1000) % 10)
    np.testing.assert_allclose(shares, 0.1)
    assert kl == pytest.approx(0, abs=1e-12)
    shares, kl = metrics.shares_of(np.full(50, 3))
    assert shares[3] == 1 and kl == pytest.approx(np.log(10))
    _, kl = metrics.shares_of(np.array([0, 1]))   # two digits, half each: log 5
    assert kl == pytest.approx(np.log(5))


def test_random_shifts_move_whole_digits(mnist_test):
    images = mnist_test[0][:300]
    square = images.reshape(-1, 28, 28)
    # keep the digits whose 2-pixel border is blank: a shift of ≤ 2 pixels loses none of their ink
    inner = np.ones((28, 28), bool)
    inner[2:-2, 2:-2] = False
    images = images[np.all(square[:, inner] == -1, axis=1)][:200]
    assert len(images) == 200
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(metrics.random_shifts(images, 0, rng, background=-1), images)
    shifted = metrics.random_shifts(images, 2, rng, background=-1)
    np.testing.assert_allclose((shifted + 1).sum(axis=1), (images + 1).sum(axis=1), rtol=1e-5)
    assert np.mean(np.any(shifted != images, axis=1)) > 0.8   # 24 of 25 shifts move the image
    # each image is its original moved by some (dy, dx)
    a, b = images[7].reshape(28, 28), shifted[7].reshape(28, 28)
    pad = np.pad(a, 2, constant_values=-1)
    assert any(np.array_equal(pad[dy:dy + 28, dx:dx + 28], b) for dy in range(5) for dx in range(5))


def test_evaluator_file_round_trip_and_damage(tmp_path, evaluator):
    path = evaluator.save(tmp_path / "e.npz")
    again = metrics.Evaluator.load(path)
    x = np.random.default_rng(6).uniform(-1, 1, (5, 784)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x)[1], evaluator.forward(x)[1])
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a valid evaluator"):
        metrics.Evaluator.load(tmp_path / "bad.npz")
    old = metrics.Evaluator(evaluator.params, {**evaluator.meta, "version": "0"})
    with pytest.raises(ValueError, match="version"):
        metrics.Evaluator.load(old.save(tmp_path / "old.npz"))
    other = metrics.Evaluator(evaluator.params, {**evaluator.meta, "recipe": {"epochs": 1}})
    with pytest.raises(ValueError, match="another recipe"):
        metrics.Evaluator.load(other.save(tmp_path / "other.npz"))


def test_the_retired_mlp_evaluator_stays_readable(tmp_path):
    """Its files (evaluator-2.npz) are read by evaluator_mlp, not by the book's evaluator."""
    from npgan import evaluator_mlp

    rng = np.random.default_rng(7)
    sizes = [784, *evaluator_mlp.MLP_RECIPE["hidden"], 10]
    weights = [(rng.standard_normal((a, b)).astype(np.float32), np.zeros(b, np.float32))
               for a, b in zip(sizes[:-1], sizes[1:])]
    meta = {"version": evaluator_mlp.MLP_VERSION, "recipe": evaluator_mlp.MLP_RECIPE}
    path = evaluator_mlp.MLPEvaluator(weights, meta).save(tmp_path / "evaluator-2.npz")
    again = evaluator_mlp.MLPEvaluator.load(path)
    x = rng.uniform(-1, 1, (3, 784)).astype(np.float32)
    expected = np.maximum(np.maximum(x @ weights[0][0], 0) @ weights[1][0], 0)
    np.testing.assert_allclose(again.features(x), expected, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="not a valid evaluator"):
        metrics.Evaluator.load(path)


# ------------------------------------------------------------------ the evaluator on real digits

def test_evaluator_accuracy_on_real_test_digits(evaluator, mnist_test):
    x, y = mnist_test
    acc = evaluator.accuracy(x, y)
    assert acc >= 0.992
    assert acc == pytest.approx(evaluator.meta["test_accuracy"], abs=1e-3)
    feats, logits = evaluator.forward(x[:3000], batch_size=700)   # batch size changes nothing
    np.testing.assert_allclose(feats, evaluator.features(x[:3000]), rtol=1e-5, atol=1e-5)
    assert feats.shape == (3000, evaluator.n_features) and feats.dtype == np.float32
    assert np.all(feats >= 0)                                   # ReLU features


def test_label_accuracy_of_real_digits_is_the_evaluator_accuracy(evaluator, mnist_test):
    fake = RealDigits(*mnist_test, conditional=True)
    result = metrics.label_accuracy(fake, n_per_digit=1000, seed=0, evaluator=evaluator)
    test_acc = evaluator.accuracy(*mnist_test)
    assert result["overall"] == pytest.approx(test_acc, abs=0.005)
    assert len(result["per_digit"]) == 10 and min(result["per_digit"]) > 0.95
    assert result["overall"] == pytest.approx(np.mean(result["per_digit"]))


def test_digit_shares_of_a_collapsed_generator(evaluator, mnist_test):
    only_threes = RealDigits(*mnist_test, conditional=False, digit=3)
    result = metrics.digit_shares(only_threes, n=2000, evaluator=evaluator)
    assert result["shares"][3] > 0.97 and result["max_share"] == result["shares"][3]
    assert result["kl_uniform"] > 0.9 * np.log(10)
    everything = RealDigits(*mnist_test, conditional=False)
    result = metrics.digit_shares(everything, n=10_000, evaluator=evaluator)
    true_shares = np.bincount(mnist_test[1], minlength=10) / 10_000
    np.testing.assert_allclose(result["shares"], true_shares, atol=0.004)
    assert result["kl_uniform"] < 0.01


def test_evaluate_real_digits(evaluator, mnist_test):
    # a "GAN" that returns exactly the 10,000 test images: FD 0, far below the real-vs-real floor
    gan = metrics.evaluate(RealDigits(*mnist_test, conditional=False), evaluator=evaluator)
    assert gan["model"] == "gan" and "label_accuracy" not in gan
    assert gan["fd"] == pytest.approx(0, abs=1e-3 * gan["fd_floor"])
    assert gan["fd_floor"] > 0
    # the first 10,000 training images: FD equals the floor itself
    train = data.load_mnist("train", subset=10_000)
    real = metrics.evaluate(RealDigits(*train, conditional=False), evaluator=evaluator)
    assert real["fd"] == pytest.approx(real["fd_floor"], rel=1e-9)
    cgan = metrics.evaluate(RealDigits(*mnist_test, conditional=True), evaluator=evaluator)
    assert cgan["model"] == "cgan"
    assert cgan["label_accuracy"] == pytest.approx(evaluator.accuracy(*mnist_test), abs=0.005)
    np.testing.assert_allclose(cgan["digit_shares"], 0.1, atol=0.005)   # asked for evenly
    assert cgan["fd"] < 3 * cgan["fd_floor"]
    json.dumps(cgan)                                           # everything is plain JSON


def test_evaluate_checks_its_input():
    with pytest.raises(TypeError, match="generate"):
        metrics.evaluate(object())
    with pytest.raises(ValueError, match="conditional"):
        metrics.label_accuracy(build(GANConfig(), seed=0))


# ------------------------------------------------------------------ command line

def test_cli_evaluate_writes_one_json_object(tmp_path, capsys, evaluator):
    model = build(GANConfig(n_classes=10), seed=0)         # untrained: bad scores, but valid ones
    ckpt = checkpoint.save(model, tmp_path / "c.npz", epoch=0, seed=0)
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--json", str(out), "--seed", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    assert printed["model"] == "cgan" and printed["seed"] == 1
    assert len(printed["label_accuracy_per_digit"]) == 10
    assert printed["fd"] > printed["fd_floor"]               # noise is far from digits
    assert "parzen_mean" not in printed


@pytest.mark.parametrize("content", [None, b"garbage"])
def test_cli_evaluate_bad_checkpoint(tmp_path, capsys, content):
    path = tmp_path / "c.npz"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["evaluate", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "c.npz" in err


def test_cli_evaluate_unwritable_json(tmp_path, capsys):
    ckpt = checkpoint.save(build(GANConfig(), seed=0), tmp_path / "c.npz")
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--json", str(tmp_path / "no" / "e.json")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_cli_evaluate_diverged_generator(tmp_path, capsys):
    model = build(GANConfig(), seed=0)
    model.G.flat_params[:10] = np.nan
    ckpt = checkpoint.save(model, tmp_path / "c.npz")
    assert cli.main(["evaluate", "--checkpoint", str(ckpt)]) == 2
    assert "diverged" in capsys.readouterr().err


def test_unsure_share_counts_images_without_a_clear_digit():
    class Logits:   # an evaluator that returns the given logits for the given rows
        def __init__(self, logits):
            self.logits = np.asarray(logits, dtype=np.float32)

        def forward(self, x):
            return None, self.logits[: len(x)]

    sure = [10.0] + [0.0] * 9          # top probability ≈ 0.9994
    flat = [0.0] * 10                  # 0.1
    edge = [np.log(9 * 0.89 / 0.11)] + [0.0] * 9   # top probability 0.89: unsure at 0.9
    images = np.zeros((4, 784), np.float32)
    assert metrics.unsure_share(images, Logits([sure, flat, edge, sure])) == 0.5
    assert metrics.unsure_share(images, Logits([sure, flat, edge, sure]), threshold=0.5) == 0.25
    with pytest.raises(ValueError, match="threshold"):
        metrics.unsure_share(images, Logits([sure] * 4), threshold=1.5)


def test_evaluator_trains_with_a_fixed_number_of_blas_threads(monkeypatch):
    """OpenBLAS's sums, and so the evaluator's weights, depend on the thread count:
    train_evaluator uses EVALUATOR_THREADS whatever the caller set, and gives the
    caller's setting back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import npgan.evaluator as evaluator_module
    import npgan.evaluator_training as protocol

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (300, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 300)
    monkeypatch.setattr(protocol, "load_images",
                        lambda dataset, split, directory=None: (images.copy(), labels.copy()))
    monkeypatch.setattr(protocol, "TRAIN_SIZE", 200)
    monkeypatch.setattr(protocol, "VALIDATION", slice(200, 300))

    def blas_threads():
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
    seen, loss = [], protocol.softmax_cross_entropy

    def watched_loss(*args):
        seen.append(blas_threads())
        return loss(*args)
    monkeypatch.setattr(protocol, "softmax_cross_entropy", watched_loss)
    caller = 2 if evaluator_module.EVALUATOR_THREADS == 1 else 1
    with threadpool_limits(limits=caller, user_api="blas"):
        evaluator_module.train_evaluator(recipe={"epochs": 2, "batch_size": 50}, log=None)
        after = blas_threads()
    assert len(seen) == 2 * 4 and all(s == {evaluator_module.EVALUATOR_THREADS} for s in seen), seen
    assert after == {caller}


# ------------------------------------------------------------------ the same weights everywhere

@pytest.mark.parametrize("dataset", metrics.DATASETS)
def test_the_cached_evaluator_has_the_books_weights(dataset, evaluator):
    """With the pinned kernels (the Makefile's OPENBLAS_CORETYPE and NPY_DISABLE_CPU_FEATURES)
    every x86-64 machine trains the same evaluator: its weights' SHA-256 is the committed one.
    MNIST's is trained by `make data`; Fashion-MNIST's only on request (experiments/dcgan_fashion.py,
    `python -m npgan book-runs --only evaluator --dataset fashion`), checked once it exists."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the committed SHA-256 is that of x86-64's pinned kernels")
    if dataset == "mnist":
        trained = evaluator
    elif metrics.evaluator_path(dataset).is_file():
        trained = metrics.load_evaluator(dataset=dataset, train=False)
    else:
        pytest.skip(f"no {dataset} evaluator cached yet ({metrics.evaluator_path(dataset)}; "
                    f"python -m npgan book-runs --only evaluator --dataset {dataset} trains it)")
    assert trained.weights_sha256() == metrics.EVALUATOR_SHA256[dataset]
    assert trained.meta["sha256"] == metrics.EVALUATOR_SHA256[dataset]   # as trained, not changed since
