/*
 * Row kernels in float32 lanes, for one SIMD target and one input type:
 * float16 rows in both accuracy modes, float32 rows in the fast mode.
 *
 * Included by kernels.c (after simd32.h) once per type, with:
 *   IN_T       the element type of x and out (uint16_t holds float16)
 *   SUFFIX     the name suffix of the generated functions (f16, f32)
 *   EXACT32    1: x - max carried as a float pair (TwoSum) and the scale c
 *              as a float pair, so that the argument of exp keeps ~2^-48
 *              relative accuracy (float32 outputs need it: an error e in
 *              the argument is an error e in p, and |x - max| reaches 104);
 *              0: plain float (float16 outputs need ~2^-13: |y| < 18 where
 *              a float16 p is not 0, so y's rounding costs < 2^-19)
 *   LOADF(p), STOREF(p, v)   SM_WF elements of IN_T <-> a vector of floats
 *   NEGINF_T, NEG1(v)        -inf as IN_T, and -v for one IN_T
 *
 * The steps are those of kernels.template.c (load / expsum / write), with
 * two differences that cut the bytes moved per element:
 *   - a contiguous, unmasked, unnegated row is read in place, three times
 *     (max, exps, writes) instead of being copied to a double scratch;
 *     other rows are staged once, as IN_T (masked entries -inf);
 *   - softmax keeps the exps as floats (in out itself for float32, in a
 *     scratch for float16) instead of doubles.
 * Sums: element j goes to float lane j mod SM_LF; each lane adds SM_BLOCK
 * terms in float (relative error <= 3 * 2^-24 of the block) and then
 * flushes into its double accumulator, so the row's sum has the accuracy of
 * a double sum of float exps, whatever n. For log_softmax and logsumexp,
 * exact maxima (x == max) are counted, not summed, as in the double kernels
 * (log1p keeps the tiny log-probabilities of a dominant entry), and terms
 * below e^-86 are summed apart, 2^64 higher, for float32 (see term32), and
 * left out for float16 (they add under 2^-124 to the sum, whose log_softmax
 * and logsumexp effects are far below float16's smallest subnormal).
 * Softmax needs neither: it sums every exp as it is written.
 * Contiguous, strided and masked rows differ only in where the values are
 * read from and written to: the same bits.
 */
#ifndef IN_T
#error "kernels32.template.c needs IN_T, SUFFIX, EXACT32, LOADF, STOREF, NEGINF_T, NEG1"
#endif

#define SM_CAT_(a, b) a##_##b
#define SM_CAT(a, b) SM_CAT_(a, b)
#define SM_FN(name) SM_CAT(name, SUFFIX)

#ifndef SM_UF
/* the unswitched loops below rely on their constant arguments: inline them
 * whatever the compiler's size heuristics say */
#define SM_ALWAYS_INLINE static inline __attribute__((always_inline))
#define SM_UF 2                    /* float accumulators per lane */
#define SM_LF (SM_WF * SM_UF)      /* float lanes of a row's sum */
#define SM_HALVES (SM_WF / SM_W)   /* double vectors per float vector */
#define SM_BLOCK 4                 /* rounds a float lane adds before flushing */
#endif

typedef struct {
    vf c_hi, c_lo;   /* c as a float pair (c_lo only with EXACT32) */
    vf m, neg_m;
    int scaled;
    /* the frame (sm_frame_k; float32 only): 0 none, 1 every lane, 2 the
     * lanes of in_frame (a column block whose maxima differ) */
    int frame;
    vbf in_frame;
    vfi kbias;         /* -K << 23: 2^-K by an integer add to the exponent */
    vf lo_cut, zero_cut;   /* m - 85 and m - 104 (see frame_exp32) */
    vf tiny_cut;           /* m - 129: log sums leave out what is below */
} SM_FN(ctx32);

/* the frame's cut-offs below the max (see frame_exp32 and term32) */
#ifndef SM_FRAME_LO
#define SM_FRAME_LO 85.0f     /* below: the lifted form */
#define SM_FRAME_ZERO 104.0f  /* below: 0 (softmax) */
#define SM_FRAME_TINY 129.0f  /* below: left out of the log sums */
#endif

/* the frame's per-lane constants for maxima m[0..SM_WF) */
static inline void
SM_FN(frame_set)(SM_FN(ctx32) *c, const double *m, const sm_scale *sc)
{
    int32_t kb[SM_WF];
    float lo[SM_WF], zc[SM_WF], tc[SM_WF], in[SM_WF];
    int nin = 0;
    for (int l = 0; l < SM_WF; l++) {
        int k = 0;
        const int ok = EXACT32 && sm_frame_k(m[l], sc, &k);
        nin += ok;
        kb[l] = (int32_t)((uint32_t)(-k) << 23);
        lo[l] = (float)m[l] - SM_FRAME_LO;
        zc[l] = (float)m[l] - SM_FRAME_ZERO;
        tc[l] = (float)m[l] - SM_FRAME_TINY;
        in[l] = ok ? 1.0f : 0.0f;
    }
    c->frame = nin == SM_WF ? 1 : (nin == 0 ? 0 : 2);
    c->in_frame = vf_eq(vf_load(in), vf_set1(1.0f));
    c->kbias = vfi_load(kb);
    c->lo_cut = vf_load(lo);
    c->zero_cut = vf_load(zc);
    c->tiny_cut = vf_load(tc);
}

