/* monitor._fold: monitor.text.fold at C speed.
 *
 * str.translate looks every non-ASCII character up in the table through a Python int and
 * a dict, about 80 ns a character; the matcher folds every text it sees. This module does
 * the same translation with the table's answers cached in a flat array for the Basic
 * Multilingual Plane. The table stays the only definition of the folding: a character is
 * asked of it (which fills it, see monitor.text._FoldTable) the first time it is seen;
 * characters that fold to nothing (harakat, tatweel) are remembered as such, and those
 * that fold to several (ligatures, ß) are asked every time. Without a C compiler the
 * package falls back to str.translate and re, with the same results (tests/test_match.py
 * compares them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define PLANE 0x10000
#define UNKNOWN 0xFFFFFFFFu   /* not asked yet */
#define IRREGULAR 0xFFFFFFFEu /* folds to several characters: ask each time */
#define DROPPED 0xFFFFFFFDu   /* folds to "" (harakat, tatweel, format characters) */

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

/* The table's answer for `code`, a new reference to a str, remembered in the cache:
 * the character it folds to, or that it folds to nothing or to several. */
static PyObject *
lookup(Py_UCS4 code)
{
    PyObject *key = PyLong_FromUnsignedLong(code);
    if (key == NULL)
        return NULL;
    PyObject *folded = PyObject_GetItem(table, key);
    Py_DECREF(key);
    if (folded == NULL)
        return NULL;
    if (!PyUnicode_Check(folded)) {
        Py_DECREF(folded);
        PyErr_SetString(PyExc_TypeError, "the fold table must map code points to str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(folded);
    if (code < PLANE)
        cache[code] = n == 1 ? PyUnicode_READ_CHAR(folded, 0) : n == 0 ? DROPPED : IRREGULAR;
    return folded;
}

/* Ask the table for `code` and append its answer. */
static int
ask(Buffer *out, Py_UCS4 code)
{
    PyObject *folded = lookup(code);
    if (folded == NULL)
        return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(folded);
    if (buffer_reserve(out, n) < 0) {
        Py_DECREF(folded);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        out->data[out->length++] = PyUnicode_READ_CHAR(folded, i);
    Py_DECREF(folded);
    return 0;
}

/* 0 when `text` is a str and init() has run; else -1, with the error set. */
static int
check_text(PyObject *text, const char *function)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a str", function);
        return -1;
    }
    if (table == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "init() has not been called");
        return -1;
    }
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

/* Where folding changes the length of a text (see fold_mapped): rows of four long longs. */
typedef struct {
    long long *data;
    Py_ssize_t rows, capacity, shift;
} Rows;

/* Records that text[i] folds to `length` characters (not 1). */
static int
rows_add(Rows *r, Py_ssize_t i, Py_ssize_t length)
{
    if (r->rows == r->capacity) {
        Py_ssize_t capacity = r->capacity ? r->capacity * 2 : 64;
        long long *grown = PyMem_Realloc(r->data, (size_t)capacity * 4 * sizeof(long long));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->data = grown;
        r->capacity = capacity;
    }
    long long *row = r->data + r->rows * 4;
    row[0] = i + r->shift;
    r->shift += length - 1;
    row[1] = i;
    row[2] = length;
    row[3] = r->shift;
    r->rows++;
    return 0;
}

/* The folded text; with `rows`, also where folding changed the length. */
static PyObject *
fold_text(PyObject *text, Rows *rows)
{
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
        if (folded == DROPPED) {
            if (rows && rows_add(rows, i, 0) < 0)
                goto error;
            continue;
        }
        if (folded < DROPPED) {
            if (out.length == out.capacity && buffer_reserve(&out, 1) < 0)
                goto error;
            out.data[out.length++] = folded;
            continue;
        }
        Py_ssize_t before = out.length;
        if (ask(&out, code) < 0)
            goto error;
        if (rows && out.length - before != 1 && rows_add(rows, i, out.length - before) < 0)
            goto error;
    }
    PyObject *result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out.data, out.length);
    PyMem_Free(out.data);
    return result;
error:
    PyMem_Free(out.data);
    return NULL;
}

static PyObject *
fold_fold(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (check_text(text, "fold") < 0)
        return NULL;
    return fold_text(text, NULL);
}

/* fold_mapped(text) -> (folded, shifts): the folded text and, in the same pass, the
 * characters that fold to other than one character, as monitor.text.Folded needs them to
 * map folded offsets back: a byte string of native long longs, four per such character
 * (its folded offset, its offset in text, the length it folds to, and the folded text's
 * shift after it), or None when every character folds to one. A separate pass over the
 * text for these cost as much as the fold; Python did it one character at a time, 8-12 ms
 * for 16 KB of fully vocalised Arabic (every haraka is such a character). */
static PyObject *
fold_mapped(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (check_text(text, "fold_mapped") < 0)
        return NULL;
    Rows rows = {NULL, 0, 0, 0};
    PyObject *folded = fold_text(text, &rows);
    PyObject *shifts = NULL;
    if (folded != NULL && rows.rows == 0)
        shifts = Py_NewRef(Py_None);
    else if (folded != NULL)
        shifts = PyBytes_FromStringAndSize((const char *)rows.data,
                                           rows.rows * 4 * (Py_ssize_t)sizeof(long long));
    PyMem_Free(rows.data);
    if (shifts == NULL) {
        Py_XDECREF(folded);
        return NULL;
    }
    return Py_BuildValue("(NN)", folded, shifts);
}

static PyMethodDef methods[] = {
    {"init", fold_init, METH_O, "init(table): the fold table to translate by."},
    {"fold", fold_fold, METH_O, "fold(text) -> text translated by the table."},
    {"fold_mapped", fold_mapped, METH_O,
     "fold_mapped(text) -> (fold(text), where folding changes the length, or None)."},
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
