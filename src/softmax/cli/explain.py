"""``softmax ... --explain``: the article's walk through softmax, with the user's scores.

Each section follows one point of the article: the formula, the max shift
(and why it changes nothing), exp, sum, divide; why plain sum-normalization
is not enough; soft versus hard max and the temperature; the base as a
temperature; the two-class sigmoid; and the caution about calibration.
Every number printed is computed here, from the scores given, with the
library (softmax, log_softmax, logsumexp) or with NumPy for the naive
formulas the article contrasts it with. Plain text, at most 80 columns.

Any finite scores are explained, 1e308 and -1e308 included: the steps work
with the max-shifted scores (every exponent <= 0, so nothing overflows),
the sigmoid in the form that cannot overflow, and where the naive formula
overflows or underflows the text says so instead of printing a NaN.
"""

from __future__ import annotations

import math
import sys
import textwrap

import numpy as np

import softmax as lib

from .args import fmt_number, fmt_short

__all__ = ["explain"]

log_softmax, logsumexp, softmax = lib.log_softmax, lib.logsumexp, lib.softmax

WIDTH = 78
#: e^x overflows a double above this x (ln of the largest double, 709.78).
EXP_OVERFLOW = math.log(sys.float_info.max)
#: Temperatures of the temperature table, besides the limits 0 and inf.
TEMPERATURES = (0.1, 0.5, 1.0, 2.0, 10.0)
#: Bases of the base/temperature table, besides a base given by the user.
BASES = (2.0, 10.0)
#: At most this many label columns in the wide tables (largest scores first;
#: fewer when long labels would pass 80 columns).
MAX_COLUMNS = 6


def _para(text: str, indent: str = "") -> str:
    return textwrap.fill(
        " ".join(text.split()), WIDTH, initial_indent=indent, subsequent_indent=indent
    )


def _heading(text: str) -> str:
    return f"{text}\n{'-' * len(text)}"


def _table(header, rows, *, indent="  ") -> list[str]:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [f"{row[0]:<{widths[0]}}"]
        cells += [f"{cell:>{w}}" for cell, w in zip(row[1:], widths[1:])]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _join(values, fmt) -> str:
    return ", ".join(fmt(float(v)) for v in values)


def _exp_text(x: float, num) -> str:
    """e^x as a number, or as a power of e where a double cannot hold it."""
    if x > EXP_OVERFLOW:
        return f"e^{num(x)} (too large for a double)"
    return num(math.exp(x))


def _scaled(v, ln_a, temperature):
    """v ln(a) / T, divided by T where the multiplier ln(a) / T itself leaves
    the double range (T below ~5.6e-309: x / T of subnormal scores is moderate)."""
    c = ln_a / temperature
    return v * c if math.isfinite(c) and c != 0 else v * ln_a / temperature


def _shifted(z, ln_a, temperature):
    """(z - z*) ln(a) / T with z* the score of the largest: every value <= 0.

    The max-shifted scores without forming z ln(a) / T, which can overflow
    (a tiny temperature, or scores near 1e308). A difference too large for
    a double is taken in halves: for T > 1 its share need not be 0
    (softmax([1.7e308, -1.7e308], temperature=1e308) is softmax([1.7, -1.7]));
    what is still beyond a double is -inf, whose weight e^-inf = 0 is the
    right limit.
    """
    ref = float(np.max(z)) if ln_a > 0 else float(np.min(z))
    d = z - ref
    over = np.isinf(d)
    d = _scaled(np.where(over, z / 2 - ref / 2, d), ln_a, temperature)
    return np.where(over, 2 * d, d)


def explain(scores, *, temperature=1.0, base=None, where=None, digits=4, log=False) -> str:
    """The explanation as one string (ends with a newline).

    Parameters
    ----------
    scores : softmax.cli.args.Scores
        The scores; masked labels (``where`` False) are set aside.
    temperature : float
        Finite and > 0 (the caller checks).
    base : float or None
        The base of the exponential, as for `softmax.softmax`.
    where : numpy.ndarray of bool or None
        False for the labels left out by ``--mask``.
    digits : int
        Decimals of the probabilities.
    log : bool
        Also show log-probabilities.

    Returns
    -------
    str
        Plain text, at most 80 columns.
    """
    with np.errstate(all="ignore"):
        return _explain(scores, temperature=temperature, base=base, where=where,
                        digits=digits, log=log)


