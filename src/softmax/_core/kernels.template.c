/*
 * The vector kernels of one row, for one SIMD target and one input type.
 *
 * Included by kernels_<target>.c (after simd.h) once per type, with:
 *   IN_T      the element type of x and out (uint16_t holds float16)
 *   SUFFIX    the name suffix of the generated functions (f16, f32, f64)
 *   EXACT_DD  1 to carry x - max and the scaling in double-double and to
 *             sum with TwoSum (float64); 0 when double is already far wider
 *             than IN_T (float16, float32: one rounding at the end suffices)
 *   LOADV(p), STOREV(p, v)   W elements of IN_T <-> a vector of doubles
 *   LOAD1(p), STORE1(p, d)   one element, for strided, masked and tail work
 *
 * A row goes through the driver (driver.c) as three steps:
 *   load   v = sign * x into a double scratch (masked entries -inf), padded
 *          with -inf to a multiple of the lane count; max and NaN scan.
 *   expsum s_rest = sum of exp((v_j - max) c) over the entries that are not
 *          an exact maximum (their exp is exactly 1: they are counted
 *          instead, so log1p(s_rest) keeps log_softmax's tiny values when
 *          one entry dominates); element j always goes to accumulator
 *          j mod lanes.
 *   write  p_j = e_j / (1 + s_rest) or y_j - log1p(s_rest).
 * Strided, masked and contiguous rows differ only in how `load` fills the
 * scratch and how `write` stores: the arithmetic in between is the same
 * lane for lane, so they give the same bits.
 */
#ifndef IN_T
#error "kernels.template.c needs IN_T, SUFFIX, EXACT_DD, LOADV, STOREV, LOAD1, STORE1"
#endif

#define SM_CAT_(a, b) a##_##b
#define SM_CAT(a, b) SM_CAT_(a, b)
#define SM_FN(name) SM_CAT(name, SUFFIX)

#ifndef SM_U
#define SM_U 2                 /* accumulators per vector lane */
#define SM_L (SM_W * SM_U)     /* lanes of a row's sum */
#define SM_CHUNK 256           /* elements staged for a strided store */
#endif

/* float64 needs the full exp (y_lo, tail, subnormals); narrower types the lite one */
#if EXACT_DD
#define SM_EXP(tab, y_hi, y_lo) sm_vexp((tab), (y_hi), (y_lo), 1)
#else
#define SM_EXP(tab, y_hi, y_lo) ((void)(y_lo), sm_vexp_lite((tab), (y_hi)))
#endif

/* y = (v - m) c as hi + lo for one vector; d_hi == 0 marks exact maxima. */
static inline void
SM_FN(shift)(vd v, vd m, const int scaled, vd c_hi, vd c_lo, vd *d_hi, vd *y_hi, vd *y_lo)
{
    vd d = vd_sub(v, m);
    *d_hi = d;
#if EXACT_DD
    /* TwoSum: v - m rounded, and its exact rounding error */
    vd bb = vd_sub(d, v);
    vd d_lo = vd_add(vd_sub(v, vd_sub(d, bb)), vd_sub(vd_sub(vd_set1(0.0), m), bb));
    if (scaled) {
        vd p = vd_mul(d, c_hi);
        *y_lo = vd_add(vd_fma(d, c_hi, vd_sub(vd_set1(0.0), p)),
                       vd_fma(d, c_lo, vd_mul(d_lo, c_hi)));
        *y_hi = p;
    }
    else {
        *y_hi = d;
        *y_lo = d_lo;
    }
#else
    (void)c_lo;
    *y_hi = scaled ? vd_mul(d, c_hi) : d;
    *y_lo = vd_set1(0.0);
#endif
}

/*
 * shift() for a row with sm_scale.wide_gaps: a lane whose v - m overflowed
 * although v is finite (v - d is then +inf; for v = -inf it is NaN) takes
 * y = 2 c (v/2 - m/2): the halves' difference cannot overflow, c < 1 keeps
 * the product finite, and the doubling is exact (or overflows where the
 * exact y does). Only the log writes need it: such a y is below -2^64 for
 * any c the core is given (>= 2^-960), so exp(y) is 0 in the sums either way.
 */
static inline void
SM_FN(shift_wide)(vd v, vd m, const int scaled, vd c_hi, vd c_lo, vd *y_hi, vd *y_lo)
{
    vd d;
    SM_FN(shift)(v, m, scaled, c_hi, c_lo, &d, y_hi, y_lo);
    const vb over = vd_eq(vd_sub(v, d), vd_set1(HUGE_VAL));
    if (vb_any(over)) {
        const vd half = vd_set1(0.5), two = vd_set1(2.0);
        vd d2, h_hi, h_lo;
        SM_FN(shift)(vd_mul(v, half), vd_mul(m, half), scaled, c_hi, c_lo, &d2, &h_hi, &h_lo);
        *y_hi = vd_select(over, vd_mul(h_hi, two), *y_hi);
        *y_lo = vd_select(over, vd_mul(h_lo, two), *y_lo);
    }
}

