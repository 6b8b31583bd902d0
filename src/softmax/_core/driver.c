/*
 * Plans and runs a call on the kernels of the chosen target: rows split
 * over threads, long rows in segments merged with the (max, sum) rule, the
 * rare non-finite rows, and the per-row scalar arithmetic (lane reduction,
 * log1p, the reciprocal). Plain C; no Python API.
 *
 * Results do not depend on the thread count: a row is always done by one
 * thread in one fixed order, and a long row's segments are fixed (SM_SEG
 * elements, whatever the threads) and merged in segment order.
 */
#include <math.h>
#include <string.h>

#include "driver.h"
#include "scalar.h"
#include "threads.h"

/*
 * exp(h + l) for h <= 0 as a double-double, relative error ~2^-80: used
 * only to rescale segment sums, where every rescale must cost far less
 * than an ulp. exp(x) = 2^k (1 + q)^(2^8) with r = (x - k ln2) / 2^8 and
 * q = expm1(r), squared as q <- 2q + q^2 to keep the small part exact.
 */
static void
dd_exp(double h, double l, double *rh, double *rl)
{
    static const double ln2_1 = 0x1.62e42fefa39efp-1, ln2_2 = 0x1.abc9e3b39803fp-56,
                        ln2_3 = 0x1.7b57a079a1934p-111;
    if (h < -746.0) {
        *rh = 0.0;
        *rl = 0.0;
        return;
    }
    double k = nearbyint(h / ln2_1);
    double a_h, a_l, p_h, p_l;
    dd_mul(k, 0.0, ln2_1, ln2_2, &p_h, &p_l);
    p_l += k * ln2_3;
    dd_add(h, l, -p_h, -p_l, &a_h, &a_l);
    a_h = ldexp(a_h, -8);
    a_l = ldexp(a_l, -8);
    /* q = r + r^2/2 + r^3 (1/6 + r/24 + r^2/120 + r^3/720), |r| < 2^-9 */
    double q_h, q_l, s_h, s_l;
    dd_mul(a_h, a_l, a_h, a_l, &s_h, &s_l);
    dd_add(a_h, a_l, 0.5 * s_h, 0.5 * s_l, &q_h, &q_l);
    double r3 = s_h * a_h;
    double tail = r3 * (1.0 / 6 + a_h * (1.0 / 24 + a_h * (1.0 / 120 + a_h * (1.0 / 720))));
    dd_add(q_h, q_l, tail, 0.0, &q_h, &q_l);
    for (int i = 0; i < 8; i++) {
        double sq_h, sq_l;
        dd_mul(q_h, q_l, q_h, q_l, &sq_h, &sq_l);
        dd_add(2.0 * q_h, 2.0 * q_l, sq_h, sq_l, &q_h, &q_l);
    }
    double e_h, e_l;
    dd_add(1.0, 0.0, q_h, q_l, &e_h, &e_l);
    *rh = ldexp(e_h, (int)k);
    *rl = ldexp(e_l, (int)k);
}

/* ---- per-row arithmetic --------------------------------------------------- */

static ptrdiff_t
pad32(ptrdiff_t n)
{
    return (n + SM_MAX_LANES - 1) / SM_MAX_LANES * SM_MAX_LANES;
}

/* n padded to whole vectors, as load pads the scratch */
static ptrdiff_t
pad_width(const sm_job *job, ptrdiff_t n)
{
    const ptrdiff_t w = job->tg->width;
    return (n + w - 1) / w * w;
}

/*
 * Rows run by the float32-lane kernels (kernels32): float16 in both modes
 * and, in the fast mode, float32 too. float32 lanes keep float16's 1-ulp
 * bound: the sum of the non-maxima s comes within ~2^-22 of itself, so
 * logsumexp's log1p(s) is off by at most 2^-22 log1p(s), which against a
 * float16 result (ulp 2^-11 of it) is negligible unless the result cancels
 * against a negative max, where the bound is in ulps of the max and
 * log1p(s) ~ |max|. A scale c outside [2^-100, 2^100] (a float pair could
 * not carry it) takes the double path.
 */
static int
use32(const sm_job *job)
{
    if (job->dtype == SM_F64 || !(job->fast || job->dtype == SM_F16)) {
        return 0;
    }
    return !job->sc.scaled || (job->sc.c_hi >= 0x1p-100 && job->sc.c_hi <= 0x1p100);
}

static const sm_k32 *
k32(const sm_job *job)
{
    return &job->tg->k32[job->dtype == SM_F16 ? 0 : 1];
}

/* +inf entries of a row (masked ones excluded), read from x */
static double
count_posinf_row(const sm_job *job, const sm_row *row)
{
    const double sign = job->sc.negate ? -1.0 : 1.0;
    double k = 0;
    for (ptrdiff_t j = 0; j < row->n; j++) {
        if (row->mask != NULL && !row->mask[j * row->mask_stride]) {
            continue;
        }
        k += sign * load1(job->dtype, row->x + j * row->x_stride) == HUGE_VAL;
    }
    return k;
}

/* The stage of a row in the scratch and where its float exps go after it. */
static float *
exps_after_stage(const sm_job *job, double *v, ptrdiff_t n)
{
    const ptrdiff_t isz = job->dtype == SM_F16 ? 2 : 4;
    return (float *)(v + (n * isz + 7) / 8 + 1);
}

/*
 * The lanes' sums in a fixed order: the row's sum of the non-maxima.
 * `lanes` may stop at the row's length: element j goes to lane j mod lanes,
 * so the lanes past n hold exact zeros, and adding them changes no bit.
 * full (float64's double kernels): lo, tiny_hi and tiny_lo hold sums too,
 * and the lanes are added with TwoSum, in order. Otherwise (float16 and
 * float32 results) only hi is read and the lanes go to four plain double
 * sums: 2^-49 of the sum at most, far below the outputs' ulp, where a
 * 32-long chain of dependent TwoSums cost 100 ns per row (most of a short
 * row's fixed cost). The sums always span SM_MAX_LANES with zeros past
 * `lanes`, so a row that stops early and a column that passes every lane
 * give the same bits.
 */