def _explain(scores, *, temperature, base, where, digits, log) -> str:
    keep = np.ones(len(scores.labels), bool) if where is None else np.asarray(where)
    labels = [lab for lab, k in zip(scores.labels, keep) if k]
    texts = [t for t, k in zip(scores.texts, keep) if k]
    z = scores.values[keep]
    left_out = [lab for lab, k in zip(scores.labels, keep) if not k]

    def num(v):
        return fmt_short(v, digits)

    def prob(v):
        return fmt_number(v, digits)

    def pct(v):
        return fmt_number(100 * v, max(digits - 2, 0)) + "%"

    out: list[str] = []
    add = out.append
    k = len(z)
    title = f"Softmax, step by step, for {k} score{'s' if k != 1 else ''}"
    add(title)
    add("=" * len(title))
    add("")
    add(_para(
        "Softmax turns scores (logits) into shares of a whole: each share lies "
        "between 0 and 1 and the shares add up to 1, so they can be read like "
        "probabilities: how much weight each candidate gets. The formula:"))
    add("")
    add("    softmax(z)_i = e^(z_i) / sum_j e^(z_j)")
    add("")
    out += _table(("label", "score z"), list(zip(labels, texts)))
    if left_out:
        add("")
        add(_para(f"Left out by --mask (probability 0, not part of any sum below): "
                  f"{', '.join(left_out)}."))

    # The scores softmax actually exponentiates: y = z * c.
    ln_a = 1.0 if base is None else math.log(base)
    scaled = not (temperature == 1 and base is None)
    y = _scaled(z, ln_a, temperature)
    shifted = _shifted(z, ln_a, temperature)
    if scaled:
        how = []
        if base is not None:
            how.append(f"base {num(base)} multiplies them by ln {num(base)} = {num(ln_a)}")
        if temperature != 1:
            how.append(f"temperature T = {num(temperature)} divides them by T")
        add("")
        add(_para(f"With your options the scores are rescaled first ({'; '.join(how)}): "
                  f"y = {_join(y, num)}. The steps below use y."))
        var = "y"
    else:
        var = "z"

    p_lib = softmax(z, temperature=temperature, base=base)

    # Step 1: shift by the maximum.
    top = int(np.argmax(shifted))
    m = float(y[top])
    add("")
    add(_heading(f"Step 1. Subtract the largest score, m = {num(m)}"))
    out += _table(("label", f"{var} - m"), [(lab, num(v)) for lab, v in zip(labels, shifted)])
    add("")
    add(_para(
        f"This changes nothing: e^({var}_i - m) = e^({var}_i) * e^(-m), and the same "
        f"factor e^(-m) = {_exp_text(-m, num)} multiplies every term above and "
        "below the fraction line, so it cancels. It matters to the computer: "
        f"e^x overflows a double above x = {EXP_OVERFLOW:.2f}, but after the shift "
        "every exponent is <= 0, so every term lies in (0, 1] and nothing can "
        "overflow."))
    if not np.all(np.isfinite(shifted)):
        add("")
        add(_para(
            f"Some differences {var}_i - m are too large for a double (-inf here): "
            "their weights e^-inf = 0 are exactly what softmax gives them."))
    raw = np.exp(y)
    raw_share = raw / raw.sum()
    add("")
    if np.all(np.isfinite(raw)) and np.isfinite(raw.sum()) and raw.sum() > 0:
        diff = float(np.max(np.abs(raw_share - p_lib)))
        add(_para(
            f"Check: without the shift, e^{var} = {_join(raw, num)} (sum "
            f"{num(float(raw.sum()))}); dividing gives the same shares (largest "
            f"difference from softmax: {diff:.1e})."))
    elif not (np.all(np.isfinite(raw)) and np.isfinite(raw.sum())):
        add(_para(
            f"Check: without the shift, e^{var} = {_join(raw, num)}: the largest "
            f"score overflows (e^x is inf above x = {EXP_OVERFLOW:.2f}) and "
            f"e^{var} / sum e^{var} would be inf / inf = nan. With the shift "
            "there is no problem."))
    else:
        add(_para(
            f"Check: without the shift, e^{var} = {_join(raw, num)}: every term "
            "underflows to 0 (e^x is below the smallest double for x < -745.13) and "
            f"e^{var} / sum e^{var} would be 0 / 0 = nan. With the shift the "
            "largest term is e^0 = 1 and there is no problem."))

    # Step 2: exponentiate.
    w = np.exp(shifted)
    add("")
    add(_heading(f"Step 2. Exponentiate: w_i = e^({var}_i - m)"))
    out += _table(("label", "w"), [(lab, num(v)) for lab, v in zip(labels, w)])
    add("")
    add(_para(
        "Every weight is positive, whatever the sign of the score, and a "
        f"larger score weighs disproportionately more: each point of score "
        f"multiplies the weight by e = {num(math.e)}."))

    # Step 3: sum.
    s = float(np.sum(w))
    add("")
    add(_heading("Step 3. Sum the weights"))
    add(_para(f"S = {' + '.join(num(v) for v in w)} = {num(s)}", indent="  "))
    add("")
    if math.isfinite(m):
        lse = float(logsumexp(y)) if np.all(np.isfinite(y)) else m + math.log(s)
        add(_para(
            f"In logs: m + ln S = {num(m)} + {num(math.log(s))} = {num(m + math.log(s))}, "
            f"which is logsumexp({var}) = {num(lse)}, the normalizer: "
            f"log p_i = {var}_i - logsumexp({var})."))
    else:
        add(_para(
            f"In logs: logsumexp({var}) = m + ln S, the normalizer: log p_i = "
            f"({var}_i - m) - ln S; m itself is too large for a double here, but only "
            f"the differences {var}_i - m enter the shares."))

    # Step 4: divide.
    p_steps = w / s
    add("")
    add(_heading("Step 4. Divide: p_i = w_i / S"))
    header = ["label", "w / S", "percent"]
    rows = [[lab, prob(v), pct(v)] for lab, v in zip(labels, p_lib)]
    if log:
        lp = log_softmax(z, temperature=temperature, base=base)
        header.append("log p")
        for row, v in zip(rows, lp):
            row.append(prob(v))
    rows.append(["sum", prob(float(np.sum(p_lib))), pct(float(np.sum(p_lib)))]
                + ([""] if log else []))
    out += _table(tuple(header), [tuple(r) for r in rows])
    add("")
    add(_para(
        "The shares come from softmax.softmax; the four steps above give the "
        f"same numbers (largest difference: {float(np.max(np.abs(p_steps - p_lib))):.1e})."))

    _naive_section(out, z, labels, texts, num, prob)
    _soft_section(out, z, labels, temperature, num, prob)
    _base_section(out, z, labels, base, num, prob)
    _sigmoid_section(out, y, shifted, labels, num, prob)

    add("")
    add(_heading("Shares, not guaranteed probabilities"))
    add(_para(
        "Softmax always yields numbers that look like probabilities, but a "
        "model can be over- or under-confident: 0.9 need not mean right 9 "
        "times out of 10. Use the shares as probabilities, and calibrate when "
        "it matters: `softmax calibrate LOGITS LABELS` fits a temperature on "
        "held-out data."))
    return "\n".join(out) + "\n"


