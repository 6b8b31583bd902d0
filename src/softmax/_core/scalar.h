/*
 * Scalar arithmetic shared by the driver (per row) and the scatter passes of
 * unsorted groups (per group): double-double sums and products, the
 * reciprocal and log1p of a row's sum, and element access by dtype code for
 * the rare paths. Plain C, static inline: each file gets its own copy.
 */
#ifndef SOFTMAX_SCALAR_H
#define SOFTMAX_SCALAR_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* ---- double-double arithmetic ------------------------------------------ */

static inline void
two_sum(double a, double b, double *s, double *e)
{
    double t = a + b;
    double z = t - a;
    *e = (a - (t - z)) + (b - z);
    *s = t;
}

static inline void
dd_add(double ah, double al, double bh, double bl, double *rh, double *rl)
{
    double s, e;
    two_sum(ah, bh, &s, &e);
    e += al + bl;
    *rh = s + e;
    *rl = e - (*rh - s);
}

static inline void
dd_mul(double ah, double al, double bh, double bl, double *rh, double *rl)
{
    double p = ah * bh;
    double e = fma(ah, bh, -p) + (ah * bl + al * bh);
    *rh = p + e;
    *rl = e - (*rh - p);
}

/* ---- a row's (or a group's) sum s = 1 + s_rest ------------------------- */

/* 1 / (1 + s_rest) as inv_hi + inv_lo */
static inline void
reciprocal(double r_hi, double r_lo, double *inv_hi, double *inv_lo)
{
    double s_hi, s_lo;
    dd_add(1.0, 0.0, r_hi, r_lo, &s_hi, &s_lo);
    *inv_hi = 1.0 / s_hi;
    const double rho = fma(-*inv_hi, s_hi, 1.0) - *inv_hi * s_lo;
    *inv_lo = *inv_hi * rho;
}

/* log(1 + s_rest), plus the first-order effect of s_rest's low part */
static inline void
log1p_dd(double r_hi, double r_lo, double *l_hi, double *l_lo)
{
    *l_hi = log1p(r_hi);
    *l_lo = r_lo / (1.0 + r_hi);
}

/* m + log1p(s_rest) = m + (l_hi + l_lo), TwoSum keeping the addition's error */
static inline double
lse_of(double m, double l_hi, double l_lo)
{
    double t, err;
    two_sum(m, l_hi, &t, &err);
    return t == HUGE_VAL ? t : t + (err + l_lo);
}

/* ---- scalar element access ------------------------------------------------ */

/* A float16's value, exactly, from its bits: integer steps, where a cast of
 * _Float16 in code built without F16C (the driver, scatter.c) is a call
 * into the compiler's soft-float library, per entry on the scatter path. */
static inline double
f16_to_double(uint16_t h)
{
    const uint64_t sign = (uint64_t)(h >> 15) << 63;
    const unsigned e = (h >> 10) & 0x1f, m = h & 0x3ff;
    uint64_t bits;
    if (e == 0x1f) {   /* inf, NaN (the payload kept) */
        bits = sign | ((uint64_t)0x7ff << 52) | ((uint64_t)m << 42);
    }
    else if (e != 0) {
        bits = sign | ((uint64_t)(e + 1008) << 52) | ((uint64_t)m << 42);
    }
    else {   /* zero and subnormals: m 2^-24, exact in double */
        const double v = (double)m * 0x1p-24;
        return sign ? -v : v;
    }
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static inline double
load1(int dtype, const char *p)
{
    switch (dtype) {
        case SM_F16: {
            uint16_t h;
            memcpy(&h, p, 2);
            return f16_to_double(h);
        }
        case SM_F32: return (double)*(const float *)p;
        default: return *(const double *)p;
    }
}

static inline void
store1(int dtype, char *p, double v)
{
    switch (dtype) {
        case SM_F16: {
            _Float16 h = (_Float16)v;
            memcpy(p, &h, 2);
            break;
        }
        case SM_F32: *(float *)p = (float)v; break;
        default: *(double *)p = v; break;
    }
}

#endif
