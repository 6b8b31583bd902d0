/*
 * The kernels of one SIMD target: meson compiles this file once per target
 * (a static_library each) with SM_TARGET_<NAME> and that target's -m flags,
 * and the dispatcher (dispatch.c) picks one table at import.
 */
/* clock_gettime for the FMA probe under -std=c11 */
#define _POSIX_C_SOURCE 199309L
#if defined(SM_TARGET_AVX512)
#define SM_TABLE sm_target_avx512
#elif defined(SM_TARGET_AVX2)
#define SM_TABLE sm_target_avx2
#elif defined(SM_TARGET_NEON)
#define SM_TABLE sm_target_neon
#else
#ifndef SM_TARGET_BASELINE
#define SM_TARGET_BASELINE
#endif
#define SM_TABLE sm_target_baseline
#endif

#include <math.h>
#include <string.h>
#include <time.h>
#include "simd32.h"
#include "kernels.h"
#include "scalar.h"

static inline double
sm_f16_to_double(const char *p)
{
    _Float16 h;
    memcpy(&h, p, 2);
    return (double)h;
}

#define IN_T uint16_t
#define SUFFIX f16
#define EXACT_DD 0
#define LOADV(p) vd_load_f16(p)
#define STOREV(p, v) vd_store_f16(p, v)
#define LOAD1(p) sm_f16_to_double(p)
#include "kernels.template.c"
#undef IN_T
#undef SUFFIX
#undef EXACT_DD
#undef LOADV
#undef STOREV
#undef LOAD1

#define IN_T float
#define SUFFIX f32
#define EXACT_DD 0
#define LOADV(p) vd_load_f32(p)
#define STOREV(p, v) vd_store_f32(p, v)
#define LOAD1(p) ((double)*(const float *)(p))
#include "kernels.template.c"
#undef IN_T
#undef SUFFIX
#undef EXACT_DD
#undef LOADV
#undef STOREV
#undef LOAD1

#define IN_T double
#define SUFFIX f64
#define EXACT_DD 1
#define LOADV(p) vd_load(p)
#define STOREV(p, v) vd_store(p, v)
#define LOAD1(p) (*(const double *)(p))
#include "kernels.template.c"
#undef IN_T
#undef SUFFIX
#undef EXACT_DD
#undef LOADV
#undef STOREV
#undef LOAD1

#define IN_T uint16_t
#define SUFFIX f16
#define EXACT32 0
#define LOADF(p) vf_load_f16(p)
#define STOREF(p, v) vf_store_f16(p, v)
#define NEGINF_T ((uint16_t)0xFC00)
#define NEG1(v) ((uint16_t)((v) ^ 0x8000))
#include "kernels32.template.c"
#undef IN_T
#undef SUFFIX
#undef EXACT32
#undef LOADF
#undef STOREF
#undef NEGINF_T
#undef NEG1

#define IN_T float
#define SUFFIX f32
#define EXACT32 1
#define LOADF(p) vf_load(p)
#define STOREF(p, v) vf_store(p, v)
#define NEGINF_T (-HUGE_VALF)
#define NEG1(v) (-(v))
#include "kernels32.template.c"
#undef IN_T
#undef SUFFIX
#undef EXACT32
#undef LOADF
#undef STOREF
#undef NEGINF_T
#undef NEG1

static void
vexpf_array(const float *y, float *out, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j += SM_WF) {
        float t[SM_WF];
        for (int l = 0; l < SM_WF; l++) {
            t[l] = j + l < n ? y[j + l] : 0.0f;
        }
        const vf a = vf_load(t);
        const sm_expf_parts ep = sm_vexpf_parts(a, vf_set1(0.0f), 0);
        vf_store(t, sm_vexpf_fix(a, ep, sm_vexpf_scale(ep)));
        for (int l = 0; l < SM_WF && j + l < n; l++) {
            out[j + l] = t[l];
        }
    }
}

/*
 * The machine probe's FMA rate: 12 independent chains (more than latency x
 * issue width on current cores), so the loop runs at the issue rate.
 */
#if defined(SM_TARGET_AVX512) || defined(SM_TARGET_AVX2)
static double
sm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define SM_FMA_CHAINS(T, SET1, FMA, STORE, LANES)                                      \
    do {                                                                               \
        T a[12];                                                                       \
        const T mul = SET1(0.999999f), add = SET1(1e-7f);                              \
        for (int i = 0; i < 12; i++) {                                                 \
            a[i] = SET1(1.0f + (float)i);                                              \
        }                                                                              \
        const double t0 = sm_now();                                                    \
        for (long it = 0; it < iters; it++) {                                          \
            for (int i = 0; i < 12; i++) {                                             \
                a[i] = FMA(a[i], mul, add);                                            \
            }                                                                          \
            __asm__ volatile("" : : : "memory");                                       \
        }                                                                              \
        const double dt = sm_now() - t0;                                               \
        float sink[LANES];                                                             \
        T s = a[0];                                                                    \
        for (int i = 1; i < 12; i++) {                                                 \
            s = FMA(s, mul, a[i]);                                                     \
        }                                                                              \
        STORE(sink, s);                                                                \
        volatile float keep = sink[0];                                                 \
        (void)keep;                                                                    \
        return dt;                                                                     \
    } while (0)
#endif

#if defined(SM_TARGET_AVX512)
static double fma512(long iters)
{ SM_FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, 16); }
#endif
#if defined(SM_TARGET_AVX512) || defined(SM_TARGET_AVX2)
static double fma256(long iters)
{ SM_FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, 8); }
#endif

static double
fma_probe(int bits, long iters)
{
#if defined(SM_TARGET_AVX512)
    if (bits == 512) {
        return fma512(iters);
    }
#endif
#if defined(SM_TARGET_AVX512) || defined(SM_TARGET_AVX2)
    if (bits == 256) {
        return fma256(iters);
    }
#endif
    (void)bits;
    (void)iters;
    return -1.0;
}

static void
vexp_array(const double *y, double *out, ptrdiff_t n)
{
    const sm_exp_table tab = sm_table_load(sm_exp_bits, sm_exp_tail);
    for (ptrdiff_t j = 0; j < n; j += SM_W) {
        double t[SM_W];
        for (int l = 0; l < SM_W; l++) {
            t[l] = j + l < n ? y[j + l] : 0.0;
        }
        vd_store(t, sm_vexp(&tab, vd_load(t), vd_set1(0.0), 0));
        for (int l = 0; l < SM_W && j + l < n; l++) {
            out[j + l] = t[l];
        }
    }
}

#define SM_ENTRY(sfx)                                                                  \
    {load_##sfx, expsum_##sfx, write_p_##sfx, write_log_##sfx, cols_max_##sfx,             \
     cols_expsum_##sfx, cols_write_p_##sfx, cols_write_log_##sfx, groups_##sfx, gexp_##sfx,     \
     gwrite_##sfx}

const sm_target SM_TABLE = {
    SM_TARGET_NAME,
    SM_L,
    SM_W,
    {SM_ENTRY(f16), SM_ENTRY(f32), SM_ENTRY(f64)},
    vexp_array,
    SM_LF,
    SM_WF,
    {{load32_f16, expsum32_f16, write_p32_f16, write_log32_f16, cols_max32_f16,
      cols_expsum32_f16, cols_write_p32_f16, cols_write_log32_f16},
     {load32_f32, expsum32_f32, write_p32_f32, write_log32_f32, cols_max32_f32,
      cols_expsum32_f32, cols_write_p32_f32, cols_write_log32_f32}},
    vexpf_array,
    fma_probe,
};
