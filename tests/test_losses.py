"""cross_entropy, cross_entropy_grad and entropy.

References: torch.nn.functional.cross_entropy and torch.autograd (class
indices, probability targets, label smoothing, reductions), central finite
differences, mpmath at 200 bits, hand-derivable limits (log K, 0).
"""

import warnings

import mpmath
import numpy as np
import pytest

import softmax as sm
import softmax._math.losses as L

RNG = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def _mp_precision():
    """200-bit references, without changing mpmath's global state for others."""
    with mpmath.workprec(200):
        yield
# Tolerance for comparisons with torch in float64 (both sides are a few
# roundings from the exact value; measured differences are <= 2e-16).
TORCH_RTOL = 1e-13


def _torch():
    torch = pytest.importorskip("torch")
    return torch, torch.nn.functional


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_index_labels_against_torch(reduction, eps):
    torch, F = _torch()
    x = RNG.normal(scale=3, size=(8, 5))
    y = RNG.integers(0, 5, 8)
    got = L.cross_entropy(x, y, reduction=reduction, label_smoothing=eps)
    ref = F.cross_entropy(torch.tensor(x), torch.tensor(y), reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(got, ref.numpy(), rtol=TORCH_RTOL, atol=0)

    xt = torch.tensor(x, requires_grad=True)
    F.cross_entropy(xt, torch.tensor(y), reduction=reduction, label_smoothing=eps).backward(
        None if reduction != "none" else torch.ones(8, dtype=torch.float64)
    )
    grad = L.cross_entropy_grad(x, y, reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=TORCH_RTOL, atol=1e-17)


@pytest.mark.parametrize("eps", [0.0, 0.25])
def test_probability_targets_against_torch(eps):
    torch, F = _torch()
    x = RNG.normal(scale=2, size=(6, 4))
    t = sm.softmax(RNG.normal(size=(6, 4)))
    got = L.cross_entropy(x, t, label_smoothing=eps)
    ref = F.cross_entropy(torch.tensor(x), torch.tensor(t), label_smoothing=eps)
    np.testing.assert_allclose(got, ref.numpy(), rtol=TORCH_RTOL)
    xt = torch.tensor(x, requires_grad=True)
    F.cross_entropy(xt, torch.tensor(t), label_smoothing=eps).backward()
    np.testing.assert_allclose(
        L.cross_entropy_grad(x, t, label_smoothing=eps), xt.grad.numpy(), rtol=TORCH_RTOL, atol=1e-17
    )


def test_class_axis_one_like_torch():
    torch, F = _torch()
    x = RNG.normal(size=(3, 4, 5))  # (N, C, d), torch's layout
    y = RNG.integers(0, 4, size=(3, 5))
    got = L.cross_entropy(x, y, axis=1, reduction="none", label_smoothing=0.1)
    ref = F.cross_entropy(torch.tensor(x), torch.tensor(y), reduction="none", label_smoothing=0.1)
    np.testing.assert_allclose(got, ref.numpy(), rtol=TORCH_RTOL)
    xt = torch.tensor(x, requires_grad=True)
    F.cross_entropy(xt, torch.tensor(y)).backward()
    np.testing.assert_allclose(L.cross_entropy_grad(x, y, axis=1), xt.grad.numpy(), rtol=TORCH_RTOL, atol=1e-17)


def test_temperature_against_torch():
    torch, F = _torch()
    x = RNG.normal(scale=4, size=(5, 6))
    y = RNG.integers(0, 6, 5)
    T = 2.5
    ref = F.cross_entropy(torch.tensor(x / T), torch.tensor(y), label_smoothing=0.05)
    np.testing.assert_allclose(
        L.cross_entropy(x, y, temperature=T, label_smoothing=0.05), ref.numpy(), rtol=TORCH_RTOL
    )
    xt = torch.tensor(x, requires_grad=True)
    F.cross_entropy(xt / T, torch.tensor(y), label_smoothing=0.05).backward()
    np.testing.assert_allclose(
        L.cross_entropy_grad(x, y, temperature=T, label_smoothing=0.05),
        xt.grad.numpy(),
        rtol=TORCH_RTOL,
        atol=1e-17,
    )


@pytest.mark.parametrize("targets", ["index", "prob"])
def test_gradient_against_finite_differences(targets):
    x = RNG.normal(size=(3, 4))
    y = RNG.integers(0, 4, 3) if targets == "index" else sm.softmax(RNG.normal(size=(3, 4)))
    kwargs = dict(temperature=0.7, label_smoothing=0.2, reduction="mean")
    grad = L.cross_entropy_grad(x, y, **kwargs)
    h = 1e-6
    fd = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        fd[idx] = (L.cross_entropy(x + e, y, **kwargs) - L.cross_entropy(x - e, y, **kwargs)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-9)


def test_exact_log_softmax_no_rounded_probability():
    # -log softmax([40, 0])[0] = log1p(exp(-40)), a tiny positive number.
    exact = float(mpmath.log1p(mpmath.exp(-40)))
    assert L.cross_entropy(np.array([40.0, 0.0]), 0) == exact
    assert L.cross_entropy(np.array([[40.0, 0.0]]), [1], reduction="sum") == float(
        40 + mpmath.log1p(mpmath.exp(-40))
    )
    # A confident wrong answer with huge logits: finite, not -log(0) = inf.
    assert L.cross_entropy(np.array([1e5, 0.0]), 1) == 1e5


def test_where_equals_the_kept_classes_alone():
    torch, F = _torch()
    x = RNG.normal(size=(4, 6))
    where = np.ones_like(x, dtype=bool)
    where[:, [2, 5]] = False
    x[:, 2] = np.inf
    x[:, 5] = np.nan
    kept = [0, 1, 3, 4]
    y = np.array([0, 3, 4, 1])
    y_compact = np.array([0, 2, 3, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = L.cross_entropy(x, y, where=where, label_smoothing=0.1, reduction="none")
        grad = L.cross_entropy_grad(x, y, where=where, label_smoothing=0.1)
    ref = F.cross_entropy(
        torch.tensor(x[:, kept]), torch.tensor(y_compact), label_smoothing=0.1, reduction="none"
    )
    np.testing.assert_allclose(got, ref.numpy(), rtol=TORCH_RTOL)
    np.testing.assert_array_equal(grad[:, [2, 5]], 0.0)
    np.testing.assert_allclose(
        grad[:, kept], L.cross_entropy_grad(x[:, kept], y_compact, label_smoothing=0.1), rtol=1e-15
    )
    # Probability targets too.
    t = sm.softmax(RNG.normal(size=(4, 6)), where=where)
    got_p = L.cross_entropy(x, t, where=where, label_smoothing=0.1)
    ref_p = F.cross_entropy(torch.tensor(x[:, kept]), torch.tensor(t[:, kept]), label_smoothing=0.1)
    np.testing.assert_allclose(got_p, ref_p.numpy(), rtol=TORCH_RTOL)
    grad_p = L.cross_entropy_grad(x, t, where=where, label_smoothing=0.1)
    np.testing.assert_array_equal(grad_p[:, [2, 5]], 0.0)


def test_impossible_target_is_infinite_loss_without_nan():
    x = np.array([[0.0, -np.inf, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert L.cross_entropy(x, [1]) == np.inf
        assert L.cross_entropy(x, [0]) == float(mpmath.log(1 + mpmath.e))
        # eps > 0 puts mass on the impossible class.
        assert L.cross_entropy(x, [0], label_smoothing=0.1) == np.inf
        assert L.cross_entropy(x, [0], label_smoothing=1.0) == np.inf
        grad = L.cross_entropy_grad(x, [1])
    assert np.all(np.isfinite(grad))


def test_zero_weight_ignores_impossible_class():
    # label_smoothing = 1: the label itself has weight 0, so 0 * (-inf) = 0.
    x = np.array([[0.0, 1.0, 2.0]])
    where = np.array([[True, False, True]])
    loss = L.cross_entropy(x, [1], where=where, label_smoothing=1.0)
    expected = -float((mpmath.mpf(0) + 2 - 2 * mpmath.log(1 + mpmath.e**2)) / 2)
    assert abs(loss - expected) <= 2 * np.spacing(expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes(dtype):
    x = RNG.normal(size=(4, 3)).astype(dtype)
    y = np.array([0, 2, 1, 1])
    loss = L.cross_entropy(x, y)
    assert loss.dtype == dtype and np.ndim(loss) == 0
    assert L.cross_entropy(x, y, reduction="none").dtype == dtype
    assert L.cross_entropy_grad(x, y).dtype == dtype
    # Computed in float64 and rounded once.
    x64 = x.astype(np.float64)
    assert loss == dtype(L.cross_entropy(x64, y))
    assert L.cross_entropy(np.array([[3, 1]]), [0]).dtype == np.float64


def test_empty_batch_and_unbatched():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(L.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int)))
        assert L.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int), reduction="sum") == 0.0
        assert L.cross_entropy_grad(np.zeros((0, 3)), np.zeros(0, dtype=int)).shape == (0, 3)
    assert L.cross_entropy(np.zeros(4), 2) == float(mpmath.log(4))


def test_label_errors_name_the_bad_index_and_shape():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 4\), got labels\[1\] = 4"):
        L.cross_entropy(x, [0, 4, 1])
    with pytest.raises(ValueError, match=r"got labels\[2\] = -1"):
        L.cross_entropy_grad(x, [0, 1, -1])
    with pytest.raises(ValueError, match=r"got labels\[1, 1\] = 9"):
        L.cross_entropy(np.zeros((2, 9, 2)), np.array([[0, 1], [7, 9]]), axis=1)
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\) .* got shape \(4,\)"):
        L.cross_entropy(x, [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"must have logits.shape \(3, 4\), got shape \(3,\)"):
        L.cross_entropy(x, [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="labels must be integer class indices or float probabilities, got dtype bool"):
        L.cross_entropy(x, [True, False, True])


def test_argument_errors():
    x, y = np.zeros((2, 3)), [0, 1]
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        L.cross_entropy(x, y, reduction="avg")
    for t in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="temperature must be > 0 and finite"):
            L.cross_entropy_grad(x, y, temperature=t)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        L.cross_entropy(x, y, label_smoothing=1.5)
    with pytest.raises(ValueError, match="logits must have at least one axis"):
        L.cross_entropy(3.0, 0)
    with pytest.raises(TypeError, match="axis must be an int"):
        L.cross_entropy(x, y, axis=None)


# ---------------------------------------------------------------- entropy


def mp_entropy(row):
    """-sum p log p with log p = (x - max) - log1p(sum of the other terms).

    log1p keeps p's distance from 1 even when it is far below 2**-200
    (a plain sum would round 1 + 1e-112 to 1 and lose that term).
    """
    xs = [mpmath.mpf(float(v)) for v in row]
    k = max(range(len(xs)), key=lambda i: xs[i])
    m = xs[k]
    rest = sum(mpmath.exp(v - m) for i, v in enumerate(xs) if i != k)
    logps = [v - m - mpmath.log1p(rest) for v in xs]
    return -sum(mpmath.exp(lp) * lp for lp in logps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_entropy_against_mpmath(dtype):
    rows = [RNG.normal(scale=s, size=k) for s in (0.1, 1, 5, 30) for k in (2, 7, 50)]
    rows += [np.array([1e4, 1e4 - 1, 1e4 - 3]), np.array([-3e38, -3e38 + 1e25, 0.0])]
    worst = 0.0
    for row in rows:
        row = row.astype(dtype)
        h = L.entropy(row)
        assert h.dtype == dtype
        exact = mp_entropy(row)
        err = float(abs(mpmath.mpf(float(h)) - exact) / float(np.spacing(dtype(float(exact)))))
        worst = max(worst, err)
    print(f"entropy {np.dtype(dtype).name}: max {worst:.2f} ulp")
    assert worst <= (4 if dtype == np.float64 else 1)


def test_entropy_limits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert L.entropy([1e300, 0.0]) == 0.0
        assert L.entropy([0.0, -1e308, -np.inf]) == 0.0
        h = L.entropy(np.full(10, 7.5))
        assert abs(h - np.log(10)) <= np.spacing(np.log(10))
        assert abs(L.entropy([1e300, 1e300]) - np.log(2)) <= np.spacing(np.log(2))
        # Huge logits: the logsumexp - sum(p * x) form would be noise here.
        h = L.entropy([1e18, 1e18 + 256])  # 257 exp(-256)
        assert abs(h - float(mp_entropy([1e18, 1e18 + 256]))) <= 2 * np.spacing(h)
        assert L.entropy([-np.inf, -np.inf]) == 0.0
        assert np.isnan(L.entropy([1.0, np.nan]))
        assert L.entropy([np.inf, 0.0, np.inf]) == float(np.log(2))


def test_entropy_axes_where_temperature():
    x = RNG.normal(size=(3, 4, 5))
    h = L.entropy(x, axis=1)
    assert h.shape == (3, 5)
    np.testing.assert_allclose(h[2, 3], float(mp_entropy(x[2, :, 3])), rtol=1e-15)
    h_all = L.entropy(x, axis=None)
    np.testing.assert_allclose(h_all, float(mp_entropy(x.ravel())), rtol=1e-14)
    np.testing.assert_allclose(L.entropy(x, axis=(0, 2))[1], float(mp_entropy(x[:, 1, :].ravel())), rtol=1e-14)
    where = np.array([True, False, True, True, False])
    np.testing.assert_allclose(
        L.entropy(x[0, 0], where=where), float(mp_entropy(x[0, 0][where])), rtol=1e-15
    )
    assert L.entropy(x[0, 0], where=np.zeros(5, dtype=bool)) == 0.0
    np.testing.assert_allclose(L.entropy(x[0, 0], temperature=3.0), float(mp_entropy(x[0, 0] / 3)), rtol=1e-15)
    # Temperature 0: entropy of the hard max, log k for k tied maxima.
    assert abs(L.entropy([2.0, 2.0, 2.0, 1.0], temperature=0) - np.log(3)) <= 2 * np.spacing(np.log(3))
    assert L.entropy([2.0, 1.0], temperature=np.inf) == float(np.log(2))
    assert L.entropy(np.array([[1, 2], [3, 3]])).dtype == np.float64
    assert L.entropy(np.ones((2, 3), dtype=np.float16)).dtype == np.float16