static void
acc_reduce(const sm_acc *acc, int lanes, int full, double *hi, double *lo)
{
    if (!full) {
        /* four independent chains (scalars, so in registers) over a
         * constant span: zeros past `lanes` change no bit */
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (int l = 0; l < SM_MAX_LANES; l += 4) {
            s0 += l < lanes ? acc->hi[l] : 0.0;
            s1 += l + 1 < lanes ? acc->hi[l + 1] : 0.0;
            s2 += l + 2 < lanes ? acc->hi[l + 2] : 0.0;
            s3 += l + 3 < lanes ? acc->hi[l + 3] : 0.0;
        }
        *hi = (s0 + s1) + (s2 + s3);
        *lo = 0.0;
        return;
    }
    double s = 0.0, c = 0.0, t = 0.0;
    for (int l = 0; l < lanes; l++) {
        double e;
        two_sum(s, acc->hi[l], &s, &e);
        c += e + acc->lo[l];
        t += acc->tiny_hi[l] + acc->tiny_lo[l];
    }
    if (t != 0.0) {
        /* one rounding, at the real quantum, for all the subnormal terms */
        c += ldexp(t, -128);
    }
    *hi = s + c;
    *lo = c - (*hi - s);
}

/* The accumulators a row of n entries reaches (the others stay 0). */
static int
used_lanes(int lanes, ptrdiff_t n)
{
    return n < lanes ? (int)n : lanes;
}

/* Writes a row that is not finite: NaN, +inf entries sharing, or empty. */
static void
write_special(const sm_job *job, const sm_row *row, int kind, double n_posinf, char *lse_out)
{
    if (job->mode == SM_MODE_LSE) {
        double r = kind == SM_ROW_NAN ? NAN : (kind == SM_ROW_POSINF ? HUGE_VAL : -HUGE_VAL);
        store1(job->dtype, lse_out, r);
        return;
    }
    const int log_mode = job->mode == SM_MODE_LOG;
    const double sign = job->sc.negate ? -1.0 : 1.0;
    const double zero = log_mode ? -HUGE_VAL : 0.0;
    /* 0.0 - log(k), not -log(k): a lone +inf has log-share +0, not -0 */
    const double share = log_mode ? 0.0 - log(n_posinf) : 1.0 / n_posinf;
    for (ptrdiff_t j = 0; j < row->n; j++) {
        double r;
        if (row->mask != NULL && !row->mask[j * row->mask_stride]) {
            r = zero;
        }
        else if (kind == SM_ROW_NAN) {
            r = NAN;
        }
        else if (kind == SM_ROW_POSINF &&
                 sign * load1(job->dtype, row->x + j * row->x_stride) == HUGE_VAL) {
            r = share;
        }
        else {
            r = zero;
        }
        store1(job->dtype, row->out + j * row->out_stride, r);
    }
}

static double
count_posinf(const double *v, ptrdiff_t n)
{
    double k = 0;
    for (ptrdiff_t j = 0; j < n; j++) {
        k += v[j] == HUGE_VAL;
    }
    return k;
}

static void
store_lse(const sm_job *job, char *lse_out, double m, double l_hi, double l_lo)
{
    store1(job->dtype, lse_out, lse_of(m, l_hi, l_lo));
}

/*
 * The scale of the log writes of a row (or a panel) whose max is m: a copy
 * with wide_gaps set when some finite v - m may overflow while c (v - m)
 * does not. The first needs m >= 2^970 in double lanes (v >= -DBL_MAX, and
 * v - m rounds to -inf only from -(2^1024 - 2^970) down) or m >= 2^103 in
 * float lanes; the second needs c < 1 (with c >= 1, y is beyond the range
 * too and -inf is its rounding). Nothing else needs it: p = exp(y) of such
 * an entry is 0 either way, and so is its term in the sums (see shift_wide).
 */
static const sm_scale *
log_scale(const sm_job *job, double m, double top, sm_scale *copy)
{
    const sm_scale *sc = &job->sc;
    if (!(m >= top) || !sc->scaled || sc->c_hi > 1.0 || (sc->c_hi == 1.0 && sc->c_lo >= 0.0)) {
        return sc;
    }
    *copy = *sc;
    copy->wide_gaps = 1;
    return copy;
}


/* Given the max m and s_rest = r_hi + r_lo, writes the row (or its lse). */
static void
finish_row(const sm_job *job, const sm_row *row, const double *v, int exp, double m,
           double r_hi, double r_lo, char *lse_out)
{
    const sm_dtype_kernels *K = &job->tg->k[job->dtype];
    double a_hi, a_lo;
    if (job->mode == SM_MODE_SOFTMAX) {
        reciprocal(r_hi, r_lo, &a_hi, &a_lo);
        K->write_p(v, exp, m, &job->sc, a_hi, a_lo, row);
        return;
    }
    log1p_dd(r_hi, r_lo, &a_hi, &a_lo);
    if (job->mode == SM_MODE_LOG) {
        sm_scale copy;
        K->write_log(v, m, log_scale(job, m, SM_WIDE_TOP, &copy), a_hi, a_lo, row);
    }
    else {
        store_lse(job, lse_out, m, a_hi, a_lo);
    }
}

/* finish_row for the float32-lane kernels: src as load32 gave it, e the
 * stored exps or NULL */
static void
finish_row32(const sm_job *job, const sm_row *row, const void *src, const float *e, double m,
             double r_hi, double r_lo, char *lse_out)
{
    const sm_k32 *K = k32(job);
    double a_hi, a_lo;
    if (job->mode == SM_MODE_SOFTMAX) {
        reciprocal(r_hi, r_lo, &a_hi, &a_lo);
        K->write_p(src, e, m, &job->sc, a_hi, row);
        return;
    }
    log1p_dd(r_hi, r_lo, &a_hi, &a_lo);
    if (job->mode == SM_MODE_LOG) {
        sm_scale copy;
        K->write_log(src, m, log_scale(job, m, SM_WIDE_TOP32, &copy), a_hi, a_lo, row);
    }
    else {
        store_lse(job, lse_out, m, a_hi, a_lo);
    }
}

/* e^(K ln2 - m), |K ln2 - m| <= ln2/2 + 2^-40, to about an ulp of double:
 * from the frame (exps e^v 2^-K) back to the max (exps e^(v - m)). The log
 * sums it converts need a relative accuracy near 2^-50 (they enter log1p
 * and a long row's merge as sums of float exps), and it runs once a row. */
static double
frame_factor(int k, double m)
{
    static const double ln2_1 = 0x1.62e42fefa39efp-1, ln2_2 = 0x1.abc9e3b39803fp-56;
    double a_h, a_l, d_h, d_l;
    dd_mul((double)k, 0.0, ln2_1, ln2_2, &a_h, &a_l);
    dd_add(a_h, a_l, -m, 0.0, &d_h, &d_l);
    return exp(d_h) * (1.0 + d_l);
}

/* A float32-lane sum in the frame (the fast mode's float32 kernels, when
 * sm_frame_k takes m) converted to e^(v - m) in place; returns the factor
 * (1 when the kernel did not use the frame). */