static inline SM_FN(ctx32)
SM_FN(ctx32_make)(double m, const sm_scale *sc)
{
    SM_FN(ctx32) c;
    const float hi = (float)sc->c_hi;
    c.c_hi = vf_set1(hi);
    c.c_lo = vf_set1((float)((sc->c_hi - (double)hi) + sc->c_lo));
    /* m is a value of the row: exact as a float */
    c.m = vf_set1((float)m);
    c.neg_m = vf_set1(-(float)m);
    c.scaled = sc->scaled;
    /* frame_set for one m, broadcast (it runs once or twice a row) */
    int k = 0;
    c.frame = EXACT32 && sm_frame_k(m, sc, &k);
    c.in_frame = vf_eq(vf_set1(0.0f), vf_set1(c.frame ? 0.0f : 1.0f));
    c.kbias = vfi_set1((int32_t)((uint32_t)(-k) << 23));
    c.lo_cut = vf_set1((float)m - SM_FRAME_LO);
    c.zero_cut = vf_set1((float)m - SM_FRAME_ZERO);
    c.tiny_cut = vf_set1((float)m - SM_FRAME_TINY);
    return c;
}

/*
 * exp(v) 2^-K in every lane whose v - m >= -104 (0 below), for the frame:
 * k = round(v / ln 2) and r = v - k ln2 as sm_vexpf_parts forms them for
 * y (|k| < 512 keeps k L1 exact), and 2^(k-K) put into the exponent by an
 * integer add. v needs no shift by m, so no float pair: the error of
 * exp(v - m) computed as exp(fl(v - m)) (which the pair avoids) never
 * arises. Lanes below m - 85 may leave the normal range (k - K < -124):
 * formed 2^64 higher and rounded once by the multiply with 2^-64, as
 * sm_vexpf_fix does; below m - 104, where p < 2^-150 rounds to 0, 0.
 */
typedef struct {
    vf p;      /* exp(r) */
    vfi kb;    /* (k - K) << 23 */
} SM_FN(frame_parts);

SM_ALWAYS_INLINE SM_FN(frame_parts)
SM_FN(frame_parts_of)(vf v, const SM_FN(ctx32) *c)
{
    const sm_expf_parts ep = sm_vexpf_parts(v, v, 0);
    const SM_FN(frame_parts) f = {ep.p, vfi_add(vfi_shl23(ep.k), c->kbias)};
    return f;
}

/* p 2^(k-K): right where v >= m - SM_FRAME_LO */
SM_ALWAYS_INLINE vf
SM_FN(frame_normal)(SM_FN(frame_parts) f)
{
    return vfi_bits(vfi_add(vf_bits(f.p), f.kb));
}

/* p 2^(k-K+64): right (and exact) where v >= m - SM_FRAME_TINY */
SM_ALWAYS_INLINE vf
SM_FN(frame_lifted)(SM_FN(frame_parts) f)
{
    return vfi_bits(vfi_add(vf_bits(f.p), vfi_add(f.kb, vfi_set1(64 << 23))));
}

SM_ALWAYS_INLINE vf
SM_FN(frame_exp32)(vf v, const SM_FN(ctx32) *c)
{
    const SM_FN(frame_parts) f = SM_FN(frame_parts_of)(v, c);
    vf e = SM_FN(frame_normal)(f);
    const vbf tiny = vf_lt(v, c->lo_cut);
    if (vbf_any(tiny)) {
        e = vf_select(tiny, vf_mul(SM_FN(frame_lifted)(f), vf_set1(0x1p-64f)), e);
        e = vf_select(vf_lt(v, c->zero_cut), vf_set1(0.0f), e);
    }
    return e;
}

/* y = (v - m) c as y_hi + y_lo; d == 0 marks exact maxima */
SM_ALWAYS_INLINE void
SM_FN(shift32)(vf v, const SM_FN(ctx32) *c, const int scaled, vf *d, vf *y_hi, vf *y_lo)
{
    const vf dd = vf_sub(v, c->m);
    *d = dd;
#if EXACT32
    /* TwoSum: the rounding error of v - m */
    const vf bb = vf_sub(dd, v);
    const vf lo = vf_add(vf_sub(v, vf_sub(dd, bb)), vf_sub(c->neg_m, bb));
    if (scaled) {
        const vf p = vf_mul(dd, c->c_hi);
        *y_lo = vf_add(vf_fma(dd, c->c_hi, vf_sub(vf_set1(0.0f), p)),
                       vf_fma(dd, c->c_lo, vf_mul(lo, c->c_hi)));
        *y_hi = p;
    }
    else {
        *y_hi = dd;
        *y_lo = lo;
    }
#else
    *y_hi = scaled ? vf_mul(dd, c->c_hi) : dd;
    *y_lo = vf_set1(0.0f);
#endif
}

/* shift32 for a row with sm_scale.wide_gaps (float32 input: v - m overflows
 * float lanes above 2^103): as shift_wide in kernels.template.c, lane for lane */
