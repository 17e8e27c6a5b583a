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
 *
 * fold_mapped() makes the matcher's text: the same translation with each run of
 * separators made one space, or two at a sentence end, or three at a block end
 * (monitor.text.run_spaces is the definition), in the same pass.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define PLANE 0x10000
#define UNKNOWN 0xFFFFFFFFu   /* not asked yet */
#define IRREGULAR 0xFFFFFFFEu /* folds to several characters: ask each time */
#define DROPPED 0xFFFFFFFDu   /* folds to "" (harakat, tatweel, format characters) */

static Py_UCS4 cache[PLANE];
static PyObject *table; /* the monitor.text._FoldTable, set by init() */

/* monitor.text.SEPARATOR_CLASSES, by code point (all in the BMP), and what else
 * run_spaces() needs: set by init(). */
enum { NONE, DOT, STOP, COMMA, LINE, PARAGRAPH, RETURN, NCLASSES };
static uint8_t separator[PLANE];
static PyObject *abbreviations; /* monitor.text.ABBREVIATIONS, a frozenset */
static Py_ssize_t abbreviation_chars;
#define WORDS_BETWEEN 1
#define SENTENCE_END 2
#define BLOCK_END 3

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

/* The buffer's text as a str when `ok` (else NULL), the buffer freed. */
static PyObject *
buffer_finish(Buffer *out, int ok)
{
    PyObject *result = ok ? PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out->data,
                                                      out->length) : NULL;
    PyMem_Free(out->data);
    return result;
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
    if (table == NULL || abbreviations == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "init() has not been called");
        return -1;
    }
    return 0;
}

static PyObject *
fold_init(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *arg, *classes, *words;
    Py_ssize_t longest;
    if (!PyArg_ParseTuple(args, "O!O!O!n:init", &PyDict_Type, &arg, &PyDict_Type, &classes,
                          &PyFrozenSet_Type, &words, &longest))
        return NULL;
    uint8_t kinds[PLANE];
    memset(kinds, 0, sizeof(kinds));
    PyObject *key, *value;
    Py_ssize_t at = 0;
    while (PyDict_Next(classes, &at, &key, &value)) {
        long code = PyLong_AsLong(key), kind = PyLong_AsLong(value);
        if (PyErr_Occurred())
            return NULL;
        if (code < 0 || code >= PLANE || kind <= NONE || kind >= NCLASSES) {
            PyErr_SetString(PyExc_ValueError, "init(): separator classes out of range");
            return NULL;
        }
        kinds[code] = (uint8_t)kind;
    }
    memcpy(separator, kinds, sizeof(kinds));
    Py_XSETREF(table, Py_NewRef(arg));
    Py_XSETREF(abbreviations, Py_NewRef(words));
    abbreviation_chars = longest;
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

/* The folded text, character for character. */
static PyObject *
fold_text(PyObject *text)
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
        if (folded == DROPPED)
            continue;
        if (folded < DROPPED) {
            if (out.length == out.capacity && buffer_reserve(&out, 1) < 0)
                goto error;
            out.data[out.length++] = folded;
            continue;
        }
        if (ask(&out, code) < 0)
            goto error;
    }
    return buffer_finish(&out, 1);
error:
    return buffer_finish(&out, 0);
}

static PyObject *
fold_fold(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (check_text(text, "fold") < 0)
        return NULL;
    return fold_text(text);
}

/* A run of separators being read (see run_spaces): from its first separator, what it
 * holds. */
typedef struct {
    Py_ssize_t first; /* the original offset of its first separator */
    Py_ssize_t out;   /* where it starts in the folded text */
    int lines, last, strong, comma, comma_after, space_after;
} Run;

static void
run_add(Run *run, Py_UCS4 code, Py_UCS4 next)
{
    int kind = code < PLANE ? separator[code] : NONE;
    if (kind == DOT || kind == STOP) {
        run->last = kind;
        run->comma_after = run->space_after = 0;
        run->strong |= kind == STOP;
    } else if (kind == COMMA) {
        run->comma = run->comma_after = 1;
    } else if (kind == LINE) {
        run->lines++;
    } else if (kind == PARAGRAPH) {
        run->lines += 2;
    } else if (kind == RETURN) {
        run->lines += next != '\n';
    }
    if (Py_UNICODE_ISSPACE(code))
        run->space_after = 1;
}

/* monitor.text._word_before: where the folded word that ends at `at` starts, or -1 when
 * it is longer than abbreviation_chars. */
static Py_ssize_t
word_before(const Buffer *out, Py_ssize_t at)
{
    Py_ssize_t low = at - abbreviation_chars - 1 > 0 ? at - abbreviation_chars - 1 : 0;
    for (Py_ssize_t i = at - 1; i >= low; i--)
        if (out->data[i] == ' ')
            return i + 1;
    return low == 0 ? 0 : -1;
}

/* monitor.text.run_spaces: the spaces the run is, the next word starting with
 * `following` (-1: the end of the text); -1 with an exception set. */
static int
run_spaces(const Run *run, const Buffer *out, long following)
{
    int lower = following >= 0 && Py_UNICODE_ISLOWER((Py_UCS4)following);
    if (run->lines >= 2 || (run->lines && !lower && !run->comma))
        return BLOCK_END;
    if (!run->last || run->comma_after || (run->last == DOT && !run->space_after) || lower)
        return WORDS_BETWEEN;
    if (run->strong)
        return SENTENCE_END;
    Py_ssize_t start = word_before(out, run->out);
    if (start < 0)
        return SENTENCE_END;
    Py_ssize_t length = run->out - start;
    if (length == 1 && Py_UNICODE_ISALPHA(out->data[start]))
        return WORDS_BETWEEN;
    PyObject *word = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out->data + start, length);
    int found = word ? PySet_Contains(abbreviations, word) : -1;
    Py_XDECREF(word);
    return found < 0 ? -1 : found ? WORDS_BETWEEN : SENTENCE_END;
}