static double
frame_to_max(const sm_job *job, double m, double *hi, double *lo)
{
    int k;
    if (job->dtype != SM_F32 || !use32(job) || !sm_frame_k(m, &job->sc, &k)) {
        return 1.0;
    }
    const double g = frame_factor(k, m);
    dd_mul(*hi, *lo, g, 0.0, hi, lo);
    return g;
}

/*
 * A row in float32 lanes: x read in place (or staged once), three passes;
 * softmax keeps its exps in out (float32, contiguous) or after the stage.
 */
static void
row_whole32(const sm_job *job, const sm_row *row, double *v, char *lse_out)
{
    const sm_k32 *K = k32(job);
    const void *src;
    double m;
    const int kind = K->load(row, job->sc.negate, v, &src, &m);
    if (kind != SM_ROW_FINITE) {
        const double k = kind == SM_ROW_POSINF ? count_posinf_row(job, row) : 0.0;
        write_special(job, row, kind, k, lse_out);
        return;
    }
    float *e = NULL;
    if (job->mode == SM_MODE_SOFTMAX) {
        e = job->dtype == SM_F32 && row->out_stride == (ptrdiff_t)sizeof(float)
                ? (float *)row->out
                : exps_after_stage(job, v, row->n);
    }
    sm_acc acc;   /* written by expsum */
    K->expsum(src, row->n, m, &job->sc, job->mode != SM_MODE_SOFTMAX, e, &acc);
    double hi, lo, r_hi, r_lo;
    acc_reduce(&acc, used_lanes(job->tg->lanes32, row->n), 0, &hi, &lo);
    if (job->mode != SM_MODE_SOFTMAX) {
        /* log1p needs the non-maxima relative to the maxima's exact 1s
         * (softmax's shares need no conversion: e / sum e in any frame) */
        frame_to_max(job, m, &hi, &lo);
    }
    dd_add(acc.count - 1.0, 0.0, hi, lo, &r_hi, &r_lo);
    finish_row32(job, row, src, e, m, r_hi, r_lo, lse_out);
}

/* A row short enough to stay in the scratch: x is read once. */
static void
row_whole(const sm_job *job, const sm_row *row, double *v, char *lse_out)
{
    if (use32(job)) {
        row_whole32(job, row, v, lse_out);
        return;
    }
    const sm_dtype_kernels *K = &job->tg->k[job->dtype];
    double m;
    int kind = K->load(row, job->sc.negate, v, &m);
    if (kind != SM_ROW_FINITE) {
        double k = kind == SM_ROW_POSINF ? count_posinf(v, row->n) : 0.0;
        write_special(job, row, kind, k, lse_out);
        return;
    }
    sm_acc acc;   /* written by expsum */
    K->expsum(v, pad_width(job, row->n), m, &job->sc, job->mode == SM_MODE_SOFTMAX, &acc);
    double hi, lo, r_hi, r_lo;
    acc_reduce(&acc, used_lanes(job->tg->lanes, row->n), job->dtype == SM_F64, &hi, &lo);
    dd_add(acc.count - 1.0, 0.0, hi, lo, &r_hi, &r_lo);
    finish_row(job, row, v, 0, m, r_hi, r_lo, lse_out);
}

/* ---- long rows: segments ------------------------------------------------ */

static sm_row
segment(const sm_job *job, const sm_row *row, ptrdiff_t i)
{
    sm_row s = *row;
    const ptrdiff_t j0 = i * SM_SEG;
    s.n = row->n - j0 < SM_SEG ? row->n - j0 : SM_SEG;
    s.x = row->x + j0 * row->x_stride;
    s.out = row->out == NULL ? NULL : row->out + j0 * row->out_stride;
    s.mask = row->mask == NULL ? NULL : row->mask + j0 * row->mask_stride;
    (void)job;
    return s;
}

/*
 * A softmax segment in float32 lanes is written from its exps relative to
 * its own max, times seg_scale(): e^((x - m_seg) c) e^((m_seg - m) c) / s.
 * With a contiguous float32 out the sums pass keeps those exps in out (as
 * row_whole32 keeps a whole row's), and the writes only scale them: no
 * second read of x, no second exp (2x200000 to 16x262144 float32: 10-17 %
 * less time than recomputing). Other layouts recompute the same exps, so
 * every layout gives the same bits.
 */
static int
seg_keeps_exps(const sm_job *job, const sm_row *seg)
{
    return use32(job) && job->mode == SM_MODE_SOFTMAX && job->dtype == SM_F32 &&
           seg->out_stride == (ptrdiff_t)sizeof(float);
}

static void
seg_part32(const sm_job *job, const sm_row *seg, double *v, sm_part *p)
{
    const sm_k32 *K = k32(job);
    const void *src;
    p->kind = K->load(seg, job->sc.negate, v, &src, &p->m);
    p->hi = p->lo = p->count = 0.0;
    p->g = 1.0;
    if (p->kind == SM_ROW_FINITE) {
        sm_acc acc;   /* written by expsum */
        float *e = seg_keeps_exps(job, seg) ? (float *)seg->out : NULL;
        K->expsum(src, seg->n, p->m, &job->sc, job->mode != SM_MODE_SOFTMAX, e, &acc);
        acc_reduce(&acc, used_lanes(job->tg->lanes32, seg->n), 0, &p->hi, &p->lo);
        p->count = acc.count;
        /* the merge wants e^(v - m_seg) */
        p->g = frame_to_max(job, p->m, &p->hi, &p->lo);
    }
    else if (p->kind == SM_ROW_POSINF) {
        p->count = count_posinf_row(job, seg);
    }
}

static void
seg_part(const sm_job *job, const sm_row *seg, double *v, sm_part *p)
{
    if (use32(job)) {
        seg_part32(job, seg, v, p);
        return;
    }
    const sm_dtype_kernels *K = &job->tg->k[job->dtype];
    p->kind = K->load(seg, job->sc.negate, v, &p->m);
    p->hi = p->lo = p->count = 0.0;
    p->g = 1.0;
    if (p->kind == SM_ROW_FINITE) {
        sm_acc acc;   /* written by expsum */
        K->expsum(v, pad_width(job, seg->n), p->m, &job->sc, 0, &acc);
        acc_reduce(&acc, used_lanes(job->tg->lanes, seg->n), job->dtype == SM_F64, &p->hi,
                   &p->lo);
        p->count = acc.count;
    }
    else if (p->kind == SM_ROW_POSINF) {
        p->count = count_posinf(v, seg->n);
    }
}

/*
 * e^((m_seg - m) c) in double-double, for a segment whose max m_seg is below
 * the row's m. Returns 0 when the factor is 0 in double-double too: below
 * -746 (or -inf: the difference or its scaling overflowed, and two_sum's
 * low part is then NaN), where the segment adds nothing. Without this test
 * the overflowed operands make NaN.
 */