SM_ALWAYS_INLINE void
SM_FN(shift32_wide)(vf v, const SM_FN(ctx32) *c, const int scaled, vf *y_hi, vf *y_lo)
{
    vf d;
    SM_FN(shift32)(v, c, scaled, &d, y_hi, y_lo);
    const vbf over = vf_eq(vf_sub(v, d), vf_set1(HUGE_VALF));
    if (vbf_any(over)) {
        const vf half = vf_set1(0.5f), two = vf_set1(2.0f);
        SM_FN(ctx32) hc = *c;
        hc.m = vf_mul(c->m, half);
        hc.neg_m = vf_mul(c->neg_m, half);
        vf d2, h_hi, h_lo;
        SM_FN(shift32)(vf_mul(v, half), &hc, scaled, &d2, &h_hi, &h_lo);
        *y_hi = vf_select(over, vf_mul(h_hi, two), *y_hi);
        *y_lo = vf_select(over, vf_mul(h_lo, two), *y_lo);
    }
}

static int
SM_FN(load32)(const sm_row *row, int negate, void *stage, const void **src, double *m_out)
{
    const ptrdiff_t n = row->n;
    const IN_T *x;
    if (row->mask == NULL && row->x_stride == (ptrdiff_t)sizeof(IN_T) && !negate) {
        x = (const IN_T *)row->x;
    }
    else {
        IN_T *s = (IN_T *)stage;
        for (ptrdiff_t j = 0; j < n; j++) {
            if (row->mask != NULL && !row->mask[j * row->mask_stride]) {
                s[j] = NEGINF_T;
            }
            else {
                IN_T a;
                memcpy(&a, row->x + j * row->x_stride, sizeof(IN_T));
                s[j] = negate ? NEG1(a) : a;
            }
        }
        x = s;
    }
    *src = x;
    if (m_out == NULL) {
        /* the write pass of a segment: the max is known, only src is needed */
        return SM_ROW_FINITE;
    }
    vf mx[SM_UF];
    vbf nan = vf_lt(vf_set1(0.0f), vf_set1(0.0f));
    for (int u = 0; u < SM_UF; u++) {
        mx[u] = vf_set1(-HUGE_VALF);
    }
    ptrdiff_t j = 0;
    for (; j + SM_LF <= n; j += SM_LF) {
        for (int u = 0; u < SM_UF; u++) {
            const vf a = LOADF(x + j + u * SM_WF);
            nan = vbf_or(nan, vf_unord(a, a));
            mx[u] = vf_max(mx[u], a);
        }
    }
    if (j < n) {
        IN_T t[SM_LF];
        for (int l = 0; l < SM_LF; l++) {
            t[l] = j + l < n ? x[j + l] : NEGINF_T;
        }
        /* only the vectors that hold entries (a short row: one, not SM_UF) */
        for (int u = 0; u < SM_UF && j + u * SM_WF < n; u++) {
            const vf a = LOADF(t + u * SM_WF);
            nan = vbf_or(nan, vf_unord(a, a));
            mx[u] = vf_max(mx[u], a);
        }
    }
    /* lanes past n saw only the -inf padding (or nothing): they change no
     * max. Four independent chains: a 16-long dependent one was a tenth of
     * a 512-entry row's time. (A NaN lane may win here: the row's kind
     * says NaN then, whatever m is.) */
    for (int u = 1; u < SM_UF; u++) {
        mx[0] = vf_max(mx[0], mx[u]);
    }
    float lanes[SM_WF];
    vf_store(lanes, mx[0]);
    float q[4] = {-HUGE_VALF, -HUGE_VALF, -HUGE_VALF, -HUGE_VALF};
    for (int l = 0; l < SM_WF; l++) {
        q[l % 4] = lanes[l] > q[l % 4] ? lanes[l] : q[l % 4];
    }
    const float q01 = q[0] > q[1] ? q[0] : q[1], q23 = q[2] > q[3] ? q[2] : q[3];
    const float m = q01 > q23 ? q01 : q23;
    *m_out = (double)m;
    if (vbf_any(nan)) {
        return SM_ROW_NAN;
    }
    if (m == HUGE_VALF) {
        return SM_ROW_POSINF;
    }
    if (!(m > -HUGE_VALF)) {
        return SM_ROW_EMPTY;
    }
    return SM_ROW_FINITE;
}

/*
 * One vector into one float partial sum: returns e = exp(y) (exact in every
 * lane when `store` or not `logs`, for writing).
 * logs (log_softmax, logsumexp): exact maxima are counted in *cnt, not
 * summed, and with EXACT32, terms in [e^-130, e^-86) go to *tpart scaled by
 * 2^64 (so that a sum of such terms is not rounded at the subnormal quantum:
 * log_softmax of a dominant entry and logsumexp near 0 are that sum), and
 * *tseen is set.
 * Not logs (softmax): every exp, the maxima's exact 1s included, goes to
 * *part as it will be written. p = e / s needs s only to its relative
 * accuracy, which the float blocks keep either way; the count and the tiny
 * terms (which move s by under 2^-124) would cost a quarter of the pass.
 */