static int
SM_FN(load)(const sm_row *row, int negate, double *v, double *m_out)
{
    const ptrdiff_t n = row->n;
    /* padded to whole vectors, not whole rounds of SM_U vectors: a short
     * row (n <= SM_W) then costs one vector in every pass, not SM_U */
    const ptrdiff_t npad = (n + SM_W - 1) / SM_W * SM_W;
    const double sign = negate ? -1.0 : 1.0;
    vd mx[SM_U];
    vb nan = vd_lt(vd_set1(0.0), vd_set1(0.0));
    for (int u = 0; u < SM_U; u++) {
        mx[u] = vd_set1(-HUGE_VAL);
    }
    ptrdiff_t j = 0;
    if (row->mask == NULL && row->x_stride == (ptrdiff_t)sizeof(IN_T)) {
        /* the common case: convert and scan in one pass over x */
        const IN_T *x = (const IN_T *)row->x;
        const vd vsign = vd_set1(sign);
        for (; j + SM_L <= n; j += SM_L) {
            for (int u = 0; u < SM_U; u++) {
                vd a = vd_mul(LOADV(x + j + u * SM_W), vsign);
                vd_store(v + j + u * SM_W, a);
                nan = vb_or(nan, vd_unord(a, a));
                mx[u] = vd_max(mx[u], a);
            }
        }
    }
    const ptrdiff_t scanned = j;
    /* A short rest (a short row, or the tail of a contiguous one) is scanned
     * as it is stored: read back as vectors right after its scalar stores,
     * it stalled on store forwarding, a third of a short row's load. The
     * max does not depend on the order it is taken in (only the signs of
     * zeros could, and a zero max that is a lone maximum is exact). */
    const int short_rest = n - scanned < SM_L;
    double m_rest = -HUGE_VAL;
    int nan_rest = 0;
    for (; j < n; j++) {
        if (row->mask != NULL && !row->mask[j * row->mask_stride]) {
            v[j] = -HUGE_VAL;
        }
        else {
            const double a = sign * LOAD1(row->x + j * row->x_stride);
            v[j] = a;
            if (short_rest) {
                nan_rest |= a != a;
                m_rest = a > m_rest ? a : m_rest;
            }
        }
    }
    for (; j < npad; j++) {
        v[j] = -HUGE_VAL;
    }
    for (j = short_rest ? npad : scanned; j < npad; j += SM_L) {
        for (int u = 0; u < SM_U && j + u * SM_W < npad; u++) {
            vd a = vd_load(v + j + u * SM_W);
            nan = vb_or(nan, vd_unord(a, a));
            mx[u] = vd_max(mx[u], a);
        }
    }
    /* lanes past n saw only the -inf padding (or nothing): they change no
     * max. Four independent chains, not one dependent chain of SM_L (as in
     * load32). A NaN lane may win here: the row's kind says NaN then. */
    for (int u = 1; u < SM_U; u++) {
        mx[0] = vd_max(mx[0], mx[u]);
    }
    double lanes[SM_W];
    vd_store(lanes, mx[0]);
    double q[4] = {m_rest, -HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
    for (int l = 0; l < SM_W; l++) {
        q[l % 4] = lanes[l] > q[l % 4] ? lanes[l] : q[l % 4];
    }
    const double q01 = q[0] > q[1] ? q[0] : q[1], q23 = q[2] > q[3] ? q[2] : q[3];
    const double m = q01 > q23 ? q01 : q23;
    *m_out = m;
    if (vb_any(nan) || nan_rest) {
        return SM_ROW_NAN;
    }
    if (m == HUGE_VAL) {
        return SM_ROW_POSINF;
    }
    if (!(m > -HUGE_VAL)) {
        return SM_ROW_EMPTY;
    }
    return SM_ROW_FINITE;
}

/* The running sums of one accumulator vector (see sm_acc). */
typedef struct {
    vd s, comp;       /* sum of the non-maxima and, for float64, its errors */
#if EXACT_DD
    vd ts, tc;        /* the terms below 2^-1022, scaled by 2^128 */
#endif
} SM_FN(sums);

#if EXACT_DD
/* float64 terms below 2^-1022 (lanes `tiny`; 0 elsewhere): subnormal terms
 * would each be rounded to the fixed quantum 2^-1074, and those errors add
 * up when the rest sum is itself tiny (log_softmax of a dominant entry,
 * logsumexp near 0). They are summed as exp(y + 128 ln2) instead, scaled
 * back once in the driver. */
static inline vd
SM_FN(tiny_exp)(const sm_exp_table *tab, vb tiny, vd y_hi, vd y_lo)
{
    const vd sh_hi = vd_set1(0x1.62e42fefa39efp+6), sh_lo = vd_set1(0x1.abc9e3b39803fp-49);
    vd b = vd_add(y_hi, sh_hi);
    vd bb = vd_sub(b, y_hi);
    vd b_lo = vd_add(vd_add(vd_sub(y_hi, vd_sub(b, bb)), vd_sub(sh_hi, bb)),
                     vd_add(y_lo, sh_lo));
    return vd_select(tiny, sm_vexp(tab, b, b_lo, 1), vd_set1(0.0));
}

/* the lanes whose term goes to the tiny sums: below 2^-1022, not -inf (the
 * padding of a short row, masked entries: their exp is 0 either way, and
 * counting them as tiny sent every padded row through a second exp) */
static inline vb
SM_FN(tiny_lanes)(vd y_hi)
{
    return vb_and(vd_lt(y_hi, vd_set1(-708.0)), vd_lt(vd_set1(-HUGE_VAL), y_hi));
}
#endif

/*
 * One vector of scores into one accumulator: e = exp((v - m) c) is returned
 * (for storing), exact maxima are counted in *cnt instead of summed. Row
 * and column kernels both go through here, so that an element meets the
 * same arithmetic in the same accumulator whatever the layout.
 */
static inline vd
SM_FN(term)(const sm_exp_table *tab, vd v, vd vm, int scaled, vd c_hi, vd c_lo,
            SM_FN(sums) *a, vd *cnt)
{
    const vd zero = vd_set1(0.0);
    vd d, y_hi, y_lo;
    SM_FN(shift)(v, vm, scaled, c_hi, c_lo, &d, &y_hi, &y_lo);
    const vd e = SM_EXP(tab, y_hi, y_lo);
    vb top = vd_eq(d, zero);
    *cnt = vd_add_masked(top, *cnt, vd_set1(1.0));
#if EXACT_DD
    vd t_e = vd_select(top, zero, e);
    vb tiny = SM_FN(tiny_lanes)(y_hi);
    if (vb_any(tiny)) {
        vd et = SM_FN(tiny_exp)(tab, tiny, y_hi, y_lo);
        vd tt = vd_add(a->ts, et);
        vd tz = vd_sub(tt, a->ts);
        a->tc = vd_add(a->tc, vd_add(vd_sub(a->ts, vd_sub(tt, tz)), vd_sub(et, tz)));
        a->ts = tt;
        t_e = vd_select(tiny, zero, t_e);
    }
    /* TwoSum: comp collects every rounding error of s */
    vd t = vd_add(a->s, t_e);
    vd z = vd_sub(t, a->s);
    a->comp = vd_add(a->comp, vd_add(vd_sub(a->s, vd_sub(t, z)), vd_sub(t_e, z)));
    a->s = t;
#else
    (void)tab;
    a->s = vd_add_masked(vb_not(top), a->s, e);
#endif
    return e;
}

static inline SM_FN(sums)
SM_FN(sums_load)(const double *hi, const double *lo, const double *tiny_hi, const double *tiny_lo)
{
    SM_FN(sums) a;
    a.s = vd_load(hi);
#if EXACT_DD
    a.comp = vd_load(lo);
    a.ts = vd_load(tiny_hi);
    a.tc = vd_load(tiny_lo);
#else
    /* narrower types sum plainly: comp and the tiny sums stay 0 */
    a.comp = vd_set1(0.0);
    (void)lo;
    (void)tiny_hi;
    (void)tiny_lo;
#endif
    return a;
}

static inline void
SM_FN(sums_store)(const SM_FN(sums) *a, double *hi, double *lo, double *tiny_hi, double *tiny_lo)
{
    vd_store(hi, a->s);
#if EXACT_DD
    vd_store(lo, a->comp);
    vd_store(tiny_hi, a->ts);
    vd_store(tiny_lo, a->tc);
#else
    (void)lo;
    (void)tiny_hi;
    (void)tiny_lo;
#endif
}

/* The loop of expsum for constant `scaled` and `store` (unswitched below). */
static inline void
SM_FN(expsum_loop)(double *v, ptrdiff_t npad, vd vm, vd c_hi, vd c_lo, const int scaled,
                   const int store, SM_FN(sums) *a, vd *cnt)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    for (ptrdiff_t j = 0; j < npad; j += SM_L) {
        /* the last round may hold fewer than SM_U vectors (npad is whole
         * vectors); vector u still goes to accumulator u */
        for (int u = 0; u < SM_U && j + u * SM_W < npad; u++) {
            double *p = v + j + u * SM_W;
            vd e = SM_FN(term)(&tab, vd_load(p), vm, scaled, c_hi, c_lo, &a[u], cnt);
            if (store) {
                vd_store(p, e);
            }
        }
    }
}

