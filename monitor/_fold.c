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
 * fold_mapped() makes the matcher's text: the same translation, but that the first
 * separator of a run that ends a sentence is 0x1E and of one that ends a block 0x1D
 * (monitor.text.run_spaces is the definition): a first pass translates and notes the
 * separators that can end either, a second reads the runs that hold one.
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
static uint8_t ending[PLANE]; /* 1 for the separators that can end a sentence or a block */
static PyObject *abbreviations; /* monitor.text.ABBREVIATIONS, a frozenset */
static Py_ssize_t abbreviation_chars;
/* The same words, for run_spaces to look up without making a str: open addressing on
 * their hash (abbreviation_hash), each slot the word's code points, 0-padded. */
#define MAX_ABBREVIATION 15
#define ABBREVIATION_SLOTS 1024
static Py_UCS4 abbreviation_table[ABBREVIATION_SLOTS][MAX_ABBREVIATION + 1];
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

static uint32_t
abbreviation_hash(const Py_UCS4 *chars, Py_ssize_t length)
{
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < length; i++)
        h = (h ^ chars[i]) * 16777619u;
    return h % ABBREVIATION_SLOTS;
}

/* Whether chars[:length] is one of the abbreviations. */
static int
is_abbreviation(const Py_UCS4 *chars, Py_ssize_t length)
{
    if (length > MAX_ABBREVIATION)
        return 0;
    for (uint32_t at = abbreviation_hash(chars, length); abbreviation_table[at][0];
         at = (at + 1) % ABBREVIATION_SLOTS) {
        const Py_UCS4 *slot = abbreviation_table[at];
        if ((length == MAX_ABBREVIATION || slot[length] == 0) &&
            memcmp(slot, chars, (size_t)length * sizeof(Py_UCS4)) == 0)
            return 1;
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
    for (Py_ssize_t code = 0; code < PLANE; code++)
        ending[code] = kinds[code] != NONE && kinds[code] != COMMA;
    if (longest < 1 || longest > MAX_ABBREVIATION || PySet_GET_SIZE(words) > ABBREVIATION_SLOTS / 2) {
        PyErr_SetString(PyExc_ValueError, "init(): too many or too long abbreviations");
        return NULL;
    }
    static Py_UCS4 slots[ABBREVIATION_SLOTS][MAX_ABBREVIATION + 1];
    memset(slots, 0, sizeof(slots));
    PyObject *iter = PyObject_GetIter(words), *word;
    while (iter && (word = PyIter_Next(iter)) != NULL) {
        Py_ssize_t length = PyUnicode_Check(word) ? PyUnicode_GET_LENGTH(word) : 0;
        if (length < 1 || length > longest) {
            Py_DECREF(word);
            Py_CLEAR(iter);
            PyErr_SetString(PyExc_ValueError, "init(): abbreviations are str of 1 to longest");
            return NULL;
        }
        Py_UCS4 chars[MAX_ABBREVIATION];
        for (Py_ssize_t i = 0; i < length; i++)
            chars[i] = PyUnicode_READ_CHAR(word, i);
        Py_DECREF(word);
        uint32_t at = abbreviation_hash(chars, length);
        while (slots[at][0])
            at = (at + 1) % ABBREVIATION_SLOTS;
        memcpy(slots[at], chars, (size_t)length * sizeof(Py_UCS4));
    }
    Py_XDECREF(iter);
    if (PyErr_Occurred())
        return NULL;
    memcpy(abbreviation_table, slots, sizeof(slots));
    Py_XSETREF(table, Py_NewRef(arg));
    Py_XSETREF(abbreviations, Py_NewRef(words));
    abbreviation_chars = longest;
    memset(cache, 0xFF, sizeof(cache));
    for (Py_UCS4 code = 0; code < 0x80; code++) { /* fold_words counts on these */
        PyObject *folded = lookup(code);
        if (folded == NULL)
            return NULL;
        Py_DECREF(folded);
        if (cache[code] >= 0x80) {
            PyErr_SetString(PyExc_ValueError, "init(): ASCII must fold to one ASCII character");
            return NULL;
        }
    }
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

/* The matcher's text being written: code points of one kind (PyUnicode_1BYTE_KIND for
 * an ASCII text, which folds to ASCII; else PyUnicode_4BYTE_KIND). */
typedef struct {
    void *data;
    Py_ssize_t length, capacity;
    int kind;
} Out;

static int
out_reserve(Out *out, Py_ssize_t extra)
{
    if (out->length + extra <= out->capacity)
        return 0;
    Py_ssize_t capacity = (out->length + extra) * 2;
    void *data = PyMem_Realloc(out->data, (size_t)capacity * (size_t)out->kind);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->data = data;
    out->capacity = capacity;
    return 0;
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
word_before(const Out *out, Py_ssize_t at)
{
    Py_ssize_t low = at - abbreviation_chars - 1 > 0 ? at - abbreviation_chars - 1 : 0;
    for (Py_ssize_t i = at - 1; i >= low; i--)
        if (PyUnicode_READ(out->kind, out->data, i) <= ' ') /* a space, or a mark */
            return i + 1;
    return low == 0 ? 0 : -1;
}

/* monitor.text.run_spaces: the spaces the run is, the next word starting with
 * `following` (-1: the end of the text); -1 with an exception set. */
static int
run_spaces(const Run *run, const Out *out, long following)
{
    if (!run->lines && !run->last)
        return WORDS_BETWEEN; /* most runs: a comma, a hyphen, spaces */
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
    if (length == 1 && Py_UNICODE_ISALPHA(PyUnicode_READ(out->kind, out->data, start)))
        return WORDS_BETWEEN;
    Py_UCS4 chars[MAX_ABBREVIATION];
    for (Py_ssize_t i = 0; i < length; i++)
        chars[i] = PyUnicode_READ(out->kind, out->data, start + i);
    return is_abbreviation(chars, length) ? WORDS_BETWEEN : SENTENCE_END;
}

/* A text translated character for character (the first pass of fold_words), where its
 * length changed, and where it holds a separator that can end a sentence or a block (a
 * stop, a line break: "marks", offsets in `out`). */
typedef struct {
    Out *out;       /* the result's own for an ASCII text, else wide */
    Out wide;
    Rows rows;
    Py_ssize_t *marks;
    Py_ssize_t nmarks, marks_capacity;
} Pass;

/* The buffers of the last call, kept for the next: most texts are small, and allocating
 * them anew cost more than folding a title. A call made while one runs (a finalizer
 * during an allocation) gets buffers of its own. */
static Pass kept;
static int kept_busy;
#define KEEP_AT_MOST (1 << 22) /* elements: a larger buffer is freed after its call */

/* Notes a mark at `at`. Marks are a few in a hundred characters: the branch to here is
 * seldom taken, and so seldom mispredicted. */
static int
mark(Pass *pass, Py_ssize_t at)
{
    if (pass->nmarks == pass->marks_capacity) {
        Py_ssize_t capacity = pass->marks_capacity ? pass->marks_capacity * 2 : 256;
        Py_ssize_t *grown = PyMem_Realloc(pass->marks, (size_t)capacity * sizeof(Py_ssize_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        pass->marks = grown;
        pass->marks_capacity = capacity;
    }
    pass->marks[pass->nmarks++] = at;
    return 0;
}

/* The first pass over an ASCII text: one ASCII character each (init() asked the table for
 * all of them), into the result. */
static int
translate_ascii(PyObject *text, Pass *pass)
{
    const Py_UCS1 *in = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_UCS1 *folded = pass->out->data; /* the result's own: n characters */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS1 code = in[i];
        folded[i] = (Py_UCS1)cache[code];
        if (ending[code] && mark(pass, i) < 0) /* every ending character folds to ' ' */
            return -1;
    }
    pass->out->length = n;
    return 0;
}

/* The first pass over any other text, as fold_text, noting lengths and marks. A
 * character that folds to several is never an ending separator. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int
translate(PyObject *text, Pass *pass, const int kind)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    Out *out = pass->out;
    if (out_reserve(out, n + 16) < 0)
        return -1;
    Py_UCS4 *folded = out->data;
    Py_ssize_t length = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 code = PyUnicode_READ(kind, data, i);
        Py_UCS4 to = code < PLANE ? cache[code] : IRREGULAR;
        if (to < DROPPED) { /* one character, at most one per character of the text */
            if (code < PLANE && ending[code] && mark(pass, length) < 0)
                return -1;
            folded[length++] = to;
            continue;
        }
        if (to == DROPPED) {
            if (rows_add(&pass->rows, i, 0) < 0)
                return -1;
            continue;
        }
        out->length = length;
        PyObject *several = lookup(code); /* not asked yet, or several characters */
        if (several == NULL)
            return -1;
        Py_ssize_t count = PyUnicode_GET_LENGTH(several);
        /* room for these, and for one each of the characters still to come */
        int failed = count > 1 && (out_reserve(out, count + n - i) < 0 ||
                                   rows_add(&pass->rows, i, count) < 0);
        failed = failed || (count == 1 && code < PLANE && ending[code] &&
                            mark(pass, length) < 0);
        folded = out->data;
        for (Py_ssize_t j = 0; !failed && j < count; j++)
            folded[length++] = PyUnicode_READ_CHAR(several, j);
        Py_DECREF(several);
        if (failed)
            return -1;
        if (count == 0 && rows_add(&pass->rows, i, 0) < 0)
            return -1;
    }
    out->length = length;
    return 0;
}

/* monitor.text._Lengths.producer: the original offset of the character folded to `at` of
 * the first pass, from its rows. */
static Py_ssize_t
producer(const Rows *rows, Py_ssize_t at)
{
    Py_ssize_t lo = 0, hi = rows->rows;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (at < rows->data[4 * mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == 0)
        return at;
    const long long *row = rows->data + 4 * (lo - 1);
    return at < row[0] + row[2] ? (Py_ssize_t)row[1] : at - (Py_ssize_t)row[3];
}

/* The second pass: each marked run read as monitor.text.fold_mapped_translate reads it
 * (run_spaces), and its first separator made the mark of the end it is, if any. */
static void
mark_ends(PyObject *text, Pass *pass)
{
    Out *out = pass->out;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), length = out->length, done = 0;
    for (Py_ssize_t k = 0; k < pass->nmarks; k++) {
        Py_ssize_t a = pass->marks[k], b = a + 1;
        if (a < done)
            continue; /* in a run already read */
        while (a > done && PyUnicode_READ(out->kind, out->data, a - 1) == ' ')
            a--;
        while (b < length && PyUnicode_READ(out->kind, out->data, b) == ' ')
            b++;
        done = b;
        Py_ssize_t x = producer(&pass->rows, a), z = b < length ? producer(&pass->rows, b) : n;
        Run run = {x, a, 0, 0, 0, 0, 0, 0};
        for (Py_ssize_t i = x; i < z; i++)
            run_add(&run, PyUnicode_READ(kind, data, i),
                    i + 1 < n ? PyUnicode_READ(kind, data, i + 1) : 0);
        int end = run_spaces(&run, out, z < n ? (long)PyUnicode_READ(kind, data, z) : -1);
        if (end != WORDS_BETWEEN)
            PyUnicode_WRITE(out->kind, out->data, a, end == SENTENCE_END ? 0x1E : 0x1D);
    }
}

/* The matcher's text of `text` (see the module comment), its lengths in `rows`, in two
 * passes: the translation, character for character, which notes the separators that
 * can end a sentence or a block (a stop, a line break); then the runs that hold one.
 * Most runs of separators hold none, and the first pass is as fast as fold(). */
static PyObject *
fold_words(PyObject *text, Pass *pass, Rows *rows)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_IS_ASCII(text)) { /* to ASCII, one each (init() asked for all): in place */
        PyObject *result = PyUnicode_New(n, 0x7F);
        if (result == NULL)
            return NULL;
        Out narrow = {PyUnicode_1BYTE_DATA(result), 0, n, PyUnicode_1BYTE_KIND};
        pass->out = &narrow;
        if (translate_ascii(text, pass) < 0) {
            Py_DECREF(result);
            return NULL;
        }
        mark_ends(text, pass);
        pass->out = NULL;
        return result;
    }
    pass->out = &pass->wide;
    pass->out->length = 0;
    pass->out->kind = PyUnicode_4BYTE_KIND;
    int failed;
    if (PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND)
        failed = translate(text, pass, PyUnicode_1BYTE_KIND);
    else if (PyUnicode_KIND(text) == PyUnicode_2BYTE_KIND)
        failed = translate(text, pass, PyUnicode_2BYTE_KIND);
    else
        failed = translate(text, pass, PyUnicode_4BYTE_KIND);
    if (failed)
        return NULL;
    mark_ends(text, pass);
    Rows swap = *rows; /* the first pass's lengths are the text's */
    *rows = pass->rows;
    pass->rows = swap;
    return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, pass->out->data, pass->out->length);
}

