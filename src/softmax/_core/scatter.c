/*
 * Groups given by ids in any order (segment_* with unsorted segment_ids),
 * without sorting the entries: each pass walks the entries in their own
 * order and reaches its group's record in a per-group table. Sorting would
 * move every entry to a random place and back (two random passes over the
 * entries, plus the sort's own); the tables here are a few bytes per group
 * and their lines are asked for a few entries ahead.
 *
 * 1. max: each part of the entries (one per thread) keeps the maxima of its
 *    groups; the parts' tables are merged (max is exact in any order).
 * 2. sums: the row path's arithmetic (term(): exact maxima counted apart,
 *    TwoSum for float64, tiny terms scaled) lane by lane by the gexp kernel,
 *    each term added to its group's record. Two fixed parts of the entries
 *    at most, summed apart and merged in order: the bits do not depend on
 *    the thread count.
 * 3. writes: the gwrite kernel, each entry with its group's reciprocal
 *    (softmax) or log-sum (log_softmax); logsumexp is written per group.
 * Plain C; no Python API.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "memory.h"
#include "scalar.h"
#include "scatter.h"
#include "threads.h"

#define SC_BLOCK 256          /* entries staged for a kernel call (whole vectors of any target) */
#define SC_AHEAD 32           /* a record is asked for this many entries before it is used */
#define SC_POOL_MIN 65536     /* fewer entries: one thread (waking one costs more) */

/*
 * A group's record in a part's table of the sum pass, within one cache
 * line (the tables are 64-byte aligned). float64: 4 doubles, the sum and
 * its error (R_HI, R_LO), the max and the count of maxima; the rare tiny
 * terms (below 2^-1022) go to a table of their own. float32 and float16:
 * 16 bytes, the sum, then the max as a float (exact: it is one of the
 * scores) and the count as a uint32 (a row holds fewer than 2^32 entries:
 * sm_scatter_run refuses more), so that a table of 10^5 groups stays near
 * the size of L2 (separate tables of the maxima and the sums, each smaller,
 * measured slower: two lines an entry). After the merge, part 0's record
 * holds the group's reciprocal or log-sum in R_HI (and R_LO) for the writes.
 */
enum { R_HI = 0, R_LO = 1, R_M = 2, R_CNT = 3 };

static inline double
rec_m(const double *r, int dd)
{
    if (dd) {
        return r[R_M];
    }
    float m;
    memcpy(&m, r + 1, sizeof m);
    return (double)m;
}

static inline void
rec_init(double *r, int dd, double m)
{
    if (dd) {
        r[R_HI] = r[R_LO] = r[R_CNT] = 0.0;
        r[R_M] = m;
        return;
    }
    const float mf = (float)m;
    const uint32_t zero = 0;
    r[R_HI] = 0.0;
    memcpy(r + 1, &mf, sizeof mf);
    memcpy((char *)(r + 1) + 4, &zero, sizeof zero);
}

static inline double
rec_count(const double *r, int dd)
{
    if (dd) {
        return r[R_CNT];
    }
    uint32_t k;
    memcpy(&k, (const char *)(r + 1) + 4, sizeof k);
    return (double)k;
}

static inline void
rec_count_add(double *r, int dd, int top)
{
    if (dd) {
        r[R_CNT] += (double)top;
        return;
    }
    uint32_t k;
    memcpy(&k, (char *)(r + 1) + 4, sizeof k);
    k += (uint32_t)top;
    memcpy((char *)(r + 1) + 4, &k, sizeof k);
}

typedef struct {
    const sm_scatter *s;
    const char *x;                /* the current row's */
    const unsigned char *mask;
    char *out;
    int p1, p2, p3;               /* parts of the max, sum and write passes */
    ptrdiff_t rec;                /* doubles per record */
    double *sums;                 /* p2 x ng records */
    double *tinies;               /* float64: p2 x ng x 2, the tiny terms' hi, lo */
    double *maxes;                /* p1 x ng */
    int bad[SM_MAX_THREADS];      /* an id out of range, per thread */
} sc_ctx;

/* v = sign * x[i] of the current row, -inf where masked out; inlined into
 * each pass with dtype and masked constant (SC_SPECIALIZE), so the loops
 * carry no branch on either */