/* acc = the sums (overwritten, not added to: the caller need not clear its
 * 1 KB first, which for a row of a few entries cost as much as the entries) */
static void
SM_FN(expsum)(double *v, ptrdiff_t npad, double m, const sm_scale *sc, int store, sm_acc *acc)
{
    const vd vm = vd_set1(m), c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    vd cnt = vd_set1(0.0);
    SM_FN(sums) a[SM_U];
    for (int u = 0; u < SM_U; u++) {
        /* field by field: a memset of the array became a `rep stos`, whose
         * start-up alone was a sixth of a short row's expsum */
        a[u].s = a[u].comp = vd_set1(0.0);
#if EXACT_DD
        a[u].ts = a[u].tc = vd_set1(0.0);
#endif
    }
    /* four copies of the loop, each without a branch inside */
    if (sc->scaled) {
        if (store) {
            SM_FN(expsum_loop)(v, npad, vm, c_hi, c_lo, 1, 1, a, &cnt);
        }
        else {
            SM_FN(expsum_loop)(v, npad, vm, c_hi, c_lo, 1, 0, a, &cnt);
        }
    }
    else if (store) {
        SM_FN(expsum_loop)(v, npad, vm, c_hi, c_lo, 0, 1, a, &cnt);
    }
    else {
        SM_FN(expsum_loop)(v, npad, vm, c_hi, c_lo, 0, 0, a, &cnt);
    }
    double c[SM_W];
    vd_store(c, cnt);
    acc->count = 0.0;
    for (int l = 0; l < SM_W; l++) {
        acc->count += c[l];
    }
    for (int u = 0; u < SM_U; u++) {
        const ptrdiff_t o = u * SM_W;
        SM_FN(sums_store)(&a[u], acc->hi + o, acc->lo + o, acc->tiny_hi + o, acc->tiny_lo + o);
    }
}

