/* Row kernels of the softmax core: plain C, no Python API. */
#ifndef SOFTMAX_KERNELS_H
#define SOFTMAX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* One row: n elements, strides in bytes (64-bit), an optional byte mask. */
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
} sm_scale;

enum { SM_ROW_FINITE = 0, SM_ROW_NAN, SM_ROW_POSINF, SM_ROW_EMPTY };

void sm_softmax_row_f32(const sm_row *row, const sm_scale *sc, int log_mode);
void sm_softmax_row_f64(const sm_row *row, const sm_scale *sc, int log_mode);
void sm_logsumexp_row_f32(const sm_row *row, double *out_hi, double *out_lo);
void sm_logsumexp_row_f64(const sm_row *row, double *out_hi, double *out_lo);

#endif