static inline __attribute__((always_inline)) double
entry(const char *x, ptrdiff_t xs, const unsigned char *mask, ptrdiff_t ms, ptrdiff_t i,
      double sign, const int dtype, const int masked)
{
    if (masked && !mask[i * ms]) {
        return -HUGE_VAL;
    }
    return sign * load1(dtype, x + i * xs);
}

/* calls fn(..., dtype, masked) with both as constants */
#define SC_SPECIALIZE(dtype, masked, fn, ...)                                  \
    do {                                                                       \
        switch ((dtype) * 2 + ((masked) != 0)) {                               \
            case SM_F16 * 2: fn(__VA_ARGS__, SM_F16, 0); break;                \
            case SM_F16 * 2 + 1: fn(__VA_ARGS__, SM_F16, 1); break;            \
            case SM_F32 * 2: fn(__VA_ARGS__, SM_F32, 0); break;                \
            case SM_F32 * 2 + 1: fn(__VA_ARGS__, SM_F32, 1); break;            \
            case SM_F64 * 2: fn(__VA_ARGS__, SM_F64, 0); break;                \
            default: fn(__VA_ARGS__, SM_F64, 1); break;                        \
        }                                                                      \
    } while (0)

/* a group whose entries the sums and writes take: finite max (NaN fails both) */
static inline int
finite_max(double m)
{
    return m > -HUGE_VAL && m < HUGE_VAL;
}

/* the maxima of entries i0 .. i1 - 1 into M; *bad set if an id is out of range */
static inline __attribute__((always_inline)) void
max_range(const sc_ctx *c, double *M, ptrdiff_t i0, ptrdiff_t i1, int *bad, const int dtype,
          const int masked)
{
    const sm_scatter *s = c->s;
    const char *x = c->x;
    const unsigned char *mask = c->mask;
    const ptrdiff_t xs = s->x_stride, ms = s->m_stride;
    const int64_t *id = s->id;
    const uint64_t ng = (uint64_t)s->ng;
    const double sign = s->sc.negate ? -1.0 : 1.0;
    int out_of_range = 0, nan = 0;
    for (ptrdiff_t i = i0; i < i1; i++) {
        const uint64_t g = (uint64_t)id[i];
        if (g >= ng) {
            out_of_range = 1;
            continue;
        }
        /* a select, not a branch (scores in random order), which a NaN
         * passes by: NaN entries are rare, and found again below */
        const double v = entry(x, xs, mask, ms, i, sign, dtype, masked), mo = M[g];
        M[g] = v > mo ? v : mo;
        nan |= v != v;
    }
    for (ptrdiff_t i = i0; nan && i < i1; i++) {
        const uint64_t g = (uint64_t)id[i];
        const double v = entry(x, xs, mask, ms, i, sign, dtype, masked);
        if (g < ng && v != v) {
            M[g] = NAN;   /* the merge keeps it */
        }
    }
    *bad |= out_of_range;
}

static void
max_task(void *arg, int tid, int nt)
{
    sc_ctx *c = arg;
    const sm_scatter *s = c->s;
    for (int p = tid; p < c->p1; p += nt) {
        double *M = c->maxes + (ptrdiff_t)p * s->ng;
        for (ptrdiff_t g = 0; g < s->ng; g++) {
            M[g] = -HUGE_VAL;
        }
        const ptrdiff_t i0 = sm_part_bound(s->n, p, c->p1), i1 = sm_part_bound(s->n, p + 1, c->p1);
        SC_SPECIALIZE(s->dtype, c->mask != NULL, max_range, c, M, i0, i1, &c->bad[tid]);
    }
}

/* Scaled log writes of a max this large are the driver's (log_scale). */
static inline int
wide_logs(const sm_scatter *s, double m)
{
    const sm_scale *sc = &s->sc;
    return s->mode == SM_MODE_LOG && sc->scaled &&
           (sc->c_hi < 1.0 || (sc->c_hi == 1.0 && sc->c_lo < 0.0)) && m >= SM_WIDE_TOP;
}

