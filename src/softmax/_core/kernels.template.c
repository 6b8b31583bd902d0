/*
 * One row of softmax / log_softmax / logsumexp, for one input type.
 *
 * Included by kernels.c once per type, with these defined:
 *   IN_T      the element type of x and out (float or double)
 *   SUFFIX    the name suffix of the generated functions (f32, f64)
 *   EXACT_DD  1 to carry x - max and the scaling in double-double (float64),
 *             0 when double is already far wider than IN_T (float32)
 *
 * Every row takes the same three passes whether it is contiguous or strided,
 * so a strided row gives the same bits as a contiguous copy of it:
 *   1. scan: max of the oriented values v = sign * x over unmasked entries,
 *      NaN and +inf detection, index of the first maximum;
 *   2. s_rest = sum of exp(y_j) over all unmasked j except that first
 *      maximum, where y_j = (v_j - max) * |c|, accumulated with TwoSum
 *      (so 1 + s_rest is the usual sum, and log1p(s_rest) keeps log_softmax's
 *      tiny negative values when one entry dominates);
 *   3. write p_j = exp(y_j) / (1 + s_rest) or y_j - log1p(s_rest).
 * The arithmetic is in double for both types; float32 rounds once at the end.
 */
#ifndef IN_T
#error "kernels.template.c needs IN_T, SUFFIX and EXACT_DD defined by its includer"
#endif

#define SM_CAT_(a, b) a##_##b
#define SM_CAT(a, b) SM_CAT_(a, b)
#define SM_FN(name) SM_CAT(name, SUFFIX)

#define X_AT(j) ((double)*(const IN_T *)(row->x + (j) * row->x_stride))
#define OUT_AT(j) (*(IN_T *)(row->out + (j) * row->out_stride))
#define KEEP(j) (row->mask == NULL || row->mask[(j) * row->mask_stride])

/* y = (v - m) * c as hi + lo; returns 0 when y is -inf (exp(y) == 0). */
static inline int
SM_FN(shifted)(double v, double m, const sm_scale *sc, double *y_hi, double *y_lo)
{
    double d_hi = v - m;
#if EXACT_DD
    double d_lo;
    if (!(d_hi > -HUGE_VAL)) {
        return 0;
    }
    /* TwoSum: v - m rounded, and the exact rounding error */
    {
        double bb = d_hi - v;
        d_lo = (v - (d_hi - bb)) + (-m - bb);
    }
    if (sc->scaled) {
        double p = d_hi * sc->c_hi;
        if (!(p > -HUGE_VAL)) {
            return 0;
        }
        *y_lo = fma(d_hi, sc->c_hi, -p) + fma(d_hi, sc->c_lo, d_lo * sc->c_hi);
        *y_hi = p;
    }
    else {
        *y_hi = d_hi;
        *y_lo = d_lo;
    }
#else
    if (sc->scaled) {
        d_hi *= sc->c_hi;
    }
    if (!(d_hi > -HUGE_VAL)) {
        return 0;
    }
    *y_hi = d_hi;
    *y_lo = 0.0;
#endif
    return 1;
}

/*
 * Pass 1. Returns the kind of row; fills *m_out (max of v) and *arg (first
 * index of the max, or of the first +inf).
 */
static int
SM_FN(scan)(const sm_row *row, double sign, double *m_out, npy_intp *arg, npy_intp *n_posinf)
{
    double m = -HUGE_VAL;
    npy_intp a = -1, k = 0;
    int nan = 0;
    for (npy_intp j = 0; j < row->n; j++) {
        if (!KEEP(j)) {
            continue;
        }
        double v = sign * X_AT(j);
        if (v != v) {
            nan = 1;
        }
        else if (v > m) {
            m = v;
            a = j;
        }
        if (v == HUGE_VAL) {
            k++;
        }
    }
    *m_out = m;
    *arg = a;
    *n_posinf = k;
    if (nan) {
        return SM_ROW_NAN;
    }
    if (k > 0) {
        return SM_ROW_POSINF;
    }
    if (!(m > -HUGE_VAL)) {
        return SM_ROW_EMPTY;
    }
    return SM_ROW_FINITE;
}

