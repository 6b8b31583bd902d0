/*
 * softmax._core: the Python glue around the driver and kernels.
 *
 * The Python layer (softmax/_api.py) has already validated and normalized
 * every argument: x is an aligned, native-order float16/32/64 array whose
 * reduction axis is the last one, out has x's dtype and the right shape and
 * is writeable, the mask (if any) is a bool array broadcast to x's shape.
 * This file re-checks only what it needs to stay memory safe, plans the
 * call, and runs it with the GIL released. The one exception is `fast`,
 * which checks the user's arguments itself, for the plain call only.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_25_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "driver.h"
#include "memory.h"
#include "scatter.h"
#include "threads.h"

/* The process default of the accuracy mode (0 high, 1 fast), set from
 * _config.set_accuracy; a call's own accuracy= overrides it. */
static int default_fast = 0;

/* An accuracy code from Python: -1 (the process default), 0 or 1. */
static int
resolve_fast(int code)
{
    return code < 0 ? default_fast : code != 0;
}

/* ---- results in kept blocks (memory.c) ------------------------------------
 * NumPy's memory handler protocol: an array made while this handler is the
 * current one is allocated by it and, when dropped, freed by it (the array
 * holds a reference to the capsule). Only the large results of this module
 * are made that way (keep_begin / keep_end around their allocation); every
 * other array of the process keeps NumPy's own handler. */
static void *
handler_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return sm_block_malloc(size);
}

static void *
handler_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    return sm_block_calloc(nelem, elsize);
}

static void *
handler_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return sm_block_realloc(ptr, size);
}

static void
handler_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    (void)size; /* the block knows its own size */
    sm_block_free(ptr);
}

static PyDataMem_Handler block_handler = {
    "softmax_kept_blocks",
    1,
    {NULL, handler_malloc, handler_calloc, handler_realloc, handler_free},
};
static PyObject *block_handler_capsule = NULL;

/* Makes the kept-blocks handler current for an allocation of nbytes when it
 * is large enough to be worth keeping; returns the handler to restore (or
 * NULL: nothing was switched). */
static PyObject *
keep_begin(size_t nbytes)
{
    if (nbytes < SM_KEEP_MIN || block_handler_capsule == NULL || sm_block_state(NULL) < nbytes) {
        return NULL;
    }
    PyObject *old = PyDataMem_SetHandler(block_handler_capsule);
    if (old == NULL) {
        PyErr_Clear(); /* NumPy's own handler then: slower, not wrong */
    }
    return old;
}

static void
keep_end(PyObject *old)
{
    if (old == NULL) {
        return;
    }
    PyObject *prev = PyDataMem_SetHandler(old);
    if (prev == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(prev);
    Py_DECREF(old);
}

/* PyArray_Empty (steals descr) in a kept block when large */
static PyArrayObject *
empty_result(int nd, npy_intp const *dims, PyArray_Descr *descr)
{
    size_t nbytes = (size_t)PyDataType_ELSIZE(descr);
    for (int i = 0; i < nd; i++) {
        nbytes *= (size_t)dims[i];
    }
    PyObject *old = keep_begin(nbytes);
    PyArrayObject *a = (PyArrayObject *)PyArray_Empty(nd, (npy_intp *)dims, descr, 0);
    keep_end(old);
    return a;
}

static const char empty_doc[] =
    "empty(shape, dtype) -> a new C-ordered array, in a kept block when large (internal)";

static PyObject *
core_empty(PyObject *self, PyObject *args)
{
    (void)self;
    PyArray_Dims shape = {NULL, 0};
    PyArray_Descr *descr = NULL;
    if (!PyArg_ParseTuple(args, "O&O&", PyArray_IntpConverter, &shape, PyArray_DescrConverter,
                          &descr)) {
        return NULL;
    }
    PyArrayObject *a = empty_result(shape.len, shape.ptr, descr);
    PyDimMem_FREE(shape.ptr);
    return (PyObject *)a;
}

static const char memory_cache_doc[] =
    "memory_cache([limit]) -> (limit, kept): sets the bytes of freed results kept for reuse "
    "(when given) and returns the limit and the bytes kept now (internal)";

static PyObject *
core_memory_cache(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *limit = Py_None;
    if (!PyArg_ParseTuple(args, "|O", &limit)) {
        return NULL;
    }
    if (limit != Py_None) {
        const unsigned long long v = PyLong_AsUnsignedLongLong(limit);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        sm_block_set_limit(v > (unsigned long long)SIZE_MAX ? SIZE_MAX : (size_t)v);
    }
    size_t kept;
    const size_t lim = sm_block_state(&kept);
    return Py_BuildValue("(KK)", (unsigned long long)lim, (unsigned long long)kept);
}

/* Raises TypeError unless obj is an aligned native float16/32/64 ndarray. */
static PyArrayObject *
as_float_array(PyObject *obj, const char *name, int writeable)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray", name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    int t = PyArray_TYPE(a);
    if ((t != NPY_FLOAT16 && t != NPY_FLOAT32 && t != NPY_FLOAT64) || !PyArray_ISALIGNED(a) ||
        !PyArray_ISNOTSWAPPED(a)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be an aligned native float16, float32 or float64 array", name);
        return NULL;
    }
    if (writeable && !PyArray_ISWRITEABLE(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be writeable", name);
        return NULL;
    }
    return a;
}

static int
dtype_code(PyArrayObject *a)
{
    switch (PyArray_TYPE(a)) {
        case NPY_FLOAT16: return SM_F16;
        case NPY_FLOAT32: return SM_F32;
        default: return SM_F64;
    }
}

/* The first k axes of a and b have the same lengths (both have >= k axes). */
static int
same_lead(PyArrayObject *a, PyArrayObject *b, int k)
{
    for (int d = 0; d < k; d++) {
        if (PyArray_DIM(a, d) != PyArray_DIM(b, d)) {
            return 0;
        }
    }
    return 1;
}

static int
same_shape(PyArrayObject *a, PyArrayObject *b, int ndim)
{
    return PyArray_NDIM(b) == ndim && same_lead(a, b, ndim);
}

static int
as_mask(PyObject *obj, PyArrayObject *x, PyArrayObject **mask)
{
    *mask = NULL;
    if (obj == Py_None) {
        return 0;
    }
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_BOOL ||
        !same_shape(x, (PyArrayObject *)obj, PyArray_NDIM(x))) {
        PyErr_SetString(PyExc_TypeError, "where must be a bool array of x's shape");
        return -1;
    }
    *mask = (PyArrayObject *)obj;
    return 0;
}

/*
 * Fills the job's geometry from x, reduced along `axis`: the rows are walked
 * as in x.swapaxes(axis, -1), so axis = ndim - 1 is x's own order. out has
 * x's shape (softmax) or x.shape[:-1] (logsumexp, out_has_last = 0, axis
 * ndim - 1 only).
 */
static void
job_init(sm_job *job, PyArrayObject *x, PyArrayObject *out, int out_has_last,
         PyArrayObject *mask, int axis)
{
    const int nd = PyArray_NDIM(x);
    memset(job, 0, offsetof(sm_job, dims));
    job->tg = sm_active;
    job->dtype = dtype_code(x);
    job->outer_ndim = nd - 1;
    job->rows = 1;
    for (int d = 0; d < nd - 1; d++) {
        const int s = d == axis ? nd - 1 : d;
        job->dims[d] = PyArray_DIM(x, s);
        job->x_strides[d] = PyArray_STRIDE(x, s);
        job->o_strides[d] = PyArray_STRIDE(out, s);
        job->m_strides[d] = mask ? PyArray_STRIDE(mask, s) : 0;
        job->rows *= PyArray_DIM(x, s);
    }
    job->x = PyArray_BYTES(x);
    job->out = PyArray_BYTES(out);
    job->mask = mask ? (const unsigned char *)PyArray_BYTES(mask) : NULL;
    job->n = PyArray_DIM(x, axis);
    job->x_stride = PyArray_STRIDE(x, axis);
    job->out_stride = out_has_last ? PyArray_STRIDE(out, axis) : 0;
    job->mask_stride = mask ? PyArray_STRIDE(mask, axis) : 0;
}