/*
 * Runs the statement (which sets `vd p` from the vector at index j of the scratch)
 * over the row and stores p as IN_T: straight into a contiguous out, or
 * staged and scattered for a strided one. The tail vector reads the -inf
 * padding and stores only the row's own elements.
 */
#define SM_EMIT(...)                                                                \
    do {                                                                           \
        const ptrdiff_t n_ = row->n;                                               \
        const int contig_ = row->out_stride == (ptrdiff_t)sizeof(IN_T);            \
        IN_T buf_[SM_CHUNK];                                                       \
        for (ptrdiff_t j0_ = 0; j0_ < n_; j0_ += SM_CHUNK) {                       \
            const ptrdiff_t len_ = n_ - j0_ < SM_CHUNK ? n_ - j0_ : SM_CHUNK;      \
            IN_T *dst_ = contig_ ? (IN_T *)row->out + j0_ : buf_;                  \
            ptrdiff_t i_ = 0;                                                      \
            for (; i_ + SM_W <= len_; i_ += SM_W) {                                \
                const ptrdiff_t j = j0_ + i_;                                      \
                vd p;                                                              \
                __VA_ARGS__;                                                       \
                STOREV(dst_ + i_, p);                                              \
            }                                                                      \
            if (i_ < len_) {                                                       \
                const ptrdiff_t j = j0_ + i_;                                      \
                IN_T t_[SM_W];                                                     \
                vd p;                                                              \
                __VA_ARGS__;                                                       \
                STOREV(t_, p);                                                     \
                memcpy(dst_ + i_, t_, (size_t)(len_ - i_) * sizeof(IN_T));         \
            }                                                                      \
            if (!contig_) {                                                        \
                for (ptrdiff_t k_ = 0; k_ < len_; k_++) {                          \
                    *(IN_T *)(row->out + (j0_ + k_) * row->out_stride) = buf_[k_]; \
                }                                                                  \
            }                                                                      \
        }                                                                          \
    } while (0)

/* p = e (inv_hi + inv_lo) with one rounding for float64 (inv is 1/s to ~2^-104) */
static inline vd
SM_FN(prob)(vd e, vd inv_hi, vd inv_lo)
{
#if EXACT_DD
    return vd_fma(e, inv_hi, vd_mul(e, inv_lo));
#else
    (void)inv_lo;
    return vd_mul(e, inv_hi);
#endif
}

/* log p = y - l; -inf scores (and masked entries) stay -inf, never NaN from y_lo */
static inline vd
SM_FN(logp)(vd y_hi, vd y_lo, vd l_hi, vd l_lo)
{
#if EXACT_DD
    vd p = vd_add(vd_sub(y_hi, l_hi), vd_sub(y_lo, l_lo));
#else
    (void)y_lo;
    (void)l_lo;
    vd p = vd_sub(y_hi, l_hi);
#endif
    return vd_select(vd_lt(y_hi, vd_set1(-0x1.fffffffffffffp+1023)), vd_set1(-HUGE_VAL), p);
}

static void
SM_FN(write_p)(const double *src, int exp, double m, const sm_scale *sc, double inv_hi,
               double inv_lo, const sm_row *row)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    const vd vm = vd_set1(m), c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    /* a local: the stores below could alias *sc as far as the compiler knows */
    const int scaled = sc->scaled;
    const vd vi_hi = vd_set1(inv_hi), vi_lo = vd_set1(inv_lo);
    if (exp) {
        SM_EMIT({
            vd d_, yh_, yl_;
            SM_FN(shift)(vd_load(src + j), vm, scaled, c_hi, c_lo, &d_, &yh_, &yl_);
            p = SM_FN(prob)(SM_EXP(&tab, yh_, yl_), vi_hi, vi_lo);
        });
    }
    else {
        SM_EMIT({ p = SM_FN(prob)(vd_load(src + j), vi_hi, vi_lo); });
    }
}

static void
SM_FN(write_log)(const double *v, double m, const sm_scale *sc, double l_hi, double l_lo,
                 const sm_row *row)
{
    const vd vm = vd_set1(m), c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    const int scaled = sc->scaled;
    const vd vl_hi = vd_set1(l_hi), vl_lo = vd_set1(l_lo);
    if (sc->wide_gaps) {
        SM_EMIT({
            vd yh_, yl_;
            SM_FN(shift_wide)(vd_load(v + j), vm, scaled, c_hi, c_lo, &yh_, &yl_);
            p = SM_FN(logp)(yh_, yl_, vl_hi, vl_lo);
        });
        return;
    }
    SM_EMIT({
        vd d_, yh_, yl_;
        SM_FN(shift)(vd_load(v + j), vm, scaled, c_hi, c_lo, &d_, &yh_, &yl_);
        p = SM_FN(logp)(yh_, yl_, vl_hi, vl_lo);
    });
}

/*
 * Column kernels: a panel of c->blocks x SM_W neighbouring columns of a
 * C-ordered array reduced along a non-last axis, one column per vector
 * lane. Each pass sweeps the panel row after row, so x is read in runs of
 * adjacent elements where it lies (no transposed copy, no stride-n walk).
 * Element i of a column goes to accumulator i mod SM_L through term(), as
 * element i of a row does in the row kernels, and is written by the same
 * prob() / logp(): a column gives the same bits as the same values laid
 * out as a row. Per-column arrays (m, nan, inv, l) hold one double per
 * column; acc holds the sums as [array][accumulator][column] (see sm_cols).
 */
