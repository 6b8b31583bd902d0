/*
 * softmax._core: the Python glue around the row kernels.
 *
 * The Python layer (softmax/_api.py) has already validated and normalized
 * every argument: x is an aligned, native-order float32/float64 array whose
 * reduction axis is the last one, out has x's dtype and the right shape and
 * is writeable, the mask (if any) is a bool array broadcast to x's shape.
 * This file re-checks only what it needs to stay memory safe, walks the
 * outer indices, and runs the rows with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_25_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <string.h>

#include "kernels.h"

/* Raises TypeError unless obj is an aligned native float32/float64 ndarray. */
static PyArrayObject *
as_float_array(PyObject *obj, const char *name, int writeable)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray", name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    int t = PyArray_TYPE(a);
    if ((t != NPY_FLOAT32 && t != NPY_FLOAT64) || !PyArray_ISALIGNED(a) ||
        !PyArray_ISNOTSWAPPED(a)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be an aligned native float32 or float64 array", name);
        return NULL;
    }
    if (writeable && !PyArray_ISWRITEABLE(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be writeable", name);
        return NULL;
    }
    return a;
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

static PyArrayObject *
as_mask(PyObject *obj, PyArrayObject *x)
{
    if (obj == Py_None) {
        return NULL;
    }
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_BOOL ||
        !same_shape(x, (PyArrayObject *)obj, PyArray_NDIM(x))) {
        PyErr_SetString(PyExc_TypeError, "where must be a bool array of x's shape");
        return NULL;
    }
    return (PyArrayObject *)obj;
}

/*
 * Walks every outer index of x (all axes but the last) in C order, keeping
 * byte offsets for x, out and the mask: 64-bit offsets, no overflow for any
 * array NumPy can allocate.
 */
typedef struct {
    int outer_ndim;
    npy_intp dims[NPY_MAXDIMS];
    npy_intp x_strides[NPY_MAXDIMS];
    npy_intp o_strides[NPY_MAXDIMS];
    npy_intp m_strides[NPY_MAXDIMS];
    npy_intp index[NPY_MAXDIMS];
    npy_intp x_off, o_off, m_off;
} outer_walk;

static void
walk_init(outer_walk *w, PyArrayObject *x, PyArrayObject *out, int out_ndim,
          PyArrayObject *mask)
{
    memset(w, 0, sizeof(*w));
    w->outer_ndim = PyArray_NDIM(x) - 1;
    for (int d = 0; d < w->outer_ndim; d++) {
        w->dims[d] = PyArray_DIM(x, d);
        w->x_strides[d] = PyArray_STRIDE(x, d);
        w->o_strides[d] = d < out_ndim ? PyArray_STRIDE(out, d) : 0;
        w->m_strides[d] = mask ? PyArray_STRIDE(mask, d) : 0;
    }
}

static void
walk_next(outer_walk *w)
{
    for (int d = w->outer_ndim - 1; d >= 0; d--) {
        w->index[d]++;
        w->x_off += w->x_strides[d];
        w->o_off += w->o_strides[d];
        w->m_off += w->m_strides[d];
        if (w->index[d] < w->dims[d]) {
            return;
        }
        w->x_off -= w->x_strides[d] * w->dims[d];
        w->o_off -= w->o_strides[d] * w->dims[d];
        w->m_off -= w->m_strides[d] * w->dims[d];
        w->index[d] = 0;
    }
}

static npy_intp
n_rows(PyArrayObject *x)
{
    npy_intp rows = 1;
    for (int d = 0; d < PyArray_NDIM(x) - 1; d++) {
        rows *= PyArray_DIM(x, d);
    }
    return rows;
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
    PyArrayObject *mask = as_mask(mask_obj, x);
    if (mask == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (!(c_hi == c_hi) || c_hi == 0.0 || isinf(c_hi)) {
        PyErr_SetString(PyExc_ValueError, "scale must be finite and nonzero (internal)");
        return NULL;
    }
    sm_scale sc;
    sc.negate = c_hi < 0;
    sc.c_hi = fabs(c_hi);
    sc.c_lo = sc.negate ? -c_lo : c_lo;
    sc.scaled = !(c_hi == 1.0 && c_lo == 0.0);

    const int nd = PyArray_NDIM(x);
    const npy_intp rows = n_rows(x);
    sm_row row;
    row.n = PyArray_DIM(x, nd - 1);
    row.x_stride = PyArray_STRIDE(x, nd - 1);
    row.out_stride = PyArray_STRIDE(out, nd - 1);
    row.mask_stride = mask ? PyArray_STRIDE(mask, nd - 1) : 0;
    const int is_f32 = PyArray_TYPE(x) == NPY_FLOAT32;

    outer_walk w;
    walk_init(&w, x, out, nd - 1, mask);
    const char *xb = PyArray_BYTES(x);
    char *ob = PyArray_BYTES(out);
    const char *mb = mask ? PyArray_BYTES(mask) : NULL;

    NPY_BEGIN_THREADS_DEF;
    NPY_BEGIN_THREADS;
    for (npy_intp r = 0; r < rows && row.n > 0; r++) {
        row.x = xb + w.x_off;
        row.out = ob + w.o_off;
        row.mask = mb ? (const unsigned char *)(mb + w.m_off) : NULL;
        if (is_f32) {
            sm_softmax_row_f32(&row, &sc, log_mode);
        }
        else {
            sm_softmax_row_f64(&row, &sc, log_mode);
        }
        walk_next(&w);
    }
    NPY_END_THREADS;
    Py_RETURN_NONE;
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
    PyArrayObject *mask = as_mask(mask_obj, x);
    if (mask == NULL && PyErr_Occurred()) {
        return NULL;
    }
    const npy_intp rows = n_rows(x);
    sm_row row;
    row.n = PyArray_DIM(x, nd - 1);
    row.x_stride = PyArray_STRIDE(x, nd - 1);
    row.out = NULL;
    row.out_stride = 0;
    row.mask_stride = mask ? PyArray_STRIDE(mask, nd - 1) : 0;
    const int is_f32 = PyArray_TYPE(x) == NPY_FLOAT32;

    outer_walk w;
    walk_init(&w, x, out, nd - 1, mask);
    const char *xb = PyArray_BYTES(x);
    char *ob = PyArray_BYTES(out);
    const char *mb = mask ? PyArray_BYTES(mask) : NULL;

    NPY_BEGIN_THREADS_DEF;
    NPY_BEGIN_THREADS;
    for (npy_intp r = 0; r < rows; r++) {
        double hi, lo;
        row.x = xb + w.x_off;
        row.mask = mb ? (const unsigned char *)(mb + w.m_off) : NULL;
        if (is_f32) {
            sm_logsumexp_row_f32(&row, &hi, &lo);
            *(float *)(ob + w.o_off) = (float)(hi + lo);
        }
        else {
            sm_logsumexp_row_f64(&row, &hi, &lo);
            *(double *)(ob + w.o_off) = hi + lo;
        }
        walk_next(&w);
    }
    NPY_END_THREADS;
    Py_RETURN_NONE;
}

static PyMethodDef core_methods[] = {
    {"softmax", core_softmax, METH_VARARGS, softmax_doc},
    {"logsumexp", core_logsumexp, METH_VARARGS, logsumexp_doc},
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
    return PyModule_Create(&core_module);
}