/* Frees what a buffer holds past KEEP_AT_MOST elements, or all with `all`. */
#define SHED(pointer, capacity, all) \
    do { \
        if ((all) || (capacity) > KEEP_AT_MOST) { \
            PyMem_Free(pointer); \
            (pointer) = NULL; \
            (capacity) = 0; \
        } \
    } while (0)

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
    int mine = !kept_busy;
    Pass own;
    if (!mine)
        memset(&own, 0, sizeof(own));
    Pass *pass = mine ? &kept : &own;
    kept_busy = 1;
    Rows rows = {NULL, 0, 0, 0};
    pass->rows.rows = pass->rows.shift = 0;
    pass->nmarks = 0;
    PyObject *folded = fold_words(text, pass, &rows);
    PyObject *shifts = NULL;
    if (folded != NULL && rows.rows == 0)
        shifts = Py_NewRef(Py_None);
    else if (folded != NULL)
        shifts = PyBytes_FromStringAndSize((const char *)rows.data,
                                           rows.rows * 4 * (Py_ssize_t)sizeof(long long));
    if (pass->rows.data == NULL) { /* the rows' buffer back, for the next call */
        pass->rows = rows;
        rows.data = NULL;
    }
    PyMem_Free(rows.data);
    SHED(pass->wide.data, pass->wide.capacity, !mine);
    SHED(pass->marks, pass->marks_capacity, !mine);
    SHED(pass->rows.data, pass->rows.capacity, !mine);
    if (mine)
        kept_busy = 0;
    if (shifts == NULL) {
        Py_XDECREF(folded);
        return NULL;
    }
    return Py_BuildValue("(NN)", folded, shifts);
}