#if EXACT_DD && !defined(SM_TINY_DEFINED)
#define SM_TINY_DEFINED
/*
 * Below y = ln(2^-1022) exp(y) is subnormal: each such term would be rounded
 * to the fixed quantum 2^-1074, and those absolute errors add up. They decide
 * the result when the rest sum is itself tiny (log_softmax of a dominant
 * entry, logsumexp near 0: both are -+log1p(rest) ~ -+rest). Such terms are
 * summed scaled by 2^SM_TINY_SHIFT, as exp(y + SM_TINY_SHIFT ln 2), and
 * scaled back once at the end.
 */
#define SM_TINY_Y (-708.0)
#define SM_TINY_SHIFT 128
static const double sm_tiny_ln2_hi = 0x1.62e42fefa39efp+6;   /* 128 ln 2, hi */
static const double sm_tiny_ln2_lo = 0x1.abc9e3b39803fp-49;  /* 128 ln 2, lo */
#endif

/* Pass 2: s_rest as an unevaluated sum hi + lo. */
static void
SM_FN(sum_rest)(const sm_row *row, double sign, double m, npy_intp arg,
                const sm_scale *sc, double *s_hi, double *s_lo)
{
    double s = 0.0, comp = 0.0;
#if EXACT_DD
    double s_tiny = 0.0, comp_tiny = 0.0;  /* terms scaled by 2^SM_TINY_SHIFT */
#endif
    for (npy_intp j = 0; j < row->n; j++) {
        double y_hi, y_lo;
        if (j == arg || !KEEP(j)) {
            continue;
        }
        if (!SM_FN(shifted)(sign * X_AT(j), m, sc, &y_hi, &y_lo)) {
            continue;
        }
#if EXACT_DD
        if (y_hi < SM_TINY_Y) {
            /* a = y + 128 ln 2 as hi + lo (TwoSum), then exp(a) (1 + a_lo) */
            double a = y_hi + sm_tiny_ln2_hi;
            double bb = a - y_hi;
            double a_lo = ((y_hi - (a - bb)) + (sm_tiny_ln2_hi - bb)) + (y_lo + sm_tiny_ln2_lo);
            double et = exp(a);
            et = fma(et, a_lo, et);
            double t = s_tiny + et;
            double z = t - s_tiny;
            comp_tiny += (s_tiny - (t - z)) + (et - z);
            s_tiny = t;
            continue;
        }
        double e = exp(y_hi);
        e = fma(e, y_lo, e);  /* exp(hi + lo) = exp(hi) (1 + lo), |lo| < ulp(hi) */
#else
        double e = exp(y_hi);
#endif
        /* TwoSum accumulation: comp collects every rounding error of s */
        double t = s + e;
        double z = t - s;
        comp += (s - (t - z)) + (e - z);
        s = t;
    }
#if EXACT_DD
    if (s_tiny != 0.0) {
        /* one rounding, at the real quantum, for all the subnormal terms */
        comp += ldexp(s_tiny + comp_tiny, -SM_TINY_SHIFT);
    }
#endif
    *s_hi = s + comp;
    *s_lo = comp - (*s_hi - s);
}

/* Rows that are not finite: NaN, +inf sharing, empty. */
static void
SM_FN(write_special)(const sm_row *row, double sign, int kind, npy_intp n_posinf, int log_mode)
{
    const double zero = log_mode ? -HUGE_VAL : 0.0;
    /* 0.0 - log(k), not -log(k): a lone +inf has log-share +0, not -0 */
    const double share = log_mode ? 0.0 - log((double)n_posinf) : 1.0 / (double)n_posinf;
    for (npy_intp j = 0; j < row->n; j++) {
        double r;
        if (!KEEP(j)) {
            r = zero;
        }
        else if (kind == SM_ROW_NAN) {
            r = NAN;
        }
        else if (kind == SM_ROW_POSINF && sign * X_AT(j) == HUGE_VAL) {
            r = share;
        }
        else {
            r = zero;
        }
        OUT_AT(j) = (IN_T)r;
    }
}

