/*
 * The vector layer of the kernels: one small set of operations on vectors
 * of doubles (vd), their 64-bit integer view (vi) and lane masks (vb), for
 * exactly one target, chosen by the includer:
 *
 *   SM_TARGET_AVX512    8 lanes, AVX-512F (+ FMA, F16C)
 *   SM_TARGET_AVX2      4 lanes, AVX2 + FMA + F16C
 *   SM_TARGET_NEON      2 lanes, AArch64 Advanced SIMD (always has FMA)
 *   SM_TARGET_BASELINE  1 lane, plain C (x86-64 SSE2 or anything else)
 *
 * Everything above this layer (the exp below, kernels.template.c) is written
 * once against these names. All arithmetic is lane-wise IEEE double, so a
 * lane's result never depends on which other values share its vector: that
 * is what makes strided and contiguous rows give the same bits.
 */
#ifndef SOFTMAX_SIMD_H
#define SOFTMAX_SIMD_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(SM_TARGET_AVX512)
/* ------------------------------------------------------------------ */
#include <immintrin.h>
#define SM_W 8
#define SM_TARGET_NAME "avx512"
typedef __m512d vd;
typedef __m512i vi;
typedef __mmask8 vb;

static inline vd vd_set1(double a) { return _mm512_set1_pd(a); }
static inline vd vd_load(const double *p) { return _mm512_loadu_pd(p); }
static inline void vd_store(double *p, vd a) { _mm512_storeu_pd(p, a); }
static inline vd vd_add(vd a, vd b) { return _mm512_add_pd(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm512_sub_pd(a, b); }
static inline vd vd_mul(vd a, vd b) { return _mm512_mul_pd(a, b); }
static inline vd vd_div(vd a, vd b) { return _mm512_div_pd(a, b); }
static inline vd vd_fma(vd a, vd b, vd c) { return _mm512_fmadd_pd(a, b, c); }
#define vd_fmaf vd_fma
static inline vd vd_fnmaf(vd a, vd b, vd c) { return _mm512_fnmadd_pd(a, b, c); }
static inline vd vd_max(vd a, vd b) { return _mm512_max_pd(a, b); }
static inline vd vd_abs(vd a) { return _mm512_abs_pd(a); }
static inline vd vd_select(vb m, vd t, vd f) { return _mm512_mask_blend_pd(m, f, t); }
static inline vb vd_lt(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
static inline vb vd_eq(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
static inline vb vd_unord(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q); }
static inline vb vb_or(vb a, vb b) { return (vb)(a | b); }
static inline vb vb_and(vb a, vb b) { return (vb)(a & b); }
static inline vb vb_not(vb a) { return (vb)~a; }
/* m ? a + b : a, lane by lane */
static inline vd vd_add_masked(vb m, vd a, vd b) { return _mm512_mask_add_pd(a, m, a, b); }
static inline int vb_any(vb a) { return a != 0; }
static inline vi vd_bits(vd a) { return _mm512_castpd_si512(a); }
static inline vd vi_bits(vi a) { return _mm512_castsi512_pd(a); }
static inline vi vi_add(vi a, vi b) { return _mm512_add_epi64(a, b); }
static inline vi vi_shl48(vi a) { return _mm512_slli_epi64(a, 48); }
static inline vi vi_select(vb m, vi t, vi f) { return _mm512_mask_blend_epi64(m, f, t); }
static inline vi vi_set1(int64_t a) { return _mm512_set1_epi64(a); }

/* 16-entry table lookups by the low 4 bits of k: two permutes, no memory */
typedef struct { __m512i b0, b1; __m512d t0, t1; } sm_exp_table;
static inline sm_exp_table
sm_table_load(const uint64_t *bits, const double *tail)
{
    sm_exp_table t;
    t.b0 = _mm512_loadu_si512((const void *)bits);
    t.b1 = _mm512_loadu_si512((const void *)(bits + 8));
    t.t0 = _mm512_loadu_pd(tail);
    t.t1 = _mm512_loadu_pd(tail + 8);
    return t;
}
static inline vi sm_lookup_bits(const sm_exp_table *t, vi k)
{ return _mm512_permutex2var_epi64(t->b0, k, t->b1); }
static inline vd sm_lookup_tail(const sm_exp_table *t, vi k)
{ return _mm512_permutex2var_pd(t->t0, k, t->t1); }

static inline vd vd_load_f32(const float *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
static inline void vd_store_f32(float *p, vd a) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(a)); }
static inline vd vd_load_f16(const uint16_t *p)
{ return _mm512_cvtps_pd(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p))); }
/* double -> float16 correctly rounded: round to odd in float32 (24 bits >=
 * 11 + 2, so the second rounding cannot double-round), then RNE to half.
 * Round to odd: truncate, then set the last bit where that was inexact. */