/* Writes the run that ends where the original character `end` starts the next word (or at
 * the end of the text) as its spaces, and records the lengths of its characters: the
 * first ones one space each, the rest nothing, or the last several when there are fewer
 * characters than spaces (monitor.text.fold_mapped_translate does the same). */
static int
run_close(const Run *run, Buffer *out, Rows *rows, Py_ssize_t end, long following)
{
    if (!run->last && !run->lines && end - run->first == 1) { /* one separator: one space */
        if (out->length == out->capacity && buffer_reserve(out, 1) < 0)
            return -1;
        out->data[out->length++] = ' ';
        return 0;
    }
    int spaces = run_spaces(run, out, following);
    if (spaces < 0 || buffer_reserve(out, spaces) < 0)
        return -1;
    for (int i = 0; i < spaces; i++)
        out->data[out->length++] = ' ';
    Py_ssize_t count = end - run->first;
    if (count >= spaces) {
        for (Py_ssize_t i = run->first + spaces; i < end; i++)
            if (rows_add(rows, i, 0) < 0)
                return -1;
        return 0;
    }
    return rows_add(rows, end - 1, spaces - count + 1);
}

/* The matcher's text of `text` (see the module comment), its lengths in `rows`; made
 * once per kind of str, so that reading a character is not a switch on it. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline PyObject *
fold_words_of(PyObject *text, Rows *rows, const int kind)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    Buffer out = {NULL, 0, 0};
    if (buffer_reserve(&out, n + 16) < 0)
        return NULL;
    Run run;
    int open = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 code = PyUnicode_READ(kind, data, i);
        Py_UCS4 folded = code < PLANE ? cache[code] : IRREGULAR;
        if (folded < DROPPED && folded != ' ' && !open) { /* most characters: a letter */
            if (out.length == out.capacity && buffer_reserve(&out, 1) < 0)
                goto error;
            out.data[out.length++] = folded;
            continue;
        }
        if (code == ' ' && !open && i + 1 < n) { /* most separators: a space between words */
            Py_UCS4 next = PyUnicode_READ(kind, data, i + 1);
            Py_UCS4 after = next < PLANE ? cache[next] : IRREGULAR;
            if (after < DROPPED && after != ' ') {
                if (out.length == out.capacity && buffer_reserve(&out, 1) < 0)
                    goto error;
                out.data[out.length++] = ' ';
                continue;
            }
        }
        PyObject *several = NULL;
        if (folded == UNKNOWN || folded == IRREGULAR) {
            if ((several = lookup(code)) == NULL)
                goto error;
            Py_ssize_t length = PyUnicode_GET_LENGTH(several);
            if (length <= 1) { /* now cached, or a single character past the BMP */
                folded = length ? PyUnicode_READ_CHAR(several, 0) : DROPPED;
                Py_CLEAR(several);
            }
        }
        if (folded == ' ') {
            if (!open) {
                run = (Run){i, out.length, 0, 0, 0, 0, 0, 0};
                open = 1;
            }
            run_add(&run, code, i + 1 < n ? PyUnicode_READ(kind, data, i + 1) : 0);
            continue;
        }
        if (folded == DROPPED) {
            if (!open && rows_add(rows, i, 0) < 0)
                goto error;
            continue; /* inside a run, its length is the run's to say */
        }
        if (open) {
            open = 0;
            if (run_close(&run, &out, rows, i, (long)code) < 0) {
                Py_XDECREF(several);
                goto error;
            }
        }
        if (several == NULL) {
            if (out.length == out.capacity && buffer_reserve(&out, 1) < 0)
                goto error;
            out.data[out.length++] = folded;
            continue;
        }
        Py_ssize_t length = PyUnicode_GET_LENGTH(several);
        int failed = buffer_reserve(&out, length) < 0 || rows_add(rows, i, length) < 0;
        for (Py_ssize_t j = 0; !failed && j < length; j++)
            out.data[out.length++] = PyUnicode_READ_CHAR(several, j);
        Py_DECREF(several);
        if (failed)
            goto error;
    }
    if (open && run_close(&run, &out, rows, n, -1) < 0)
        goto error;
    return buffer_finish(&out, 1);
error:
    return buffer_finish(&out, 0);
}

static PyObject *
fold_words(PyObject *text, Rows *rows)
{
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        return fold_words_of(text, rows, PyUnicode_1BYTE_KIND);
    case PyUnicode_2BYTE_KIND:
        return fold_words_of(text, rows, PyUnicode_2BYTE_KIND);
    default:
        return fold_words_of(text, rows, PyUnicode_4BYTE_KIND);
    }
}

/* fold_mapped(text) -> (folded, shifts): the matcher's text and, in the same pass, the
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
    PyObject *folded = fold_words(text, &rows);
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
    {"init", fold_init, METH_VARARGS,
     "init(table, separator_classes, abbreviations, abbreviation_chars): the fold table to "
     "translate by, and what the matcher's text needs to know of separators."},
    {"fold", fold_fold, METH_O, "fold(text) -> text translated by the table."},
    {"fold_mapped", fold_mapped, METH_O,
     "fold_mapped(text) -> (the matcher's text: fold(text) with its separators collapsed, "
     "where it changes the length, or None)."},
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