def _verdict(shares, total, s_max, p, *, reference=None) -> str:
    if not math.isfinite(total):
        return "the sum overflows a double: s_i / inf is 0 or nan"
    if not np.all(np.isfinite(shares)) or abs(total) <= 1e-12 * max(s_max, 1e-300):
        return "the sum is 0: s_i / 0 is undefined"
    if np.any(shares < 0) or np.any(shares > 1):
        return "shares below 0 or above 1: not a distribution"
    if len(p) > 1 and np.argmax(shares) != np.argmax(p):
        return "the largest score no longer gets the largest share"
    if reference is not None and np.max(np.abs(shares - reference)) > 1e-9:
        return "the shares moved, though no difference between scores did"
    return "plausible numbers here, by luck of the scores"


def _naive_section(out, z, labels, texts, num, prob) -> None:
    add = out.append
    add("")
    add(_heading("Why not just divide by the sum?"))
    add(_para(
        "Plain sum-normalization, p_i = s_i / sum_j s_j, also gives numbers "
        "that add up to 1. But it reads ratios of scores, not their "
        "differences, and it breaks as soon as scores can be negative or sum "
        "to 0. Softmax first makes every score positive with exp and only "
        "then divides. Below, the same scores shifted by a constant: every "
        "difference stays the same, so softmax does not move; the naive "
        "shares do."))
    top = max(float(np.max(np.abs(z))), 1.0)
    # A shift two orders of magnitude above the scores (at most 1e300, so
    # that it stays a double for any finite scores we can be given).
    big = 10.0 ** min(math.floor(math.log10(top)) + 2, 300)
    m = float(np.max(z))
    # The mean of halves, doubled: the plain sum overflows for scores near 1e308.
    mean = float(np.mean(z / 2) * 2)
    cases = [
        ("as given", z, None),
        (f"plus {num(big)}", z + big, None),
        (f"minus the largest, {num(m)}", z - m, None),
        (f"minus the mean, {num(mean)}", z - mean, None),
    ]
    reference = None
    p0 = softmax(z)
    for name, s, _ in cases:
        if not np.all(np.isfinite(s)):
            add("")
            add(_para(f"{name}: some shifted scores overflow a double (inf); left out.",
                      indent="  "))
            continue
        total = float(np.sum(s))
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = s / total
        p = softmax(s)
        verdict = _verdict(shares, total, float(np.max(np.abs(s))), p0, reference=reference)
        if reference is None:
            reference = shares
            score_col = list(texts)
        else:
            score_col = [num(v) for v in s]
        undefined = "the sum is 0" in verdict or "overflows" in verdict
        rows = [
            (lab, sc, "undefined" if undefined else prob(v), prob(q))
            for lab, sc, v, q in zip(labels, score_col, shares, p)
        ]
        if not undefined:
            total_text = num(total)
        elif total == 0:
            total_text = "0"
        else:
            total_text = f"0 up to rounding, {total:.1e}"
        add("")
        add(f"  {name} (sum {total_text}):")
        add(f"  {verdict}")
        out += _table(("label", "s", "s / sum s", "softmax"), rows, indent="    ")