/* Allocates the per-thread memory, runs the job without the GIL, frees. */
static PyObject *
run_job(sm_job *job)
{
    double stack_scratch[512];
    sm_part stack_parts[1];
    job->nthreads = sm_plan_threads(job, sm_get_num_threads());
    const size_t ns = (size_t)sm_scratch_doubles(job) * (size_t)job->nthreads;
    const size_t np = (size_t)sm_n_parts(job) * (size_t)job->nthreads;
    void *heap = NULL;
    if (ns <= 512 && np <= 1) {
        job->scratch = stack_scratch;
        job->parts = stack_parts;
    }
    else {
        heap = malloc(ns * sizeof(double) + np * sizeof(sm_part) + 64);
        if (heap == NULL) {
            return PyErr_NoMemory();
        }
        job->scratch = (double *)heap;
        job->parts = (sm_part *)(job->scratch + ns);
    }
    Py_BEGIN_ALLOW_THREADS
    sm_run(job);
    Py_END_ALLOW_THREADS
    free(heap);
    Py_RETURN_NONE;
}

/*
 * The groups of segment_softmax / segment_logsumexp: a C-contiguous native
 * int64 1-d array of nseg + 1 offsets with 0 <= offsets[0] <= ... <=
 * offsets[nseg] <= n (x's last axis). They are copied, and checked on the
 * copy, so that what the core walks without the GIL is what was checked
 * (another Python thread may write to the array meanwhile). Sets the job's
 * groups, its rows (outer rows x nseg) and n (the longest group). Returns
 * the copy for the caller to free, or NULL with an exception set.
 */
static int64_t *
job_groups(sm_job *job, PyObject *obj, npy_intp n)
{
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_INT64 ||
        PyArray_NDIM((PyArrayObject *)obj) != 1 ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)obj) ||
        !PyArray_ISALIGNED((PyArrayObject *)obj) ||
        !PyArray_ISNOTSWAPPED((PyArrayObject *)obj) ||
        PyArray_DIM((PyArrayObject *)obj, 0) < 1) {
        PyErr_SetString(PyExc_ValueError,
                        "offsets must be a C-contiguous native int64 1-d array of length >= 1 "
                        "(internal)");
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    const npy_intp len = PyArray_DIM(a, 0);
    const ptrdiff_t nseg = (ptrdiff_t)len - 1;
    /* rows = outer rows x nseg must not overflow (x may be a broadcast view) */
    if (job->rows > 0 && nseg > PTRDIFF_MAX / job->rows) {
        PyErr_SetString(PyExc_ValueError, "too many groups x rows (internal)");
        return NULL;
    }
    int64_t *copy = malloc((size_t)len * sizeof(int64_t));
    if (copy == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, PyArray_DATA(a), (size_t)len * sizeof(int64_t));
    int64_t longest = 0;
    int ok = copy[0] >= 0 && copy[len - 1] <= (int64_t)n;
    for (npy_intp g = 0; ok && g < nseg; g++) {
        /* compared before subtracting: a huge negative value must not overflow */
        ok = copy[g + 1] >= copy[g];
        if (ok && copy[g + 1] - copy[g] > longest) {
            longest = copy[g + 1] - copy[g];
        }
    }
    if (!ok) {
        free(copy);
        PyErr_SetString(PyExc_ValueError,
                        "offsets must be non-decreasing, from >= 0 to <= x.shape[-1] (internal)");
        return NULL;
    }
    job->offsets = copy;
    job->nseg = nseg;
    job->rows *= nseg;
    job->n = (ptrdiff_t)longest;
    return copy;
}

/* The kernels' scale from the multiplier c = c_hi + c_lo: |c|, and whether
 * the scores are negated (c < 0: the reference point is x's minimum). */
static sm_scale
scale_of(double c_hi, double c_lo)
{
    sm_scale sc = {0};
    sc.negate = c_hi < 0;
    sc.c_hi = fabs(c_hi);
    sc.c_lo = sc.negate ? -c_lo : c_lo;
    sc.scaled = !(c_hi == 1.0 && c_lo == 0.0);
    return sc;
}

/* softmax (grouped = 0) and segment_softmax, whose offsets come 4th. */
static PyObject *
softmax_call(PyObject *args, int grouped)
{
    PyObject *x_obj, *out_obj, *mask_obj, *offsets_obj = NULL;
    double c_hi, c_lo;
    int log_mode, accuracy = -1;
    if (!(grouped ? PyArg_ParseTuple(args, "OOOOddp|i", &x_obj, &out_obj, &mask_obj,
                                     &offsets_obj, &c_hi, &c_lo, &log_mode, &accuracy)
                  : PyArg_ParseTuple(args, "OOOddp|i", &x_obj, &out_obj, &mask_obj, &c_hi,
                                     &c_lo, &log_mode, &accuracy))) {
        return NULL;
    }
    PyArrayObject *x = as_float_array(x_obj, "x", 0);
    PyArrayObject *out = x ? as_float_array(out_obj, "out", 1) : NULL;
    if (out == NULL) {
        return NULL;
    }
    if (PyArray_NDIM(x) < 1 || PyArray_TYPE(x) != PyArray_TYPE(out) ||
        !same_shape(x, out, PyArray_NDIM(x))) {
        PyErr_SetString(PyExc_ValueError, "out must match x in dtype and shape (internal)");
        return NULL;
    }
    PyArrayObject *mask;
    if (as_mask(mask_obj, x, &mask) < 0) {
        return NULL;
    }
    if (!(c_hi == c_hi) || c_hi == 0.0 || isinf(c_hi)) {
        PyErr_SetString(PyExc_ValueError, "scale must be finite and nonzero (internal)");
        return NULL;
    }
    sm_job job;
    job_init(&job, x, out, 1, mask, PyArray_NDIM(x) - 1);
    int64_t *groups = NULL;
    if (offsets_obj != NULL &&
        (groups = job_groups(&job, offsets_obj, PyArray_DIM(x, PyArray_NDIM(x) - 1))) == NULL) {
        return NULL;
    }
    job.mode = log_mode ? SM_MODE_LOG : SM_MODE_SOFTMAX;
    job.fast = resolve_fast(accuracy);
    job.sc = scale_of(c_hi, c_lo);
    /* n == 0: no entries to write (with groups: every group is empty) */
    PyObject *r = job.n == 0 ? Py_NewRef(Py_None) : run_job(&job);
    free(groups);
    return r;
}

PyDoc_STRVAR(softmax_doc,
"softmax(x, out, where, c_hi, c_lo, log_mode, accuracy=-1)\n--\n\n"
"Internal: softmax (log_mode=False) or log_softmax along the last axis of\n"
"x into out, with scores (x * c) and c = c_hi + c_lo; accuracy 0 high,\n"
"1 fast, -1 the process default. Use softmax.softmax.");

static PyObject *
core_softmax(PyObject *self, PyObject *args)
{
    return softmax_call(args, 0);
}

PyDoc_STRVAR(segment_softmax_doc,
"segment_softmax(x, out, where, offsets, c_hi, c_lo, log_mode, accuracy=-1)\n--\n\n"
"Internal: softmax as softmax() but over each group g of the last axis,\n"
"positions offsets[g] .. offsets[g+1]-1 (offsets: C-contiguous int64, 1-d,\n"
"non-decreasing, within the axis). Entries outside [offsets[0], offsets[-1])\n"
"are neither read nor written; an empty group writes nothing.");

static PyObject *
core_segment_softmax(PyObject *self, PyObject *args)
{
    return softmax_call(args, 1);
}

/* logsumexp (grouped = 0: out of shape x.shape[:-1]) and segment_logsumexp
 * (offsets 4th, out of shape x.shape[:-1] + (nseg,)). */
