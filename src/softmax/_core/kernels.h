/* Types shared by the kernels, the driver and the module glue: plain C. */
#ifndef SOFTMAX_KERNELS_H
#define SOFTMAX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* One row (or a piece of one): n elements, strides in bytes, optional mask. */
typedef struct {
    const char *x;
    char *out;
    const unsigned char *mask;   /* NULL: every entry kept */
    ptrdiff_t n;
    ptrdiff_t x_stride;
    ptrdiff_t out_stride;
    ptrdiff_t mask_stride;
} sm_row;

/*
 * The scores are y = v * |c| with v = sign(c) * x, and c = c_hi + c_lo
 * (double-double, so that temperature and base do not cost accuracy).
 */
typedef struct {
    double c_hi;
    double c_lo;
    int scaled;   /* c != 1 */
    int negate;   /* c < 0: the reference point is the minimum of x */
    /* For the log writes only, set by the driver on a row (or panel) whose
     * v - m can overflow for a finite v while |c| (v - m) is finite (|c| < 1
     * and a max near the top of the range): such lanes are taken as
     * 2 |c| (v/2 - m/2) (shift_wide). 0 everywhere else. */
    int wide_gaps;
} sm_scale;

/*
 * The frame of the fast mode's float32 softmax (kernels32.template.c): its
 * exps are formed as exp(v) 2^-K with K = round(m / ln 2) instead of as
 * exp(v - m), which needs no exact v - m (a TwoSum per element) and gives
 * the same shares (p = e / sum e for any common factor of the e);
 * log_softmax and logsumexp sum their non-maxima the same way. For an
 * unscaled row whose max is within +-SM_FRAME_MAX (so that |v| <= 349 for
 * every v whose exp is summed, down to m - 129, and k ln2 splits exactly:
 * |k| < 512). One definition for the kernels and the driver, which converts
 * the sums back to e^m where it needs them (log1p, a long row's merge).
 * Returns 1 and sets *k when the frame applies.
 */
#define SM_FRAME_MAX 220.0
static inline int
sm_frame_k(double m, const sm_scale *sc, int *k)
{
    if (sc->scaled || !(m >= -SM_FRAME_MAX && m <= SM_FRAME_MAX)) {
        return 0;
    }
    const double t = m * 1.4426950408889634; /* m / ln 2, rounded half away */
    *k = (int)(t >= 0.0 ? t + 0.5 : t - 0.5);
    return 1;
}

enum { SM_ROW_FINITE = 0, SM_ROW_NAN, SM_ROW_POSINF, SM_ROW_EMPTY };
enum { SM_F16 = 0, SM_F32 = 1, SM_F64 = 2, SM_NDTYPES = 3 };

/* Widest accumulator set of any target (lanes x unroll). */
#define SM_MAX_LANES 32

/*
 * Per-lane partial sums of exp(y) over the entries that are not an exact
 * maximum (y == 0), plus the number of exact maxima. Element j of a row
 * always lands in lane j mod lanes, whatever the row's layout.
 */
typedef struct {
    double hi[SM_MAX_LANES];
    double lo[SM_MAX_LANES];
    /* float64 terms below 2^-1022, summed scaled by 2^128 (see expsum) */
    double tiny_hi[SM_MAX_LANES];
    double tiny_lo[SM_MAX_LANES];
    double count;
} sm_acc;

/*
 * A panel of `blocks` x width neighbouring columns of a C-ordered array
 * reduced along a non-last axis (width = the target's doubles per vector):
 * column l is x[l], x[l + x_step], ... (n elements, steps in bytes), and
 * element i of all of them sits side by side in memory. The column sums
 * live in a caller's array of 4 planes (hi, lo, tiny_hi, tiny_lo, as in
 * sm_acc) of lanes x columns doubles, accumulator a of column l at
 * [plane][a][l], followed by the per-column count of maxima.
 */
typedef struct {
    const char *x;
    char *out;
    ptrdiff_t n;
    ptrdiff_t blocks;
    ptrdiff_t x_step;
    ptrdiff_t out_step;
} sm_cols;

/*
 * Short groups (offsets) run by the group kernel (sm_dtype_kernels.groups):
 * at most SM_GSHORT entries each, and at most SM_GRUN groups a call.
 */
#define SM_GSHORT 32
#define SM_GRUN 256

