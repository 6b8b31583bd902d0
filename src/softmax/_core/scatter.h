/* Groups given by ids in any order, without sorting them: plain C. */
#ifndef SOFTMAX_SCATTER_H
#define SOFTMAX_SCATTER_H

#include <stddef.h>
#include <stdint.h>
#include "kernels.h"

/*
 * softmax / log_softmax / logsumexp (mode: the driver's SM_MODE_*) over the
 * groups of each row of x (rows x n entries, strides in bytes), entry i of a
 * row being in group id[i] of ng. Three passes over the entries, each
 * reaching its group's line of a per-group table (no sort, no moved copy):
 * the groups' maxima, their sums (the row path's exact maxima, TwoSum and
 * tiny terms), the writes. softmax and log write out like x; logsumexp
 * writes out[row * o_row + g * o_stride].
 *
 * Groups whose max is NaN or +inf (and, for scaled log writes, at least
 * 2^970: see the driver's log_scale) are not finished here: special[g] is
 * set to 1 for them (special: ng bytes, zeroed by the caller) and their
 * entries (or lse) are left for the caller to write by the row path; out
 * must not overlap x. Results do not depend on the thread count.
 */
typedef struct {
    const sm_target *tg;
    int dtype;
    int mode;
    sm_scale sc;
    ptrdiff_t rows, n, ng;
    const char *x;
    ptrdiff_t x_row, x_stride;
    const unsigned char *mask;   /* NULL: every entry kept */
    ptrdiff_t m_row, m_stride;
    char *out;
    ptrdiff_t o_row, o_stride;
    const int64_t *id;           /* n ids, C-contiguous */
    unsigned char *special;
} sm_scatter;

/* Runs on up to `threads` threads without the GIL. Returns 0; -1 when out
 * of memory; 1 when an id was outside [0, ng) (nothing is then trusted); 2
 * for float16/float32 rows of 2^32 entries or more (its tables count in
 * uint32: the caller sorts such groups instead). */
int sm_scatter_run(const sm_scatter *s, int threads);

#endif