static inline void vd_store_f16(uint16_t *p, vd a)
{
    __m256 f = _mm512_cvt_roundpd_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 inexact = (__mmask16)_mm512_cmp_pd_mask(_mm512_cvtps_pd(f), a, _CMP_NEQ_UQ);
    __m512i fb = _mm512_castsi256_si512(_mm256_castps_si256(f));
    fb = _mm512_mask_or_epi32(fb, inexact, fb, _mm512_set1_epi32(1));
    __m128i h = _mm256_cvtps_ph(_mm256_castsi256_ps(_mm512_castsi512_si256(fb)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128((__m128i *)p, h);
}

#elif defined(SM_TARGET_AVX2)
/* ------------------------------------------------------------------ */
#include <immintrin.h>
#define SM_W 4
#define SM_TARGET_NAME "avx2"
typedef __m256d vd;
typedef __m256i vi;
typedef __m256d vb;

static inline vd vd_set1(double a) { return _mm256_set1_pd(a); }
static inline vd vd_load(const double *p) { return _mm256_loadu_pd(p); }
static inline void vd_store(double *p, vd a) { _mm256_storeu_pd(p, a); }
static inline vd vd_add(vd a, vd b) { return _mm256_add_pd(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm256_sub_pd(a, b); }
static inline vd vd_mul(vd a, vd b) { return _mm256_mul_pd(a, b); }
static inline vd vd_div(vd a, vd b) { return _mm256_div_pd(a, b); }
static inline vd vd_fma(vd a, vd b, vd c) { return _mm256_fmadd_pd(a, b, c); }
#define vd_fmaf vd_fma
static inline vd vd_fnmaf(vd a, vd b, vd c) { return _mm256_fnmadd_pd(a, b, c); }
static inline vd vd_max(vd a, vd b) { return _mm256_max_pd(a, b); }
static inline vd vd_abs(vd a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
static inline vd vd_select(vb m, vd t, vd f) { return _mm256_blendv_pd(f, t, m); }
static inline vb vd_lt(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
static inline vb vd_eq(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
static inline vb vd_unord(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
static inline vb vb_or(vb a, vb b) { return _mm256_or_pd(a, b); }
static inline vb vb_and(vb a, vb b) { return _mm256_and_pd(a, b); }
static inline vb vb_not(vb a) { return _mm256_xor_pd(a, _mm256_castsi256_pd(_mm256_set1_epi64x(-1))); }
static inline vd vd_add_masked(vb m, vd a, vd b) { return _mm256_add_pd(a, _mm256_and_pd(m, b)); }
static inline int vb_any(vb a) { return _mm256_movemask_pd(a) != 0; }
static inline vi vd_bits(vd a) { return _mm256_castpd_si256(a); }
static inline vd vi_bits(vi a) { return _mm256_castsi256_pd(a); }
static inline vi vi_add(vi a, vi b) { return _mm256_add_epi64(a, b); }
static inline vi vi_shl48(vi a) { return _mm256_slli_epi64(a, 48); }
static inline vi vi_shl52(vi a) { return _mm256_slli_epi64(a, 52); }
/* a gather costs Zen 3 as much as the rest of the lighter exp: it goes without a table */
#define SM_EXP_LITE_NO_TABLE 1
static inline vi vi_select(vb m, vi t, vi f)
{ return _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(f), _mm256_castsi256_pd(t), m)); }
static inline vi vi_set1(int64_t a) { return _mm256_set1_epi64x(a); }

/* 16-entry table lookups: gathers from the (L1-resident) tables */
typedef struct { const long long *bits; const double *tail; } sm_exp_table;
static inline sm_exp_table
sm_table_load(const uint64_t *bits, const double *tail)
{
    sm_exp_table t = {(const long long *)bits, tail};
    return t;
}
static inline vi sm_lookup_bits(const sm_exp_table *t, vi k)
{ return _mm256_i64gather_epi64(t->bits, _mm256_and_si256(k, _mm256_set1_epi64x(15)), 8); }
static inline vd sm_lookup_tail(const sm_exp_table *t, vi k)
{ return _mm256_i64gather_pd(t->tail, _mm256_and_si256(k, _mm256_set1_epi64x(15)), 8); }

static inline vd vd_load_f32(const float *p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
static inline void vd_store_f32(float *p, vd a) { _mm_storeu_ps(p, _mm256_cvtpd_ps(a)); }
static inline vd vd_load_f16(const uint16_t *p)
{ return _mm256_cvtps_pd(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)p))); }
/* round to odd in float32, then RNE to half (see the AVX-512 version) */
static inline __m128i sm_narrow_mask(vb m)
{
    return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
        _mm256_castpd_si256(m), _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}
static inline void vd_store_f16(uint16_t *p, vd a)
{
    __m128 f = _mm256_cvtpd_ps(a);
    vd back = _mm256_cvtps_pd(f);
    __m128i inexact = sm_narrow_mask(_mm256_cmp_pd(back, a, _CMP_NEQ_UQ));
    __m128i away = sm_narrow_mask(_mm256_cmp_pd(vd_abs(back), vd_abs(a), _CMP_GT_OQ));
    __m128i fb = _mm_or_si128(_mm_add_epi32(_mm_castps_si128(f), away),
                              _mm_srli_epi32(inexact, 31));
    __m128i h = _mm_cvtps_ph(_mm_castsi128_ps(fb), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storel_epi64((__m128i *)p, h);
}

#elif defined(SM_TARGET_NEON)
/* ------------------------------------------------------------------ */
/* Compiled on AArch64 only; not exercised by this project's x86-64 CI. */
#include <arm_neon.h>
#define SM_W 2
#define SM_TARGET_NAME "neon"
typedef float64x2_t vd;
typedef int64x2_t vi;
typedef uint64x2_t vb;

static inline vd vd_set1(double a) { return vdupq_n_f64(a); }
static inline vd vd_load(const double *p) { return vld1q_f64(p); }
static inline void vd_store(double *p, vd a) { vst1q_f64(p, a); }
static inline vd vd_add(vd a, vd b) { return vaddq_f64(a, b); }
static inline vd vd_sub(vd a, vd b) { return vsubq_f64(a, b); }
static inline vd vd_mul(vd a, vd b) { return vmulq_f64(a, b); }
static inline vd vd_div(vd a, vd b) { return vdivq_f64(a, b); }
static inline vd vd_fma(vd a, vd b, vd c) { return vfmaq_f64(c, a, b); }
#define vd_fmaf vd_fma
static inline vd vd_fnmaf(vd a, vd b, vd c) { return vfmsq_f64(c, a, b); }
static inline vd vd_max(vd a, vd b) { return vmaxnmq_f64(a, b); }
static inline vd vd_abs(vd a) { return vabsq_f64(a); }
static inline vd vd_select(vb m, vd t, vd f) { return vbslq_f64(m, t, f); }
static inline vb vd_lt(vd a, vd b) { return vcltq_f64(a, b); }
static inline vb vd_eq(vd a, vd b) { return vceqq_f64(a, b); }
static inline vb vd_unord(vd a, vd b)
{ return veorq_u64(vandq_u64(vceqq_f64(a, a), vceqq_f64(b, b)), vdupq_n_u64(~0ULL)); }
static inline vb vb_or(vb a, vb b) { return vorrq_u64(a, b); }
static inline vb vb_and(vb a, vb b) { return vandq_u64(a, b); }
static inline vb vb_not(vb a) { return veorq_u64(a, vdupq_n_u64(~0ULL)); }
static inline vd vd_add_masked(vb m, vd a, vd b)
{ return vaddq_f64(a, vreinterpretq_f64_u64(vandq_u64(m, vreinterpretq_u64_f64(b)))); }
static inline int vb_any(vb a) { return (vgetq_lane_u64(a, 0) | vgetq_lane_u64(a, 1)) != 0; }
static inline vi vd_bits(vd a) { return vreinterpretq_s64_f64(a); }
static inline vd vi_bits(vi a) { return vreinterpretq_f64_s64(a); }
static inline vi vi_add(vi a, vi b) { return vaddq_s64(a, b); }
static inline vi vi_shl48(vi a) { return vshlq_n_s64(a, 48); }
static inline vi vi_select(vb m, vi t, vi f) { return vbslq_s64(m, t, f); }
static inline vi vi_set1(int64_t a) { return vdupq_n_s64(a); }

typedef struct { const int64_t *bits; const double *tail; } sm_exp_table;
static inline sm_exp_table
sm_table_load(const uint64_t *bits, const double *tail)
{
    sm_exp_table t = {(const int64_t *)bits, tail};
    return t;
}
static inline vi sm_lookup_bits(const sm_exp_table *t, vi k)
{
    int64_t a = t->bits[vgetq_lane_s64(k, 0) & 15], b = t->bits[vgetq_lane_s64(k, 1) & 15];
    return vcombine_s64(vcreate_s64((uint64_t)a), vcreate_s64((uint64_t)b));
}
static inline vd sm_lookup_tail(const sm_exp_table *t, vi k)
{
    double a = t->tail[vgetq_lane_s64(k, 0) & 15], b = t->tail[vgetq_lane_s64(k, 1) & 15];
    return vcombine_f64(vdup_n_f64(a), vdup_n_f64(b));
}

static inline vd vd_load_f32(const float *p) { return vcvt_f64_f32(vld1_f32(p)); }
static inline void vd_store_f32(float *p, vd a) { vst1_f32(p, vcvt_f32_f64(a)); }
static inline vd vd_load_f16(const uint16_t *p)
{
    float16x4_t h = vreinterpret_f16_u16(vcreate_u16((uint64_t)p[0] | ((uint64_t)p[1] << 16)));
    return vcvt_f64_f32(vget_low_f32(vcvt_f32_f16(h)));
}
/* FCVTXN rounds double -> float32 to odd, so the half rounding is exact-once */
static inline void vd_store_f16(uint16_t *p, vd a)
{
    float32x2_t f = vcvtx_f32_f64(a);
    float16x4_t h = vcvt_f16_f32(vcombine_f32(f, f));
    uint16x4_t u = vreinterpret_u16_f16(h);
    p[0] = vget_lane_u16(u, 0);
    p[1] = vget_lane_u16(u, 1);
}

#elif defined(SM_TARGET_BASELINE)
/* ------------------------------------------------------------------ */
#define SM_W 1
#define SM_TARGET_NAME "baseline"
typedef double vd;
typedef int64_t vi;
typedef int vb;

static inline vd vd_set1(double a) { return a; }
static inline vd vd_load(const double *p) { return *p; }
static inline void vd_store(double *p, vd a) { *p = a; }
static inline vd vd_add(vd a, vd b) { return a + b; }
static inline vd vd_sub(vd a, vd b) { return a - b; }
static inline vd vd_mul(vd a, vd b) { return a * b; }
static inline vd vd_div(vd a, vd b) { return a / b; }
/* libm's fma: correctly rounded everywhere (in hardware where the CPU has
 * it, in software otherwise), so the exact error terms stay exact */
static inline vd vd_fma(vd a, vd b, vd c) { return fma(a, b, c); }
/* where one more rounding is harmless (polynomials), skip the libm call */
static inline vd vd_fmaf(vd a, vd b, vd c) { return a * b + c; }
static inline vd vd_fnmaf(vd a, vd b, vd c) { return c - a * b; }
static inline vd vd_max(vd a, vd b) { return a > b ? a : b; }
static inline vd vd_abs(vd a) { return fabs(a); }
static inline vd vd_select(vb m, vd t, vd f) { return m ? t : f; }
static inline vb vd_lt(vd a, vd b) { return a < b; }
static inline vb vd_eq(vd a, vd b) { return a == b; }
static inline vb vd_unord(vd a, vd b) { return a != a || b != b; }
static inline vb vb_or(vb a, vb b) { return a | b; }
static inline vb vb_and(vb a, vb b) { return a & b; }
static inline vb vb_not(vb a) { return !a; }
static inline vd vd_add_masked(vb m, vd a, vd b) { return m ? a + b : a; }
static inline int vb_any(vb a) { return a != 0; }
static inline vi vd_bits(vd a) { vi r; memcpy(&r, &a, 8); return r; }
static inline vd vi_bits(vi a) { vd r; memcpy(&r, &a, 8); return r; }
static inline vi vi_add(vi a, vi b) { return (vi)((uint64_t)a + (uint64_t)b); }
static inline vi vi_shl48(vi a) { return (vi)((uint64_t)a << 48); }
static inline vi vi_select(vb m, vi t, vi f) { return m ? t : f; }
static inline vi vi_set1(int64_t a) { return a; }

typedef struct { const uint64_t *bits; const double *tail; } sm_exp_table;
static inline sm_exp_table
sm_table_load(const uint64_t *bits, const double *tail)
{
    sm_exp_table t = {bits, tail};
    return t;
}
static inline vi sm_lookup_bits(const sm_exp_table *t, vi k) { return (vi)t->bits[k & 15]; }
static inline vd sm_lookup_tail(const sm_exp_table *t, vi k) { return t->tail[k & 15]; }

static inline vd vd_load_f32(const float *p) { return (double)*p; }
static inline void vd_store_f32(float *p, vd a) { *p = (float)a; }
static inline vd vd_load_f16(const uint16_t *p) { _Float16 h; memcpy(&h, p, 2); return (double)h; }
/* GCC/Clang convert double -> _Float16 with one correct rounding */
static inline void vd_store_f16(uint16_t *p, vd a) { _Float16 h = (_Float16)a; memcpy(p, &h, 2); }

#else
#error "simd.h needs one SM_TARGET_* defined"
#endif

#ifndef SM_EXP_LITE_NO_TABLE
#define SM_EXP_LITE_NO_TABLE 0
#endif

/*
 * exp(y_hi + y_lo) for y_hi <= 0 (also -inf), with |y_lo| <= ulp(y_hi)/2.
 *
 * Algorithm (table-driven, N = 16):
 *   1. k = round(y_hi * 16/ln2) by the 1.5*2^52 shifter; the low bits of the
 *      shifter's bit pattern are k itself.
 *   2. r = (y_hi - k*L2hi) - k*L2lo + y_lo, with ln2/16 = L2hi + L2lo and
 *      L2hi of 38 bits: k*L2hi is exact for |k| < 2^15 and the subtraction
 *      is exact (Sterbenz), so r is y - k ln2/16 to ~2^-60 relative even
 *      without FMA; |r| <= ln2/32.
 *   3. 2^(k/16) = s * (1 + tail[k mod 16]) with s built from the table's
 *      bits plus (k << 48) (the table stores bits(2^(j/16)) - (j << 48)).
 *   4. exp(r) - 1 = r + r^2/2 + ... + r^7/5040 (Taylor; the truncation is
 *      below 1.2e-18 relative for |r| <= ln2/32), plus the tail.
 *   5. result = s + s * tmp (one fused multiply-add: the only rounding that
 *      matters). Results below 2^-1022 are formed 2^1022 higher and rounded
 *      once at the subnormal ulp (glibc's trick: through 1.0 + y), then
 *      scaled back exactly; y_hi < -746 gives 0.
 * Measured max error against mpmath (2^22 random y in [-745, 0] plus edge
 * cases, see README, Speed): 0.507 ulp avx512, 0.507 ulp avx2, 0.507 ulp
 * baseline.
 */
static const uint64_t sm_exp_bits[16] = {
    0x3ff0000000000000ULL, 0x3fefb5586cf9890fULL, 0x3fef72b83c7d517bULL, 0x3fef387a6e756238ULL,
    0x3fef06fe0a31b715ULL, 0x3feedea64c123422ULL, 0x3feebfdad5362a27ULL, 0x3feeab07dd485429ULL,
    0x3feea09e667f3bcdULL, 0x3feea11473eb0187ULL, 0x3feeace5422aa0dbULL, 0x3feec49182a3f090ULL,
    0x3feee89f995ad3adULL, 0x3fef199bdd85529cULL, 0x3fef5818dcfba487ULL, 0x3fefa4afa2a490daULL,
};
static const double sm_exp_tail[16] = {
    0x0.0p+0, 0x1.79aa65d837b6dp-54, -0x1.01b15eaa59348p-55, 0x1.68efde3a8a894p-54,
    0x1.34d754db0abb6p-55, 0x1.59f48a72a4c6dp-55, 0x1.690cebb7aafb0p-56, 0x1.063e1e21c5409p-54,
    -0x1.3b3efbf5e2228p-54, -0x1.b32dcb94da51dp-56, 0x1.db72fc1f0eab4p-55, 0x1.1affc2b91ce27p-56,
    0x1.c1a7792cb3387p-55, 0x1.36eae30af0cb3p-56, 0x1.4a385a63d07a7p-56, -0x1.ff7128fd391f0p-55,
};

static inline vd
sm_vexp(const sm_exp_table *tab, vd y_hi, vd y_lo, const int has_lo)
{
    const vd shift = vd_set1(0x1.8p52);
    /* lanes below -746 (also -inf) compute garbage here and are zeroed below */
    vd t = vd_fmaf(y_hi, vd_set1(23.083120654223414), shift);
    vi ki = vd_bits(t);
    vd kd = vd_sub(t, shift);
    vd r = vd_fnmaf(kd, vd_set1(0x1.62e42fefa0000p-5), y_hi);
    r = vd_fnmaf(kd, vd_set1(0x1.cf79abc9e3b3ap-44), r);
    if (has_lo) {
        r = vd_add(r, y_lo);
    }
    vd r2 = vd_mul(r, r);
    vd p23 = vd_fmaf(r, vd_set1(1.0 / 6), vd_set1(0.5));
    vd p45 = vd_fmaf(r, vd_set1(1.0 / 120), vd_set1(1.0 / 24));
    vd p67 = vd_fmaf(r, vd_set1(1.0 / 5040), vd_set1(1.0 / 720));
    vd p47 = vd_fmaf(r2, p67, p45);
    vd p27 = vd_fmaf(r2, p47, p23);
    vd tmp = vd_add(sm_lookup_tail(tab, ki), vd_fmaf(r2, p27, r));
    vi sbits = vi_add(sm_lookup_bits(tab, ki), vi_shl48(ki));
    vb tiny = vd_lt(y_hi, vd_set1(-708.0));
    vd e;
    if (vb_any(tiny)) {
        /* Form the result 2^1022 higher, round it once at the position of
         * the subnormal ulp (adding 1.0 puts that position at 2^-52), then
         * scale back exactly: no double rounding below 2^-1022. */
        const vd one = vd_set1(1.0);
        vd s = vi_bits(vi_add(sbits, vi_select(tiny, vi_set1(1022LL << 52), vi_set1(0))));
        e = vd_fma(s, tmp, s);
        vd lo = vd_fma(s, tmp, vd_sub(s, e));
        vd hi = vd_add(one, e);
        lo = vd_add(vd_add(vd_sub(one, hi), e), lo);
        vd sub = vd_sub(vd_add(hi, lo), one);
        e = vd_select(tiny, vd_mul(vd_select(vd_lt(e, one), sub, e), vd_set1(0x1p-1022)), e);
        e = vd_select(vd_lt(y_hi, vd_set1(-746.0)), vd_set1(0.0), e);
    }
    else {
        vd s = vi_bits(sbits);
        e = vd_fma(s, tmp, s);
    }
    return e;
}


/*
 * exp(y) for the float32 and float16 kernels, where the result is rounded
 * to 24 (or 11) bits at the end: a relative error near 2^-43 costs at most
 * 2^-19 ulp there, so this drops what only float64 needs: the low part of
 * y, the tail table and the subnormal path (y is clamped at -708: exp(-708)
 * ~ 3e-308 is 0 in float32 and float16, and adds under 2^-980 relative to a
 * row's sum, which is at least 1). Two forms, per target:
 *   - with the table (a cheap in-register permute on AVX-512): the steps of
 *     sm_vexp with a one-constant reduction (|k| ln2/16 - k C is below 2^-45
 *     for y >= -708) and Taylor to r^5 (truncation below 2^-42 for
 *     |r| <= ln2/32);
 *   - without it (SM_EXP_LITE_NO_TABLE: where a lookup is a gather):
 *     k = round(y / ln2), r = y - k ln2 (one constant: |k ln2 - k C| is
 *     below 2^-44 for y >= -708), exp(r) = 1 + r + r^2 q(r) with q of
 *     degree 7 fitted near-minimax (Chebyshev, mpmath) on [-ln2/2, ln2/2]
 *     (2^-43.6 on the fit; 2^-43.2 measured against long double on 2^22
 *     points of [-708, 0] with these double coefficients), and 2^k
 *     put in the exponent field.
 */
static inline vd
sm_vexp_lite(const sm_exp_table *tab, vd y)
{
    const vd shift = vd_set1(0x1.8p52);
    /* below -708 the result is 0: such terms are far below what a float32
     * result can hold, and -inf (an excluded entry, or padding) must add
     * exactly nothing, or log_softmax of a lone finite score is -0, not 0 */
    const vb tiny = vd_lt(y, vd_set1(-708.0));
    y = vd_max(y, vd_set1(-708.0));
#if SM_EXP_LITE_NO_TABLE
    (void)tab;
    vd t = vd_fmaf(y, vd_set1(0x1.71547652b82fep+0), shift);
    vi ki = vd_bits(t);
    vd kd = vd_sub(t, shift);
    vd r = vd_fnmaf(kd, vd_set1(0x1.62e42fefa39efp-1), y);
    vd r2 = vd_mul(r, r);
    vd r4 = vd_mul(r2, r2);
    /* q(r) by Estrin's scheme: four independent pairs, then two levels */
    vd q01 = vd_fmaf(r, vd_set1(0x1.5555555554f97p-3), vd_set1(0x1.fffffffffe069p-2));
    vd q23 = vd_fmaf(r, vd_set1(0x1.111111170ad56p-7), vd_set1(0x1.55555565c559fp-5));
    vd q45 = vd_fmaf(r, vd_set1(0x1.a019c3721fb3ep-13), vd_set1(0x1.6c166be75a859p-10));
    vd q67 = vd_fmaf(r, vd_set1(0x1.72ad3ae3ed777p-19), vd_set1(0x1.a136b06babd51p-16));
    vd q03 = vd_fmaf(r2, q23, q01);
    vd q47 = vd_fmaf(r2, q67, q45);
    vd q = vd_fmaf(r4, q47, q03);
    vd tmp = vd_fmaf(r2, q, r);
    vd s = vi_bits(vi_add(vd_bits(vd_set1(1.0)), vi_shl52(ki)));
#else
    vd t = vd_fmaf(y, vd_set1(23.083120654223414), shift);
    vi ki = vd_bits(t);
    vd kd = vd_sub(t, shift);
    vd r = vd_fnmaf(kd, vd_set1(0x1.62e42fefa39efp-5), y);
    vd r2 = vd_mul(r, r);
    vd p23 = vd_fmaf(r, vd_set1(1.0 / 6), vd_set1(0.5));
    vd p45 = vd_fmaf(r, vd_set1(1.0 / 120), vd_set1(1.0 / 24));
    vd p25 = vd_fmaf(r2, p45, p23);
    vd tmp = vd_fmaf(r2, p25, r);
    vd s = vi_bits(vi_add(sm_lookup_bits(tab, ki), vi_shl48(ki)));
#endif
    return vd_select(tiny, vd_set1(0.0), vd_fmaf(s, tmp, s));
}

#endif
