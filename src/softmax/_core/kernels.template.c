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
#define SM_EXP(y_hi, y_lo) sm_vexp(&tab, (y_hi), (y_lo), 1)
#else
#define SM_EXP(y_hi, y_lo) ((void)(y_lo), sm_vexp_lite(&tab, (y_hi)))
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

static int
SM_FN(load)(const sm_row *row, int negate, double *v, double *m_out)
{
    const ptrdiff_t n = row->n;
    const ptrdiff_t npad = (n + SM_L - 1) / SM_L * SM_L;
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
    for (; j < n; j++) {
        if (row->mask != NULL && !row->mask[j * row->mask_stride]) {
            v[j] = -HUGE_VAL;
        }
        else {
            v[j] = sign * LOAD1(row->x + j * row->x_stride);
        }
    }
    for (; j < npad; j++) {
        v[j] = -HUGE_VAL;
    }
    for (j = scanned; j < npad; j += SM_L) {
        for (int u = 0; u < SM_U; u++) {
            vd a = vd_load(v + j + u * SM_W);
            nan = vb_or(nan, vd_unord(a, a));
            mx[u] = vd_max(mx[u], a);
        }
    }
    double lanes[SM_L];
    for (int u = 0; u < SM_U; u++) {
        vd_store(lanes + u * SM_W, mx[u]);
    }
    double m = -HUGE_VAL;
    for (int l = 0; l < SM_L; l++) {
        m = lanes[l] > m ? lanes[l] : m;
    }
    *m_out = m;
    if (vb_any(nan)) {
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

static void
SM_FN(expsum)(double *v, ptrdiff_t npad, double m, const sm_scale *sc, int store, sm_acc *acc)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    const vd vm = vd_set1(m), c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    /* a local: the stores below could alias *sc as far as the compiler knows */
    const int scaled = sc->scaled;
    const vd zero = vd_set1(0.0), one = vd_set1(1.0);
    vd s[SM_U], comp[SM_U], cnt = zero;
#if EXACT_DD
    vd ts[SM_U], tc[SM_U];
    const vd tiny_y = vd_set1(-708.0);
    const vd sh_hi = vd_set1(0x1.62e42fefa39efp+6), sh_lo = vd_set1(0x1.abc9e3b39803fp-49);
#endif
    for (int u = 0; u < SM_U; u++) {
        s[u] = vd_load(acc->hi + u * SM_W);
        comp[u] = vd_load(acc->lo + u * SM_W);
#if EXACT_DD
        ts[u] = vd_load(acc->tiny_hi + u * SM_W);
        tc[u] = vd_load(acc->tiny_lo + u * SM_W);
#endif
    }
    for (ptrdiff_t j = 0; j < npad; j += SM_L) {
        for (int u = 0; u < SM_U; u++) {
            vd d, y_hi, y_lo;
            SM_FN(shift)(vd_load(v + j + u * SM_W), vm, scaled, c_hi, c_lo, &d, &y_hi, &y_lo);
            vd e = SM_EXP(y_hi, y_lo);
            if (store) {
                vd_store(v + j + u * SM_W, e);
            }
            vb top = vd_eq(d, zero);
            cnt = vd_add_masked(top, cnt, one);
#if EXACT_DD
            e = vd_select(top, zero, e);
            vb tiny = vd_lt(y_hi, tiny_y);
            if (vb_any(tiny)) {
                /* Subnormal terms would each be rounded to the fixed quantum
                 * 2^-1074, and those errors add up when the rest sum is
                 * itself tiny (log_softmax of a dominant entry, logsumexp
                 * near 0). Sum them as exp(y + 128 ln2) instead, scaled
                 * back once in the driver. */
                vd a = vd_add(y_hi, sh_hi);
                vd bb = vd_sub(a, y_hi);
                vd a_lo = vd_add(vd_add(vd_sub(y_hi, vd_sub(a, bb)), vd_sub(sh_hi, bb)),
                                 vd_add(y_lo, sh_lo));
                vd et = vd_select(tiny, sm_vexp(&tab, a, a_lo, 1), zero);
                vd tt = vd_add(ts[u], et);
                vd tz = vd_sub(tt, ts[u]);
                tc[u] = vd_add(tc[u], vd_add(vd_sub(ts[u], vd_sub(tt, tz)), vd_sub(et, tz)));
                ts[u] = tt;
                e = vd_select(tiny, zero, e);
            }
            /* TwoSum: comp collects every rounding error of s */
            vd t = vd_add(s[u], e);
            vd z = vd_sub(t, s[u]);
            comp[u] = vd_add(comp[u], vd_add(vd_sub(s[u], vd_sub(t, z)), vd_sub(e, z)));
            s[u] = t;
#else
            s[u] = vd_add_masked(vb_not(top), s[u], e);
#endif
        }
    }
    double c[SM_W];
    vd_store(c, cnt);
    for (int l = 0; l < SM_W; l++) {
        acc->count += c[l];
    }
    for (int u = 0; u < SM_U; u++) {
        vd_store(acc->hi + u * SM_W, s[u]);
        vd_store(acc->lo + u * SM_W, comp[u]);
#if EXACT_DD
        vd_store(acc->tiny_hi + u * SM_W, ts[u]);
        vd_store(acc->tiny_lo + u * SM_W, tc[u]);
#endif
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

static void
SM_FN(write_p)(const double *src, int exp, double m, const sm_scale *sc, double inv_hi,
               double inv_lo, const sm_row *row)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    const vd vm = vd_set1(m), c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    /* a local: the stores below could alias *sc as far as the compiler knows */
    const int scaled = sc->scaled;
    const vd vi_hi = vd_set1(inv_hi), vi_lo = vd_set1(inv_lo);
    (void)vi_lo;
#if EXACT_DD
    /* p = e (inv_hi + inv_lo) with one rounding: inv is 1/s to ~2^-104 */
#define SM_P(e) vd_fma((e), vi_hi, vd_mul((e), vi_lo))
#else
#define SM_P(e) vd_mul((e), vi_hi)
#endif
    if (exp) {
        SM_EMIT({
            vd d_, yh_, yl_;
            SM_FN(shift)(vd_load(src + j), vm, scaled, c_hi, c_lo, &d_, &yh_, &yl_);
            vd e_ = SM_EXP(yh_, yl_);
            p = SM_P(e_);
        });
    }
    else {
        SM_EMIT({ p = SM_P(vd_load(src + j)); });
    }
#undef SM_P
}

static void
SM_FN(write_log)(const double *v, double m, const sm_scale *sc, double l_hi, double l_lo,
                 const sm_row *row)
{
    const vd vm = vd_set1(m), c_hi = vd_set1(sc->c_hi), c_lo = vd_set1(sc->c_lo);
    /* a local: the stores below could alias *sc as far as the compiler knows */
    const int scaled = sc->scaled;
    const vd vl_hi = vd_set1(l_hi), vl_lo = vd_set1(l_lo);
    const vd ninf = vd_set1(-HUGE_VAL), lowest = vd_set1(-0x1.fffffffffffffp+1023);
    (void)vl_lo;
    SM_EMIT({
        vd d_, yh_, yl_;
        SM_FN(shift)(vd_load(v + j), vm, scaled, c_hi, c_lo, &d_, &yh_, &yl_);
#if EXACT_DD
        p = vd_add(vd_sub(yh_, vl_hi), vd_sub(yl_, vl_lo));
#else
        p = vd_sub(yh_, vl_hi);
#endif
        /* -inf scores (and masked entries) stay -inf, never NaN from y_lo */
        p = vd_select(vd_lt(yh_, lowest), ninf, p);
    });
}

#undef SM_EXP
#undef SM_FN
#undef SM_CAT
#undef SM_CAT_