#define SM_COL_X(c, i, b) ((const IN_T *)((c)->x + (i) * (c)->x_step) + (b) * SM_W)
#define SM_COL_OUT(c, i, b) ((IN_T *)((c)->out + (i) * (c)->out_step) + (b) * SM_W)

/* Rows per strip: a block's accumulators stay in registers down a strip,
 * and the strip's lines of x (one per row) stay in L1 for the next block. */
#define SM_STRIP 128

/*
 * The hardware prefetchers follow runs of lines, not a panel's short runs
 * one row apart: ask for rows [i0, i1) of the panel (of x or of out) a
 * strip ahead, so that they are in cache when the strip is run.
 */
static inline void
SM_FN(prefetch_rows)(const char *base, ptrdiff_t step, ptrdiff_t bytes, ptrdiff_t i0,
                     ptrdiff_t i1, int write)
{
    for (ptrdiff_t i = i0; i < i1; i++) {
        const char *row = base + i * step;
        for (ptrdiff_t o = 0; o < bytes; o += 64) {
            if (write) {
                __builtin_prefetch(row + o, 1, 3);
            }
            else {
                __builtin_prefetch(row + o, 0, 3);
            }
        }
        if (bytes % 64 != 0 || ((uintptr_t)row & 63) != 0) {
            /* the run's last line, when it is not aligned */
            if (write) {
                __builtin_prefetch(row + bytes - 1, 1, 3);
            }
            else {
                __builtin_prefetch(row + bytes - 1, 0, 3);
            }
        }
    }
}

static void
SM_FN(cols_max)(const sm_cols *c, int negate, double *m, double *nan)
{
    const vd vsign = vd_set1(negate ? -1.0 : 1.0), one = vd_set1(1.0);
    const ptrdiff_t bytes = c->blocks * SM_W * (ptrdiff_t)sizeof(IN_T);
    SM_FN(prefetch_rows)(c->x, c->x_step, bytes, 0, c->n < SM_STRIP ? c->n : SM_STRIP, 0);
    for (ptrdiff_t i0 = 0; i0 < c->n; i0 += SM_STRIP) {
        const ptrdiff_t i1 = c->n - i0 < SM_STRIP ? c->n : i0 + SM_STRIP;
        const ptrdiff_t i2 = c->n - i1 < SM_STRIP ? c->n : i1 + SM_STRIP;
        SM_FN(prefetch_rows)(c->x, c->x_step, bytes, i1, i2, 0);
        for (ptrdiff_t b = 0; b < c->blocks; b++) {
            vd mx = i0 == 0 ? vd_set1(-HUGE_VAL) : vd_load(m + b * SM_W);
            vd bad = i0 == 0 ? vd_set1(0.0) : vd_load(nan + b * SM_W);
            for (ptrdiff_t i = i0; i < i1; i++) {
                vd a = vd_mul(LOADV(SM_COL_X(c, i, b)), vsign);
                bad = vd_select(vd_unord(a, a), one, bad);
                mx = vd_max(mx, a);
            }
            vd_store(m + b * SM_W, mx);
            vd_store(nan + b * SM_W, bad);
        }
    }
}

/* acc: planes written only where used: accumulators below min(n, SM_L), and
 * lo / tiny_hi / tiny_lo only for float64 (zero elsewhere) */
static void
SM_FN(cols_expsum)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                   double *acc)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    const vd vsign = vd_set1(negate ? -1.0 : 1.0);
    const vd c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    const int scaled = sc->scaled;
    const ptrdiff_t width = c->blocks * SM_W, plane = SM_L * width;
    double *count = acc + 4 * plane;
    /* a strip is a whole number of accumulator rounds (SM_STRIP % SM_L == 0) */
    for (ptrdiff_t i0 = 0; i0 < c->n; i0 += SM_STRIP) {
        const ptrdiff_t i1 = c->n - i0 < SM_STRIP ? c->n : i0 + SM_STRIP;
        const int kmax = i1 - i0 < SM_L ? (int)(i1 - i0) : SM_L;
        for (ptrdiff_t b = 0; b < c->blocks; b++) {
            const vd vm = vd_load(m + b * SM_W);
            SM_FN(sums) a[SM_L];
            vd cnt = i0 == 0 ? vd_set1(0.0) : vd_load(count + b * SM_W);
            for (int k = 0; k < SM_L; k++) {
                const ptrdiff_t o = k * width + b * SM_W;
                if (i0 == 0) {
                    memset(&a[k], 0, sizeof(a[k]));
                }
                else {
                    a[k] = SM_FN(sums_load)(acc + o, acc + plane + o, acc + 2 * plane + o,
                                            acc + 3 * plane + o);
                }
            }
            ptrdiff_t i = i0;
            for (; i + SM_L <= i1; i += SM_L) {
                for (int k = 0; k < SM_L; k++) {
                    vd v = vd_mul(LOADV(SM_COL_X(c, i + k, b)), vsign);
                    (void)SM_FN(term)(&tab, v, vm, scaled, c_hi, c_lo, &a[k], &cnt);
                }
            }
            for (int k = 0; i + k < i1; k++) {
                vd v = vd_mul(LOADV(SM_COL_X(c, i + k, b)), vsign);
                (void)SM_FN(term)(&tab, v, vm, scaled, c_hi, c_lo, &a[k], &cnt);
            }
            /* accumulators no element has reached stay unwritten (read as 0) */
            const int kstore = i0 == 0 ? kmax : SM_L;
            for (int k = 0; k < kstore; k++) {
                const ptrdiff_t o = k * width + b * SM_W;
                SM_FN(sums_store)(&a[k], acc + o, acc + plane + o, acc + 2 * plane + o,
                                  acc + 3 * plane + o);
            }
            vd_store(count + b * SM_W, cnt);
        }
    }
}