static int
seg_factor(const sm_job *job, double m_seg, double m, double *f_h, double *f_l)
{
    double d_h, d_l;
    two_sum(m_seg, -m, &d_h, &d_l);
    if (!(d_h * (job->sc.scaled ? job->sc.c_hi : 1.0) >= -746.0)) {
        return 0;
    }
    if (job->sc.scaled) {
        dd_mul(d_h, d_l, job->sc.c_hi, job->sc.c_lo, &d_h, &d_l);
    }
    dd_exp(d_h, d_l, f_h, f_l);
    return 1;
}

/*
 * The (max, sum) merge of the segments, in segment order:
 * (m, s) + (m', s') = (M, s e^(m - M) + s' e^(m' - M)), with the factors in
 * double-double. Returns the row's kind; for a finite row M and s_rest.
 */
static int
merge_parts(const sm_job *job, const sm_part *parts, ptrdiff_t np, double *M, double *r_hi,
            double *r_lo, double *n_posinf)
{
    int nan = 0;
    double inf = 0.0, m = -HUGE_VAL;
    for (ptrdiff_t i = 0; i < np; i++) {
        nan |= parts[i].kind == SM_ROW_NAN;
        if (parts[i].kind == SM_ROW_POSINF) {
            inf += parts[i].count;
        }
        if (parts[i].kind == SM_ROW_FINITE && parts[i].m > m) {
            m = parts[i].m;
        }
    }
    *n_posinf = inf;
    *M = m;
    if (nan) {
        return SM_ROW_NAN;
    }
    if (inf > 0) {
        return SM_ROW_POSINF;
    }
    if (!(m > -HUGE_VAL)) {
        return SM_ROW_EMPTY;
    }
    double c = 0.0;
    for (ptrdiff_t i = 0; i < np; i++) {
        if (parts[i].kind == SM_ROW_FINITE && parts[i].m == m) {
            c += parts[i].count;
        }
    }
    double a_h = c - 1.0, a_l = 0.0;
    for (ptrdiff_t i = 0; i < np; i++) {
        const sm_part *p = &parts[i];
        if (p->kind != SM_ROW_FINITE) {
            continue;
        }
        if (p->m == m) {
            dd_add(a_h, a_l, p->hi, p->lo, &a_h, &a_l);
            continue;
        }
        double f_h, f_l, t_h, t_l;
        if (!seg_factor(job, p->m, m, &f_h, &f_l)) {
            continue;
        }
        dd_add(p->count, 0.0, p->hi, p->lo, &t_h, &t_l);
        dd_mul(t_h, t_l, f_h, f_l, &t_h, &t_l);
        dd_add(a_h, a_l, t_h, t_l, &a_h, &a_l);
    }
    *r_hi = a_h;
    *r_lo = a_l;
    return SM_ROW_FINITE;
}

/* The factor from a segment's exps to p: e^((m_seg - m) c) / s, with
 * s = 1 + s_rest (seg_factor, as merge_parts takes it) */
static double
seg_scale(const sm_job *job, double m_seg, double m, double r_hi, double r_lo)
{
    double inv_hi, inv_lo, f_h = 1.0, f_l = 0.0;
    reciprocal(r_hi, r_lo, &inv_hi, &inv_lo);
    if (m_seg != m && !seg_factor(job, m_seg, m, &f_h, &f_l)) {
        return 0.0;
    }
    dd_mul(f_h, f_l, inv_hi, inv_lo, &f_h, &f_l);
    return f_h;
}

/* Writes a segment of a finite row whose max is m and s_rest r_hi + r_lo;
 * p: the segment's own part (its max, its kind). */
static void
seg_write(const sm_job *job, const sm_row *seg, const sm_part *p, double *v, double m,
          double r_hi, double r_lo)
{
    double m_seg;
    if (use32(job) && job->mode == SM_MODE_SOFTMAX && p->kind == SM_ROW_FINITE) {
        const sm_k32 *K = k32(job);
        /* p->g: the segment's exps are in softmax's frame (seg_part32) */
        const double scale = seg_scale(job, p->m, m, r_hi, r_lo) * p->g;
        if (seg_keeps_exps(job, seg)) {
            K->write_p(NULL, (const float *)seg->out, p->m, &job->sc, scale, seg);
            return;
        }
        const void *src;
        K->load(seg, job->sc.negate, v, &src, NULL);
        K->write_p(src, NULL, p->m, &job->sc, scale, seg);
        return;
    }
    if (use32(job)) {
        const void *src;
        k32(job)->load(seg, job->sc.negate, v, &src, NULL);
        finish_row32(job, seg, src, NULL, m, r_hi, r_lo, NULL);
        return;
    }
    job->tg->k[job->dtype].load(seg, job->sc.negate, v, &m_seg);
    finish_row(job, seg, v, 1, m, r_hi, r_lo, NULL);
}

static ptrdiff_t
n_segments(ptrdiff_t n)
{
    return (n + SM_SEG - 1) / SM_SEG;
}

/* A long row on one thread: x is read twice (sums, then writes). */
static void
row_segmented(const sm_job *job, const sm_row *row, double *v, sm_part *parts, char *lse_out)
{
    const ptrdiff_t np = n_segments(row->n);
    for (ptrdiff_t i = 0; i < np; i++) {
        sm_row s = segment(job, row, i);
        seg_part(job, &s, v, &parts[i]);
    }
    double m, r_hi = 0.0, r_lo = 0.0, k;
    int kind = merge_parts(job, parts, np, &m, &r_hi, &r_lo, &k);
    if (kind != SM_ROW_FINITE) {
        write_special(job, row, kind, k, lse_out);
        return;
    }
    if (job->mode == SM_MODE_LSE) {
        finish_row(job, row, v, 1, m, r_hi, r_lo, lse_out);
        return;
    }
    for (ptrdiff_t i = 0; i < np; i++) {
        sm_row s = segment(job, row, i);
        seg_write(job, &s, &parts[i], v, m, r_hi, r_lo);
    }
}

/* ---- rows over threads -------------------------------------------------- */

