/*
 * The float32 vector layer: vectors of floats (vf), their 32-bit integer
 * view (vfi) and lane masks (vbf), for the target simd.h was included for.
 * Used by the float32-lane kernels (kernels32.template.c): float16 rows in
 * the default mode and float16/float32 rows in the fast mode, twice the
 * lanes of a double vector. As in simd.h, every operation is lane-wise
 * IEEE single precision, so a lane's result never depends on its neighbours.
 *
 *   vf_widen(a, lo, hi)   the lanes of a as doubles: lanes [0, SM_W) into lo,
 *                         [SM_W, 2 SM_W) into hi (SM_WF == 2 SM_W), or all
 *                         of them into lo where SM_WF == SM_W (baseline)
 */
#ifndef SOFTMAX_SIMD32_H
#define SOFTMAX_SIMD32_H

#include "simd.h"

#if defined(SM_TARGET_AVX512)
/* ------------------------------------------------------------------ */
#define SM_WF 16
typedef __m512 vf;
typedef __m512i vfi;
typedef __mmask16 vbf;

static inline vf vf_set1(float a) { return _mm512_set1_ps(a); }
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf a) { _mm512_storeu_ps(p, a); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_select(vbf m, vf t, vf f) { return _mm512_mask_blend_ps(m, f, t); }
static inline vbf vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vbf vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vbf vf_unord(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q); }
/* lanes of m where a >= b (ordered): one masked compare */
static inline vbf vf_ge_and(vbf m, vf a, vf b) { return _mm512_mask_cmp_ps_mask(m, a, b, _CMP_GE_OQ); }
static inline vbf vbf_or(vbf a, vbf b) { return (vbf)(a | b); }
static inline vbf vbf_and(vbf a, vbf b) { return (vbf)(a & b); }
static inline vbf vbf_not(vbf a) { return (vbf)~a; }
static inline int vbf_any(vbf a) { return a != 0; }
static inline vf vf_add_masked(vbf m, vf a, vf b) { return _mm512_mask_add_ps(a, m, a, b); }
static inline vfi vf_bits(vf a) { return _mm512_castps_si512(a); }
static inline vf vfi_bits(vfi a) { return _mm512_castsi512_ps(a); }
static inline vfi vfi_add(vfi a, vfi b) { return _mm512_add_epi32(a, b); }
static inline vfi vfi_shl23(vfi a) { return _mm512_slli_epi32(a, 23); }
static inline vfi vfi_set1(int32_t a) { return _mm512_set1_epi32(a); }
static inline vfi vfi_load(const int32_t *p) { return _mm512_loadu_si512((const void *)p); }
static inline vf vf_load_f16(const uint16_t *p)
{ return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline void vf_store_f16(uint16_t *p, vf a)
{ _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
static inline void vf_widen(vf a, vd *lo, vd *hi)
{
    *lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
    *hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

#elif defined(SM_TARGET_AVX2)
/* ------------------------------------------------------------------ */
#define SM_WF 8
typedef __m256 vf;
typedef __m256i vfi;
typedef __m256 vbf;

static inline vf vf_set1(float a) { return _mm256_set1_ps(a); }
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf a) { _mm256_storeu_ps(p, a); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vf_select(vbf m, vf t, vf f) { return _mm256_blendv_ps(f, t, m); }
static inline vbf vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vbf vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vbf vf_unord(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }
static inline vbf vf_ge_and(vbf m, vf a, vf b)
{ return _mm256_and_ps(m, _mm256_cmp_ps(a, b, _CMP_GE_OQ)); }
static inline vbf vbf_or(vbf a, vbf b) { return _mm256_or_ps(a, b); }
static inline vbf vbf_and(vbf a, vbf b) { return _mm256_and_ps(a, b); }
static inline vbf vbf_not(vbf a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
static inline int vbf_any(vbf a) { return _mm256_movemask_ps(a) != 0; }
static inline vf vf_add_masked(vbf m, vf a, vf b) { return _mm256_add_ps(a, _mm256_and_ps(m, b)); }
static inline vfi vf_bits(vf a) { return _mm256_castps_si256(a); }
static inline vf vfi_bits(vfi a) { return _mm256_castsi256_ps(a); }
static inline vfi vfi_add(vfi a, vfi b) { return _mm256_add_epi32(a, b); }
static inline vfi vfi_shl23(vfi a) { return _mm256_slli_epi32(a, 23); }
static inline vfi vfi_set1(int32_t a) { return _mm256_set1_epi32(a); }
static inline vfi vfi_load(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline vf vf_load_f16(const uint16_t *p)
{ return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline void vf_store_f16(uint16_t *p, vf a)
{ _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
static inline void vf_widen(vf a, vd *lo, vd *hi)
{
    *lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    *hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
}

#elif defined(SM_TARGET_NEON)
/* ------------------------------------------------------------------ */
/* Compiled on AArch64 only; not exercised by this project's x86-64 CI. */
#define SM_WF 4
typedef float32x4_t vf;
typedef int32x4_t vfi;
typedef uint32x4_t vbf;

static inline vf vf_set1(float a) { return vdupq_n_f32(a); }
static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf a) { vst1q_f32(p, a); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_fnma(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
static inline vf vf_max(vf a, vf b) { return vmaxnmq_f32(a, b); }
static inline vf vf_select(vbf m, vf t, vf f) { return vbslq_f32(m, t, f); }
static inline vbf vf_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vbf vf_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vbf vf_unord(vf a, vf b)
{ return vmvnq_u32(vandq_u32(vceqq_f32(a, a), vceqq_f32(b, b))); }
static inline vbf vf_ge_and(vbf m, vf a, vf b) { return vandq_u32(m, vcgeq_f32(a, b)); }
static inline vbf vbf_or(vbf a, vbf b) { return vorrq_u32(a, b); }
static inline vbf vbf_and(vbf a, vbf b) { return vandq_u32(a, b); }
static inline vbf vbf_not(vbf a) { return vmvnq_u32(a); }
static inline int vbf_any(vbf a) { return vmaxvq_u32(a) != 0; }
static inline vf vf_add_masked(vbf m, vf a, vf b)
{ return vaddq_f32(a, vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(b)))); }
static inline vfi vf_bits(vf a) { return vreinterpretq_s32_f32(a); }
static inline vf vfi_bits(vfi a) { return vreinterpretq_f32_s32(a); }
static inline vfi vfi_add(vfi a, vfi b) { return vaddq_s32(a, b); }
static inline vfi vfi_shl23(vfi a) { return vshlq_n_s32(a, 23); }
static inline vfi vfi_set1(int32_t a) { return vdupq_n_s32(a); }
static inline vfi vfi_load(const int32_t *p) { return vld1q_s32(p); }
static inline vf vf_load_f16(const uint16_t *p)
{ return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline void vf_store_f16(uint16_t *p, vf a)
{ vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(a))); }
static inline void vf_widen(vf a, vd *lo, vd *hi)
{
    *lo = vcvt_f64_f32(vget_low_f32(a));
    *hi = vcvt_high_f64_f32(a);
}

#elif defined(SM_TARGET_BASELINE)
/* ------------------------------------------------------------------ */
#define SM_WF 1
typedef float vf;
typedef int32_t vfi;
typedef int vbf;

static inline vf vf_set1(float a) { return a; }
static inline vf vf_load(const float *p) { return *p; }
static inline void vf_store(float *p, vf a) { *p = a; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
/* libm's fmaf: one rounding everywhere, as the vector targets' FMA */
static inline vf vf_fma(vf a, vf b, vf c) { return fmaf(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return fmaf(-a, b, c); }
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vf vf_select(vbf m, vf t, vf f) { return m ? t : f; }
static inline vbf vf_eq(vf a, vf b) { return a == b; }
static inline vbf vf_lt(vf a, vf b) { return a < b; }
static inline vbf vf_unord(vf a, vf b) { return a != a || b != b; }
static inline vbf vf_ge_and(vbf m, vf a, vf b) { return m && a >= b; }
static inline vbf vbf_or(vbf a, vbf b) { return a | b; }
static inline vbf vbf_and(vbf a, vbf b) { return a & b; }
static inline vbf vbf_not(vbf a) { return !a; }
static inline int vbf_any(vbf a) { return a != 0; }
static inline vf vf_add_masked(vbf m, vf a, vf b) { return m ? a + b : a; }
static inline vfi vf_bits(vf a) { vfi r; memcpy(&r, &a, 4); return r; }
static inline vf vfi_bits(vfi a) { vf r; memcpy(&r, &a, 4); return r; }
static inline vfi vfi_add(vfi a, vfi b) { return (vfi)((uint32_t)a + (uint32_t)b); }
static inline vfi vfi_shl23(vfi a) { return (vfi)((uint32_t)a << 23); }
static inline vfi vfi_set1(int32_t a) { return a; }
static inline vfi vfi_load(const int32_t *p) { return *p; }
static inline vf vf_load_f16(const uint16_t *p) { _Float16 h; memcpy(&h, p, 2); return (float)h; }
static inline void vf_store_f16(uint16_t *p, vf a) { _Float16 h = (_Float16)a; memcpy(p, &h, 2); }
static inline void vf_widen(vf a, vd *lo, vd *hi) { *lo = (double)a; (void)hi; }

#endif

/*
 * exp(y_hi + y_lo) in float32 lanes, for y_hi <= 0 (also -inf).
 *
 * Algorithm: k = round(y_hi / ln2) by the 1.5 * 2^23 shifter (the low bits
 * of the shifter's pattern are k); r = (y_hi - k L1) - k L2 + y_lo with
 * ln2 = L1 + L2 and L1 of 16 bits, so that k L1 is exact (|k| <= 150) and
 * the subtraction is exact (Sterbenz); |r| <= ln2/2 + |y_lo|. Then
 * exp(r) = 1 + (r + r^2 q(r)) with q a degree-4 polynomial fitted for
 * minimax relative error on [-ln2/2, ln2/2] (its own error below 2^-27),
 * and 2^k enters the exponent field by an integer add: two roundings that
 * matter (r, and 1 + ...). Lanes with y_hi below -86 (results near or below
 * 2^-126) are wrong here: sm_vexpf_fix corrects them where the caller needs
 * them (stored exps), sm_vexpf_lifted gives them 2^64 higher for the sums
 * of float32 rows, and float16 sums leave them out (see kernels32).
 * Measured max error against mpmath (y_lo = 0; 22,000 values in
 * [-104, 0] with tiny |y|, the subnormal range and edge cases): the result
 * is the correctly rounded float or its neighbour (distance <= 1 ulp), on
 * avx512, avx2 and baseline alike; tests/test_fast_mode.py
 * (test_float_exp_within_one_ulp) holds it to that.
 */
#define SM_EXPF_SHIFT 0x1.8p23f
#define SM_EXPF_L1 0x1.62e4p-1f
#define SM_EXPF_L2 0x1.7f7d1cp-20f
/* below this, p 2^k may leave the normal range (k < -124) */
#define SM_EXPF_TINY (-86.0f)
/* q(r) = C2 + C3 r + ... + C6 r^4 (minimax fit, relative error 2^-28) */
#define SM_EXPF_C2 0x1.fffffcp-2f
#define SM_EXPF_C3 0x1.555492p-3f
#define SM_EXPF_C4 0x1.5558f2p-5f
#define SM_EXPF_C5 0x1.1239d4p-7f
#define SM_EXPF_C6 0x1.6a244cp-10f

typedef struct {
    vf p;      /* exp(r), in [0.7, 1.42] */
    vfi k;     /* the shifter's bits: k in the low bits */
} sm_expf_parts;

static inline sm_expf_parts
sm_vexpf_parts(vf y_hi, vf y_lo, const int has_lo)
{
    const vf shift = vf_set1(SM_EXPF_SHIFT);
    vf t = vf_fma(y_hi, vf_set1(0x1.715476p+0f), shift);
    vf kf = vf_sub(t, shift);
    vf r = vf_fnma(kf, vf_set1(SM_EXPF_L1), y_hi);
    r = vf_fnma(kf, vf_set1(SM_EXPF_L2), r);
    if (has_lo) {
        r = vf_add(r, y_lo);
    }
    vf r2 = vf_mul(r, r);
    vf q = vf_fma(vf_set1(SM_EXPF_C6), r, vf_set1(SM_EXPF_C5));
    q = vf_fma(q, r, vf_set1(SM_EXPF_C4));
    q = vf_fma(q, r, vf_set1(SM_EXPF_C3));
    q = vf_fma(q, r, vf_set1(SM_EXPF_C2));
    sm_expf_parts o;
    o.p = vf_add(vf_fma(r2, q, r), vf_set1(1.0f));
    o.k = vf_bits(t);
    return o;
}

/* p 2^k for lanes whose result is a normal float (y_hi >= -86) */
static inline vf
sm_vexpf_scale(sm_expf_parts e)
{
    /* bits(t) << 23 is k << 23: the shifter's own bits shift out */
    return vfi_bits(vfi_add(vf_bits(e.p), vfi_shl23(e.k)));
}

/* p 2^(k+64): exact, a normal float for k >= -189 (y_hi >= -130) */
static inline vf
sm_vexpf_lifted(sm_expf_parts e)
{
    return vfi_bits(vfi_add(vf_bits(e.p), vfi_shl23(vfi_add(e.k, vfi_set1(64)))));
}

/* every lane right: results below 2^-126 formed 2^64 higher (exactly) and
 * rounded once by the multiply with 2^-64; below -104 (and -inf, NaN
 * garbage from y_lo) exactly 0 */
static inline vf
sm_vexpf_fix(vf y_hi, sm_expf_parts e, vf v)
{
    vbf tiny = vf_lt(y_hi, vf_set1(SM_EXPF_TINY));
    if (vbf_any(tiny)) {
        vf low = vf_mul(sm_vexpf_lifted(e), vf_set1(0x1p-64f));
        v = vf_select(tiny, low, v);
        v = vf_select(vbf_or(vf_lt(y_hi, vf_set1(-104.0f)), vf_unord(v, v)), vf_set1(0.0f), v);
    }
    return v;
}

#endif