SM_ALWAYS_INLINE vf
SM_FN(term32)(vf v, const SM_FN(ctx32) *c, const int scaled, const int store, const int logs,
              const int frame, vf *part, vf *tpart, int *tseen, vf *cnt)
{
    if (!logs && frame == 1) {
        const vf e = SM_FN(frame_exp32)(v, c);
        *part = vf_add(*part, e);
        return e;
    }
#if EXACT32
    /* the log sums in the frame: exp(v) 2^-K for the non-maxima (v != m,
     * exactly the lanes with d != 0 below), terms in [m - 129, m - 85)
     * apart and 2^64 higher as below; the driver converts the sums to e^m.
     * (A mixed column block takes each lane's part from its own scheme.) */
    vbf f_keep = vf_lt(vf_set1(0.0f), vf_set1(0.0f)), f_tiny = f_keep;
    vf f_e = vf_set1(0.0f), f_lifted = f_e;
    if (logs && frame != 0) {
        const vbf top = vf_eq(v, c->m);
        const SM_FN(frame_parts) f = SM_FN(frame_parts_of)(v, c);
        f_e = SM_FN(frame_normal)(f);
        f_keep = vf_ge_and(vbf_not(top), v, c->lo_cut);
        f_tiny = vf_ge_and(vf_lt(v, c->lo_cut), v, c->tiny_cut);
        if (vbf_any(f_tiny)) {
            f_lifted = SM_FN(frame_lifted)(f);
        }
        if (frame == 1) {
            *cnt = vf_add_masked(top, *cnt, vf_set1(1.0f));
            *part = vf_add_masked(f_keep, *part, f_e);
            if (vbf_any(f_tiny)) {
                *tpart = vf_add_masked(f_tiny, *tpart, f_lifted);
                *tseen = 1;
            }
            return f_e;   /* not stored: logs never keep their exps */
        }
        f_keep = vbf_and(f_keep, c->in_frame);
        f_tiny = vbf_and(f_tiny, c->in_frame);
    }
#endif
    vf d, y_hi, y_lo;
    SM_FN(shift32)(v, c, scaled, &d, &y_hi, &y_lo);
    const sm_expf_parts ep = sm_vexpf_parts(y_hi, y_lo, EXACT32);
    vf e = sm_vexpf_scale(ep);
    if (!logs) {
        e = sm_vexpf_fix(y_hi, ep, e);
        if (frame == 2) {
            e = vf_select(c->in_frame, SM_FN(frame_exp32)(v, c), e);
        }
        *part = vf_add(*part, e);
        return e;
    }
    const vbf top = vf_eq(d, vf_set1(0.0f));
    *cnt = vf_add_masked(top, *cnt, vf_set1(1.0f));
    /* not a maximum, and above e^-86 (which also drops -inf and NaN lanes) */
    vbf keep = vf_ge_and(vbf_not(top), y_hi, vf_set1(SM_EXPF_TINY));
#if EXACT32
    if (frame == 2) {
        keep = vbf_and(keep, vbf_not(c->in_frame));
        *part = vf_add_masked(f_keep, *part, f_e);
    }
#endif
    *part = vf_add_masked(keep, *part, e);
#if EXACT32
    /* only [e^-130, e^-86) is summed apart: the -inf padding of a short row
     * (and masked entries) must not send it through the flush every time */
    vbf tiny = vf_ge_and(vf_lt(y_hi, vf_set1(SM_EXPF_TINY)), y_hi, vf_set1(-130.0f));
    if (frame == 2) {
        tiny = vbf_and(tiny, vbf_not(c->in_frame));
        if (vbf_any(f_tiny)) {
            *tpart = vf_add_masked(f_tiny, *tpart, f_lifted);
            *tseen = 1;
        }
    }
    if (vbf_any(tiny)) {
        const vf lifted = sm_vexpf_lifted(ep);
        *tpart = vf_add_masked(tiny, *tpart, lifted);
        *tseen = 1;
    }
#else
    (void)tpart;
    (void)tseen;
#endif
    if (store) {
        e = sm_vexpf_fix(y_hi, ep, e);
    }
    return e;
}

SM_ALWAYS_INLINE void
SM_FN(flush32)(vf *part, vd *dacc)
{
    for (int u = 0; u < SM_UF; u++) {
        vd lo, hi;
        vf_widen(part[u], &lo, &hi);
        dacc[u * SM_HALVES] = vd_add(dacc[u * SM_HALVES], lo);
#if SM_WF != SM_W
        dacc[u * SM_HALVES + 1] = vd_add(dacc[u * SM_HALVES + 1], hi);
#else
        (void)hi;
#endif
        part[u] = vf_set1(0.0f);
    }
}

/* the tiny partials, scaled back by 2^-64 (exact in double) */
SM_ALWAYS_INLINE void
SM_FN(flush_tiny32)(vf *tpart, vd *dacc)
{
    const vd down = vd_set1(0x1p-64);
    for (int u = 0; u < SM_UF; u++) {
        vd lo, hi;
        vf_widen(tpart[u], &lo, &hi);
        dacc[u * SM_HALVES] = vd_add(dacc[u * SM_HALVES], vd_mul(lo, down));
#if SM_WF != SM_W
        dacc[u * SM_HALVES + 1] = vd_add(dacc[u * SM_HALVES + 1], vd_mul(hi, down));
#else
        (void)hi;
#endif
        tpart[u] = vf_set1(0.0f);
    }
}