static PyObject *
logsumexp_call(PyObject *args, int grouped)
{
    PyObject *x_obj, *out_obj, *mask_obj, *offsets_obj = NULL;
    int accuracy = -1;
    if (!(grouped ? PyArg_ParseTuple(args, "OOOO|i", &x_obj, &out_obj, &mask_obj, &offsets_obj,
                                     &accuracy)
                  : PyArg_ParseTuple(args, "OOO|i", &x_obj, &out_obj, &mask_obj, &accuracy))) {
        return NULL;
    }
    PyArrayObject *x = as_float_array(x_obj, "x", 0);
    PyArrayObject *out = x ? as_float_array(out_obj, "out", 1) : NULL;
    if (out == NULL) {
        return NULL;
    }
    const int nd = PyArray_NDIM(x);
    const char *shape_msg =
        offsets_obj != NULL
            ? "out must have x's dtype and shape x.shape[:-1] + (nseg,) (internal)"
            : "out must have x's dtype and shape x.shape[:-1] (internal)";
    if (nd < 1 || PyArray_TYPE(x) != PyArray_TYPE(out) ||
        PyArray_NDIM(out) != (offsets_obj != NULL ? nd : nd - 1) || !same_lead(x, out, nd - 1)) {
        PyErr_SetString(PyExc_ValueError, shape_msg);
        return NULL;
    }
    PyArrayObject *mask;
    if (as_mask(mask_obj, x, &mask) < 0) {
        return NULL;
    }
    sm_job job;
    job_init(&job, x, out, 0, mask, nd - 1);
    int64_t *groups = NULL;
    if (offsets_obj != NULL) {
        if ((groups = job_groups(&job, offsets_obj, PyArray_DIM(x, nd - 1))) == NULL) {
            return NULL;
        }
        if (PyArray_DIM(out, nd - 1) != job.nseg) {
            free(groups);
            PyErr_SetString(PyExc_ValueError, shape_msg);
            return NULL;
        }
        job.seg_out_stride = PyArray_STRIDE(out, nd - 1);
    }
    job.mode = SM_MODE_LSE;
    job.fast = resolve_fast(accuracy);
    job.sc.c_hi = 1.0;
    PyObject *r = run_job(&job);
    free(groups);
    return r;
}

PyDoc_STRVAR(logsumexp_doc,
"logsumexp(x, out, where, accuracy=-1)\n--\n\n"
"Internal: logsumexp along the last axis of x into out (shape x.shape[:-1]);\n"
"accuracy as for softmax.\n"
"Use softmax.logsumexp.");

static PyObject *
core_logsumexp(PyObject *self, PyObject *args)
{
    return logsumexp_call(args, 0);
}

PyDoc_STRVAR(segment_logsumexp_doc,
"segment_logsumexp(x, out, where, offsets, accuracy=-1)\n--\n\n"
"Internal: logsumexp of each group g of x's last axis (offsets as for\n"
"segment_softmax) into out[..., g], out of shape x.shape[:-1] + (nseg,);\n"
"an empty or fully masked group gives -inf.");

static PyObject *
core_segment_logsumexp(PyObject *self, PyObject *args)
{
    return logsumexp_call(args, 1);
}

/*
 * The fast path: the common call on a small array costs less here than the
 * checks alone cost in Python. It decides, exactly as the rules below say,
 * whether the call is the plain case, and runs it; for anything else it
 * returns None without an error, and the general path (which owns every
 * error message) takes over. Results are the general path's bits: the job
 * is the same one the general path plans.
 */