static void
row_at(const sm_job *job, ptrdiff_t r, sm_row *row, char **lse_out)
{
    /* with groups, row r is group g of outer row r / nseg: its entries start
     * offsets[g] along the last axis, its lse sits g places along out's */
    ptrdiff_t n = job->n, start = 0, lse_o = 0;
    if (job->offsets != NULL) {
        const ptrdiff_t g = r % job->nseg;
        r /= job->nseg;
        start = (ptrdiff_t)job->offsets[g];
        n = (ptrdiff_t)job->offsets[g + 1] - start;
        lse_o = g * job->seg_out_stride;
    }
    ptrdiff_t xo = 0, oo = 0, mo = 0;
    for (int d = job->outer_ndim - 1; d >= 0; d--) {
        ptrdiff_t i = r % job->dims[d];
        r /= job->dims[d];
        xo += i * job->x_strides[d];
        oo += i * job->o_strides[d];
        mo += i * job->m_strides[d];
    }
    row->x = job->x + xo + start * job->x_stride;
    row->mask = job->mask == NULL ? NULL : job->mask + mo + start * job->mask_stride;
    row->n = n;
    row->x_stride = job->x_stride;
    row->mask_stride = job->mask_stride;
    if (job->mode == SM_MODE_LSE) {
        row->out = NULL;
        row->out_stride = 0;
        *lse_out = job->out + oo + lse_o;
    }
    else {
        row->out = job->out + oo + start * job->out_stride;
        row->out_stride = job->out_stride;
        *lse_out = NULL;
    }
}

/* Columns per column block: a vector of doubles, or of floats (kernels32) */
static ptrdiff_t
job_width(const sm_job *job)
{
    return use32(job) ? job->tg->width32 : job->tg->width;
}

static ptrdiff_t
item_size(int dtype)
{
    return dtype == SM_F16 ? 2 : (dtype == SM_F32 ? 4 : 8);
}

/*
 * Rows that sit side by side in memory, as when a C-ordered array is
 * reduced along a non-last axis: up to SM_PANEL neighbouring rows are the
 * columns of one panel, run by the column kernels (x read in place, row
 * after row). Returns 1 for such a layout. Columns longer than
 * SM_ROW_CACHE keep the row path, whose segments they would have to match
 * bit for bit.
 */
static int
column_layout(const sm_job *job)
{
    const ptrdiff_t isz = item_size(job->dtype);
    /* groups (offsets) are rows of their own lengths, never panel columns */
    if (job->offsets != NULL || job->mask != NULL || job->outer_ndim == 0 ||
        job->n > SM_ROW_CACHE || job->n == 0 ||
        job->x_stride == isz || job->x_strides[job->outer_ndim - 1] != isz ||
        job->dims[job->outer_ndim - 1] < job_width(job)) {
        return 0;
    }
    /* the panel's outputs must be adjacent too, for vector stores */
    return job->mode == SM_MODE_LSE || job->o_strides[job->outer_ndim - 1] == isz;
}

/* Columns per panel: its n x width slice of x stays in L2 between passes. */
static ptrdiff_t
panel_width(const sm_job *job)
{
    const ptrdiff_t w = job_width(job);
    ptrdiff_t p = SM_PANEL_BYTES / (job->n * item_size(job->dtype)) / w * w;
    return p < w ? w : (p > SM_PANEL ? SM_PANEL : p);
}

/* Doubles of a panel's scratch: m, nan, m_run, two per-column results, the sums. */
static ptrdiff_t
panel_doubles(const sm_job *job)
{
    return SM_PANEL * (5 + 4 * (ptrdiff_t)job->tg->lanes + 1);
}

/* Doubles of the row scratch: a whole row, or one segment of a long row.
 * With groups, n is only the longest: beside a long group there may be
 * others of up to SM_ROW_CACHE entries, done whole. */
static ptrdiff_t
row_doubles(const sm_job *job)
{
    if (job->n > SM_ROW_CACHE) {
        return pad32(job->offsets != NULL ? SM_ROW_CACHE : SM_SEG);
    }
    return pad32(job->n > 0 ? job->n : 1);
}

/* The row part of a thread's scratch; for the float32 lanes a stage of n
 * elements and n float exps (<= 8n bytes) plus the rounding in
 * exps_after_stage. A panel's scratch follows it. */
static ptrdiff_t
row_part_doubles(const sm_job *job)
{
    return row_doubles(job) + (use32(job) ? 4 : 0);
}

ptrdiff_t
sm_scratch_doubles(const sm_job *job)
{
    return row_part_doubles(job) + (column_layout(job) ? panel_doubles(job) : 0);
}

/* Column l's sum of the non-maxima, reduced as a row's (acc_reduce). */
static void
column_sum(const sm_job *job, const double *acc, ptrdiff_t ncols, ptrdiff_t l, double *r_hi,
           double *r_lo)
{
    const int lanes = job->tg->lanes;
    const ptrdiff_t plane = lanes * ncols, used = job->n < lanes ? job->n : lanes;
    const int f64 = job->dtype == SM_F64;
    sm_acc one;
    for (ptrdiff_t k = 0; k < lanes; k++) {
        const ptrdiff_t o = k * ncols + l;
        one.hi[k] = k < used ? acc[o] : 0.0;
        one.lo[k] = k < used && f64 ? acc[plane + o] : 0.0;
        one.tiny_hi[k] = k < used && f64 ? acc[2 * plane + o] : 0.0;
        one.tiny_lo[k] = k < used && f64 ? acc[3 * plane + o] : 0.0;
    }
    double hi, lo;
    acc_reduce(&one, lanes, f64, &hi, &lo);
    dd_add(acc[4 * plane + l] - 1.0, 0.0, hi, lo, r_hi, r_lo);
}

/* column_sum for the float32-lane kernels' acc (sums of the hi plane only);
 * m: the column's max, for the log sums' frame (as row_whole32) */
static void
column_sum32(const sm_job *job, const double *acc, ptrdiff_t ncols, ptrdiff_t l, double m,
             double *r_hi, double *r_lo)
{
    const int lanes = job->tg->lanes32;
    sm_acc one;
    memset(&one, 0, sizeof(one));
    for (int k = 0; k < lanes; k++) {
        one.hi[k] = acc[k * ncols + l];
    }
    double hi, lo;
    acc_reduce(&one, lanes, 0, &hi, &lo);
    if (job->mode != SM_MODE_SOFTMAX) {
        frame_to_max(job, m, &hi, &lo);
    }
    dd_add(acc[(ptrdiff_t)lanes * ncols + l] - 1.0, 0.0, hi, lo, r_hi, r_lo);
}

static int
column_kind(double nan, double m)
{
    return nan != 0.0 ? SM_ROW_NAN
           : m == HUGE_VAL ? SM_ROW_POSINF
           : !(m > -HUGE_VAL) ? SM_ROW_EMPTY
           : SM_ROW_FINITE;
}