static void
merge_max_task(void *arg, int tid, int nt)
{
    sc_ctx *c = arg;
    const sm_scatter *s = c->s;
    const ptrdiff_t ng = s->ng;
    const ptrdiff_t g1 = sm_part_bound(ng, tid + 1, nt);
    for (ptrdiff_t g = sm_part_bound(ng, tid, nt); g < g1; g++) {
        double m = c->maxes[g];
        for (int p = 1; p < c->p1; p++) {
            const double b = c->maxes[(ptrdiff_t)p * ng + g];
            if (m == m && (b > m || b != b)) {
                m = b;
            }
        }
        /* NaN, +inf: the row path's special rows, left to the caller */
        if (m != m || m == HUGE_VAL || wide_logs(s, m)) {
            s->special[g] = 1;
            m = NAN;
        }
        for (int q = 0; q < c->p2; q++) {
            rec_init(c->sums + ((ptrdiff_t)q * ng + g) * c->rec, c->tinies != NULL, m);
            if (c->tinies != NULL) {
                double *tt = c->tinies + ((ptrdiff_t)q * ng + g) * 2;
                tt[0] = tt[1] = 0.0;
            }
        }
    }
}

/* Entries b .. b + len - 1 staged for the kernels: v, and m (and, for the
 * writes, a_hi, a_lo) of their group from table T; the records' addresses
 * in rp (sums only). An entry whose group has no finite max stays -inf
 * against 0 (nothing summed, 0 or -inf written); an id changed since the
 * max pass (another thread's write) is out of range at worst, and its
 * entry goes the same way, to a sink. Returns len padded to whole vectors. */
static inline __attribute__((always_inline)) ptrdiff_t
stage(const sc_ctx *c, const double *T, ptrdiff_t b, ptrdiff_t len, ptrdiff_t i1, double *v,
      double *mm, double **rp, double *sink, double *ah, double *al, const int dtype,
      const int masked)
{
    const sm_scatter *s = c->s;
    const char *x = c->x;
    const unsigned char *mask = c->mask;
    const ptrdiff_t xs = s->x_stride, ms = s->m_stride, rec = c->rec;
    const int64_t *id = s->id;
    const uint64_t ng = (uint64_t)s->ng;
    const double sign = s->sc.negate ? -1.0 : 1.0;
    for (ptrdiff_t k = 0; k < len; k++) {
        const ptrdiff_t i = b + k;
        if (i + SC_AHEAD < i1) {
            const uint64_t ga = (uint64_t)id[i + SC_AHEAD];
            if (ga < ng) {
                __builtin_prefetch(T + (ptrdiff_t)ga * rec, rp != NULL);
            }
        }
        const uint64_t g = (uint64_t)id[i];
        const double *r = g < ng ? T + (ptrdiff_t)g * rec : sink;
        const double mg = rec_m(r, dtype == SM_F64);
        const int take = finite_max(mg);
        v[k] = take ? entry(x, xs, mask, ms, i, sign, dtype, masked) : -HUGE_VAL;
        mm[k] = take ? mg : 0.0;
        if (rp != NULL) {
            rp[k] = (double *)r;
        }
        else {
            ah[k] = take ? r[R_HI] : 0.0;
            al[k] = take && dtype == SM_F64 ? r[R_LO] : 0.0;
        }
    }
    const ptrdiff_t w = s->tg->width, npad = (len + w - 1) / w * w;
    for (ptrdiff_t k = len; k < npad; k++) {
        v[k] = -HUGE_VAL;
        mm[k] = 0.0;
        if (rp == NULL) {
            ah[k] = al[k] = 0.0;
        }
    }
    return npad;
}

#define SC_STAGE(c, T, b, len, i1, v, mm, rp, sink, ah, al, npad)                          \
    SC_SPECIALIZE((c)->s->dtype, (c)->mask != NULL, npad = stage, c, T, b, len, i1, v, mm, rp, \
                  sink, ah, al)