/* An aligned native float16/32/64 ndarray, not a subclass. */
static int
fast_float_array(PyObject *obj)
{
    if (!PyArray_CheckExact(obj)) {
        return 0;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    const int t = PyArray_TYPE(a);
    return (t == NPY_FLOAT16 || t == NPY_FLOAT32 || t == NPY_FLOAT64) && PyArray_ISALIGNED(a) &&
           PyArray_ISNOTSWAPPED(a);
}

/* An exact int in [-nd, nd) (bool is not one), normalized into *axis. */
static int
fast_axis(PyObject *obj, int nd, int *axis)
{
    if (!PyLong_CheckExact(obj)) {
        return 0;
    }
    int overflow;
    const long a = PyLong_AsLongAndOverflow(obj, &overflow);
    if (overflow || a < -nd || a >= nd) {
        return 0;
    }
    *axis = (int)(a < 0 ? a + nd : a);
    return 1;
}

/* An exact int or float equal to 1: no scaling. */
static int
fast_unit(PyObject *obj)
{
    if (PyFloat_CheckExact(obj)) {
        return PyFloat_AS_DOUBLE(obj) == 1.0;
    }
    if (PyLong_CheckExact(obj)) {
        int overflow;
        return PyLong_AsLongAndOverflow(obj, &overflow) == 1 && !overflow;
    }
    return 0;
}

/* `not obj`, with an error in __bool__ left for the general path to raise. */
static int
fast_false(PyObject *obj)
{
    /* Only False and the int 0, as the general path's flag check accepts
     * them; anything else (np.False_, "no", None) is left to that path. */
    if (obj == Py_False) {
        return 1;
    }
    if (PyLong_CheckExact(obj)) {
        int overflow;
        const long v = PyLong_AsLongAndOverflow(obj, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        return !overflow && v == 0;
    }
    return 0;
}

/* As np.may_share_memory(a, b) (bounds only): the byte ranges intersect. */
static int
extents_overlap(PyArrayObject *a, PyArrayObject *b)
{
    char *lo[2], *hi[2];
    PyArrayObject *ab[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        npy_intp low = 0, up = 0;
        for (int d = 0; d < PyArray_NDIM(ab[k]); d++) {
            const npy_intp n = PyArray_DIM(ab[k], d);
            if (n == 0) {
                return 0;  /* an empty array spans no memory */
            }
            const npy_intp span = PyArray_STRIDE(ab[k], d) * (n - 1);
            if (span > 0) {
                up += span;
            }
            else {
                low += span;
            }
        }
        lo[k] = PyArray_BYTES(ab[k]) + low;
        hi[k] = PyArray_BYTES(ab[k]) + up + PyArray_ITEMSIZE(ab[k]);
    }
    return lo[0] < hi[1] && lo[1] < hi[0];
}

/* As _api._no_internal_overlap: no two elements of a share memory. */
static int
no_internal_overlap(PyArrayObject *a)
{
    npy_intp st[NPY_MAXDIMS], ns[NPY_MAXDIMS];
    int k = 0;
    for (int d = 0; d < PyArray_NDIM(a); d++) {
        if (PyArray_DIM(a, d) > 1) {
            const npy_intp s = PyArray_STRIDE(a, d);
            int i = k++;
            /* insertion sort by |stride|: few axes */
            for (; i > 0 && st[i - 1] > (s < 0 ? -s : s); i--) {
                st[i] = st[i - 1];
                ns[i] = ns[i - 1];
            }
            st[i] = s < 0 ? -s : s;
            ns[i] = PyArray_DIM(a, d);
        }
    }
    npy_intp span = PyArray_ITEMSIZE(a);
    for (int i = 0; i < k; i++) {
        if (st[i] < span) {
            return 0;
        }
        span = st[i] * (ns[i] - 1) + span;
    }
    return 1;
}

/* As _api's rules for out=: x itself (without internal overlap), or an
 * array of x's shape and dtype that the core can write and that does not
 * overlap x. */
static int
fast_out(PyObject *obj, PyArrayObject *x)
{
    if (!PyArray_CheckExact(obj)) {
        return 0;
    }
    PyArrayObject *out = (PyArrayObject *)obj;
    const int nd = PyArray_NDIM(x);
    if (!same_shape(x, out, nd) ||
        !(PyArray_DESCR(out) == PyArray_DESCR(x) ||
          PyArray_EquivTypes(PyArray_DESCR(out), PyArray_DESCR(x))) ||
        !PyArray_ISWRITEABLE(out) || !PyArray_ISALIGNED(out)) {
        return 0;
    }
    return (out == x && no_internal_overlap(x)) || !extents_overlap(out, x);
}

PyDoc_STRVAR(fast_doc,
"fast(mode, x, axis, temperature, base, where, out[, accuracy])\n--\n\n"
"Internal: the plain call of softmax (mode 0) or log_softmax (mode 1), run\n"
"at once; None if the call is not plain. For logsumexp (mode 2) the slots\n"
"are (2, x, axis, b, keepdims, where, return_sign). accuracy: 0 high,\n"
"1 fast, absent or -1 the process default.");

static PyObject *
core_fast(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 && nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "fast takes 7 or 8 arguments (internal)");
        return NULL;
    }
    int accuracy = -1;
    if (nargs == 8) {
        const long a = PyLong_AsLong(args[7]);
        if (a == -1 && PyErr_Occurred()) {
            return NULL;
        }
        accuracy = (int)(a < -1 ? -1 : (a > 1 ? 1 : a));
    }
    /* the numbers _api.py passes, kept apart from the driver's SM_MODE_* */
    static const int modes[3] = {SM_MODE_SOFTMAX, SM_MODE_LOG, SM_MODE_LSE};
    const long m = PyLong_AsLong(args[0]);
    if (m == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (m < 0 || m > 2) {
        PyErr_SetString(PyExc_ValueError, "fast: mode must be 0, 1 or 2 (internal)");
        return NULL;
    }
    const int mode = modes[m];
    PyObject *x_obj = args[1], *axis_obj = args[2], *where = args[5];
    if (!fast_float_array(x_obj) || where != Py_None) {
        Py_RETURN_NONE;
    }
    PyArrayObject *x = (PyArrayObject *)x_obj, *out;
    const int nd = PyArray_NDIM(x);
    sm_job job;

    if (mode == SM_MODE_LSE) {
        /* one int axis that is the last one (or None on a 1-d x), no weights,
         * no keepdims, no sign: a C-contiguous array of x.shape[:-1] */
        PyObject *b = args[3], *keepdims = args[4], *return_sign = args[6];
        int axis;
        if (b != Py_None || !fast_false(keepdims) || !fast_false(return_sign) || nd < 1 ||
            !(axis_obj == Py_None ? nd == 1
                                  : fast_axis(axis_obj, nd, &axis) && axis == nd - 1)) {
            Py_RETURN_NONE;
        }
        Py_INCREF(PyArray_DESCR(x));
        out = empty_result(nd - 1, PyArray_DIMS(x), PyArray_DESCR(x));
        if (out == NULL) {
            return NULL;
        }
        job_init(&job, x, out, 0, NULL, nd - 1);
        job.mode = SM_MODE_LSE;
        job.fast = resolve_fast(accuracy);
        job.sc.c_hi = 1.0;
        PyObject *r = run_job(&job);
        if (r == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(r);
        /* a 0-d result is a NumPy scalar, as value[()] gives */
        return PyArray_Return(out);
    }

    /* softmax / log_softmax: an int axis in range (so x is at least 1-d),
     * temperature 1, no base */
    PyObject *temperature = args[3], *base = args[4], *out_obj = args[6];
    int axis;
    if (base != Py_None || !fast_axis(axis_obj, nd, &axis) || !fast_unit(temperature)) {
        Py_RETURN_NONE;
    }
    if (out_obj == Py_None) {
        /* as np.empty_like(x): x's memory order */
        PyObject *old_handler = keep_begin((size_t)PyArray_NBYTES(x));
        out = (PyArrayObject *)PyArray_NewLikeArray(x, NPY_KEEPORDER, NULL, 0);
        keep_end(old_handler);
        if (out == NULL) {
            return NULL;
        }
    }
    else if (fast_out(out_obj, x)) {
        out = (PyArrayObject *)out_obj;
        Py_INCREF(out);
    }
    else {
        Py_RETURN_NONE;
    }
    job_init(&job, x, out, 1, NULL, axis);
    job.mode = mode;
    job.fast = resolve_fast(accuracy);
    job.sc.c_hi = 1.0;
    if (job.n > 0) {
        PyObject *r = run_job(&job);
        if (r == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(r);
    }
    return (PyObject *)out;
}

static PyObject *
core_set_num_threads(PyObject *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    sm_set_num_threads(n < 1 ? 1 : (n > SM_MAX_THREADS ? SM_MAX_THREADS : (int)n));
    Py_RETURN_NONE;
}

static PyObject *
core_get_num_threads(PyObject *self, PyObject *noargs)
{
    return PyLong_FromLong(sm_get_num_threads());
}

PyDoc_STRVAR(config_doc,
"_config() -> dict\n--\n\n"
"Internal: compiled, supported and allowed SIMD targets, the chosen one,\n"
"unknown names in SOFTMAX_DISABLE_CPU_FEATURES, and the thread limit.");

static PyObject *
core_config(PyObject *self, PyObject *noargs)
{
    int n;
    const sm_target_info *info = sm_dispatch_targets(&n);
    PyObject *compiled = PyList_New(0), *supported = PyList_New(0), *allowed = PyList_New(0);
    if (compiled == NULL || supported == NULL || allowed == NULL) {
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        PyObject *name = PyUnicode_FromString(info[i].target->name);
        if (name == NULL || PyList_Append(compiled, name) < 0 ||
            (info[i].supported && PyList_Append(supported, name) < 0) ||
            (info[i].allowed && PyList_Append(allowed, name) < 0)) {
            Py_XDECREF(name);
            goto fail;
        }
        Py_DECREF(name);
    }
    return Py_BuildValue("{sNsNsNsssssssisi}", "compiled", compiled, "supported", supported,
                         "allowed", allowed, "chosen", sm_active->name, "unknown_features",
                         sm_dispatch_unknown(), "known_features", sm_dispatch_known(),
                         "max_threads", SM_MAX_THREADS, "lanes", sm_active->lanes);
fail:
    Py_XDECREF(compiled);
    Py_XDECREF(supported);
    Py_XDECREF(allowed);
    return NULL;
}

PyDoc_STRVAR(vexp_doc,
"_vexp(target, y, out)\n--\n\n"
"Internal: out = exp(y) with the named target's vector exp (float64 arrays,\n"
"contiguous, same size); for accuracy tests.");

/*
 * The arguments of _vexp / _vexpf: a target name and two contiguous arrays
 * of one size and of the given type. Returns the target, or NULL with an
 * exception set.
 */
static const sm_target *
vexp_args(PyObject *args, int type, const char *type_name, PyArrayObject **y,
          PyArrayObject **out)
{
    const char *name;
    PyObject *y_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "sOO", &name, &y_obj, &out_obj)) {
        return NULL;
    }
    const sm_target *t = sm_dispatch_find(name);
    if (t == NULL) {
        PyErr_Format(PyExc_ValueError, "target must be a compiled target this CPU supports, got %s",
                     name);
        return NULL;
    }
    if (!PyArray_Check(y_obj) || !PyArray_Check(out_obj)) {
        PyErr_SetString(PyExc_TypeError, "y and out must be numpy arrays");
        return NULL;
    }
    *y = (PyArrayObject *)y_obj;
    *out = (PyArrayObject *)out_obj;
    if (PyArray_TYPE(*y) != type || PyArray_TYPE(*out) != type ||
        !PyArray_IS_C_CONTIGUOUS(*y) || !PyArray_IS_C_CONTIGUOUS(*out) ||
        !PyArray_ISWRITEABLE(*out) || PyArray_SIZE(*y) != PyArray_SIZE(*out)) {
        PyErr_Format(PyExc_TypeError, "y and out must be contiguous %s arrays of one size",
                     type_name);
        return NULL;
    }
    return t;
}

static PyObject *
core_vexp(PyObject *self, PyObject *args)
{
    PyArrayObject *y, *out;
    const sm_target *t = vexp_args(args, NPY_FLOAT64, "float64", &y, &out);
    if (t == NULL) {
        return NULL;
    }
    t->exp((const double *)PyArray_DATA(y), (double *)PyArray_DATA(out), PyArray_SIZE(y));
    Py_RETURN_NONE;
}

static PyObject *
core_set_accuracy(PyObject *self, PyObject *arg)
{
    const long a = PyLong_AsLong(arg);
    if (a == -1 && PyErr_Occurred()) {
        return NULL;
    }
    default_fast = a != 0;
    Py_RETURN_NONE;
}

static PyObject *
core_get_accuracy(PyObject *self, PyObject *noargs)
{
    return PyLong_FromLong(default_fast);
}

PyDoc_STRVAR(vexpf_doc,
"_vexpf(target, y, out)\n--\n\n"
"Internal: out = exp(y) with the named target's float32-lane exp (float32\n"
"arrays, contiguous, same size); for accuracy tests.");

static PyObject *
core_vexpf(PyObject *self, PyObject *args)
{
    PyArrayObject *y, *out;
    const sm_target *t = vexp_args(args, NPY_FLOAT32, "float32", &y, &out);
    if (t == NULL) {
        return NULL;
    }
    t->expf((const float *)PyArray_DATA(y), (float *)PyArray_DATA(out), PyArray_SIZE(y));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(probe_fma_doc,
"_probe_fma(bits, iters) -> float or None\n--\n\n"
"Internal (benchmark probe): vector FMAs of `bits` (256 or 512) bits per\n"
"second on one core, from `iters` rounds of 12 independent FMA chains, by\n"
"the widest target this CPU supports (None: no target has that width).");

static PyObject *
core_probe_fma(PyObject *self, PyObject *args)
{
    int bits;
    long iters;
    if (!PyArg_ParseTuple(args, "il", &bits, &iters)) {
        return NULL;
    }
    if (iters < 1) {
        PyErr_SetString(PyExc_ValueError, "iters must be >= 1");
        return NULL;
    }
    int n;
    const sm_target_info *info = sm_dispatch_targets(&n);
    for (int i = 0; i < n; i++) {
        if (!info[i].supported || info[i].target->fma_probe == NULL) {
            continue;
        }
        double dt;
        Py_BEGIN_ALLOW_THREADS
        dt = info[i].target->fma_probe(bits, iters);
        Py_END_ALLOW_THREADS
        if (dt > 0) {
            return PyFloat_FromDouble(12.0 * (double)iters / dt);
        }
    }
    Py_RETURN_NONE;
}

/* The two-thread copy floor: dst = src split in nthreads contiguous pieces. */
typedef struct {
    char *dst;
    const char *src;
    size_t bytes;
} copy_ctx;

static void
copy_task(void *arg, int tid, int nt)
{
    const copy_ctx *c = arg;
    /* pieces on 64-byte boundaries */
    const size_t lines = (c->bytes + 63) / 64;
    size_t a = lines * (size_t)tid / (size_t)nt * 64, b = lines * (size_t)(tid + 1) / (size_t)nt * 64;
    a = a < c->bytes ? a : c->bytes;
    b = b < c->bytes ? b : c->bytes;
    if (b > a) {
        memcpy(c->dst + a, c->src + a, b - a);
    }
}

PyDoc_STRVAR(copy_doc,
"_copy(dst, src, nthreads)\n--\n\n"
"Internal (benchmark floor): memcpy of a C-contiguous src into dst (same\n"
"size in bytes, not overlapping) on nthreads threads of the pool.");

static PyObject *
core_copy(PyObject *self, PyObject *args)
{
    PyObject *d_obj, *s_obj;
    int nthreads;
    if (!PyArg_ParseTuple(args, "OOi", &d_obj, &s_obj, &nthreads)) {
        return NULL;
    }
    if (!PyArray_Check(d_obj) || !PyArray_Check(s_obj)) {
        PyErr_SetString(PyExc_TypeError, "dst and src must be numpy arrays");
        return NULL;
    }
    PyArrayObject *d = (PyArrayObject *)d_obj, *s = (PyArrayObject *)s_obj;
    if (!PyArray_IS_C_CONTIGUOUS(d) || !PyArray_IS_C_CONTIGUOUS(s) || !PyArray_ISWRITEABLE(d) ||
        PyArray_NBYTES(d) != PyArray_NBYTES(s) || extents_overlap(d, s)) {
        PyErr_SetString(PyExc_ValueError,
                        "dst and src must be C-contiguous, of one size, writeable dst, apart");
        return NULL;
    }
    copy_ctx c = {PyArray_BYTES(d), PyArray_BYTES(s), (size_t)PyArray_NBYTES(d)};
    Py_BEGIN_ALLOW_THREADS
    sm_pool_run(copy_task, &c, nthreads < 1 ? 1 : nthreads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* Below this many entries the pool's wake-up costs more than it saves. */
#define SM_POOL_MIN 65536


static inline int
any_set(const int *flags, int n)
{
    int any = 0;
    for (int i = 0; i < n; i++) {
        any |= flags[i];
    }
    return any;
}

/* An order or rank of the groups: int32 below 2^31 entries (group_order's
 * choice: half the bytes), else int64. */
typedef struct {
    void *p;
    int wide;   /* int64 */
} sm_index;

static inline int64_t
index_get(sm_index a, npy_intp k)
{
    return a.wide ? ((const int64_t *)a.p)[k] : (int64_t)((const int32_t *)a.p)[k];
}

static inline void
index_put(sm_index a, npy_intp k, int64_t v)
{
    if (a.wide) {
        ((int64_t *)a.p)[k] = v;
    }
    else {
        ((int32_t *)a.p)[k] = (int32_t)v;
    }
}

static inline const void *
index_addr(sm_index a, npy_intp k)
{
    return (const char *)a.p + k * (a.wide ? 8 : 4);
}

/* Rows of a 2-d array gathered by (or scattered to) one permutation. */
typedef struct {
    const char *src;
    char *dst;
    sm_index order;
    npy_intp rows, n, isz;
    int scatter;
    int bad[SM_MAX_THREADS];
} move_ctx;

/* Entries ahead of the current one whose random address is asked for
 * early: a random access into an array larger than the L2 cache waits on
 * memory, and one thread asking ahead keeps more of them in flight (the
 * gather of 10^6 float64 went from 3.0 to 1.8 ms on one thread). */
#define SM_MOVE_AHEAD 32

static void
move_task(void *arg, int tid, int nt)
{
    move_ctx *c = arg;
    const npy_intp n = c->n, isz = c->isz;
    const npy_intp k0 = sm_part_bound(n, tid, nt), k1 = sm_part_bound(n, tid + 1, nt);
    for (npy_intp r = 0; r < c->rows; r++) {
        const char *s = c->src + r * n * isz;
        char *d = c->dst + r * n * isz;
        for (npy_intp k = k0; k < k1; k++) {
            const int64_t o = index_get(c->order, k);
            /* every access stays inside the row, whatever order holds */
            if (o < 0 || o >= n) {
                c->bad[tid] = 1;
                return;
            }
            if (k + SM_MOVE_AHEAD < k1) {
                const int64_t a = index_get(c->order, k + SM_MOVE_AHEAD);
                if (a >= 0 && a < n) {
                    if (c->scatter) {
                        __builtin_prefetch(d + a * isz, 1);
                    }
                    else {
                        __builtin_prefetch(s + a * isz, 0);
                    }
                }
            }
            const npy_intp from = c->scatter ? k : (npy_intp)o, to = c->scatter ? (npy_intp)o : k;
            switch (isz) {
            case 8: memcpy(d + to * 8, s + from * 8, 8); break;
            case 4: memcpy(d + to * 4, s + from * 4, 4); break;
            case 2: memcpy(d + to * 2, s + from * 2, 2); break;
            default: d[to] = s[from]; break;
            }
        }
    }
}

PyDoc_STRVAR(group_move_doc,
"group_move(src, order, dst, scatter)\n--\n\n"
"Internal: the rows of src (2-d C-contiguous, items of 1, 2, 4 or 8 bytes)\n"
"gathered into dst by order (dst[:, k] = src[:, order[k]]) or, with scatter,\n"
"scattered (dst[:, order[k]] = src[:, k]); order 1-d contiguous int32 or\n"
"int64, one entry per column. The pool's threads split the columns: the\n"
"random reads or writes of one thread wait on memory, two keep twice as\n"
"many in flight.");

static PyObject *
core_group_move(PyObject *self, PyObject *args)
{
    PyArrayObject *src, *order, *dst;
    int scatter;
    if (!PyArg_ParseTuple(args, "O!O!O!p", &PyArray_Type, &src, &PyArray_Type, &order,
                          &PyArray_Type, &dst, &scatter)) {
        return NULL;
    }
    const npy_intp isz = PyArray_ITEMSIZE(src);
    const int otype = PyArray_TYPE(order);
    if ((otype != NPY_INT64 && otype != NPY_INT32) || PyArray_NDIM(order) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(order) || PyArray_NDIM(src) != 2 || PyArray_NDIM(dst) != 2 ||
        !PyArray_IS_C_CONTIGUOUS(src) || !PyArray_IS_C_CONTIGUOUS(dst) ||
        !PyArray_ISWRITEABLE(dst) || PyArray_ITEMSIZE(dst) != isz ||
        !(isz == 1 || isz == 2 || isz == 4 || isz == 8) ||
        PyArray_DIM(src, 0) != PyArray_DIM(dst, 0) || PyArray_DIM(src, 1) != PyArray_DIM(dst, 1) ||
        PyArray_DIM(src, 1) != PyArray_DIM(order, 0) || extents_overlap(src, dst)) {
        PyErr_SetString(PyExc_ValueError,
                        "group_move: src and dst 2-d C-contiguous alike and apart, order 1-d "
                        "contiguous int32 or int64 with one entry per column (internal)");
        return NULL;
    }
    move_ctx c = {PyArray_BYTES(src), PyArray_BYTES(dst),
                  {PyArray_DATA(order), otype == NPY_INT64},
                  PyArray_DIM(src, 0), PyArray_DIM(src, 1), isz, scatter, {0}};
    const int nt = PyArray_SIZE(src) >= SM_POOL_MIN ? sm_get_num_threads() : 1;
    int used;
    Py_BEGIN_ALLOW_THREADS
    used = sm_pool_run(move_task, &c, nt);
    Py_END_ALLOW_THREADS
    if (any_set(c.bad, used)) {
        PyErr_SetString(PyExc_ValueError, "order holds an index outside the row (internal)");
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(segment_scatter_doc,
"segment_scatter(x, out, where, ids, num_groups, c_hi, c_lo, mode)\n--\n\n"
"Internal: softmax (mode 0), log_softmax (1) or logsumexp (2) over the\n"
"groups of each row of a 2-d x, entry i of a row in group ids[i] (1-d\n"
"C-contiguous int64, any order, each in [0, num_groups)), without sorting:\n"
"out like x (modes 0, 1; not overlapping x) or (rows, num_groups) (mode 2).\n"
"Scores x * c, c = c_hi + c_lo (mode 2: 1). Returns None, or a uint8\n"
"array of num_groups marking the groups (max NaN or +inf) whose entries\n"
"(or logsumexp) were left for the caller to write.");

static PyObject *
core_segment_scatter(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *out_obj, *mask_obj;
    PyArrayObject *ids;
    Py_ssize_t ng;
    double c_hi, c_lo;
    int mode;
    if (!PyArg_ParseTuple(args, "OOOO!nddi", &x_obj, &out_obj, &mask_obj, &PyArray_Type, &ids,
                          &ng, &c_hi, &c_lo, &mode)) {
        return NULL;
    }
    PyArrayObject *x = as_float_array(x_obj, "x", 0);
    PyArrayObject *out = x ? as_float_array(out_obj, "out", 1) : NULL;
    if (out == NULL) {
        return NULL;
    }
    if (mode < SM_MODE_SOFTMAX || mode > SM_MODE_LSE || PyArray_NDIM(x) != 2 ||
        PyArray_TYPE(out) != PyArray_TYPE(x) || PyArray_NDIM(out) != 2 ||
        PyArray_DIM(out, 0) != PyArray_DIM(x, 0) ||
        PyArray_DIM(out, 1) != (mode == SM_MODE_LSE ? ng : PyArray_DIM(x, 1)) ||
        PyArray_TYPE(ids) != NPY_INT64 || PyArray_NDIM(ids) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(ids) || PyArray_DIM(ids, 0) != PyArray_DIM(x, 1) || ng < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "segment_scatter: x 2-d, out like x (mode 2: rows x num_groups) of its "
                        "dtype, ids 1-d contiguous int64 of x's row length (internal)");
        return NULL;
    }
    PyArrayObject *mask;
    if (as_mask(mask_obj, x, &mask) < 0) {
        return NULL;
    }
    if (mode != SM_MODE_LSE && (!(c_hi == c_hi) || c_hi == 0.0 || isinf(c_hi))) {
        PyErr_SetString(PyExc_ValueError, "scale must be finite and nonzero (internal)");
        return NULL;
    }
    if (mode == SM_MODE_LSE) {
        c_hi = 1.0;
        c_lo = 0.0;
    }
    const npy_intp len = ng;
    PyArrayObject *special = (PyArrayObject *)PyArray_ZEROS(1, &len, NPY_UINT8, 0);
    if (special == NULL) {
        return NULL;
    }
    sm_scatter s = {
        .tg = sm_active,
        .dtype = dtype_code(x),
        .mode = mode,
        .sc = scale_of(c_hi, c_lo),
        .rows = PyArray_DIM(x, 0),
        .n = PyArray_DIM(x, 1),
        .ng = ng,
        .x = PyArray_BYTES(x),
        .x_row = PyArray_STRIDE(x, 0),
        .x_stride = PyArray_STRIDE(x, 1),
        .mask = mask ? (const unsigned char *)PyArray_BYTES(mask) : NULL,
        .m_row = mask ? PyArray_STRIDE(mask, 0) : 0,
        .m_stride = mask ? PyArray_STRIDE(mask, 1) : 0,
        .out = PyArray_BYTES(out),
        .o_row = PyArray_STRIDE(out, 0),
        .o_stride = PyArray_STRIDE(out, 1),
        .id = PyArray_DATA(ids),
        .special = PyArray_DATA(special),
    };
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = sm_scatter_run(&s, sm_get_num_threads());
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        Py_DECREF(special);
        if (rc < 0) {
            return PyErr_NoMemory();
        }
        PyErr_SetString(PyExc_ValueError,
                         rc == 1 ? "segment_scatter: an id outside [0, num_groups) "
                                   "(internal)"
                                 : "segment_scatter: 2^32 entries or more in float16/float32 "
                                   "(internal)");
        return NULL;
    }
    const unsigned char *sp = PyArray_DATA(special);
    for (npy_intp g = 0; g < len; g++) {
        if (sp[g]) {
            return (PyObject *)special;
        }
    }
    Py_DECREF(special);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(group_scan_doc,
"group_scan(ids, num_groups, offsets=True)\n--\n\n"
"Internal: one pass over ids (1-d C-contiguous int64) for what a segment\n"
"call needs to know: (offsets, lo, hi, ordered), lo and hi the smallest\n"
"and largest id (0 and -1 when empty), ordered whether they never\n"
"decrease, offsets the groups' CSR boundaries in group order (int64,\n"
"num_groups + 1 entries; num_groups -1: hi + 1), or None when an id is\n"
"outside [0, num_groups) (the caller names it) or when the ids are not in\n"
"order and offsets=False (the range pass only: the scatter path needs no\n"
"offsets).");

/* Parts of a counting pass over n ids into ng groups: one per thread where
 * a part's tables (a count, a cursor per group) stay small beside its
 * entries and the pool's wake-up pays, else one. */
static int
count_parts(npy_intp n, npy_intp ng)
{
    return n >= SM_POOL_MIN && ng <= n / 4 ? sm_get_num_threads() : 1;
}

/* group_scan's passes in parts on the pool's threads: the range and order
 * of each part's ids, then (ids not sorted) each part's counts per group,
 * into tables summed after (and kept: group_order's counting sort needs the
 * same counts, and takes them instead of counting again). */
typedef struct {
    const int64_t *id;
    npy_intp n, ng;
    int parts;
    int64_t lo[SM_MAX_THREADS], hi[SM_MAX_THREADS];
    int ordered[SM_MAX_THREADS];
    int64_t *off;     /* ng + 1 */
    int64_t *count;   /* parts x (ng + 1): part p's counts, shifted by one */
} scan_ctx;

static void
scan_range_task(void *arg, int tid, int nt)
{
    scan_ctx *c = arg;
    for (int p = tid; p < c->parts; p += nt) {
        const npy_intp i0 = sm_part_bound(c->n, p, c->parts);
        const npy_intp i1 = sm_part_bound(c->n, p + 1, c->parts);
        int64_t lo = c->id[i0], hi = c->id[i0];
        int ordered = i0 == 0 || c->id[i0] >= c->id[i0 - 1];
        for (npy_intp i = i0 + 1; i < i1; i++) {
            const int64_t g = c->id[i];
            ordered &= g >= c->id[i - 1];
            lo = g < lo ? g : lo;
            hi = g > hi ? g : hi;
        }
        c->lo[p] = lo;
        c->hi[p] = hi;
        c->ordered[p] = ordered;
    }
}

/* Only after the range pass found every id in [0, ng). */
static void
scan_count_task(void *arg, int tid, int nt)
{
    scan_ctx *c = arg;
    for (int p = tid; p < c->parts; p += nt) {
        int64_t *h = c->count + (npy_intp)p * (c->ng + 1);   /* zeroed by the caller */
        const npy_intp i1 = sm_part_bound(c->n, p + 1, c->parts);
        for (npy_intp i = sm_part_bound(c->n, p, c->parts); i < i1; i++) {
            h[c->id[i] + 1]++;
        }
    }
}

static PyObject *
core_group_scan(PyObject *self, PyObject *args)
{
    PyArrayObject *ids;
    Py_ssize_t ng_arg;
    int want_offsets = 1;
    if (!PyArg_ParseTuple(args, "O!n|p", &PyArray_Type, &ids, &ng_arg, &want_offsets)) {
        return NULL;
    }
    if (PyArray_TYPE(ids) != NPY_INT64 || PyArray_NDIM(ids) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(ids) || ng_arg < -1) {
        PyErr_SetString(PyExc_ValueError, "ids must be 1-d contiguous int64 (internal)");
        return NULL;
    }
    const npy_intp n = PyArray_DIM(ids, 0);
    const int64_t *id = PyArray_DATA(ids);
    int64_t lo = 0, hi = -1;
    int ordered = 1;
    scan_ctx c = {id, n, 0, n >= SM_POOL_MIN ? sm_get_num_threads() : 1, {0}, {0}, {0}, NULL,
                  NULL};
    if (n > 0) {
        Py_BEGIN_ALLOW_THREADS
        sm_pool_run(scan_range_task, &c, c.parts);
        Py_END_ALLOW_THREADS
        lo = c.lo[0];
        hi = c.hi[0];
        for (int p = 0; p < c.parts; p++) {
            lo = c.lo[p] < lo ? c.lo[p] : lo;
            hi = c.hi[p] > hi ? c.hi[p] : hi;
            ordered &= c.ordered[p];
        }
    }
    const int64_t ng = ng_arg != -1 ? (int64_t)ng_arg : hi < INT64_MAX ? hi + 1 : INT64_MAX;
    if (ng > NPY_MAX_INTP / (npy_intp)sizeof(int64_t) - 1) {
        PyErr_SetString(PyExc_ValueError, "their offsets exceed the largest possible array");
        return NULL;
    }
    if (lo < 0 || hi >= ng || (!ordered && !want_offsets)) {
        return Py_BuildValue("OLLOO", Py_None, (long long)lo, (long long)hi,
                             ordered ? Py_True : Py_False, Py_None);
    }
    const npy_intp len = (npy_intp)ng + 1;
    PyArrayObject *offsets = (PyArrayObject *)PyArray_ZEROS(1, &len, NPY_INT64, 0);
    if (offsets == NULL) {
        return NULL;
    }
    int64_t *off = PyArray_DATA(offsets);
    c.ng = ng;
    c.off = off;
    PyArrayObject *counts = NULL;
    if (!ordered && count_parts(n, ng) > 1) {   /* then c.parts is the thread count too */
        const npy_intp dims[2] = {c.parts, len};
        counts = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_INT64, 0);
        if (counts == NULL) {
            Py_DECREF(offsets);
            return NULL;
        }
        c.count = PyArray_DATA(counts);
    }
    Py_BEGIN_ALLOW_THREADS
    if (ordered) {
        /* offsets[g] = the first entry of a group >= g: one sweep of both */
        int64_t g = 0;
        for (npy_intp i = 0; i < n; i++) {
            while (g <= id[i]) {
                off[g++] = i;
            }
        }
        while (g <= ng) {
            off[g++] = n;
        }
    }
    else {
        /* counts shifted by one, then their running sum */
        if (c.count != NULL) {
            sm_pool_run(scan_count_task, &c, c.parts);
            for (int p = 0; p < c.parts; p++) {
                const int64_t *h = c.count + (npy_intp)p * (ng + 1);
                for (int64_t g = 1; g <= ng; g++) {
                    off[g] += h[g];
                }
            }
        }
        else {
            for (npy_intp i = 0; i < n; i++) {
                off[id[i] + 1]++;
            }
        }
        for (int64_t g = 0; g < ng; g++) {
            off[g + 1] += off[g];
        }
    }
    Py_END_ALLOW_THREADS
    PyObject *res = Py_BuildValue("OLLOO", (PyObject *)offsets, (long long)lo, (long long)hi,
                                  ordered ? Py_True : Py_False,
                                  counts != NULL ? (PyObject *)counts : Py_None);
    Py_DECREF(offsets);
    Py_XDECREF(counts);
    return res;
}

PyDoc_STRVAR(group_order_doc,
"group_order(ids, offsets, inverse=False, counts=None)\n--\n\n"
"Internal: the stable order that sorts the entries by group (a counting\n"
"sort, O(n), in parts on the pool's threads): ids and offsets are\n"
"C-contiguous int64, offsets the groups' CSR boundaries in that order\n"
"(len = number of groups + 1, last = n). int32 below 2^31 entries, else int64.\n"
"inverse: each entry's rank in that order instead (rank[order[k]] = k),\n"
"written in the entries' order where order is written at random.\n"
"counts: group_scan's per-part counts of these ids, used when they are\n"
"for as many parts as this call runs (else counted again).");

/*
 * The counting sort of group_order in parts: part p of the entries writes
 * its group g's entries from off[g] + (the entries of g in parts before
 * p), so the parts run on separate threads and the order stays stable.
 * The counts of every part but the last come first, in a pass of their own.
 */
typedef struct {
    const int64_t *id, *off;
    sm_index order;
    int64_t *count;   /* (parts - 1) x (ng + 1): part p's entries per group, shifted by one */
    int64_t *cursor;  /* parts x ng: where part p writes its next entry of g */
    npy_intp n, ng;
    int parts;
    int inverse;      /* write each entry's rank (rank[i]) instead of order[rank] = i */
    int bad[SM_MAX_THREADS];
} order_ctx;

static void
order_count_task(void *arg, int tid, int nt)
{
    order_ctx *c = arg;
    for (int p = tid; p < c->parts - 1; p += nt) {
        int64_t *h = c->count + (npy_intp)p * (c->ng + 1);
        memset(h, 0, (size_t)(c->ng + 1) * sizeof(int64_t));
        const npy_intp i1 = sm_part_bound(c->n, p + 1, c->parts);
        for (npy_intp i = sm_part_bound(c->n, p, c->parts); i < i1; i++) {
            const int64_t g = c->id[i];
            if (g < 0 || g >= c->ng) {
                c->bad[p] = 1;
                break;
            }
            h[g + 1]++;
        }
    }
}

static void
order_write_task(void *arg, int tid, int nt)
{
    order_ctx *c = arg;
    const npy_intp ng = c->ng;
    const int64_t *id = c->id, *off = c->off;
    for (int p = tid; p < c->parts; p += nt) {
        int64_t *cur = c->cursor + (npy_intp)p * ng;
        memcpy(cur, off, (size_t)ng * sizeof(int64_t));
        for (int q = 0; q < p; q++) {
            const int64_t *h = c->count + (npy_intp)q * (ng + 1) + 1;
            for (npy_intp g = 0; g < ng; g++) {
                cur[g] += h[g];
            }
        }
        const npy_intp i1 = sm_part_bound(c->n, p + 1, c->parts);
        for (npy_intp i = sm_part_bound(c->n, p, c->parts); i < i1; i++) {
            const int64_t g = id[i];
            /* every write stays inside order: a cursor never passes its
             * group's end */
            if (g < 0 || g >= ng || cur[g] >= off[g + 1]) {
                c->bad[p] = 1;
                break;
            }
            if (c->inverse) {   /* a write in the entries' order: nothing to ask ahead */
                index_put(c->order, i, cur[g]++);
                continue;
            }
            /* the random write, asked for ahead (see SM_MOVE_AHEAD) */
            if (i + SM_MOVE_AHEAD < i1) {
                const int64_t ga = id[i + SM_MOVE_AHEAD];
                if (ga >= 0 && ga < ng) {
                    __builtin_prefetch(index_addr(c->order, cur[ga]), 1);
                }
            }
            index_put(c->order, cur[g]++, i);
        }
    }
}

static PyObject *
core_group_order(PyObject *self, PyObject *args)
{
    PyArrayObject *ids, *offsets;
    int inverse = 0;
    PyObject *given = Py_None;
    if (!PyArg_ParseTuple(args, "O!O!|pO", &PyArray_Type, &ids, &PyArray_Type, &offsets,
                          &inverse, &given)) {
        return NULL;
    }
    if (PyArray_TYPE(ids) != NPY_INT64 || PyArray_TYPE(offsets) != NPY_INT64 ||
        PyArray_NDIM(ids) != 1 || PyArray_NDIM(offsets) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(ids) || !PyArray_IS_C_CONTIGUOUS(offsets) ||
        PyArray_DIM(offsets, 0) < 1) {
        PyErr_SetString(PyExc_ValueError, "ids and offsets must be 1-d contiguous int64 (internal)");
        return NULL;
    }
    const npy_intp n = PyArray_DIM(ids, 0), ng = PyArray_DIM(offsets, 0) - 1;
    const int64_t *id = PyArray_DATA(ids), *off = PyArray_DATA(offsets);
    if (off[ng] != n) {
        PyErr_SetString(PyExc_ValueError, "offsets must end at len(ids) (internal)");
        return NULL;
    }
    const int parts = count_parts(n, ng);
    const npy_intp ngc = ng > 0 ? ng : 1;
    /* int32 where it holds every position: half the bytes to write, to read
     * twice (gather and scatter back) and to allocate */
    const int narrow = n <= INT32_MAX;
    /* group_scan's counts when they are of these parts (the thread count
     * may have changed since): one pass over the ids fewer */
    const int reuse = parts > 1 && PyArray_Check(given) &&
                      PyArray_TYPE((PyArrayObject *)given) == NPY_INT64 &&
                      PyArray_NDIM((PyArrayObject *)given) == 2 &&
                      PyArray_IS_C_CONTIGUOUS((PyArrayObject *)given) &&
                      PyArray_DIM((PyArrayObject *)given, 0) == parts &&
                      PyArray_DIM((PyArrayObject *)given, 1) == ng + 1;
    PyArrayObject *order =
        empty_result(1, &n, PyArray_DescrFromType(narrow ? NPY_INT32 : NPY_INT64));
    const size_t count_len = reuse ? 0 : (size_t)(ng + 1) * (size_t)(parts - 1);
    int64_t *tables = PyMem_Malloc((count_len + (size_t)ngc * (size_t)parts) * sizeof(int64_t));
    if (order == NULL || tables == NULL) {
        Py_XDECREF(order);
        PyMem_Free(tables);
        return PyErr_NoMemory();
    }
    int64_t *count = reuse ? (int64_t *)PyArray_DATA((PyArrayObject *)given) : tables;
    order_ctx c = {id, off, {PyArray_DATA(order), !narrow}, count, tables + count_len,
                   n, ng, parts, inverse, {0}};
    Py_BEGIN_ALLOW_THREADS
    if (parts > 1 && !reuse) {
        sm_pool_run_then(order_count_task, &c, parts);
    }
    if (!any_set(c.bad, parts)) {
        sm_pool_run(order_write_task, &c, parts);
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(tables);
    if (any_set(c.bad, parts)) {
        Py_DECREF(order);
        PyErr_SetString(PyExc_ValueError, "ids do not match offsets (internal)");
        return NULL;
    }
    return (PyObject *)order;
}

static PyMethodDef core_methods[] = {
    {"group_scan", core_group_scan, METH_VARARGS, group_scan_doc},
    {"group_order", core_group_order, METH_VARARGS, group_order_doc},
    {"group_move", core_group_move, METH_VARARGS, group_move_doc},
    {"segment_scatter", core_segment_scatter, METH_VARARGS, segment_scatter_doc},
    {"softmax", core_softmax, METH_VARARGS, softmax_doc},
    {"logsumexp", core_logsumexp, METH_VARARGS, logsumexp_doc},
    {"segment_softmax", core_segment_softmax, METH_VARARGS, segment_softmax_doc},
    {"segment_logsumexp", core_segment_logsumexp, METH_VARARGS, segment_logsumexp_doc},
    {"fast", (PyCFunction)(void (*)(void))core_fast, METH_FASTCALL, fast_doc},
    {"set_num_threads", core_set_num_threads, METH_O, "Internal: the thread limit."},
    {"get_num_threads", core_get_num_threads, METH_NOARGS, "Internal: the thread limit."},
    {"_config", core_config, METH_NOARGS, config_doc},
    {"_vexp", core_vexp, METH_VARARGS, vexp_doc},
    {"_vexpf", core_vexpf, METH_VARARGS, vexpf_doc},
    {"_probe_fma", core_probe_fma, METH_VARARGS, probe_fma_doc},
    {"_copy", core_copy, METH_VARARGS, copy_doc},
    {"empty", core_empty, METH_VARARGS, empty_doc},
    {"memory_cache", core_memory_cache, METH_VARARGS, memory_cache_doc},
    {"set_accuracy", core_set_accuracy, METH_O, "Internal: the default accuracy (0 high, 1 fast)."},
    {"get_accuracy", core_get_accuracy, METH_NOARGS, "Internal: the default accuracy."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "_core", "The compiled core of softmax (internal).", -1,
    core_methods,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    import_array();
    sm_dispatch_init(getenv("SOFTMAX_DISABLE_CPU_FEATURES"));
    block_handler_capsule = PyCapsule_New(&block_handler, "mem_handler", NULL);
    if (block_handler_capsule == NULL) {
        return NULL;
    }
    return PyModule_Create(&core_module);
}