/* `ncols` (a multiple of the width) columns starting at `row`. */
static void
columns_panel(const sm_job *job, const sm_row *row, char *lse_out, ptrdiff_t ncols,
              double *scratch, double *v)
{
    const int k32_ = use32(job);
    const sm_dtype_kernels *K = &job->tg->k[job->dtype];
    const sm_k32 *K32 = k32(job);
    const int negate = job->sc.negate;
    const ptrdiff_t isz = item_size(job->dtype), o_step = job->o_strides[job->outer_ndim - 1];
    const sm_cols c = {row->x, row->out, row->n, ncols / job_width(job), row->x_stride,
                       row->out_stride};
    double *m = scratch, *nan = m + ncols, *m_run = nan + ncols, *a_hi = m_run + ncols;
    double *a_lo = a_hi + ncols, *acc = a_lo + ncols;
    int special = 0;
    if (k32_) {
        K32->cols_max(&c, negate, m, nan);
    }
    else {
        K->cols_max(&c, negate, m, nan);
    }
    for (ptrdiff_t l = 0; l < ncols; l++) {
        const int kind = column_kind(nan[l], m[l]);
        if (kind == SM_ROW_POSINF) {
            /* A +inf column's output depends on which entries are +inf, read
             * after the vector pass has written out, which may be x itself:
             * such a (rare) panel takes the row path, column by column. */
            for (ptrdiff_t k = 0; k < ncols; k++) {
                sm_row one = *row;
                one.x += k * isz;
                one.out = one.out == NULL ? NULL : one.out + k * isz;
                row_whole(job, &one, v, lse_out == NULL ? NULL : lse_out + k * o_step);
            }
            return;
        }
        /* a special column runs as if its max were 0 (keeping the arithmetic
         * finite) and is written by write_special at the end */
        m_run[l] = kind == SM_ROW_FINITE ? m[l] : 0.0;
        special |= kind != SM_ROW_FINITE;
    }
    if (k32_) {
        K32->cols_expsum(&c, negate, m_run, &job->sc, job->mode != SM_MODE_SOFTMAX, acc);
    }
    else {
        K->cols_expsum(&c, negate, m_run, &job->sc, acc);
    }
    for (ptrdiff_t l = 0; l < ncols; l++) {
        double r_hi, r_lo;
        if (k32_) {
            column_sum32(job, acc, ncols, l, m_run[l], &r_hi, &r_lo);
        }
        else {
            column_sum(job, acc, ncols, l, &r_hi, &r_lo);
        }
        if (job->mode == SM_MODE_SOFTMAX) {
            reciprocal(r_hi, r_lo, &a_hi[l], &a_lo[l]);
        }
        else {
            log1p_dd(r_hi, r_lo, &a_hi[l], &a_lo[l]);
            if (job->mode == SM_MODE_LSE) {
                store_lse(job, lse_out + l * o_step, m_run[l], a_hi[l], a_lo[l]);
            }
        }
    }
    if (job->mode == SM_MODE_SOFTMAX) {
        (k32_ ? K32->cols_write_p : K->cols_write_p)(&c, negate, m_run, &job->sc, a_hi, a_lo);
    }
    else if (job->mode == SM_MODE_LOG) {
        double top = -HUGE_VAL;
        for (ptrdiff_t l = 0; l < ncols; l++) {
            top = m_run[l] > top ? m_run[l] : top;
        }
        sm_scale copy;
        const sm_scale *sc = log_scale(job, top, k32_ ? SM_WIDE_TOP32 : SM_WIDE_TOP, &copy);
        (k32_ ? K32->cols_write_log : K->cols_write_log)(&c, negate, m_run, sc, a_hi, a_lo);
    }
    for (ptrdiff_t l = 0; special && l < ncols; l++) {
        const int kind = column_kind(nan[l], m[l]);
        if (kind == SM_ROW_FINITE) {
            continue;
        }
        /* NaN or all -inf: written without reading x (+inf went the row path) */
        sm_row one = *row;
        one.x += l * isz;
        one.out = one.out == NULL ? NULL : one.out + l * isz;
        write_special(job, &one, kind, 0.0, lse_out == NULL ? NULL : lse_out + l * o_step);
    }
}

ptrdiff_t
sm_n_parts(const sm_job *job)
{
    return job->n > SM_ROW_CACHE ? n_segments(job->n) : 1;
}

/* One row by its own length: empty, in the scratch, or in segments. */
static void
run_row(const sm_job *job, const sm_row *row, double *v, sm_part *parts, char *lse_out)
{
    if (row->n == 0) {
        if (job->mode == SM_MODE_LSE) {
            store1(job->dtype, lse_out, -HUGE_VAL);
        }
    }
    else if (row->n <= SM_ROW_CACHE) {
        row_whole(job, row, v, lse_out);
    }
    else {
        row_segmented(job, row, v, parts, lse_out);
    }
}

/*
 * Groups the group kernel can take (the short ones of them, that is):
 * x and out contiguous along the last axis, no mask. The rest (masks,
 * strided views) keep the row path, group by group. The kernel runs in
 * double lanes also where rows take the float32 lanes (float16, the fast
 * mode): at least as accurate, and a short group's fixed cost on the row
 * path was most of its time (float16 graph groups: 4x slower than float32).
 * Its long groups still go to the row path and its float32 lanes.
 */
static int
fused_groups(const sm_job *job)
{
    const ptrdiff_t isz = item_size(job->dtype);
    return job->offsets != NULL && job->mask == NULL && job->x_stride == isz &&
           (job->mode == SM_MODE_LSE || job->out_stride == isz);
}

/* The rows [r0, r1) with groups: runs of up to SM_GRUN groups of one outer
 * row through the group kernel, then what it left to the row path. */
static void
rows_fused(const sm_job *job, ptrdiff_t r0, ptrdiff_t r1, double *v, sm_part *parts)
{
    const sm_dtype_kernels *K = &job->tg->k[job->dtype];
    const ptrdiff_t isz = item_size(job->dtype);
    double lse[SM_GRUN];
    ptrdiff_t todo[SM_GRUN];
    for (ptrdiff_t r = r0; r < r1;) {
        const ptrdiff_t g0 = r % job->nseg, base = r - g0;
        ptrdiff_t g1 = job->nseg - g0 < r1 - r ? job->nseg : g0 + (r1 - r);
        g1 = g1 - g0 > SM_GRUN ? g0 + SM_GRUN : g1;
        sm_row row;
        char *lse_out;
        row_at(job, r, &row, &lse_out);
        /* the outer row's start: row_at placed x (and out) at offsets[g0] */
        const ptrdiff_t start = (ptrdiff_t)job->offsets[g0];
        const char *x = row.x - start * isz;
        char *out = row.out == NULL ? NULL : row.out - start * isz;
        const ptrdiff_t nt =
            K->groups(x, out, job->offsets, g0, g1, job->mode, job->sc.negate, &job->sc, lse, todo);
        if (job->mode == SM_MODE_LSE) {
            char *lse0 = lse_out - g0 * job->seg_out_stride;
            unsigned char left[SM_GRUN];
            memset(left, 0, (size_t)(g1 - g0));
            for (ptrdiff_t k = 0; k < nt; k++) {
                left[todo[k] - g0] = 1;
            }
            for (ptrdiff_t g = g0; g < g1; g++) {
                if (!left[g - g0]) {
                    store1(job->dtype, lse0 + g * job->seg_out_stride, lse[g - g0]);
                }
            }
        }
        for (ptrdiff_t k = 0; k < nt; k++) {
            row_at(job, base + todo[k], &row, &lse_out);
            run_row(job, &row, v, parts, lse_out);
        }
        r += g1 - g0;
    }
}

