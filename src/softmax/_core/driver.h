/* Plans and runs one softmax / log_softmax / logsumexp call: plain C. */
#ifndef SOFTMAX_DRIVER_H
#define SOFTMAX_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include "kernels.h"

#define SM_MAXDIMS 64

enum { SM_MODE_SOFTMAX = 0, SM_MODE_LOG = 1, SM_MODE_LSE = 2 };

/*
 * Rows longer than this are done in segments of SM_SEG elements with a
 * (max, sum) pair per segment (x is then read twice); shorter rows are
 * loaded once into a per-thread scratch that stays in L2.
 */
#define SM_ROW_CACHE 131072
#define SM_SEG 4096
/* Columns per panel of the column kernels at most (a multiple of every
 * width), and the bytes of x a panel should span (half of a 1 MB L2). */
#define SM_PANEL 512
#define SM_PANEL_BYTES 524288

/* The max from which the scaled log writes of a row may need shift_wide
 * (the driver's log_scale): in double lanes, in float lanes. */
#define SM_WIDE_TOP 0x1p970
#define SM_WIDE_TOP32 0x1p103

/* Per-segment partial result of a long row. */
typedef struct {
    double m;        /* max of the segment (of v = sign * x) */
    double hi, lo;   /* sum of exp((v - m) c) over the non-maxima */
    double count;    /* exact maxima (or +inf entries for an infinite max) */
    double g;        /* e^(K ln2 - m) for a segment summed in softmax's frame
                      * (sm_frame_k; hi, lo are then converted), else 1 */
    int kind;
} sm_part;

typedef struct {
    const sm_target *tg;
    int dtype;                 /* SM_F16, SM_F32, SM_F64 */
    int mode;                  /* SM_MODE_* */
    int fast;                  /* accuracy="fast": float32 lanes for float32 too */
    sm_scale sc;
    /*
     * Groups of varying length along the last axis (NULL: one row per outer
     * index, of length n): group g is the last-axis positions offsets[g] ..
     * offsets[g + 1] - 1, and the rows are then the (outer index, group)
     * pairs, row r = outer r / nseg, group r % nseg, with n the longest
     * group. The caller has checked 0 <= offsets[0] <= ... <= offsets[nseg]
     * <= the last axis's length. logsumexp writes group g of an outer row
     * at that row's out + g * seg_out_stride.
     */
    const int64_t *offsets;
    ptrdiff_t nseg;
    ptrdiff_t seg_out_stride;
    /* rows: all axes but the last, walked in C order */
    int outer_ndim;
    ptrdiff_t dims[SM_MAXDIMS];
    ptrdiff_t x_strides[SM_MAXDIMS];
    ptrdiff_t o_strides[SM_MAXDIMS];
    ptrdiff_t m_strides[SM_MAXDIMS];
    ptrdiff_t rows;
    const char *x;
    char *out;                 /* softmax: like x; logsumexp: one value per row */
    const unsigned char *mask;
    ptrdiff_t n, x_stride, out_stride, mask_stride;
    /* memory handed in by the caller (see sm_scratch_doubles / sm_parts) */
    double *scratch;           /* nthreads x sm_scratch_doubles() */
    sm_part *parts;            /* nthreads x sm_n_parts() */
    int nthreads;
    ptrdiff_t claimed;         /* sm_run's: the rows the threads have taken */
} sm_job;

ptrdiff_t sm_scratch_doubles(const sm_job *job);
ptrdiff_t sm_n_parts(const sm_job *job);
/* How many threads the job is worth (1 for small inputs), at most `limit`. */
int sm_plan_threads(const sm_job *job, int limit);
/* Runs the job on job->nthreads threads (no Python API, GIL may be released). */
void sm_run(sm_job *job);

#endif