/* The loop of expsum32 for constant `scaled`, `store` and `logs` (unswitched below). */
SM_ALWAYS_INLINE void
SM_FN(expsum32_loop)(const IN_T *x, ptrdiff_t n, const SM_FN(ctx32) *cp, const int scaled,
                     float *e_out, const int store, const int logs, const int frame, sm_acc *acc)
{
    /* a local copy: stores to e_out cannot alias it, so it stays in registers */
    const SM_FN(ctx32) ctx = *cp;
    const SM_FN(ctx32) *c = &ctx;
    vd dacc[SM_UF * SM_HALVES];
    vf part[SM_UF], tpart[SM_UF], cnt = vf_set1(0.0f);
    int tseen = 0;
    for (int u = 0; u < SM_UF; u++) {
        part[u] = vf_set1(0.0f);
        tpart[u] = vf_set1(0.0f);
        for (int h = 0; h < SM_HALVES; h++) {
            dacc[u * SM_HALVES + h] = vd_set1(0.0);
        }
    }
    ptrdiff_t j = 0;
    int round = 0;
    for (; j + SM_LF <= n; j += SM_LF) {
        for (int u = 0; u < SM_UF; u++) {
            const vf e = SM_FN(term32)(LOADF(x + j + u * SM_WF), c, scaled, store, logs, frame,
                                       &part[u], &tpart[u], &tseen, &cnt);
            if (store) {
                vf_store(e_out + j + u * SM_WF, e);
            }
        }
        if (++round == SM_BLOCK) {
            SM_FN(flush32)(part, dacc);
            if (tseen) {
                SM_FN(flush_tiny32)(tpart, dacc);
                tseen = 0;
            }
            round = 0;
        }
    }
    if (j < n) {
        /* the last round from a copy padded with -inf (whose exps are 0) */
        IN_T t[SM_LF];
        float et[SM_LF];
        for (int l = 0; l < SM_LF; l++) {
            t[l] = j + l < n ? x[j + l] : NEGINF_T;
        }
        /* vectors past n would add exact zeros to their partials: skipped */
        for (int u = 0; u < SM_UF && j + u * SM_WF < n; u++) {
            const vf e = SM_FN(term32)(LOADF(t + u * SM_WF), c, scaled, store, logs, frame,
                                       &part[u], &tpart[u], &tseen, &cnt);
            vf_store(et + u * SM_WF, e);
        }
        if (store) {
            memcpy(e_out + j, et, (size_t)(n - j) * sizeof(float));
        }
    }
    SM_FN(flush32)(part, dacc);
    if (tseen) {
        SM_FN(flush_tiny32)(tpart, dacc);
    }
    for (int u = 0; u < SM_UF; u++) {
        for (int h = 0; h < SM_HALVES; h++) {
            vd_store(acc->hi + u * SM_WF + h * SM_W, dacc[u * SM_HALVES + h]);
        }
    }
    acc->count = 0.0;
    if (logs) {
        float cl[SM_WF];
        vf_store(cl, cnt);
        for (int l = 0; l < SM_WF; l++) {
            acc->count += (double)cl[l];
        }
    }
}

/* acc->hi and acc->count = the sums of src[0..n) (see term32 for `logs`),
 * overwritten (the caller does not clear acc); e_out != NULL (softmax
 * only): also store the exps */
static void
SM_FN(expsum32)(const void *src, ptrdiff_t n, double m, const sm_scale *sc, int logs,
                float *e_out, sm_acc *acc)
{
    const IN_T *x = (const IN_T *)src;
    const SM_FN(ctx32) c = SM_FN(ctx32_make)(m, sc);
    /* a row's ctx has frame 0 or 1; only float32 builds the frame loops */
    const int frame = EXACT32 && c.frame;
    if (frame && e_out != NULL) {
        SM_FN(expsum32_loop)(x, n, &c, 0, e_out, 1, 0, EXACT32, acc);
    }
    else if (frame && logs) {
        SM_FN(expsum32_loop)(x, n, &c, 0, NULL, 0, 1, EXACT32, acc);
    }
    else if (frame) {
        SM_FN(expsum32_loop)(x, n, &c, 0, NULL, 0, 0, EXACT32, acc);
    }
    else if (e_out != NULL) {
        if (sc->scaled) {
            SM_FN(expsum32_loop)(x, n, &c, 1, e_out, 1, 0, 0, acc);
        }
        else {
            SM_FN(expsum32_loop)(x, n, &c, 0, e_out, 1, 0, 0, acc);
        }
    }
    else if (logs) {
        if (sc->scaled) {
            SM_FN(expsum32_loop)(x, n, &c, 1, NULL, 0, 1, 0, acc);
        }
        else {
            SM_FN(expsum32_loop)(x, n, &c, 0, NULL, 0, 1, 0, acc);
        }
    }
    else if (sc->scaled) {
        SM_FN(expsum32_loop)(x, n, &c, 1, NULL, 0, 0, 0, acc);
    }
    else {
        SM_FN(expsum32_loop)(x, n, &c, 0, NULL, 0, 0, 0, acc);
    }
}