/* out = p (softmax: the exp recomputed, times the column's 1/s) or log p
 * (`log` and `wide` constant: three copies below, each without the branches;
 * wide: sm_scale.wide_gaps, log only). */
static inline void
SM_FN(cols_write)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                  const double *a_hi, const double *a_lo, const int log, const int wide)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    const vd vsign = vd_set1(negate ? -1.0 : 1.0);
    const vd c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    const int scaled = sc->scaled;
    const ptrdiff_t xb = c->blocks * SM_W * (ptrdiff_t)sizeof(IN_T);
    for (ptrdiff_t i = 0; i < c->n; i++) {
        if (i % SM_STRIP == 0) {
            /* the next strip: x back from L2 (or beyond), out's lines for writing */
            const ptrdiff_t i2 = c->n - i < 2 * SM_STRIP ? c->n : i + 2 * SM_STRIP;
            const ptrdiff_t i1 = i + SM_STRIP < i2 ? i + SM_STRIP : i2;
            SM_FN(prefetch_rows)(c->x, c->x_step, xb, i1, i2, 0);
            SM_FN(prefetch_rows)(c->out, c->out_step, xb, i1, i2, 1);
        }
        for (ptrdiff_t b = 0; b < c->blocks; b++) {
            vd d, y_hi, y_lo;
            const vd v = vd_mul(LOADV(SM_COL_X(c, i, b)), vsign), vm = vd_load(m + b * SM_W);
            if (wide) {
                SM_FN(shift_wide)(v, vm, scaled, c_hi, c_lo, &y_hi, &y_lo);
            }
            else {
                SM_FN(shift)(v, vm, scaled, c_hi, c_lo, &d, &y_hi, &y_lo);
            }
            const vd ah = vd_load(a_hi + b * SM_W), al = vd_load(a_lo + b * SM_W);
            vd p = log ? SM_FN(logp)(y_hi, y_lo, ah, al)
                       : SM_FN(prob)(SM_EXP(&tab, y_hi, y_lo), ah, al);
            STOREV(SM_COL_OUT(c, i, b), p);
        }
    }
}

static void
SM_FN(cols_write_p)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                    const double *inv_hi, const double *inv_lo)
{
    SM_FN(cols_write)(c, negate, m, sc, inv_hi, inv_lo, 0, 0);
}

static void
SM_FN(cols_write_log)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                      const double *l_hi, const double *l_lo)
{
    if (sc->wide_gaps) {
        SM_FN(cols_write)(c, negate, m, sc, l_hi, l_lo, 1, 1);
    }
    else {
        SM_FN(cols_write)(c, negate, m, sc, l_hi, l_lo, 1, 0);
    }
}

/*
 * Short groups, one group per vector lane: SM_W consecutive short groups
 * are staged side by side (entry j of lane l at t[j * SM_W + l], the lane's
 * max past a group's end), so that each step of a row (the shift, the exp, the sum,
 * the reciprocal, the write) runs once per SM_W groups instead of once per
 * group, and a group's sum is one accumulator of term() (the same exact
 * maxima, TwoSum and tiny-term treatment as a row's lanes). The results
 * meet the same accuracy bounds as the row path's, not its bits (a row's
 * sum is split over SM_L accumulators).
 */
#ifndef SM_VDD_DEFINED
#define SM_VDD_DEFINED
/* dd_add of the driver, lane by lane */
static inline void
sm_vdd_add(vd ah, vd al, vd bh, vd bl, vd *rh, vd *rl)
{
    const vd s = vd_add(ah, bh);
    const vd z = vd_sub(s, ah);
    vd e = vd_add(vd_sub(ah, vd_sub(s, z)), vd_sub(bh, z));
    e = vd_add(e, vd_add(al, bl));
    *rh = vd_add(s, e);
    *rl = vd_sub(e, vd_sub(*rh, s));
}
#endif