static void
sum_task(void *arg, int tid, int nt)
{
    sc_ctx *c = arg;
    const sm_scatter *s = c->s;
    const sm_dtype_kernels *K = &s->tg->k[s->dtype];
    const int dd = s->dtype == SM_F64;
    double v[SC_BLOCK], mm[SC_BLOCK], e[SC_BLOCK], tiny[SC_BLOCK];
    double *rp[SC_BLOCK];
    /* the sink: a record whose max is NaN (nothing summed from it counts) */
    double sink[8];
    rec_init(sink, dd, NAN);
    for (int q = tid; q < c->p2; q += nt) {
        double *T = c->sums + (ptrdiff_t)q * s->ng * c->rec;
        const ptrdiff_t i0 = sm_part_bound(s->n, q, c->p2), i1 = sm_part_bound(s->n, q + 1, c->p2);
        for (ptrdiff_t b = i0; b < i1; b += SC_BLOCK) {
            const ptrdiff_t len = i1 - b < SC_BLOCK ? i1 - b : SC_BLOCK;
            ptrdiff_t npad;
            SC_STAGE(c, T, b, len, i1, v, mm, rp, sink, NULL, NULL, npad);
            K->gexp(v, mm, npad, &s->sc, e, tiny);
            for (ptrdiff_t k = 0; k < len; k++) {
                double *r = rp[k];
                rec_count_add(r, dd, v[k] == mm[k]);
                if (dd) {
                    double t, err;
                    two_sum(r[R_HI], e[k], &t, &err);
                    r[R_HI] = t;
                    r[R_LO] += err;
                    if (tiny[k] != 0.0) {   /* rare: in a table of their own */
                        double *tt = c->tinies + ((ptrdiff_t)q * s->ng + (r - T) / c->rec) * 2;
                        two_sum(tt[0], tiny[k], &t, &err);
                        tt[0] = t;
                        tt[1] += err;
                    }
                }
                else {
                    r[R_HI] += e[k];
                }
            }
        }
    }
}

/* The parts' sums of each group merged in part order, then (as the driver
 * finishes a row) the reciprocal or the log-sum into part 0's record, or
 * the group's logsumexp into out. */
static void
merge_sum_task(void *arg, int tid, int nt)
{
    sc_ctx *c = arg;
    const sm_scatter *s = c->s;
    const ptrdiff_t ng = s->ng, rec = c->rec;
    const int dd = s->dtype == SM_F64;
    const ptrdiff_t g1 = sm_part_bound(ng, tid + 1, nt);
    for (ptrdiff_t g = sm_part_bound(ng, tid, nt); g < g1; g++) {
        double *r0 = c->sums + g * rec;
        const double m = rec_m(r0, dd);
        char *lse_out = c->out + g * s->o_stride;
        if (!finite_max(m)) {
            /* empty, all -inf or masked: logsumexp -inf (the writes give
             * such a group's entries 0, log -inf); NaN marks a group left
             * to the caller (its entries are written 0 or -inf too) */
            if (s->mode == SM_MODE_LSE) {
                store1(s->dtype, lse_out, m == -HUGE_VAL ? m : NAN);
            }
            continue;
        }
        double cnt = rec_count(r0, dd), hi = r0[R_HI], lo = 0.0;
        if (dd) {
            double comp = r0[R_LO], tiny = c->tinies[g * 2] + c->tinies[g * 2 + 1];
            for (int q = 1; q < c->p2; q++) {
                const double *r = c->sums + ((ptrdiff_t)q * ng + g) * rec;
                double err;
                two_sum(hi, r[R_HI], &hi, &err);
                comp += err + r[R_LO];
                tiny += c->tinies[((ptrdiff_t)q * ng + g) * 2] +
                        c->tinies[((ptrdiff_t)q * ng + g) * 2 + 1];
                cnt += rec_count(r, dd);
            }
            if (tiny != 0.0) {
                /* one rounding, at the real quantum, for all the subnormal terms */
                comp += ldexp(tiny, -128);
            }
            const double s_hi = hi + comp;
            lo = comp - (s_hi - hi);
            hi = s_hi;
        }
        else {
            for (int q = 1; q < c->p2; q++) {
                const double *r = c->sums + ((ptrdiff_t)q * ng + g) * rec;
                hi += r[R_HI];
                cnt += rec_count(r, dd);
            }
        }
        double r_hi, r_lo, a_hi, a_lo;
        dd_add(cnt - 1.0, 0.0, hi, lo, &r_hi, &r_lo);
        if (s->mode == SM_MODE_SOFTMAX) {
            reciprocal(r_hi, r_lo, &a_hi, &a_lo);
        }
        else {
            log1p_dd(r_hi, r_lo, &a_hi, &a_lo);
            if (s->mode == SM_MODE_LSE) {
                store1(s->dtype, lse_out, lse_of(m, a_hi, a_lo));
                continue;
            }
        }
        r0[R_HI] = a_hi;
        if (dd) {
            r0[R_LO] = a_lo;
        }
    }
}