/*
 * Runs the statement (which sets `vf p` from the vectors at xp, of IN_T,
 * and ep, of float) over the row and stores p as IN_T: straight into a
 * contiguous out, or staged and scattered for a strided one. The last
 * partial vector reads padded copies, so nothing past n is read.
 */
#define SM_EMIT32(xsrc, esrc, ...)                                                  \
    do {                                                                           \
        const ptrdiff_t n_ = row->n;                                               \
        const int contig_ = row->out_stride == (ptrdiff_t)sizeof(IN_T);            \
        const IN_T *xs_ = (xsrc);                                                  \
        const float *es_ = (esrc);                                                 \
        IN_T buf_[SM_CHUNK32];                                                     \
        for (ptrdiff_t j0_ = 0; j0_ < n_; j0_ += SM_CHUNK32) {                     \
            const ptrdiff_t len_ = n_ - j0_ < SM_CHUNK32 ? n_ - j0_ : SM_CHUNK32;  \
            IN_T *dst_ = contig_ ? (IN_T *)row->out + j0_ : buf_;                  \
            ptrdiff_t i_ = 0;                                                      \
            for (; i_ + SM_WF <= len_; i_ += SM_WF) {                              \
                const IN_T *xp = xs_ == NULL ? NULL : xs_ + j0_ + i_;              \
                const float *ep = es_ == NULL ? NULL : es_ + j0_ + i_;             \
                vf p;                                                              \
                (void)xp;                                                          \
                (void)ep;                                                          \
                __VA_ARGS__;                                                       \
                STOREF(dst_ + i_, p);                                              \
            }                                                                      \
            if (i_ < len_) {                                                       \
                IN_T tx_[SM_WF], to_[SM_WF];                                       \
                float te_[SM_WF];                                                  \
                for (int l_ = 0; l_ < SM_WF; l_++) {                               \
                    const int in_ = i_ + l_ < len_;                                \
                    tx_[l_] = xs_ != NULL && in_ ? xs_[j0_ + i_ + l_] : NEGINF_T;  \
                    te_[l_] = es_ != NULL && in_ ? es_[j0_ + i_ + l_] : 0.0f;      \
                }                                                                  \
                const IN_T *xp = tx_;                                              \
                const float *ep = te_;                                             \
                vf p;                                                              \
                (void)xp;                                                          \
                (void)ep;                                                          \
                __VA_ARGS__;                                                       \
                STOREF(to_, p);                                                    \
                memcpy(dst_ + i_, to_, (size_t)(len_ - i_) * sizeof(IN_T));        \
            }                                                                      \
            if (!contig_) {                                                        \
                for (ptrdiff_t k_ = 0; k_ < len_; k_++) {                          \
                    memcpy(row->out + (j0_ + k_) * row->out_stride, &buf_[k_],     \
                           sizeof(IN_T));                                          \
                }                                                                  \
            }                                                                      \
        }                                                                          \
    } while (0)

#ifndef SM_CHUNK32
#define SM_CHUNK32 256
#endif

/* out = e / s: from the stored exps e, or (e == NULL) recomputed from src */
static void
SM_FN(write_p32)(const void *src, const float *e, double m, const sm_scale *sc, double inv,
                 const sm_row *row)
{
    const vf vinv = vf_set1((float)inv);
    if (e != NULL) {
        SM_EMIT32(NULL, e, { p = vf_mul(vf_load(ep), vinv); });
        return;
    }
    const SM_FN(ctx32) c = SM_FN(ctx32_make)(m, sc);
    const int scaled = c.scaled;
    if (EXACT32 && c.frame) {
        SM_EMIT32((const IN_T *)src, NULL,
                  { p = vf_mul(SM_FN(frame_exp32)(LOADF(xp), &c), vinv); });
        return;
    }
    SM_EMIT32((const IN_T *)src, NULL, {
        vf d_, yh_, yl_;
        SM_FN(shift32)(LOADF(xp), &c, scaled, &d_, &yh_, &yl_);
        const sm_expf_parts ep_ = sm_vexpf_parts(yh_, yl_, EXACT32);
        p = vf_mul(sm_vexpf_fix(yh_, ep_, sm_vexpf_scale(ep_)), vinv);
    });
}