/* fold_term(term) -> (key, stop): monitor.text.fold_term_stop. */
static PyObject *
fold_term_stop(PyObject *Py_UNUSED(module), PyObject *term)
{
    if (check_text(term, "fold_term") < 0)
        return NULL;
    PyObject *folded = fold_text(term);
    if (folded == NULL)
        return NULL;
    int kind = PyUnicode_KIND(folded), term_kind = PyUnicode_KIND(term);
    const void *data = PyUnicode_DATA(folded), *term_data = PyUnicode_DATA(term);
    Py_ssize_t n = PyUnicode_GET_LENGTH(folded), length = 0;
    Py_UCS4 *key = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Py_UCS4));
    if (key == NULL) {
        Py_DECREF(folded);
        return PyErr_NoMemory();
    }
    int gap = 0; /* a space pending between two words */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == ' ') {
            gap = length > 0;
            continue;
        }
        if (gap)
            key[length++] = ' ';
        gap = 0;
        key[length++] = c;
    }
    int stop = 0;
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(term) && !stop; i++) {
        Py_UCS4 c = PyUnicode_READ(term_kind, term_data, i);
        stop = c < PLANE && (separator[c] == DOT || separator[c] == STOP);
    }
    PyObject *result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, key, length);
    PyMem_Free(key);
    Py_DECREF(folded);
    return result ? Py_BuildValue("(NO)", result, stop ? Py_True : Py_False) : NULL;
}

static PyMethodDef methods[] = {
    {"init", fold_init, METH_VARARGS,
     "init(table, separator_classes, abbreviations, abbreviation_chars): the fold table to "
     "translate by, and what the matcher's text needs to know of separators."},
    {"fold", fold_fold, METH_O, "fold(text) -> text translated by the table."},
    {"fold_term", fold_term_stop, METH_O,
     "fold_term(term) -> (fold(term) with its words one space apart, whether term holds "
     "a stop)."},
    {"fold_mapped", fold_mapped, METH_O,
     "fold_mapped(text) -> (the matcher's text: fold(text) with sentence and block ends "
     "marked, where it changes the length, or None)."},
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
