/*
 * The kernels of one SIMD target: meson compiles this file once per target
 * (a static_library each) with SM_TARGET_<NAME> and that target's -m flags,
 * and the dispatcher (dispatch.c) picks one table at import.
 */
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
#include "simd.h"
#include "kernels.h"

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
     cols_expsum_##sfx, cols_write_p_##sfx, cols_write_log_##sfx}

const sm_target SM_TABLE = {
    SM_TARGET_NAME,
    SM_L,
    SM_W,
    {SM_ENTRY(f16), SM_ENTRY(f32), SM_ENTRY(f64)},
    vexp_array,
};