/* The vector kernels of one SIMD target, one entry per input dtype. */
typedef struct {
    /* v[0..pad) = sign * x with masked entries -inf, padded with -inf to a
     * multiple of `width`; *m = max of v. Returns the SM_ROW_* kind. */
    int (*load)(const sm_row *row, int negate, double *v, double *m);
    /* acc = sum of exp((v - m) c) over v[0..npad) (npad a multiple of
     * width; element j to accumulator j mod lanes), overwritten: count and lanes [0, lanes) of hi, and of lo,
     * tiny_hi, tiny_lo for float64 only; with store != 0 also v[j] = exp(...) */
    void (*expsum)(double *v, ptrdiff_t npad, double m, const sm_scale *sc, int store,
                   sm_acc *acc);
    /* out = e * (inv_hi + inv_lo) from stored e (exp == 0) or from v, m (exp == 1) */
    void (*write_p)(const double *src, int exp, double m, const sm_scale *sc,
                    double inv_hi, double inv_lo, const sm_row *row);
    /* out = (v - m) c - (l_hi + l_lo) */
    void (*write_log)(const double *v, double m, const sm_scale *sc, double l_hi,
                      double l_lo, const sm_row *row);
    /* The same steps for a panel of columns, with per-column m, inv, l:
     * m[l] = max of column l, nan[l] = 1 if it holds a NaN; */
    void (*cols_max)(const sm_cols *c, int negate, double *m, double *nan);
    /* acc = the column sums, as in sm_cols (planes unused by a dtype and
     * accumulators past n are left unwritten: read them as 0); */
    void (*cols_expsum)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                        double *acc);
    /* out = exp((v - m) c) (inv_hi + inv_lo), the exps recomputed; */
    void (*cols_write_p)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                         const double *inv_hi, const double *inv_lo);
    /* out = (v - m) c - (l_hi + l_lo) */
    void (*cols_write_log)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                           const double *l_hi, const double *l_lo);
    /* Groups g0 .. g1 - 1 (g1 - g0 <= SM_GRUN) of one row with contiguous x
     * and out: group g is the elements off[g] .. off[g + 1] - 1 of x (and of
     * out). Those of 1 .. SM_GSHORT entries whose max is finite are done
     * here, one group per vector lane: mode 0 (softmax) and 1 (log_softmax)
     * write out, mode 2 (logsumexp; out unused) sets lse[g - g0]. The others
     * (empty, long, NaN, +inf or all -inf) are left to the row path: their
     * g go to todo[] (in no particular order), and their number is returned. */
    ptrdiff_t (*groups)(const char *x, char *out, const int64_t *off, ptrdiff_t g0,
                        ptrdiff_t g1, int mode, int negate, const sm_scale *sc, double *lse,
                        ptrdiff_t *todo);
    /* Entries of groups in any order (scatter.c), npad (a multiple of
     * width) staged as v[j] = sign * x (-inf: masked or padding) beside
     * m[j], the max of v's group (0 for padding): term()'s arithmetic lane
     * by lane. gexp: e[j] = exp((v - m) c), 0 for an exact maximum (v ==
     * m, counted apart) and, float64 only, for terms below 2^-1022, which
     * go to tiny[j] scaled by 2^128 (else 0). gwrite: ob[j] (x's type) =
     * exp((v - m) c) (a_hi + a_lo), or with log (v - m) c - (a_hi + a_lo),
     * a_hi, a_lo the group's reciprocal or log-sum as a row's. */
    void (*gexp)(const double *v, const double *m, ptrdiff_t npad, const sm_scale *sc,
                 double *e, double *tiny);
    void (*gwrite)(const double *v, const double *m, const double *a_hi, const double *a_lo,
                   ptrdiff_t npad, const sm_scale *sc, int log, void *ob);
} sm_dtype_kernels;

/*
 * The row kernels in float32 lanes (kernels32.template.c) for float16 and
 * float32 input: the same three steps, without a double scratch.
 */
typedef struct {
    /* max of v = sign * x (masked entries -inf) and the SM_ROW_* kind; *src
     * is where the kernels below read v: x itself when the row is
     * contiguous, unmasked and not negated, else `stage` (n elements of
     * x's type) filled here; m == NULL: only *src (no scan, returns
     * SM_ROW_FINITE) */
    int (*load)(const sm_row *row, int negate, void *stage, const void **src, double *m);
    /* acc = sum of exp((v - m) c) over src[0..n), overwritten (acc->hi's
     * lanes32 lanes only). logs (log_softmax, logsumexp): the sum of the
     * non-maxima, acc->count counting the maxima; else (softmax) the sum of
     * every exp, acc->count 0. e != NULL (softmax): also e[j] = exp(...) */
    void (*expsum)(const void *src, ptrdiff_t n, double m, const sm_scale *sc, int logs,
                   float *e, sm_acc *acc);
    /* out = e * inv, from e (stored exps) or, e == NULL, recomputed from src */
    void (*write_p)(const void *src, const float *e, double m, const sm_scale *sc, double inv,
                    const sm_row *row);
    /* out = (v - m) c - (l_hi + l_lo) */
    void (*write_log)(const void *src, double m, const sm_scale *sc, double l_hi, double l_lo,
                      const sm_row *row);
    /* The column kernels (sm_cols with blocks of width32 columns), as in
     * sm_dtype_kernels; cols_expsum writes acc as lanes32 planes of
     * accumulators ([k][column], the sums of the non-maxima) and then the
     * per-column count of maxima, every entry. */
    void (*cols_max)(const sm_cols *c, int negate, double *m, double *nan);
    void (*cols_expsum)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                        int logs, double *acc);
    void (*cols_write_p)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                         const double *inv_hi, const double *inv_lo);
    void (*cols_write_log)(const sm_cols *c, int negate, const double *m, const sm_scale *sc,
                           const double *l_hi, const double *l_lo);
} sm_k32;

typedef struct {
    const char *name;
    int lanes;     /* accumulators per row: vector width x unroll */
    int width;     /* doubles per vector: columns per column block */
    sm_dtype_kernels k[SM_NDTYPES];
    /* out[j] = exp(y[j]): the vector exp alone, for accuracy tests */
    void (*exp)(const double *y, double *out, ptrdiff_t n);
    int lanes32;   /* float accumulators per row of the kernels below */
    int width32;   /* floats per vector: columns per column block */
    sm_k32 k32[2]; /* SM_F16, SM_F32 */
    /* out[j] = exp(y[j]) by the float32-lane exp (float arrays) */
    void (*expf)(const float *y, float *out, ptrdiff_t n);
    /* seconds for `iters` rounds of 12 independent vector FMAs of `bits`
     * bits (256 or 512; a negative result: this target has no such width) */
    double (*fma_probe)(int bits, long iters);
} sm_target;

extern const sm_target sm_target_baseline;
#if defined(SM_HAVE_AVX2)
extern const sm_target sm_target_avx2;
#endif
#if defined(SM_HAVE_AVX512)
extern const sm_target sm_target_avx512;
#endif
#if defined(SM_HAVE_NEON)
extern const sm_target sm_target_neon;
#endif

#endif