/* floor(all * t / nt) without forming all * t */
static ptrdiff_t
share_of(ptrdiff_t all, int t, int nt)
{
    return all / nt * t + all % nt * t / nt;
}

/*
 * The work of a group, in entries: its length plus SM_GROUP_COST. A row's
 * fixed cost (the load's padding to the lanes, the lane sums, the
 * reciprocal or log1p) was measured at some 80 (avx2) to 160 (avx512)
 * entries' worth, 13 for the baseline, so for groups of ~10 entries it is
 * most of the work: balanced by entries alone, the thread given the many
 * small groups would do nearly all of it.
 */
#define SM_GROUP_COST 64
/* The same for the group kernel's short groups (rows_fused), measured on
 * groups of 1 to 16 entries: some 6 entries' worth with vectors (avx2,
 * avx512), 2 for the baseline's one lane (whose entries cost more). */
static ptrdiff_t
group_cost(const sm_job *job)
{
    return !fused_groups(job) ? SM_GROUP_COST : (job->tg->width > 1 ? 6 : 2);
}

/* With groups: the weight of one group beyond its entries (0 for absurd
 * sizes, where the sums below could overflow) and the work of one outer
 * row, total entries + that weight x nseg. */
static ptrdiff_t
group_weight(const sm_job *job, ptrdiff_t *per_outer)
{
    const ptrdiff_t total = (ptrdiff_t)(job->offsets[job->nseg] - job->offsets[0]);
    const ptrdiff_t outer = job->rows / job->nseg;
    /* outer * total <= x.size, so these products do not overflow */
    const ptrdiff_t c = outer * total <= PTRDIFF_MAX / 2 &&
                                job->rows <= PTRDIFF_MAX / 2 / SM_GROUP_COST
                            ? group_cost(job)
                            : 0;
    *per_outer = total + c * job->nseg;
    return c;
}

/*
 * With groups: the first row whose work starts at or after p, the rows'
 * work laid end to end (outer row after outer row, per_outer each; group g
 * starts at offsets[g] - offsets[0] + c g); job->rows when none does.
 * Non-decreasing in p, so the threads' ranges below tile the rows.
 */