/* log p = y - l of one vector (l = l_hi + l_lo as floats); -inf scores stay -inf */
SM_ALWAYS_INLINE vf
SM_FN(logp32)(vf v, const SM_FN(ctx32) *c, const int scaled, const int wide, vf l_hi, vf l_lo)
{
    vf d, y_hi, y_lo;
#if EXACT32
    if (!wide) {
        /* float32 (the fast mode's lanes): y = v - m needs no low part here.
         * y <= 0 and l >= 0, so |log p| >= |y| and >= l: y rounded once (or
         * twice with c, whose c_lo is kept), l rounded, and y - l rounded
         * each cost at most half an ulp of the result, 2 ulp in all against
         * the mode's bound of 4; the TwoSum cost the pass half its time. */
        const vf dd = vf_sub(v, c->m);
        const vf p = scaled ? vf_mul(dd, c->c_hi) : dd;
        const vf y = scaled ? vf_fma(dd, c->c_lo, p) : p;
        const vf q = vf_sub(vf_sub(y, l_hi), l_lo);
        return vf_select(vf_lt(p, vf_set1(-0x1.fffffep+127f)), vf_set1(-HUGE_VALF), q);
    }
#endif
    if (wide) {
        SM_FN(shift32_wide)(v, c, scaled, &y_hi, &y_lo);
    }
    else {
        SM_FN(shift32)(v, c, scaled, &d, &y_hi, &y_lo);
    }
#if EXACT32
    const vf q = vf_add(vf_sub(y_hi, l_hi), vf_sub(y_lo, l_lo));
#else
    (void)y_lo;
    (void)l_lo;
    const vf q = vf_sub(y_hi, l_hi);
#endif
    return vf_select(vf_lt(y_hi, vf_set1(-0x1.fffffep+127f)), vf_set1(-HUGE_VALF), q);
}

/* out = y - l, l = log(sum) as l_hi + l_lo (sm_scale.wide_gaps: a second copy
 * of the loop) */
static void
SM_FN(write_log32)(const void *src, double m, const sm_scale *sc, double l_hi, double l_lo,
                   const sm_row *row)
{
    const SM_FN(ctx32) c = SM_FN(ctx32_make)(m, sc);
    const int scaled = c.scaled;
    const float lf = (float)l_hi;
    const vf vl = vf_set1(lf);
    const vf vl_lo = vf_set1((float)((l_hi - (double)lf) + l_lo));
    if (sc->wide_gaps) {
        SM_EMIT32((const IN_T *)src, NULL,
                  { p = SM_FN(logp32)(LOADF(xp), &c, scaled, 1, vl, vl_lo); });
        return;
    }
    SM_EMIT32((const IN_T *)src, NULL,
              { p = SM_FN(logp32)(LOADF(xp), &c, scaled, 0, vl, vl_lo); });
}


/*
 * Column kernels in float32 lanes: a panel of c->blocks x SM_WF neighbouring
 * columns of a C-ordered array reduced along a non-last axis, one column
 * per float lane (sm_cols; its blocks are SM_WF columns wide here). Element
 * i of a column meets the arithmetic element i of a row meets above: the
 * same shift32 and exp, float partial i mod SM_LF, flushed to double after
 * every SM_BLOCK rounds (a strip of SM_LF * SM_BLOCK rows here), and the
 * same products: a column gives the bits of the same values laid out as a
 * row. Per-column arrays (m, nan, inv, l) hold one double per column; acc
 * holds the double accumulators as [accumulator][column], then the counts.
 */
#define SM_COLX32(c, i, b) ((const IN_T *)((c)->x + (i) * (c)->x_step) + (b) * SM_WF)
#define SM_COLOUT32(c, i, b) ((IN_T *)((c)->out + (i) * (c)->out_step) + (b) * SM_WF)

SM_ALWAYS_INLINE vf
SM_FN(col_load32)(const sm_cols *c, ptrdiff_t i, ptrdiff_t b, int negate)
{
    vf a = LOADF(SM_COLX32(c, i, b));
    /* -a flips the sign bit alone, as NEG1 does for a staged row */
    return negate ? vf_sub(vf_set1(-0.0f), a) : a;
}

/* per-lane m (and -m) of block b, for shift32 */
static inline SM_FN(ctx32)
SM_FN(col_ctx32)(const double *m, ptrdiff_t b, const sm_scale *sc)
{
    SM_FN(ctx32) ctx = SM_FN(ctx32_make)(0.0, sc);
    float mf[SM_WF], nf[SM_WF];
    for (int l = 0; l < SM_WF; l++) {
        mf[l] = (float)m[b * SM_WF + l];
        nf[l] = -mf[l];
    }
    ctx.m = vf_load(mf);
    ctx.neg_m = vf_load(nf);
    SM_FN(frame_set)(&ctx, m + b * SM_WF, sc);
    return ctx;
}

static void
SM_FN(cols_max32)(const sm_cols *c, int negate, double *m, double *nan)
{
    for (ptrdiff_t b = 0; b < c->blocks; b++) {
        vf mx = vf_set1(-HUGE_VALF);
        vbf bad = vf_lt(vf_set1(0.0f), vf_set1(0.0f));
        for (ptrdiff_t i = 0; i < c->n; i++) {
            const vf a = SM_FN(col_load32)(c, i, b, negate);
            bad = vbf_or(bad, vf_unord(a, a));
            mx = vf_max(mx, a);
        }
        float mf[SM_WF], bf[SM_WF];
        vf_store(mf, mx);
        vf_store(bf, vf_select(bad, vf_set1(1.0f), vf_set1(0.0f)));
        for (int l = 0; l < SM_WF; l++) {
            m[b * SM_WF + l] = (double)mf[l];
            nan[b * SM_WF + l] = (double)bf[l];
        }
    }
}