def _short(label: str, limit: int = 12) -> str:
    return label if len(label) <= limit else label[: limit - 3] + "..."


def _columns(z, labels, first_cells, digits):
    """Label columns for the wide tables: largest scores first, as many as fit.

    Returns the indices, their (shortened) headers and whether some were cut.
    """
    used = 2 + max(len(c) for c in first_cells)
    cols, heads = [], []
    for i in np.argsort(-z, kind="stable")[:MAX_COLUMNS]:
        head = _short(labels[i])
        width = 2 + max(len(head), digits + 2)
        if cols and used + width > WIDTH:
            break
        used += width
        cols.append(int(i))
        heads.append(head)
    return cols, heads, len(cols) < len(z)


def _soft_section(out, z, labels, temperature, num, prob) -> None:
    add = out.append
    temps = sorted(set(TEMPERATURES) | {float(temperature)})
    names = ["0 (hard max)"]
    for t in temps:
        names.append(num(t) + (" (yours)" if t == temperature and t not in TEMPERATURES else ""))
    names.append("inf (uniform)")
    cols, heads, cut = _columns(z, labels, names, len(prob(0.5)))
    hard = softmax(z, temperature=0)
    add("")
    add(_heading("Soft max and hard max: the temperature"))
    add(_para(
        "The hard max puts all the mass on the largest score (argmax as a "
        f"one-hot vector: {', '.join(f'{labels[i]} {num(hard[i])}' for i in cols)}). "
        "Softmax leans toward the largest score but leaves the others a "
        "share. The larger the differences between scores, the closer it "
        "gets to the hard max. Dividing the scores by a temperature T scales "
        "the differences: small T, near the hard max; large T, near uniform."))
    results = [hard] + [softmax(z, temperature=t) for t in temps]
    results.append(softmax(z, temperature=math.inf))
    rows = [(name, *(prob(p[i]) for i in cols)) for name, p in zip(names, results)]
    add("")
    out += _table(("T", *heads), rows)
    if cut:
        add(f"  (the {len(cols)} largest of {len(z)} scores)")