static ptrdiff_t
group_row_from(const sm_job *job, ptrdiff_t c, ptrdiff_t per_outer, ptrdiff_t p)
{
    const ptrdiff_t o = p / per_outer;
    const ptrdiff_t want = p - o * per_outer;
    const int64_t *off = job->offsets;
    ptrdiff_t lo = 0, hi = job->nseg;
    while (lo < hi) {
        const ptrdiff_t mid = lo + (hi - lo) / 2;
        if ((ptrdiff_t)(off[mid] - off[0]) + c * mid < want) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    const ptrdiff_t r = o * job->nseg + lo;
    return r < job->rows ? r : job->rows;
}

/*
 * The rows [r0, r1) of piece k of `pieces`: rows without groups `chunk` at a
 * time (see n_pieces). Groups are split by work
 * (entries plus a fixed cost per group), not by count: with skewed sizes (a
 * few huge groups among many tiny ones) an equal count of groups can put
 * nearly all the entries in one piece. A piece takes the groups whose work
 * starts in its share.
 */
static void
piece_rows(const sm_job *job, ptrdiff_t k, ptrdiff_t pieces, ptrdiff_t chunk, ptrdiff_t *r0,
           ptrdiff_t *r1)
{
    if (job->offsets == NULL) {
        *r0 = k * chunk;
        *r1 = job->rows - *r0 < chunk ? job->rows : *r0 + chunk;
        return;
    }
    ptrdiff_t per_outer;
    const ptrdiff_t c = group_weight(job, &per_outer);
    if (per_outer == 0) {
        /* no work to balance */
        *r0 = 0;
        *r1 = k == 0 ? job->rows : 0;
        return;
    }
    const ptrdiff_t all = job->rows / job->nseg * per_outer;
    *r0 = k == 0 ? 0 : group_row_from(job, c, per_outer, share_of(all, k, pieces));
    *r1 = k == pieces - 1 ? job->rows
                          : group_row_from(job, c, per_outer, share_of(all, k + 1, pieces));
}

/*
 * How the rows are cut into the pieces that the threads claim from a shared
 * counter as they go (task_rows): the caller starts at once, and a worker
 * that the kernel wakes late (some 50 us on a virtual machine) takes fewer
 * pieces instead of holding up the end. Who runs a row does not change its
 * bits. About 8 pieces per thread, each of at least 16k elements' worth:
 * rows without groups in pieces of *chunk rows (a multiple of w), groups
 * by their work, entries plus a cost per group (piece_rows). One piece on
 * one thread.
 */
static ptrdiff_t
n_pieces(const sm_job *job, int nt, ptrdiff_t w, ptrdiff_t *chunk)
{
    *chunk = job->rows;
    if (nt <= 1 || job->rows == 0) {
        return 1;
    }
    if (job->offsets == NULL) {
        const ptrdiff_t n = job->n > 0 ? job->n : 1;
        ptrdiff_t c = (job->rows + 8 * (ptrdiff_t)nt - 1) / (8 * (ptrdiff_t)nt);
        const ptrdiff_t least = (16384 + n - 1) / n;
        c = c > least ? c : least;
        *chunk = (c + w - 1) / w * w;
        return (job->rows + *chunk - 1) / *chunk;
    }
    ptrdiff_t per_outer;
    group_weight(job, &per_outer);
    const double all = (double)(job->rows / job->nseg) * (double)per_outer;
    double k = all / 16384.0;
    k = k < 8.0 * nt ? k : 8.0 * nt;
    return k < nt ? nt : (ptrdiff_t)k;
}

static void rows_range(const sm_job *job, ptrdiff_t r0, ptrdiff_t r1, double *v, sm_part *parts,
                       int cols, ptrdiff_t w, ptrdiff_t panel_cols, double *panel);

static void
task_rows(void *arg, int tid, int nt)
{
    sm_job *job = arg;
    const int cols = column_layout(job);
    /* panels start at multiples of the width: split the rows there */
    const ptrdiff_t w = cols ? job_width(job) : 1;
    double *v = job->scratch + tid * sm_scratch_doubles(job);
    sm_part *parts = job->parts + tid * sm_n_parts(job);
    double *panel = v + row_part_doubles(job);
    const ptrdiff_t panel_cols = cols ? panel_width(job) : 0;
    ptrdiff_t chunk, k;
    const ptrdiff_t pieces = n_pieces(job, nt, cols ? panel_cols : 1, &chunk);
    while ((k = __atomic_fetch_add(&job->claimed, 1, __ATOMIC_RELAXED)) < pieces) {
        ptrdiff_t r0, r1;
        piece_rows(job, k, pieces, chunk, &r0, &r1);
        if (fused_groups(job)) {
            rows_fused(job, r0, r1, v, parts);
        }
        else {
            rows_range(job, r0, r1, v, parts, cols, w, panel_cols, panel);
        }
    }
}

/* Rows [r0, r1): column panels where the layout has them, else row by row. */
static void
rows_range(const sm_job *job, ptrdiff_t r0, ptrdiff_t r1, double *v, sm_part *parts, int cols,
           ptrdiff_t w, ptrdiff_t panel_cols, double *panel)
{
    for (ptrdiff_t r = r0; r < r1; r++) {
        sm_row row;
        char *lse_out;
        row_at(job, r, &row, &lse_out);
        if (cols) {
            const ptrdiff_t last = job->dims[job->outer_ndim - 1];
            ptrdiff_t cnt = last - r % last;
            cnt = cnt < r1 - r ? cnt : r1 - r;
            cnt = (cnt < panel_cols ? cnt : panel_cols) / w * w;
            if (cnt > 0) {
                columns_panel(job, &row, lse_out, cnt, panel, v);
                r += cnt - 1;
                continue;
            }
        }
        run_row(job, &row, v, parts, lse_out);
    }
}

/* One long row split over the threads: segment sums, merge, segment writes. */
typedef struct {
    const sm_job *job;
    sm_row row;
    double m, r_hi, r_lo;
    ptrdiff_t claimed;   /* segments taken so far (reset before each pass) */
} split_ctx;

/* Segments are claimed SM_SPLIT_CLAIM at a time, as rows are (n_pieces):
 * each has its own part, merged in segment order, so the bits do not
 * depend on which thread ran it. Sets [*i0, *i1) of the np segments;
 * returns 0 when none are left. */
#define SM_SPLIT_CLAIM 4

static int
claim_segments(split_ctx *c, ptrdiff_t np, ptrdiff_t *i0, ptrdiff_t *i1)
{
    *i0 = __atomic_fetch_add(&c->claimed, SM_SPLIT_CLAIM, __ATOMIC_RELAXED);
    *i1 = np - *i0 < SM_SPLIT_CLAIM ? np : *i0 + SM_SPLIT_CLAIM;
    return *i0 < np;
}

static void
task_split_sums(void *arg, int tid, int nt)
{
    split_ctx *c = arg;
    (void)nt;
    const ptrdiff_t np = n_segments(c->row.n);
    double *v = c->job->scratch + tid * sm_scratch_doubles(c->job);
    ptrdiff_t i0, i1;
    while (claim_segments(c, np, &i0, &i1)) {
        for (ptrdiff_t i = i0; i < i1; i++) {
            sm_row s = segment(c->job, &c->row, i);
            seg_part(c->job, &s, v, &c->job->parts[i]);
        }
    }
}

static void
task_split_writes(void *arg, int tid, int nt)
{
    split_ctx *c = arg;
    (void)nt;
    const ptrdiff_t np = n_segments(c->row.n);
    double *v = c->job->scratch + tid * sm_scratch_doubles(c->job);
    ptrdiff_t i0, i1;
    while (claim_segments(c, np, &i0, &i1)) {
        for (ptrdiff_t i = i0; i < i1; i++) {
            sm_row s = segment(c->job, &c->row, i);
            seg_write(c->job, &s, &c->job->parts[i], v, c->m, c->r_hi, c->r_lo);
        }
    }
}

int
sm_plan_threads(const sm_job *job, int limit)
{
    /* below ~64k elements per thread, waking a worker costs more than it saves */
    double work = (double)job->rows * (double)(job->n > 0 ? job->n : 1);
    if (job->offsets != NULL && job->nseg > 0) {
        /* the groups' own work (as the threads split it), not rows x the longest */
        ptrdiff_t per_outer;
        group_weight(job, &per_outer);
        work = (double)(job->rows / job->nseg) * (per_outer > 0 ? (double)per_outer : 1.0);
    }
    double t = work / 65536.0;
    if (job->n <= SM_ROW_CACHE && t > (double)job->rows) {
        t = (double)job->rows;
    }
    if (job->n > SM_ROW_CACHE && job->rows < limit) {
        const double segs = (double)n_segments(job->n) / 4.0;
        t = t < segs ? t : segs;
    }
    if (t > limit) {
        t = limit;
    }
    return t < 1.0 ? 1 : (int)t;
}

void
sm_run(sm_job *job)
{
    if (job->rows == 0) {
        return;
    }
    if (job->n > SM_ROW_CACHE && job->rows < job->nthreads && job->nthreads > 1) {
        for (ptrdiff_t r = 0; r < job->rows; r++) {
            split_ctx c;
            char *lse_out;
            c.job = job;
            row_at(job, r, &c.row, &lse_out);
            if (c.row.n <= SM_ROW_CACHE) {
                /* a short group among long ones: one thread is enough */
                run_row(job, &c.row, job->scratch, job->parts, lse_out);
                continue;
            }
            c.claimed = 0;
            /* the writes follow the sums at once, except for logsumexp */
            if (job->mode != SM_MODE_LSE) {
                sm_pool_run_then(task_split_sums, &c, job->nthreads);
            }
            else {
                sm_pool_run(task_split_sums, &c, job->nthreads);
            }
            double k;
            int kind =
                merge_parts(job, job->parts, n_segments(c.row.n), &c.m, &c.r_hi, &c.r_lo, &k);
            if (kind != SM_ROW_FINITE) {
                write_special(job, &c.row, kind, k, lse_out);
            }
            else if (job->mode == SM_MODE_LSE) {
                finish_row(job, &c.row, NULL, 1, c.m, c.r_hi, c.r_lo, lse_out);
            }
            else {
                c.claimed = 0;
                sm_pool_run(task_split_writes, &c, job->nthreads);
            }
        }
        return;
    }
    job->claimed = 0;
    sm_pool_run(task_rows, job, job->nthreads);
}