void
SM_FN(sm_softmax_row)(const sm_row *row, const sm_scale *sc, int log_mode)
{
    const double sign = sc->negate ? -1.0 : 1.0;
    double m;
    npy_intp arg, n_posinf;
    int kind = SM_FN(scan)(row, sign, &m, &arg, &n_posinf);
    if (kind != SM_ROW_FINITE) {
        SM_FN(write_special)(row, sign, kind, n_posinf, log_mode);
        return;
    }
    double r_hi, r_lo;
    SM_FN(sum_rest)(row, sign, m, arg, sc, &r_hi, &r_lo);

    if (log_mode) {
        /* log(1 + s_rest), plus the first-order effect of s_rest's low part */
        const double l_hi = log1p(r_hi);
        const double l_lo = r_lo / (1.0 + r_hi);
        for (npy_intp j = 0; j < row->n; j++) {
            double y_hi, y_lo, r;
            if (KEEP(j) && SM_FN(shifted)(sign * X_AT(j), m, sc, &y_hi, &y_lo)) {
                r = (y_hi - l_hi) + (y_lo - l_lo);
            }
            else {
                r = -HUGE_VAL;
            }
            OUT_AT(j) = (IN_T)r;
        }
        return;
    }

    /* s = 1 + s_rest exactly as hi + lo (TwoSum), then p = e / s with one
     * correction term carrying both y's and s's low parts */
    double s_hi = 1.0 + r_hi;
    double s_lo;
    {
        double bb = s_hi - 1.0;
        s_lo = ((1.0 - (s_hi - bb)) + (r_hi - bb)) + r_lo;
    }
    const double s_rel = s_lo / s_hi;
    for (npy_intp j = 0; j < row->n; j++) {
        double y_hi, y_lo, r;
        if (KEEP(j) && SM_FN(shifted)(sign * X_AT(j), m, sc, &y_hi, &y_lo)) {
            double q = exp(y_hi) / s_hi;
            r = fma(q, y_lo - s_rel, q);
        }
        else {
            r = 0.0;
        }
        OUT_AT(j) = (IN_T)r;
    }
}

/*
 * logsumexp of one row as hi + lo (the caller rounds once). Returns NaN for a
 * NaN row, +inf when +inf is present, -inf for an empty row.
 */
void
SM_FN(sm_logsumexp_row)(const sm_row *row, double *out_hi, double *out_lo)
{
    static const sm_scale unit = {1.0, 0.0, 0, 0};
    double m;
    npy_intp arg, n_posinf;
    int kind = SM_FN(scan)(row, 1.0, &m, &arg, &n_posinf);
    *out_lo = 0.0;
    switch (kind) {
        case SM_ROW_NAN: *out_hi = NAN; return;
        case SM_ROW_POSINF: *out_hi = HUGE_VAL; return;
        case SM_ROW_EMPTY: *out_hi = -HUGE_VAL; return;
        default: break;
    }
    double r_hi, r_lo;
    SM_FN(sum_rest)(row, 1.0, m, arg, &unit, &r_hi, &r_lo);
    const double l_hi = log1p(r_hi);
    const double l_lo = r_lo / (1.0 + r_hi);
    /* m + log1p(s_rest): TwoSum keeps the rounding error of the addition */
    double t = m + l_hi;
    *out_hi = t;
    if (t == HUGE_VAL) {
        return;  /* overflow: +inf is the correctly rounded result */
    }
    double bb = t - m;
    double err = (m - (t - bb)) + (l_hi - bb);
    *out_lo = err + l_lo;
}

#undef X_AT
#undef OUT_AT
#undef KEEP
#undef SM_FN
#undef SM_CAT
#undef SM_CAT_