static void
write_task(void *arg, int tid, int nt)
{
    sc_ctx *c = arg;
    const sm_scatter *s = c->s;
    const sm_dtype_kernels *K = &s->tg->k[s->dtype];
    const size_t isz = s->dtype == SM_F16 ? 2 : s->dtype == SM_F32 ? 4 : 8;
    const int contig = s->o_stride == (ptrdiff_t)isz;
    double v[SC_BLOCK], mm[SC_BLOCK], ah[SC_BLOCK], al[SC_BLOCK];
    double ob[SC_BLOCK];   /* the block's results in x's type (8 bytes an entry at most) */
    double sink[8];
    rec_init(sink, s->dtype == SM_F64, NAN);
    for (int p = tid; p < c->p3; p += nt) {
        const ptrdiff_t i0 = sm_part_bound(s->n, p, c->p3), i1 = sm_part_bound(s->n, p + 1, c->p3);
        for (ptrdiff_t b = i0; b < i1; b += SC_BLOCK) {
            const ptrdiff_t len = i1 - b < SC_BLOCK ? i1 - b : SC_BLOCK;
            ptrdiff_t npad;
            SC_STAGE(c, c->sums, b, len, i1, v, mm, NULL, sink, ah, al, npad);
            K->gwrite(v, mm, ah, al, npad, &s->sc, s->mode == SM_MODE_LOG, ob);
            if (contig) {
                memcpy(c->out + b * (ptrdiff_t)isz, ob, (size_t)len * isz);
            }
            else {
                for (ptrdiff_t k = 0; k < len; k++) {
                    memcpy(c->out + (b + k) * s->o_stride, (const char *)ob + k * (ptrdiff_t)isz,
                           isz);
                }
            }
        }
    }
}

int
sm_scatter_run(const sm_scatter *s, int threads)
{
    if (s->ng == 0) {
        return 0;   /* no groups: no entries either (every id is out of range) */
    }
    if (s->dtype != SM_F64 && (uint64_t)s->n >= ((uint64_t)1 << 32)) {
        return 2;   /* the float16/float32 records count in uint32 */
    }
    sc_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    const int nt = s->n >= SC_POOL_MIN && threads > 1 ? threads : 1;
    c.p1 = c.p3 = nt;
    /* the sums' parts depend on the input only, never on the threads */
    c.p2 = s->n >= SC_POOL_MIN && s->ng <= s->n / 4 ? 2 : 1;
    const int dd = s->dtype == SM_F64;
    c.rec = dd ? 4 : 2;
    /* one block for the tables, 64-byte aligned, the records first; from the
     * kept blocks (memory.c): a fresh one costs its page faults each call */
    const size_t sums = (size_t)c.p2 * (size_t)s->ng * (size_t)c.rec;
    const size_t tinies = dd ? (size_t)c.p2 * (size_t)s->ng * 2 : 0;
    c.sums = sm_block_malloc((sums + tinies + (size_t)c.p1 * (size_t)s->ng) * sizeof(double));
    if (c.sums == NULL) {
        return -1;
    }
    c.tinies = dd ? c.sums + sums : NULL;
    c.maxes = c.sums + sums + tinies;
    int rc = 0;
    for (ptrdiff_t row = 0; row < s->rows && rc == 0; row++) {
        c.x = s->x + row * s->x_row;
        c.mask = s->mask != NULL ? s->mask + row * s->m_row : NULL;
        c.out = s->out + row * s->o_row;
        sm_pool_run_then(max_task, &c, c.p1);
        for (int t = 0; t < nt; t++) {
            rc |= c.bad[t];
        }
        if (rc != 0) {
            break;
        }
        sm_pool_run_then(merge_max_task, &c, nt);
        sm_pool_run_then(sum_task, &c, nt < c.p2 ? nt : c.p2);
        if (s->mode != SM_MODE_LSE) {
            sm_pool_run_then(merge_sum_task, &c, nt);
        }
        else {
            sm_pool_run(merge_sum_task, &c, nt);
        }
        if (s->mode != SM_MODE_LSE) {
            sm_pool_run(write_task, &c, c.p3);
        }
    }
    sm_block_free(c.sums);
    return rc;
}
