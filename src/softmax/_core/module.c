/*
 * softmax._core: the Python glue around the driver and kernels.
 *
 * The Python layer (softmax/_api.py) has already validated and normalized
 * every argument: x is an aligned, native-order float16/32/64 array whose
 * reduction axis is the last one, out has x's dtype and the right shape and
 * is writeable, the mask (if any) is a bool array broadcast to x's shape.
 * This file re-checks only what it needs to stay memory safe, plans the
 * call, and runs it with the GIL released.
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
#include "threads.h"

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

static int
same_shape(PyArrayObject *a, PyArrayObject *b, int ndim)
{
    if (PyArray_NDIM(b) != ndim) {
        return 0;
    }
    for (int d = 0; d < ndim; d++) {
        if (PyArray_DIM(a, d) != PyArray_DIM(b, d)) {
            return 0;
        }
    }
    return 1;
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

/* Fills the job's geometry from x (reduced along its last axis). */
static void
job_init(sm_job *job, PyArrayObject *x, PyArrayObject *out, int out_has_last,
         PyArrayObject *mask)
{
    const int nd = PyArray_NDIM(x);
    memset(job, 0, offsetof(sm_job, dims));
    job->tg = sm_active;
    job->dtype = dtype_code(x);
    job->outer_ndim = nd - 1;
    job->rows = 1;
    for (int d = 0; d < nd - 1; d++) {
        job->dims[d] = PyArray_DIM(x, d);
        job->x_strides[d] = PyArray_STRIDE(x, d);
        job->o_strides[d] = PyArray_STRIDE(out, d);
        job->m_strides[d] = mask ? PyArray_STRIDE(mask, d) : 0;
        job->rows *= PyArray_DIM(x, d);
    }
    job->x = PyArray_BYTES(x);
    job->out = PyArray_BYTES(out);
    job->mask = mask ? (const unsigned char *)PyArray_BYTES(mask) : NULL;
    job->n = PyArray_DIM(x, nd - 1);
    job->x_stride = PyArray_STRIDE(x, nd - 1);
    job->out_stride = out_has_last ? PyArray_STRIDE(out, nd - 1) : 0;
    job->mask_stride = mask ? PyArray_STRIDE(mask, nd - 1) : 0;
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

PyDoc_STRVAR(softmax_doc,
"softmax(x, out, where, c_hi, c_lo, log_mode)\n--\n\n"
"Internal: softmax (log_mode=False) or log_softmax along the last axis of\n"
"x into out, with scores (x * c) and c = c_hi + c_lo. Use softmax.softmax.");

static PyObject *
core_softmax(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *out_obj, *mask_obj;
    double c_hi, c_lo;
    int log_mode;
    if (!PyArg_ParseTuple(args, "OOOddp", &x_obj, &out_obj, &mask_obj, &c_hi, &c_lo,
                          &log_mode)) {
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
    job_init(&job, x, out, 1, mask);
    job.mode = log_mode ? SM_MODE_LOG : SM_MODE_SOFTMAX;
    job.sc.negate = c_hi < 0;
    job.sc.c_hi = fabs(c_hi);
    job.sc.c_lo = job.sc.negate ? -c_lo : c_lo;
    job.sc.scaled = !(c_hi == 1.0 && c_lo == 0.0);
    if (job.n == 0) {
        Py_RETURN_NONE;
    }
    return run_job(&job);
}

PyDoc_STRVAR(logsumexp_doc,
"logsumexp(x, out, where)\n--\n\n"
"Internal: logsumexp along the last axis of x into out (shape x.shape[:-1]).\n"
"Use softmax.logsumexp.");

static PyObject *
core_logsumexp(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *out_obj, *mask_obj;
    if (!PyArg_ParseTuple(args, "OOO", &x_obj, &out_obj, &mask_obj)) {
        return NULL;
    }
    PyArrayObject *x = as_float_array(x_obj, "x", 0);
    PyArrayObject *out = x ? as_float_array(out_obj, "out", 1) : NULL;
    if (out == NULL) {
        return NULL;
    }
    const int nd = PyArray_NDIM(x);
    if (nd < 1 || PyArray_TYPE(x) != PyArray_TYPE(out) || !same_shape(x, out, nd - 1)) {
        PyErr_SetString(PyExc_ValueError,
                        "out must have x's dtype and shape x.shape[:-1] (internal)");
        return NULL;
    }
    PyArrayObject *mask;
    if (as_mask(mask_obj, x, &mask) < 0) {
        return NULL;
    }
    sm_job job;
    job_init(&job, x, out, 0, mask);
    job.mode = SM_MODE_LSE;
    job.sc.c_hi = 1.0;
    return run_job(&job);
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

static PyObject *
core_vexp(PyObject *self, PyObject *args)
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
    PyArrayObject *y = (PyArrayObject *)y_obj, *out = (PyArrayObject *)out_obj;
    if (PyArray_TYPE(y) != NPY_FLOAT64 || PyArray_TYPE(out) != NPY_FLOAT64 ||
        !PyArray_IS_C_CONTIGUOUS(y) || !PyArray_IS_C_CONTIGUOUS(out) ||
        !PyArray_ISWRITEABLE(out) || PyArray_SIZE(y) != PyArray_SIZE(out)) {
        PyErr_SetString(PyExc_TypeError,
                        "y and out must be contiguous float64 arrays of one size");
        return NULL;
    }
    t->exp((const double *)PyArray_DATA(y), (double *)PyArray_DATA(out), PyArray_SIZE(y));
    Py_RETURN_NONE;
}

static PyMethodDef core_methods[] = {
    {"softmax", core_softmax, METH_VARARGS, softmax_doc},
    {"logsumexp", core_logsumexp, METH_VARARGS, logsumexp_doc},
    {"set_num_threads", core_set_num_threads, METH_O, "Internal: the thread limit."},
    {"get_num_threads", core_get_num_threads, METH_NOARGS, "Internal: the thread limit."},
    {"_config", core_config, METH_NOARGS, config_doc},
    {"_vexp", core_vexp, METH_VARARGS, vexp_doc},
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
    return PyModule_Create(&core_module);
}
