/* monitor._minhash: monitor.dedup's MinHash signature at C speed.
 *
 * The signature of a text is, for each of the permutations (a, b), the least
 * (a * h + b) mod (2^31 - 1) over the CRC-32 h of the UTF-8 of each distinct shingle
 * (three words joined by single spaces), followed by the number of distinct shingles.
 * In Python that is a generator hashing each shingle and a numpy matrix of permutations x
 * shingles, about 1 ms for an article of 850 words and 8% of the daemon's CPU per item
 * (bench/e2e.py). The Python version (monitor.dedup.signature_numpy) stays the definition:
 * tests compare the two, and signatures stored by either compare alike.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define PRIME 2147483647ULL /* 2^31 - 1 */

static uint32_t crc_table[256];

static void
crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

/* zlib.crc32 continued over `length` more bytes, from the running value `crc`. */
static uint32_t
crc_update(uint32_t crc, const char *bytes, Py_ssize_t length)
{
    crc = ~crc;
    for (Py_ssize_t i = 0; i < length; i++)
        crc = crc_table[(crc ^ (unsigned char)bytes[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

typedef struct {
    const char *data;
    Py_ssize_t length;
} Word;

static int
same_shingle(const Word *words, Py_ssize_t i, Py_ssize_t j)
{
    for (int k = 0; k < 3; k++) {
        const Word *x = &words[i + k], *y = &words[j + k];
        if (x->length != y->length || memcmp(x->data, y->data, (size_t)x->length) != 0)
            return 0;
    }
    return 1;
}

/* The least (a h + b) mod 2^31 - 1 over the `n` hashes h; a and b are below 2^31, so
 * a h + b is below 2^63. Built for AVX2 too where the compiler can (chosen at load time):
 * four hashes at once. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static uint32_t
least_value(uint64_t a, uint64_t b, const uint32_t *hashes, Py_ssize_t n)
{
    uint32_t least = UINT32_MAX;
    for (Py_ssize_t j = 0; j < n; j++) {
        /* Since 2^31 = 1 (mod 2^31 - 1), adding the bits above the 31st to those below
           keeps the value mod the prime: twice brings it under 2^31 + 2, and one
           subtraction below the prime. A division costs more. */
        uint64_t x = a * hashes[j] + b;
        x = (x & PRIME) + (x >> 31);
        x = (x & PRIME) + (x >> 31);
        uint32_t value = (uint32_t)(x >= PRIME ? x - PRIME : x);
        least = value < least ? value : least;
    }
    return least;
}

/* The UTF-8 of each str of `list` (at least `min` of them) in `words`; a str holding a
 * lone surrogate is encoded with surrogatepass, as the Python twin does, its bytes kept
 * alive in `*held` (a list, created when first needed). -1 with an exception set. */
static int
utf8_words(PyObject *list, Word *words, PyObject **held)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyList_GET_ITEM(list, i);
        if (!PyUnicode_Check(word)) {
            PyErr_SetString(PyExc_TypeError, "takes a list of str");
            return -1;
        }
        words[i].data = PyUnicode_AsUTF8AndSize(word, &words[i].length);
        if (words[i].data != NULL)
            continue;
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return -1;
        PyErr_Clear();
        PyObject *bytes = PyUnicode_AsEncodedString(word, "utf-8", "surrogatepass");
        if (bytes == NULL)
            return -1;
        if (*held == NULL && (*held = PyList_New(0)) == NULL) {
            Py_DECREF(bytes);
            return -1;
        }
        int failed = PyList_Append(*held, bytes);
        Py_DECREF(bytes);
        if (failed)
            return -1;
        words[i].data = PyBytes_AS_STRING(bytes);
        words[i].length = PyBytes_GET_SIZE(bytes);
    }
    return 0;
}

/* Whether `crc` is among the `n` sorted values of `sorted`. */
static int
among(const uint32_t *sorted, Py_ssize_t n, uint32_t crc)
{
    Py_ssize_t low = 0, high = n;
    while (low < high) {
        Py_ssize_t mid = low + (high - low) / 2;
        if (sorted[mid] < crc)
            low = mid + 1;
        else
            high = mid;
    }
    return low < n && sorted[low] == crc;
}

/* The CRC-32 of each distinct shingle of the `n` words (n >= 3), in order of first
 * appearance, but for those among the `n_excluded` sorted CRCs of `excluded`, into
 * `unique` (room for n - 2); returns their number, or -1 with MemoryError set. Distinct
 * by an open-addressed table of their start words keyed by their CRC; shingles with the
 * same CRC are compared word by word. */