def _base_section(out, z, labels, base, num, prob) -> None:
    add = out.append
    add("")
    add(_heading("The base of the exponential is a temperature"))
    add(_para(
        "With a base a instead of e: a^(z_i) / sum_j a^(z_j) = "
        "e^((ln a) z_i) / sum_j e^((ln a) z_j), that is softmax(z / T) with "
        "T = 1 / ln a. Changing the base only rescales the scores; it is the "
        "exponential form that matters."))
    bases = list(BASES) + ([float(base)] if base is not None and base not in BASES else [])
    names, results = [], []
    for a in bases:
        ln_a = math.log(a)
        t = 1.0 / ln_a
        # a^(z - z*), z* the score a^z is largest at: every power <= 1, no overflow.
        ref = float(np.max(z)) if ln_a > 0 else float(np.min(z))
        direct = np.power(a, z - ref)
        names += [f"{num(a)}^z / sum {num(a)}^z", f"softmax(z, base={num(a)})"]
        results += [direct / direct.sum(), softmax(z, base=a)]
        if t > 0:
            names.append(f"softmax(z / {num(t)})")
            results.append(softmax(z, temperature=t))
        else:
            # A base below 1 is a negative temperature, which softmax does
            # not take: the same thing is softmax of -z at T = -1/ln a.
            names.append(f"softmax(-z / {num(-t)})")
            results.append(softmax(-z, temperature=-t))
    cols, heads, cut = _columns(z, labels, names, len(prob(0.5)))
    rows = [(name, *(prob(p[i]) for i in cols)) for name, p in zip(names, results)]
    add("")
    out += _table(("", *heads), rows)
    if cut:
        add(f"  (the {len(cols)} largest of {len(z)} scores)")
    p = softmax(z)
    i = int(np.argmax(z))
    add("")
    add(_para(
        f"Why e, then? Because d/dx e^x = e^x, which keeps the derivative "
        "of softmax clean: dp_i/dz_j = p_i (delta_ij - p_j), the Jacobian "
        f"diag(p) - p p^T. Here dp_{labels[i]}/dz_{labels[i]} = "
        f"{prob(p[i])} * (1 - {prob(p[i])}) = {prob(p[i] * (1 - p[i]))}."))


def _sigmoid(d: float) -> float:
    """1 / (1 + e^-d) without overflow: e^d / (1 + e^d) for d < 0."""
    if d >= 0:
        return 1.0 / (1.0 + math.exp(-d))
    e = math.exp(d) if d > -math.inf else 0.0
    return e / (1.0 + e)


def _sigmoid_section(out, y, shifted, labels, num, prob) -> None:
    if len(y) < 2:
        return
    add = out.append
    order = np.argsort(-shifted, kind="stable")
    a, b = int(order[0]), int(order[1])
    if len(y) == 2:
        a, b = 0, 1
    # The difference of the shifted scores: one of them is 0, so it is
    # finite, or -inf where y_b - y_a is too large for a double.
    d = float(shifted[b] - shifted[a])
    sig = _sigmoid(d)
    pair = softmax(np.array([shifted[a], shifted[b]]))
    add("")
    add(_heading("Two classes: softmax is the sigmoid"))
    add(_para(
        "For two scores z0 and z1: e^z1 / (e^z0 + e^z1) = 1 / (1 + e^-(z1 - z0)) "
        "= sigmoid(z1 - z0). Softmax generalizes the sigmoid from two classes "
        "to K."))
    add("")
    if len(y) == 2:
        add(f"  p({labels[b]}) = {prob(pair[1])} = sigmoid({num(y[b])} - {num(y[a])}) "
            f"= {prob(sig)}")
    else:
        full = softmax(shifted)
        ratio = full[b] / (full[a] + full[b])
        add(_para(
            f"With more labels it holds for any pair: between {labels[a]} and "
            f"{labels[b]}, p({labels[b]}) / (p({labels[a]}) + p({labels[b]})) "
            f"= {prob(ratio)} = sigmoid({num(y[b])} - {num(y[a])}) = {prob(sig)}.",
            indent="  "))
    if abs(d) > EXP_OVERFLOW:
        add("")
        add(_para(
            f"Here the difference is {num(d)}: e^-(z1 - z0) = {_exp_text(-d, num)} "
            f"overflows a double (e^x is inf above x = {EXP_OVERFLOW:.2f}). Written as "
            "1 / (1 + e^-d) for d >= 0 and e^d / (1 + e^d) for d < 0, the sigmoid "
            "only ever takes e of a number <= 0, and gives the limit instead: 0 or 1, "
            "as softmax does."))
