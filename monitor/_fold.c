/* monitor._fold: monitor.text.fold at C speed.
 *
 * str.translate looks every non-ASCII character up in the table through a Python int and
 * a dict, about 80 ns a character; the matcher folds every text it sees. This module does
 * the same translation with the table's answers cached in a flat array for the Basic
 * Multilingual Plane. The table stays the only definition of the folding: a character is
 * asked of it (which fills it, see monitor.text._FoldTable) the first time it is seen, and
 * characters that fold to other than exactly one character (harakat, ligatures, ß) are
 * asked every time. Without a C compiler the package falls back to str.translate, with the
 * same results (tests/test_match.py compares the two).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define PLANE 0x10000
#define UNKNOWN 0xFFFFFFFFu   /* not asked yet */
#define IRREGULAR 0xFFFFFFFEu /* folds to "" or to several characters: ask each time */

static Py_UCS4 cache[PLANE];
static PyObject *table; /* the monitor.text._FoldTable, set by init() */

typedef struct {
    Py_UCS4 *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Buffer;

static int
buffer_reserve(Buffer *out, Py_ssize_t extra)
{
    if (out->length + extra <= out->capacity)
        return 0;
    Py_ssize_t capacity = (out->length + extra) * 2;
    Py_UCS4 *data = PyMem_Realloc(out->data, (size_t)capacity * sizeof(Py_UCS4));
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->data = data;
    out->capacity = capacity;
    return 0;
}

/* Ask the table for `code` and append its answer; cache it when it is one character. */
static int
ask(Buffer *out, Py_UCS4 code)
{
    PyObject *key = PyLong_FromUnsignedLong(code);
    if (key == NULL)
        return -1;
    PyObject *folded = PyObject_GetItem(table, key);
    Py_DECREF(key);
    if (folded == NULL)
        return -1;
    if (!PyUnicode_Check(folded)) {
        Py_DECREF(folded);
        PyErr_SetString(PyExc_TypeError, "the fold table must map code points to str");
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(folded);
    if (code < PLANE)
        cache[code] = n == 1 ? PyUnicode_READ_CHAR(folded, 0) : IRREGULAR;
    if (buffer_reserve(out, n) < 0) {
        Py_DECREF(folded);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        out->data[out->length++] = PyUnicode_READ_CHAR(folded, i);
    Py_DECREF(folded);
    return 0;
}

static PyObject *
fold_init(PyObject *Py_UNUSED(module), PyObject *arg)
{
    if (!PyDict_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "init() takes the fold table, a dict");
        return NULL;
    }
    Py_XSETREF(table, Py_NewRef(arg));
    memset(cache, 0xFF, sizeof(cache));
    Py_RETURN_NONE;
}

static PyObject *
fold_fold(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "fold() takes a str");
        return NULL;
    }
    if (table == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "init() has not been called");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_IS_ASCII(text)) {
        /* ASCII folds to ASCII, one character each (lower case, or a space for
           punctuation): written straight into the result, once the cache knows them. */
        const Py_UCS1 *in = PyUnicode_1BYTE_DATA(text);
        Py_ssize_t i = 0;
        while (i < n && cache[in[i]] < 0x80)
            i++;
        if (i == n) {
            PyObject *result = PyUnicode_New(n, 0x7F);
            if (result == NULL)
                return NULL;
            Py_UCS1 *dest = PyUnicode_1BYTE_DATA(result);
            for (i = 0; i < n; i++)
                dest[i] = (Py_UCS1)cache[in[i]];
            return result;
        }
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Buffer out = {NULL, 0, 0};
    if (buffer_reserve(&out, n + 16) < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 code = PyUnicode_READ(kind, data, i);
        Py_UCS4 folded = code < PLANE ? cache[code] : IRREGULAR;
        if (folded < IRREGULAR) {
            if (out.length == out.capacity && buffer_reserve(&out, 1) < 0)
                goto error;
            out.data[out.length++] = folded;
        }
        else if (ask(&out, code) < 0) {
            goto error;
        }
    }
    PyObject *result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out.data, out.length);
    PyMem_Free(out.data);
    return result;
error:
    PyMem_Free(out.data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"init", fold_init, METH_O, "init(table): the fold table to translate by."},
    {"fold", fold_fold, METH_O, "fold(text) -> text translated by the table."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "monitor._fold",
    .m_doc = "monitor.text.fold at C speed.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__fold(void)
{
    return PyModule_Create(&module);
}