static Py_ssize_t
distinct_shingles(const Word *words, Py_ssize_t n, const uint32_t *excluded,
                  Py_ssize_t n_excluded, uint32_t *unique)
{
    Py_ssize_t count = n - 2, distinct = 0, size = 16;
    while (size < count * 2)
        size *= 2;
    uint32_t *hashes = PyMem_Malloc((size_t)count * sizeof(uint32_t));
    Py_ssize_t *slots = PyMem_Malloc((size_t)size * sizeof(Py_ssize_t));
    if (hashes == NULL || slots == NULL) {
        PyMem_Free(hashes);
        PyMem_Free(slots);
        PyErr_NoMemory();
        return -1;
    }
    memset(slots, 0xFF, (size_t)size * sizeof(Py_ssize_t)); /* -1: empty */
    for (Py_ssize_t i = 0; i < count; i++) {
        uint32_t crc = crc_update(0, words[i].data, words[i].length);
        crc = crc_update(crc, " ", 1);
        crc = crc_update(crc, words[i + 1].data, words[i + 1].length);
        crc = crc_update(crc, " ", 1);
        crc = crc_update(crc, words[i + 2].data, words[i + 2].length);
        Py_ssize_t slot = (Py_ssize_t)(crc & (uint32_t)(size - 1));
        int seen = 0;
        while (slots[slot] >= 0) {
            Py_ssize_t other = slots[slot];
            if (hashes[other] == crc && same_shingle(words, other, i)) {
                seen = 1;
                break;
            }
            slot = (slot + 1) & (size - 1);
        }
        hashes[i] = crc;
        if (!seen) {
            slots[slot] = i;
            if (n_excluded == 0 || !among(excluded, n_excluded, crc))
                unique[distinct++] = crc;
        }
    }
    PyMem_Free(hashes);
    PyMem_Free(slots);
    return distinct;
}

/* The distinct shingles' CRCs of the list of str `list` (at least three words) but those
 * among `excluded` (sorted native uint32), into a new array `*unique`; their number, or
 * -1 with an exception set. */
static Py_ssize_t
shingles_of(PyObject *list, const Py_buffer *excluded, uint32_t **unique)
{
    Py_ssize_t n = PyList_GET_SIZE(list), distinct = -1;
    PyObject *held = NULL;
    *unique = NULL;
    if (n < 3) {
        PyErr_SetString(PyExc_ValueError, "takes at least 3 words");
        return -1;
    }
    if (excluded->len % (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "excluded shingles must be uint32 bytes");
        return -1;
    }
    Word *words = PyMem_Malloc((size_t)n * sizeof(Word));
    *unique = PyMem_Malloc((size_t)(n - 2) * sizeof(uint32_t));
    if (words == NULL || *unique == NULL)
        PyErr_NoMemory();
    else if (utf8_words(list, words, &held) == 0)
        distinct = distinct_shingles(words, n, excluded->buf,
                                     excluded->len / (Py_ssize_t)sizeof(uint32_t), *unique);
    PyMem_Free(words);
    Py_XDECREF(held);
    if (distinct < 0) {
        PyMem_Free(*unique);
        *unique = NULL;
    }
    return distinct;
}

/* signature(words, a, b, excluded=b"") -> bytes: the native uint32 signature of the
 * list of str `words` (at least three), with the permutations' a and b as native uint64
 * bytes, over the distinct shingles whose CRC is not among `excluded` (sorted native
 * uint32: a feed's template). */
static PyObject *
minhash_signature(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *list;
    Py_buffer a, b, excluded = {0};
    if (!PyArg_ParseTuple(args, "O!y*y*|y*", &PyList_Type, &list, &a, &b, &excluded))
        return NULL;
    PyObject *result = NULL;
    uint32_t *unique = NULL;
    Py_ssize_t perms = a.len / (Py_ssize_t)sizeof(uint64_t);
    if (a.len != b.len || a.len % (Py_ssize_t)sizeof(uint64_t) || perms == 0) {
        PyErr_SetString(PyExc_ValueError, "signature() takes a, b of equal uint64 length");
        goto done;
    }
    Py_ssize_t distinct = shingles_of(list, &excluded, &unique);
    if (distinct < 0)
        goto done;
    result = PyBytes_FromStringAndSize(NULL, (perms + 1) * (Py_ssize_t)sizeof(uint32_t));
    if (result == NULL)
        goto done;
    uint32_t *out = (uint32_t *)PyBytes_AS_STRING(result);
    const uint64_t *pa = a.buf, *pb = b.buf;
    for (Py_ssize_t p = 0; p < perms; p++) {
        if (pa[p] >= PRIME || pb[p] >= PRIME) {
            Py_CLEAR(result);
            PyErr_SetString(PyExc_ValueError, "signature(): a and b must be below 2^31 - 1");
            goto done;
        }
        out[p] = least_value(pa[p], pb[p], unique, distinct);
    }
    out[perms] = (uint32_t)distinct;
done:
    PyMem_Free(unique);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    if (excluded.obj != NULL)
        PyBuffer_Release(&excluded);
    return result;
}

/* shingles(words) -> bytes: the native uint32 CRC-32 of each distinct shingle of the
 * list of str `words` (at least three), in order of first appearance. */
static PyObject *
minhash_shingles(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list))
        return NULL;
    Py_buffer none = {0};
    uint32_t *unique = NULL;
    Py_ssize_t distinct = shingles_of(list, &none, &unique);
    if (distinct < 0)
        return NULL;
    PyObject *result = PyBytes_FromStringAndSize((const char *)unique,
                                                 distinct * (Py_ssize_t)sizeof(uint32_t));
    PyMem_Free(unique);
    return result;
}

static PyMethodDef methods[] = {
    {"signature", minhash_signature, METH_VARARGS,
     "signature(words, a, b, excluded=b'') -> native uint32 bytes: the mins, then the "
     "distinct shingles, over those whose CRC is not among the sorted uint32 `excluded`."},
    {"shingles", minhash_shingles, METH_VARARGS,
     "shingles(words) -> native uint32 bytes: the CRC of each distinct shingle."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "monitor._minhash",
    .m_doc = "monitor.dedup's MinHash signature at C speed.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__minhash(void)
{
    crc_init();
    return PyModule_Create(&module);
}