static ptrdiff_t
SM_FN(groups)(const char *x, char *out, const int64_t *off, ptrdiff_t g0, ptrdiff_t g1,
              int mode, int negate, const sm_scale *sc, double *lse, ptrdiff_t *todo)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    const vd c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo), zero = vd_set1(0.0);
    const int scaled = sc->scaled;
    const int wide_logs =
        mode == 1 && scaled && (sc->c_hi < 1.0 || (sc->c_hi == 1.0 && sc->c_lo < 0.0));
    const double sign = negate ? -1.0 : 1.0;
    /* an idle lane reads a group of one 0 and writes to a sink */
    const IN_T idle_in = 0;
    IN_T sink[SM_W];
    double t[SM_GSHORT * SM_W];
    IN_T ob[SM_GSHORT * SM_W];
    ptrdiff_t ntodo = 0;
    /* The window's short groups by length (a counting sort): the lanes of
     * a batch then have (nearly) the same length, where consecutive groups
     * of graph-like sizes left most lanes idle for most of the batch. */
    ptrdiff_t order[SM_GRUN];
    unsigned char glen[SM_GRUN];
    ptrdiff_t from[SM_GSHORT + 2] = {0};
    for (ptrdiff_t g = g0; g < g1; g++) {
        const ptrdiff_t n = (ptrdiff_t)(off[g + 1] - off[g]);
        if (n < 1 || n > SM_GSHORT) {
            todo[ntodo++] = g;
            glen[g - g0] = 0;
            continue;
        }
        glen[g - g0] = (unsigned char)n;
        from[n + 1]++;
        /* The batches visit the window by length, not by address: asked for
         * here, in address order, the lines arrive while the window is sorted. */
        __builtin_prefetch((const IN_T *)x + off[g]);
        __builtin_prefetch((const IN_T *)x + off[g + 1] - 1);
        if (mode != 2) {
            __builtin_prefetch((IN_T *)out + off[g], 1);
        }
    }
    for (int n = 1; n <= SM_GSHORT; n++) {
        from[n + 1] += from[n];
    }
    const ptrdiff_t nshort = from[SM_GSHORT + 1];
    for (ptrdiff_t g = g0; g < g1; g++) {
        if (glen[g - g0] != 0) {
            order[from[glen[g - g0]]++] = g;
        }
    }
    for (ptrdiff_t k = 0; k < nshort; k += SM_W) {
        ptrdiff_t gl[SM_W];
        const IN_T *src[SM_W];
        IN_T *dst[SM_W];
        int len[SM_W];
        const int nl = nshort - k < SM_W ? (int)(nshort - k) : SM_W;
        /* the longest is the last (sorted) */
        const int lmax = glen[order[k + nl - 1] - g0];
        for (int l = 0; l < nl; l++) {
            const ptrdiff_t g = order[k + l];
            gl[l] = g;
            src[l] = (const IN_T *)x + off[g];
            dst[l] = mode == 2 ? sink : (IN_T *)out + off[g];
            len[l] = glen[g - g0];
        }
        double lenf[SM_W], pads[SM_W];
        for (int l = 0; l < SM_W; l++) {
            if (l >= nl) {
                src[l] = &idle_in;
                dst[l] = sink;
                len[l] = 1;
            }
            lenf[l] = (double)len[l];
            pads[l] = (double)(lmax - len[l]);
        }
        /* Staged row by row, each lane's entry j or, past its end, its entry
         * 0 again (no branch on a group's length): the max and NaN scan see
         * only the group's own values. The scan follows the whole staging,
         * not each row's: a vector read right after its lanes' scalar
         * stores waits for them (no store forwarding). */
        for (int j = 0; j < lmax; j++) {
            for (int l = 0; l < SM_W; l++) {
                const IN_T *p = j < len[l] ? src[l] + j : src[l];
                t[j * SM_W + l] = sign * LOAD1((const char *)p);
            }
        }
        vd mx = vd_set1(-HUGE_VAL);
        vb nan = vd_lt(zero, zero);
        for (int j = 0; j < lmax; j++) {
            const vd a = vd_load(t + j * SM_W);
            nan = vb_or(nan, vd_unord(a, a));
            mx = vd_max(mx, a);
        }
        /* NaN, +inf or all -inf: the row path's special cases, run by the
         * driver; so are the log writes of a group whose gaps may overflow
         * while c (v - m) does not (c < 1 and a max >= 2^970: see the
         * driver's log_scale). Such a lane runs with a max of 0 and writes
         * nothing. */
        vb bad = vb_or(nan, vb_not(vb_and(vd_lt(vd_set1(-HUGE_VAL), mx),
                                         vd_lt(mx, vd_set1(HUGE_VAL)))));
        if (wide_logs) {
            bad = vb_or(bad, vd_lt(vd_set1(0x1p970), mx));
        }
        double badf[SM_W];
        vd_store(badf, vd_select(bad, vd_set1(1.0), zero));
        const vd vm = vd_select(bad, zero, mx);
        if (vb_any(bad)) {
            for (int l = 0; l < nl; l++) {
                if (badf[l] != 0.0) {
                    todo[ntodo++] = gl[l];
                    len[l] = 0;   /* nothing written: all to the sink */
                }
            }
        }
        /* Past its end a lane is its max (exact maxima: exp 1, counted,
         * not summed, and uncounted below), not -inf, which sent every
         * vector through the exp's subnormal branch. */
        const vd vlen = vd_load(lenf);
        SM_FN(sums) a;
        a.s = a.comp = zero;
#if EXACT_DD
        a.ts = a.tc = zero;
#endif
        vd cnt = zero;
        for (int j = 0; j < lmax; j++) {
            double *p = t + j * SM_W;
            const vd v = vd_select(vd_lt(vd_set1((double)j), vlen), vd_load(p), vm);
            const vd e = SM_FN(term)(&tab, v, vm, scaled, c_hi, c_lo, &a, &cnt);
            vd_store(p, mode == 0 ? e : v);
        }
        cnt = vd_sub(cnt, vd_load(pads));
        /* s_rest = (count - 1) + the sum of the non-maxima, as the driver's
         * acc_reduce and dd_add form it from one lane */
        vd hi, lo, r_hi, r_lo;
#if EXACT_DD
        const vd comp = vd_add(a.comp, vd_mul(vd_add(a.ts, a.tc), vd_set1(0x1p-128)));
        hi = vd_add(a.s, comp);
        lo = vd_sub(comp, vd_sub(hi, a.s));
#else
        hi = a.s;
        lo = zero;
#endif
        sm_vdd_add(vd_sub(cnt, vd_set1(1.0)), zero, hi, lo, &r_hi, &r_lo);
        if (mode == 0) {
            /* the driver's reciprocal: 1 / (1 + s_rest) as inv_hi + inv_lo */
            vd s_hi, s_lo;
            sm_vdd_add(vd_set1(1.0), zero, r_hi, r_lo, &s_hi, &s_lo);
            const vd inv_hi = vd_div(vd_set1(1.0), s_hi);
            const vd rho = vd_sub(vd_fma(vd_sub(zero, inv_hi), s_hi, vd_set1(1.0)),
                                  vd_mul(inv_hi, s_lo));
            const vd inv_lo = vd_mul(inv_hi, rho);
            for (int j = 0; j < lmax; j++) {
                STOREV(ob + j * SM_W, SM_FN(prob)(vd_load(t + j * SM_W), inv_hi, inv_lo));
            }
        }
        else {
            double rh[SM_W], rl[SM_W], lh[SM_W], ll[SM_W], m[SM_W];
            vd_store(rh, r_hi);
            vd_store(rl, r_lo);
            for (int l = 0; l < SM_W; l++) {
                /* the driver's log1p_dd */
                lh[l] = log1p(rh[l]);
                ll[l] = rl[l] / (1.0 + rh[l]);
            }
            if (mode == 2) {
                vd_store(m, vm);
                for (int l = 0; l < nl; l++) {
                    /* the driver's store_lse, before the conversion to IN_T */
                    lse[gl[l] - g0] = lse_of(m[l], lh[l], ll[l]);
                }
                continue;
            }
            const vd vl_hi = vd_load(lh), vl_lo = vd_load(ll);
            for (int j = 0; j < lmax; j++) {
                vd d, y_hi, y_lo;
                SM_FN(shift)(vd_load(t + j * SM_W), vm, scaled, c_hi, c_lo, &d, &y_hi, &y_lo);
                STOREV(ob + j * SM_W, SM_FN(logp)(y_hi, y_lo, vl_hi, vl_lo));
            }
        }
        /* row by row again, a lane's entries past its end to the sink */
        for (int j = 0; j < lmax; j++) {
            for (int l = 0; l < SM_W; l++) {
                IN_T *o = j < len[l] ? dst[l] + j : sink + l;
                *o = ob[j * SM_W + l];
            }
        }
    }
    return ntodo;
}

