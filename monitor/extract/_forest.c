/* The block classifier's forest over a page's feature rows (monitor.extract.model):
 * for each row, the sum of its leaves' values over all trees. The numpy walk in
 * model.py computes the same sums where this was not built.
 *
 * margins(rows, n_rows, n_features, feature, threshold, left, right, value, roots)
 *   rows: float32[n_rows * n_features]; feature, left, right, roots: int32 per node (roots
 *   per tree); threshold, value: float64 per node. A node whose left child is itself is a
 *   leaf. Returns float64[n_rows] as bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *margins(PyObject *self, PyObject *args) {
    Py_buffer rows, feature, threshold, left, right, value, roots;
    Py_ssize_t n_rows, n_features;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*y*", &rows, &n_rows, &n_features, &feature,
                          &threshold, &left, &right, &value, &roots))
        return NULL;
    PyObject *out = NULL;
    Py_ssize_t n_nodes = feature.len / (Py_ssize_t)sizeof(int32_t);
    Py_ssize_t n_trees = roots.len / (Py_ssize_t)sizeof(int32_t);
    if (rows.len != n_rows * n_features * (Py_ssize_t)sizeof(float) ||
        threshold.len != n_nodes * (Py_ssize_t)sizeof(double) ||
        value.len != n_nodes * (Py_ssize_t)sizeof(double) ||
        left.len != feature.len || right.len != feature.len) {
        PyErr_SetString(PyExc_ValueError, "margins: arrays of mismatched sizes");
        goto done;
    }
    const float *x = rows.buf;
    const int32_t *f = feature.buf, *l = left.buf, *r = right.buf, *root = roots.buf;
    const double *t = threshold.buf, *v = value.buf;
    for (Py_ssize_t i = 0; i < n_nodes; i++) {
        if (f[i] < 0 || f[i] >= n_features || l[i] < 0 || l[i] >= n_nodes || r[i] < 0 ||
            r[i] >= n_nodes) {
            PyErr_SetString(PyExc_ValueError, "margins: a node out of range");
            goto done;
        }
    }
    for (Py_ssize_t k = 0; k < n_trees; k++) {
        if (root[k] < 0 || root[k] >= n_nodes) {
            PyErr_SetString(PyExc_ValueError, "margins: a root out of range");
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, n_rows * (Py_ssize_t)sizeof(double));
    if (out == NULL)
        goto done;
    double *sums = (double *)PyBytes_AS_STRING(out);
    for (Py_ssize_t row = 0; row < n_rows; row++) {
        const float *features = x + row * n_features;
        double sum = 0.0;
        for (Py_ssize_t k = 0; k < n_trees; k++) {
            int32_t node = root[k];
            for (Py_ssize_t steps = 0; l[node] != node && steps < n_nodes; steps++)
                node = (double)features[f[node]] <= t[node] ? l[node] : r[node];
            sum += v[node];
        }
        sums[row] = sum;
    }
done:
    PyBuffer_Release(&rows);
    PyBuffer_Release(&feature);
    PyBuffer_Release(&threshold);
    PyBuffer_Release(&left);
    PyBuffer_Release(&right);
    PyBuffer_Release(&value);
    PyBuffer_Release(&roots);
    return out;
}

static PyMethodDef methods[] = {
    {"margins", margins, METH_VARARGS, "Sum of leaf values per row over the forest."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_forest", NULL, -1, methods};

PyMODINIT_FUNC PyInit__forest(void) { return PyModule_Create(&module); }
