/* The row kernels, instantiated for float32 and float64 from one source. */
#include <math.h>
#include "kernels.h"

typedef ptrdiff_t npy_intp;

#define IN_T float
#define SUFFIX f32
#define EXACT_DD 0
#include "kernels.template.c"
#undef IN_T
#undef SUFFIX
#undef EXACT_DD

#define IN_T double
#define SUFFIX f64
#define EXACT_DD 1
#include "kernels.template.c"
#undef IN_T
#undef SUFFIX
#undef EXACT_DD