/*
 * Unsorted groups (scatter.c): a block of entries staged side by side, each
 * with its own group's max, so the arithmetic of term() and prob()/logp()
 * runs lane by lane on entries of different groups. npad is a multiple of
 * SM_W; padding lanes hold v = -inf and m = 0.
 *
 * gexp: e[j] = exp((v[j] - m[j]) c) for the non-maxima, 0 for an exact
 * maximum (counted by the caller) and, float64, for a term below 2^-1022,
 * which goes to tiny[j] scaled by 2^128 (tiny[j] = 0 elsewhere; unused for
 * the narrower types) -- the terms term() sums, one by one.
 */
static void
SM_FN(gexp)(const double *v, const double *m, ptrdiff_t npad, const sm_scale *sc, double *e,
            double *tiny)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    const vd c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo), zero = vd_set1(0.0);
    const int scaled = sc->scaled;
    for (ptrdiff_t j = 0; j < npad; j += SM_W) {
        vd d, y_hi, y_lo;
        SM_FN(shift)(vd_load(v + j), vd_load(m + j), scaled, c_hi, c_lo, &d, &y_hi, &y_lo);
        vd ex = vd_select(vd_eq(d, zero), zero, SM_EXP(&tab, y_hi, y_lo));
#if EXACT_DD
        const vb tiny_l = SM_FN(tiny_lanes)(y_hi);
        vd et = zero;
        if (vb_any(tiny_l)) {
            et = SM_FN(tiny_exp)(&tab, tiny_l, y_hi, y_lo);
            ex = vd_select(tiny_l, zero, ex);
        }
        vd_store(tiny + j, et);
#else
        (void)tiny;
#endif
        vd_store(e + j, ex);
    }
}

/*
 * gwrite: ob[j] (IN_T) = exp((v - m) c) (a_hi + a_lo), softmax, or
 * (v - m) c - (a_hi + a_lo), log = 1: a row's prob() and logp() with the
 * entry's own group's reciprocal or log-sum.
 */
static void
SM_FN(gwrite)(const double *v, const double *m, const double *a_hi, const double *a_lo,
              ptrdiff_t npad, const sm_scale *sc, int log, void *ob)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    const vd c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    const int scaled = sc->scaled;
    IN_T *o = ob;
    for (ptrdiff_t j = 0; j < npad; j += SM_W) {
        vd d, y_hi, y_lo;
        SM_FN(shift)(vd_load(v + j), vd_load(m + j), scaled, c_hi, c_lo, &d, &y_hi, &y_lo);
        const vd p = log ? SM_FN(logp)(y_hi, y_lo, vd_load(a_hi + j), vd_load(a_lo + j))
                         : SM_FN(prob)(SM_EXP(&tab, y_hi, y_lo), vd_load(a_hi + j),
                                       vd_load(a_lo + j));
        STOREV(o + j, p);
    }
}

#undef SM_COL_X
#undef SM_COL_OUT
#undef SM_STRIP
#undef SM_EXP
#undef SM_FN
#undef SM_CAT
#undef SM_CAT_