/* cols_expsum32 for a constant `logs` (see term32) */
SM_ALWAYS_INLINE void
SM_FN(cols_expsum32_for)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                         const int logs, double *acc)
{
    const ptrdiff_t width = c->blocks * SM_WF;
    const ptrdiff_t strip = (ptrdiff_t)SM_LF * SM_BLOCK;
    double *count = acc + (ptrdiff_t)SM_LF * width;
    const int scaled = sc->scaled;
    memset(acc, 0, (size_t)(SM_LF + 1) * (size_t)width * sizeof(double));
    for (ptrdiff_t b = 0; b < c->blocks; b++) {
        const SM_FN(ctx32) ctx = SM_FN(col_ctx32)(m, b, sc);
        vf cnt = vf_set1(0.0f);
        for (ptrdiff_t i0 = 0; i0 < c->n; i0 += strip) {
            const ptrdiff_t i1 = c->n - i0 < strip ? c->n : i0 + strip;
            vf part[SM_LF], tpart[SM_LF];
            int tseen = 0;
            for (int k = 0; k < SM_LF; k++) {
                part[k] = vf_set1(0.0f);
                tpart[k] = vf_set1(0.0f);
            }
            for (ptrdiff_t i = i0; i < i1; i++) {
                const int k = (int)(i % SM_LF);
                (void)SM_FN(term32)(SM_FN(col_load32)(c, i, b, negate), &ctx, scaled, 0, logs,
                                    ctx.frame, &part[k], &tpart[k], &tseen, &cnt);
            }
            /* the flush of flush32 / flush_tiny32, accumulator by accumulator */
            for (int k = 0; k < SM_LF; k++) {
                double *d = acc + k * width + b * SM_WF;
                for (int h = 0; h < SM_HALVES; h++) {
                    vd lo, hi;
                    vf_widen(part[k], &lo, &hi);
                    vd w = h == 0 ? lo : hi;
                    vd s = vd_add(vd_load(d + h * SM_W), w);
                    if (tseen) {
                        vf_widen(tpart[k], &lo, &hi);
                        s = vd_add(s, vd_mul(h == 0 ? lo : hi, vd_set1(0x1p-64)));
                    }
                    vd_store(d + h * SM_W, s);
                }
            }
        }
        float cf[SM_WF];
        vf_store(cf, cnt);
        for (int l = 0; l < SM_WF; l++) {
            count[b * SM_WF + l] = (double)cf[l];
        }
    }
}

static void
SM_FN(cols_expsum32)(const sm_cols *c, int negate, const double *m, const sm_scale *sc, int logs,
                     double *acc)
{
    if (logs) {
        SM_FN(cols_expsum32_for)(c, negate, m, sc, 1, acc);
    }
    else {
        SM_FN(cols_expsum32_for)(c, negate, m, sc, 0, acc);
    }
}

/* out = p or log p of every element, as write_p32 / write_log32 form them
 * (wide: sm_scale.wide_gaps, log only) */
static void
SM_FN(cols_write32)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                    const double *a_hi, const double *a_lo, const int log)
{
    const int wide = log && sc->wide_gaps;
    const int scaled = sc->scaled;
    for (ptrdiff_t b = 0; b < c->blocks; b++) {
        const SM_FN(ctx32) ctx = SM_FN(col_ctx32)(m, b, sc);
        float f1[SM_WF], f2[SM_WF];
        for (int l = 0; l < SM_WF; l++) {
            const double h = a_hi[b * SM_WF + l];
            f1[l] = (float)h;
            f2[l] = (float)((h - (double)f1[l]) + a_lo[b * SM_WF + l]);
        }
        const vf v1 = vf_load(f1), v2 = vf_load(f2);
        for (ptrdiff_t i = 0; i < c->n; i++) {
            const vf v = SM_FN(col_load32)(c, i, b, negate);
            vf p;
            if (log) {
                p = wide ? SM_FN(logp32)(v, &ctx, scaled, 1, v1, v2)
                         : SM_FN(logp32)(v, &ctx, scaled, 0, v1, v2);
            }
            else if (ctx.frame == 1) {
                p = vf_mul(SM_FN(frame_exp32)(v, &ctx), v1);
            }
            else {
                vf d, y_hi, y_lo;
                SM_FN(shift32)(v, &ctx, scaled, &d, &y_hi, &y_lo);
                const sm_expf_parts ep = sm_vexpf_parts(y_hi, y_lo, EXACT32);
                vf e = sm_vexpf_fix(y_hi, ep, sm_vexpf_scale(ep));
                if (ctx.frame == 2) {
                    e = vf_select(ctx.in_frame, SM_FN(frame_exp32)(v, &ctx), e);
                }
                p = vf_mul(e, v1);
            }
            STOREF(SM_COLOUT32(c, i, b), p);
        }
    }
}

static void
SM_FN(cols_write_p32)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                      const double *inv_hi, const double *inv_lo)
{
    SM_FN(cols_write32)(c, negate, m, sc, inv_hi, inv_lo, 0);
}

static void
SM_FN(cols_write_log32)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                        const double *l_hi, const double *l_lo)
{
    SM_FN(cols_write32)(c, negate, m, sc, l_hi, l_lo, 1);
}

#undef SM_COLX32
#undef SM_COLOUT32

#undef SM_FN
#undef SM_CAT
#undef SM_CAT_
