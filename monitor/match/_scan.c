/* monitor._scan: monitor.match's candidate scan at C speed, word by word.
 *
 * The definition (monitor.match.Matcher._scan_python) runs an Aho-Corasick automaton over
 * the folded text, one step per character, then checks where each candidate starts in
 * Python: 60-150 ms for 2 MB of text at 10k-100k terms, most of the matcher's time.
 * Watchlist terms are whole words, so this module looks words up instead: it splits the
 * folded text into tokens (runs of characters between spaces; each character of a script
 * written without spaces, such as CJK, is a token of its own), hashes each, and follows a
 * hash table of every term's token prefixes from each token start for as long as the
 * prefix is some term's. A token start is also tried past a leading # or @ (#Libya) and
 * past an Arabic proclitic (بسرت is سرت). The cost is a probe or two per token whatever
 * the number of terms, and the table is small (a few MB at 100k terms) where the
 * character automaton's states are not.
 *
 * The results are those of the definition, hit for hit and in the same order (by start,
 * then end), up to `cap` hits per atom and field: tests compare the two on random texts
 * and terms (tests/test_match.py). Hashes are only a way in: every term found is compared
 * with the text character by character, and two terms of the same hash fail the build
 * (the caller then keeps the automaton).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_GAP 3   /* BLOCK: no term runs across it */
#define GAP_START 4 /* a term's first token */
#define MAX_PROCLITICS 32
#define MAX_PROCLITIC_LEN 4
#define LOOKAHEAD 8

/* Raised when two terms share a hash: the caller keeps the automaton. A ValueError, as
 * every other refused argument is, but told apart from them. */
static PyObject *HashCollision;

typedef struct {
    uint64_t hash;   /* 0: empty slot */
    int32_t key;     /* the term whose tokens end here, or -1 for a prefix only */
    uint32_t follow; /* follow_bit() of each entry that extends this one by a token */
} Entry;

/* A hit found by the walk, before any Python object is made for it. */
typedef struct {
    int32_t atom, field;
    Py_ssize_t start, end; /* in its field */
    PyObject *alias;       /* borrowed from the scanner */
} Found;

typedef struct {
    Py_ssize_t *start, *end; /* each token's [start, end) in the text */
    uint64_t *hash;
    uint8_t *gap; /* before the token: 0 none (a CJK neighbour), WORDS, SENTENCE or BLOCK
                     (a sentence or a block end between them: see monitor.text) */
    Py_ssize_t capacity;
    /* Per atom and field, per atom, per watchlist: the scan that last saw it (so that
       nothing needs clearing between scans), and what that scan made of it. */
    uint32_t *stamp;
    uint8_t *count;       /* hits kept, up to the cap */
    uint32_t *atom_stamp;
    PyObject **atom_hits; /* the atom's list of hits, held by its watchlist's dict */
    uint32_t *list_stamp;
    PyObject **list_atoms; /* the watchlist's dict of atoms, held by the result */
    double *list_score;    /* what its atoms hit so far score, rules left out */
    uint8_t *keep;         /* per watchlist: its hits go into the result */
    Found *found;          /* the scan's hits, in text order */
    Py_ssize_t nfound, found_capacity;
    uint32_t generation;
} Scratch;

typedef struct {
    PyObject_HEAD
    Py_ssize_t nkeys, natoms, nlists;
    int32_t *list_of;         /* per atom: its watchlist */
    uint8_t *uncapped;        /* per atom: all its hits are kept (case-sensitive spellings,
                                 checked by the caller, which then caps them) */
    double *points[2];        /* per field and atom: what it adds to its watchlist's score,
                                 -inf for an exclusion (from its first hit: title first) */
    double *threshold;        /* per watchlist; -inf for those with rules */
    Entry *table;
    uint64_t mask;
    PyObject **keys;          /* the folded terms, without the automaton's trailing space */
    uint8_t *open_end;        /* the term ends in a CJK-like character: no space needed */
    uint32_t *common;         /* per short Arabic term (monitor.words rule 3): bit j set when
                                 the word proclitic j + the term is likelier another word */
    Py_ssize_t *first;        /* term k's pairs are [first[k], lam[k]), then after لل */
    Py_ssize_t *lam;          /* also [lam[k], first[k + 1]) */
    int32_t *atom;
    PyObject **alias;
    Py_ssize_t npairs;
    int nproclitics;
    Py_UCS4 proclitic[MAX_PROCLITICS][MAX_PROCLITIC_LEN];
    int proclitic_len[MAX_PROCLITICS];
    uint32_t lam_proclitics; /* bit j: proclitic j stands for ل + ال (لل) */
    Scratch scratch;
    int busy;
} Scanner;

/* monitor.text.is_unspaced */
static inline int
unspaced(Py_UCS4 c)
{
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x2FA1F) || (c >= 0x0E00 && c <= 0x0EFF) ||
           (c >= 0x1000 && c <= 0x109F) || (c >= 0x1780 && c <= 0x17FF);
}

/* monitor.text.is_arabic */
static inline int
arabic(Py_UCS4 c)
{
    return (c >= 0x0600 && c <= 0x06FF) || (c >= 0x0750 && c <= 0x077F) ||
           (c >= 0x08A0 && c <= 0x08FF);
}

static inline uint64_t
mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* An entry's bit in the follow mask of the entry it extends: most text tokens start
 * some term's first word but no term's next one, and the mask says so without a second
 * probe of the table (a cache miss at 100k terms). */
static inline uint32_t
follow_bit(uint64_t hash)
{
    return 1u << (hash >> 59);
}

/* FNV-1a over the code points of text[start:end]. */
static inline uint64_t
token_hash(int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    uint64_t h = 14695981039346656037ULL;
    for (Py_ssize_t i = start; i < end; i++) {
        h ^= PyUnicode_READ(kind, data, i);
        h *= 1099511628211ULL;
    }
    return h;
}

/* The hash of a token sequence, extended by one token. Never 0 (the empty slot). */
static inline uint64_t
extend(uint64_t h, int gap, uint64_t token)
{
    uint64_t x = mix(h ^ (token + 0x9E3779B97F4A7C15ULL * (uint64_t)(gap + 1)));
    return x ? x : 1;
}

/* What separates two words in the folded text (monitor.text: a space, or the mark of a
 * sentence or a block end at the first of a run of separators), and the gaps it makes. */
#define SENTENCE_MARK 0x1E
#define BLOCK_MARK 0x1D
enum { WORDS = 1, SENTENCE = 2, BLOCK = 3 };

static inline int
separator(Py_UCS4 c)
{
    return c <= ' ' && (c == ' ' || c == SENTENCE_MARK || c == BLOCK_MARK); /* most: > ' ' */
}

/* The kind of end in the run of separators at data[*i:n] (WORDS, SENTENCE or BLOCK), *i
 * moved past it. */
static inline int
run_between(int kind, const void *data, Py_ssize_t n, Py_ssize_t *i)
{
    int between = 0;
    for (; *i < n; (*i)++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, *i);
        if (!separator(c))
            break;
        int this = c == ' ' ? WORDS : c == SENTENCE_MARK ? SENTENCE : BLOCK;
        between = this > between ? this : between;
    }
    return between;
}

/* The next token of text[*at:n]: its start (its end is then *at), and in *gap what
 * separates it from the one before (GAP_START for the first); -1 at the end. */
static inline Py_ssize_t
next_token(int kind, const void *data, Py_ssize_t n, Py_ssize_t *at, uint8_t *gap)
{
    Py_ssize_t i = *at;
    int between = run_between(kind, data, n, &i); /* 0 for none: a CJK neighbour */
    if (i == n)
        return -1;
    Py_ssize_t start = i;
    if (!unspaced(PyUnicode_READ(kind, data, i++)))
        while (i < n) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (separator(c) || unspaced(c))
                break;
            i++;
        }
    if (*gap != GAP_START)
        *gap = (uint8_t)between;
    *at = i;
    return start;
}

/* Splits text into tokens; returns how many, or -1 with an exception set. */
static Py_ssize_t
tokenize(Scratch *s, PyObject *text)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), count = 0, at = 0, start;
    uint8_t gap = GAP_START;
    while ((start = next_token(kind, data, n, &at, &gap)) >= 0) {
        if (count == s->capacity) {
            Py_ssize_t capacity = s->capacity ? s->capacity * 2 : 1024;
            Py_ssize_t *a = PyMem_Realloc(s->start, (size_t)capacity * sizeof(Py_ssize_t));
            if (a) s->start = a;
            Py_ssize_t *b = a ? PyMem_Realloc(s->end, (size_t)capacity * sizeof(Py_ssize_t)) : NULL;
            if (b) s->end = b;
            uint64_t *h = b ? PyMem_Realloc(s->hash, (size_t)capacity * sizeof(uint64_t)) : NULL;
            if (h) s->hash = h;
            uint8_t *g = h ? PyMem_Realloc(s->gap, (size_t)capacity) : NULL;
            if (g == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            s->gap = g;
            s->capacity = capacity;
        }
        s->start[count] = start;
        s->end[count] = at;
        s->hash[count] = token_hash(kind, data, start, at);
        s->gap[count] = gap;
        gap = 0;
        count++;
    }
    return count;
}

static void
scratch_free(Scratch *s)
{
    PyMem_Free(s->start);
    PyMem_Free(s->end);
    PyMem_Free(s->hash);
    PyMem_Free(s->gap);
    PyMem_Free(s->stamp);
    PyMem_Free(s->count);
    PyMem_Free(s->atom_stamp);
    PyMem_Free(s->atom_hits);
    PyMem_Free(s->list_stamp);
    PyMem_Free(s->list_atoms);
    PyMem_Free(s->list_score);
    PyMem_Free(s->keep);
    PyMem_Free(s->found);
    memset(s, 0, sizeof(*s));
}

static int
scratch_init(Scratch *s, Py_ssize_t natoms, Py_ssize_t nlists)
{
    memset(s, 0, sizeof(*s));
    size_t atoms = (size_t)(natoms ? natoms : 1), lists = (size_t)(nlists ? nlists : 1);
    s->stamp = PyMem_Calloc(atoms * 2, sizeof(uint32_t));
    s->count = PyMem_Calloc(atoms * 2, 1);
    s->atom_stamp = PyMem_Calloc(atoms, sizeof(uint32_t));
    s->atom_hits = PyMem_Calloc(atoms, sizeof(PyObject *));
    s->list_stamp = PyMem_Calloc(lists, sizeof(uint32_t));
    s->list_atoms = PyMem_Calloc(lists, sizeof(PyObject *));
    s->list_score = PyMem_Calloc(lists, sizeof(double));
    s->keep = PyMem_Calloc(lists, 1);
    if (!s->stamp || !s->count || !s->atom_stamp || !s->atom_hits || !s->list_stamp ||
        !s->list_atoms || !s->list_score || !s->keep) {
        scratch_free(s);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* A new scan: stamps of earlier scans no longer count. */
static void
scratch_next(Scratch *s, Py_ssize_t natoms, Py_ssize_t nlists)
{
    if (++s->generation)
        return;
    size_t atoms = (size_t)(natoms ? natoms : 1), lists = (size_t)(nlists ? nlists : 1);
    memset(s->stamp, 0, atoms * 2 * sizeof(uint32_t));
    memset(s->atom_stamp, 0, atoms * sizeof(uint32_t));
    memset(s->list_stamp, 0, lists * sizeof(uint32_t));
    s->generation = 1;
}

static Entry *
find(const Scanner *self, uint64_t hash)
{
    for (uint64_t i = hash & self->mask;; i = (i + 1) & self->mask) {
        Entry *e = &self->table[i];
        if (e->hash == hash || e->hash == 0)
            return e;
    }
}

/* Whether text[start:end] is the key: the same characters, and between its words the
 * same kind of end however many separators stand there. */
static int
same_text(PyObject *key, int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    int key_kind = PyUnicode_KIND(key);
    const void *key_data = PyUnicode_DATA(key);
    Py_ssize_t i = 0, j = start, n = PyUnicode_GET_LENGTH(key);
    if (n == end - start) { /* most: the same characters, a space between words as in the key */
        while (i < n && PyUnicode_READ(kind, data, start + i) == PyUnicode_READ(key_kind, key_data, i))
            i++;
        if (i == n)
            return 1;
        i = 0;
    }
    while (i < n && j < end) {
        Py_UCS4 a = PyUnicode_READ(key_kind, key_data, i), b = PyUnicode_READ(kind, data, j);
        if (separator(a) || separator(b)) {
            if (!separator(a) || !separator(b) ||
                run_between(key_kind, key_data, n, &i) != run_between(kind, data, end, &j))
                return 0;
            continue;
        }
        if (a != b)
            return 0;
        i++;
        j++;
    }
    return i == n && j == end;
}

static void
scanner_dealloc(Scanner *self)
{
    for (Py_ssize_t k = 0; k < self->nkeys; k++)
        Py_XDECREF(self->keys ? self->keys[k] : NULL);
    for (Py_ssize_t p = 0; p < self->npairs; p++)
        Py_XDECREF(self->alias ? self->alias[p] : NULL);
    PyMem_Free(self->list_of);
    PyMem_Free(self->uncapped);
    PyMem_Free(self->points[0]);
    PyMem_Free(self->points[1]);
    PyMem_Free(self->threshold);
    PyMem_Free(self->table);
    PyMem_Free(self->keys);
    PyMem_Free(self->open_end);
    PyMem_Free(self->common);
    PyMem_Free(self->first);
    PyMem_Free(self->lam);
    PyMem_Free(self->atom);
    PyMem_Free(self->alias);
    scratch_free(&self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Adds the hash of a term's tokens, or of a prefix of them, to the table. */
static int
insert(Scanner *self, uint64_t hash, int32_t key)
{
    Entry *e = find(self, hash);
    if (e->hash == 0) {
        e->hash = hash;
        e->key = key;
        return 0;
    }
    if (key < 0)
        return 0;
    if (e->key >= 0 && e->key != key) {
        PyErr_SetString(HashCollision, "two watchlist terms share a hash");
        return -1;
    }
    e->key = key;
    return 0;
}

static int
add_pairs(Scanner *self, PyObject *pairs, Py_ssize_t *at)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(pairs);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(pairs, j);
        int atom;
        PyObject *alias;
        if (!PyArg_ParseTuple(pair, "iU", &atom, &alias))
            return -1;
        if (atom < 0 || atom >= self->natoms) {
            PyErr_SetString(PyExc_ValueError, "atom out of range");
            return -1;
        }
        self->atom[*at] = atom;
        self->alias[*at] = Py_NewRef(alias);
        (*at)++;
    }
    return 0;
}

/* Scanner(keys, plain, lam_only, proclitics, lam_proclitics, blocked, list_of,
 *         title_points, body_points, thresholds): see monitor/match/_scan.pyi. */
static PyObject *
scanner_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *keys, *blocked, *plain, *lam_only, *proclitics, *lam_set, *list_of, *points[2],
        *thresholds;
    Py_buffer uncapped;
    static char *names[] = {"keys", "plain", "lam_only", "proclitics", "lam_proclitics",
                            "blocked", "list_of", "title_points", "body_points",
                            "thresholds", "uncapped", NULL};
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "O!O!O!O!O!O!O!O!O!O!y*:Scanner", names, &PyList_Type, &keys,
            &PyList_Type, &plain, &PyList_Type, &lam_only, &PyTuple_Type, &proclitics,
            &PyFrozenSet_Type, &lam_set, &PyList_Type, &blocked, &PyList_Type, &list_of,
            &PyList_Type, &points[0], &PyList_Type, &points[1], &PyList_Type, &thresholds,
            &uncapped))
        return NULL;
    Scanner *self = NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys), natoms = PyList_GET_SIZE(list_of),
               nlists = PyList_GET_SIZE(thresholds);
    if (PyList_GET_SIZE(plain) != n || PyList_GET_SIZE(blocked) != n ||
        PyList_GET_SIZE(lam_only) != n || PyList_GET_SIZE(points[0]) != natoms ||
        PyList_GET_SIZE(points[1]) != natoms ||
        natoms > INT32_MAX || n > INT32_MAX || PyTuple_GET_SIZE(proclitics) > MAX_PROCLITICS ||
        uncapped.len != natoms) {
        PyErr_SetString(PyExc_ValueError, "Scanner(): inconsistent arguments");
        goto fail;
    }
    self = (Scanner *)type->tp_alloc(type, 0);
    if (self == NULL)
        goto fail;
    self->natoms = natoms;
    self->nlists = nlists;
    self->list_of = PyMem_Calloc((size_t)(natoms ? natoms : 1), sizeof(int32_t));
    self->uncapped = PyMem_Calloc((size_t)(natoms ? natoms : 1), 1);
    for (int f = 0; f < 2; f++)
        self->points[f] = PyMem_Calloc((size_t)(natoms ? natoms : 1), sizeof(double));
    self->threshold = PyMem_Calloc((size_t)(nlists ? nlists : 1), sizeof(double));
    if (!self->list_of || !self->uncapped || !self->points[0] || !self->points[1] ||
        !self->threshold) {
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(self->uncapped, uncapped.buf, (size_t)natoms);
    for (Py_ssize_t a = 0; a < natoms; a++) {
        long list = PyLong_AsLong(PyList_GET_ITEM(list_of, a));
        for (int f = 0; f < 2; f++)
            self->points[f][a] = PyFloat_AsDouble(PyList_GET_ITEM(points[f], a));
        if (PyErr_Occurred())
            goto fail;
        if (list < 0 || list >= nlists) {
            PyErr_SetString(PyExc_ValueError, "Scanner(): an atom's watchlist out of range");
            goto fail;
        }
        self->list_of[a] = (int32_t)list;
    }
    for (Py_ssize_t w = 0; w < nlists; w++) {
        self->threshold[w] = PyFloat_AsDouble(PyList_GET_ITEM(thresholds, w));
        if (PyErr_Occurred())
            goto fail;
    }
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(proclitics); j++) {
        PyObject *p = PyTuple_GET_ITEM(proclitics, j);
        if (!PyUnicode_Check(p) || PyUnicode_GET_LENGTH(p) < 1 ||
            PyUnicode_GET_LENGTH(p) > MAX_PROCLITIC_LEN) {
            PyErr_SetString(PyExc_ValueError, "Scanner(): proclitics of 1 to 4 letters");
            goto fail;
        }
        if (j && PyUnicode_GET_LENGTH(p) <
                     PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(proclitics, j - 1))) {
            PyErr_SetString(PyExc_ValueError, "Scanner(): proclitics shortest first");
            goto fail;
        }
        self->proclitic_len[j] = (int)PyUnicode_GET_LENGTH(p);
        for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(p); i++)
            self->proclitic[j][i] = PyUnicode_READ_CHAR(p, i);
        int lam = PySet_Contains(lam_set, p);
        if (lam < 0)
            goto fail;
        if (lam)
            self->lam_proclitics |= 1u << j;
        self->nproclitics = (int)j + 1;
    }
    /* Count the pairs first, so that the arrays are allocated once. */
    Py_ssize_t npairs = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *a = PyList_GET_ITEM(plain, k), *b = PyList_GET_ITEM(lam_only, k);
        if (!PyTuple_Check(a) || !PyTuple_Check(b)) {
            PyErr_SetString(PyExc_TypeError, "Scanner(): pairs must be tuples");
            goto fail;
        }
        npairs += PyTuple_GET_SIZE(a) + PyTuple_GET_SIZE(b);
    }
    size_t nk = (size_t)(n ? n : 1);
    self->keys = PyMem_Calloc(nk, sizeof(PyObject *));
    self->open_end = PyMem_Calloc(nk, 1);
    self->common = PyMem_Calloc(nk, sizeof(uint32_t));
    self->first = PyMem_Calloc(nk + 1, sizeof(Py_ssize_t));
    self->lam = PyMem_Calloc(nk, sizeof(Py_ssize_t));
    self->atom = PyMem_Calloc((size_t)(npairs ? npairs : 1), sizeof(int32_t));
    self->alias = PyMem_Calloc((size_t)(npairs ? npairs : 1), sizeof(PyObject *));
    /* Each term adds at most one entry per token (a token ends at a space or is a CJK
       character); a table at most half full. */
    Py_ssize_t tokens = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *key = PyList_GET_ITEM(keys, k);
        if (!PyUnicode_Check(key) || PyUnicode_GET_LENGTH(key) == 0) {
            PyErr_SetString(PyExc_ValueError, "Scanner(): keys must be non-empty str");
            goto fail;
        }
        tokens++;
        for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(key); i++) {
            Py_UCS4 c = PyUnicode_READ_CHAR(key, i);
            tokens += separator(c) || unspaced(c);
        }
    }
    uint64_t capacity = 16;
    while (capacity < (uint64_t)tokens * 2)
        capacity *= 2;
    self->table = PyMem_Calloc(capacity, sizeof(Entry));
    if (!self->keys || !self->open_end || !self->common || !self->first ||
        !self->lam || !self->atom || !self->alias || !self->table) {
        PyErr_NoMemory();
        goto fail;
    }
    self->mask = capacity - 1;
    self->nkeys = n;
    if (scratch_init(&self->scratch, natoms, nlists) < 0)
        goto fail;
    Py_ssize_t at = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *key = PyList_GET_ITEM(keys, k);
        self->keys[k] = Py_NewRef(key);
        Py_ssize_t length = PyUnicode_GET_LENGTH(key);
        unsigned long mask = PyLong_AsUnsignedLong(PyList_GET_ITEM(blocked, k));
        if (PyErr_Occurred())
            goto fail;
        self->common[k] = (uint32_t)mask;
        self->open_end[k] = (uint8_t)unspaced(PyUnicode_READ_CHAR(key, length - 1));
        self->first[k] = at;
        if (add_pairs(self, PyList_GET_ITEM(plain, k), &at) < 0)
            goto fail;
        self->lam[k] = at;
        if (add_pairs(self, PyList_GET_ITEM(lam_only, k), &at) < 0)
            goto fail;
        self->npairs = at;
        /* The key's tokens, exactly as tokenize() splits a text. */
        int kind = PyUnicode_KIND(key);
        const void *data = PyUnicode_DATA(key);
        if (separator(PyUnicode_READ(kind, data, 0)) ||
            separator(PyUnicode_READ(kind, data, length - 1))) {
            PyErr_SetString(PyExc_ValueError, "Scanner(): keys start and end with a word");
            goto fail;
        }
        uint64_t h = 0;
        Py_ssize_t i = 0, start;
        uint8_t gap = GAP_START;
        Entry *prefix = NULL;
        while ((start = next_token(kind, data, length, &i, &gap)) >= 0) {
            h = extend(h, gap, token_hash(kind, data, start, i));
            gap = 0;
            if (insert(self, h, i == length ? (int32_t)k : -1) < 0)
                goto fail;
            if (prefix != NULL)
                prefix->follow |= follow_bit(h);
            prefix = find(self, h); /* entries never move: the table has its final size */
        }
    }
    self->first[n] = at;
    PyBuffer_Release(&uncapped);
    return (PyObject *)self;
fail:
    PyBuffer_Release(&uncapped);
    Py_XDECREF(self);
    return NULL;
}

/* One scan: its text, its scratch, where the body starts, the cap, and the result: a
 * list of hits, or a dict {watchlist: {atom: [hit, ...]}}. */
typedef struct {
    Scanner *self;
    Scratch *s;
    int kind;
    const void *data;
    Py_ssize_t length, ntokens, body_at;
    int cap;
    PyObject *out;
} Scan;

/* dict[key] = value, a new reference that this steals; returns value, borrowed (the
 * dict holds it), or NULL. */
static PyObject *
put(PyObject *dict, long key, PyObject *value)
{
    PyObject *number = PyLong_FromLong(key);
    int failed = !number || !value || PyDict_SetItem(dict, number, value) < 0;
    Py_XDECREF(number);
    Py_XDECREF(value);
    return failed ? NULL : value;
}

/* Counts the atom's first hit (in `field`) in its watchlist's score. */
static void
account(Scan *scan, int32_t atom, int field)
{
    Scratch *s = scan->s;
    if (s->atom_stamp[atom] == s->generation)
        return;
    s->atom_stamp[atom] = s->generation;
    int32_t list = scan->self->list_of[atom];
    if (s->list_stamp[list] != s->generation) {
        s->list_stamp[list] = s->generation;
        s->list_score[list] = 0.0;
    }
    s->list_score[list] += scan->self->points[field][atom];
}

/* The list of hits of the atom in a grouped result, made on its first hit. Borrowed. */
static PyObject *
atom_hits(Scan *scan, int32_t atom)
{
    Scratch *s = scan->s;
    if (s->atom_stamp[atom] == s->generation)
        return s->atom_hits[atom];
    int32_t list = scan->self->list_of[atom];
    if (s->list_stamp[list] != s->generation) {
        if ((s->list_atoms[list] = put(scan->out, list, PyDict_New())) == NULL)
            return NULL;
        s->list_stamp[list] = s->generation;
    }
    if ((s->atom_hits[atom] = put(s->list_atoms[list], atom, PyList_New(0))) == NULL)
        return NULL;
    s->atom_stamp[atom] = s->generation;
    return s->atom_hits[atom];
}

/* Adds the hits of term k found at text[start:end], after proclitic number `proclitic`
 * (-1: none), within the cap per atom and field. */
static int
emit(Scan *scan, Py_ssize_t k, Py_ssize_t start, Py_ssize_t end, int proclitic)
{
    Scanner *self = scan->self;
    Scratch *s = scan->s;
    Py_ssize_t from = self->first[k], to = self->lam[k], before = 0;
    if (proclitic >= 0) {
        before = self->proclitic_len[proclitic];
        if (self->lam_proclitics >> proclitic & 1)
            to = self->first[k + 1]; /* لل + السراج: a term with or without its ال */
        else if (self->common[k] >> proclitic & 1)
            return 0; /* the whole word is a common word, not a proclitic + this term */
    }
    int field = start >= scan->body_at;
    Py_ssize_t base = field ? scan->body_at : 0;
    for (Py_ssize_t p = from; p < to; p++) {
        int32_t atom = self->atom[p];
        size_t slot = (size_t)atom * 2 + (size_t)field;
        if (s->stamp[slot] != s->generation) {
            s->stamp[slot] = s->generation;
            s->count[slot] = 0;
        }
        if (!self->uncapped[atom]) {
            if (s->count[slot] >= scan->cap)
                continue;
            s->count[slot]++;
        }
        account(scan, atom, field);
        if (s->nfound == s->found_capacity) {
            Py_ssize_t capacity = s->found_capacity ? s->found_capacity * 2 : 256;
            Found *grown = PyMem_Realloc(s->found, (size_t)capacity * sizeof(Found));
            if (grown == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            s->found = grown;
            s->found_capacity = capacity;
        }
        s->found[s->nfound++] = (Found){atom, field, start - before - base, end - base,
                                        self->alias[p]};
    }
    return 0;
}

/* Follows the table from the token `t`, whose part from `start` hashes to `hash`. */
static int
walk(Scan *scan, Py_ssize_t t, Py_ssize_t start, uint64_t hash, int proclitic)
{
    const Scanner *self = scan->self;
    const Scratch *s = scan->s;
    uint64_t h = extend(0, GAP_START, hash);
    for (;;) {
        const Entry *e = find(self, h);
        if (e->hash == 0)
            return 0;
        Py_ssize_t end = s->end[t];
        if (e->key >= 0) {
            Py_ssize_t k = e->key;
            int closed = self->open_end[k] || (end < scan->length &&
                                               separator(PyUnicode_READ(scan->kind, scan->data, end)));
            if (closed && same_text(self->keys[k], scan->kind, scan->data, start, end) &&
                emit(scan, k, start, end, proclitic) < 0)
                return -1;
        }
        if (++t == scan->ntokens || s->gap[t] >= MAX_GAP)
            return 0; /* no term runs across a block end */
        h = extend(h, s->gap[t], s->hash[t]);
        if (!(e->follow & follow_bit(h)))
            return 0; /* no term goes on with this token */
    }
}

/* Every token start, and the starts past a leading #/@ or an Arabic proclitic. */
static int
walk_all(Scan *scan)
{
    const Scanner *self = scan->self;
    const Scratch *s = scan->s;
    int kind = scan->kind;
    const void *data = scan->data;
    for (Py_ssize_t t = 0; t < scan->ntokens; t++) {
        Py_ssize_t start = s->start[t], end = s->end[t];
#if defined(__GNUC__)
        if (t + LOOKAHEAD < scan->ntokens) {
            /* Nearly every probe misses the caches at 100k terms; asking for the slot of
               a token ahead lets it arrive while this one is looked up. */
            uint64_t h = extend(0, GAP_START, s->hash[t + LOOKAHEAD]);
            __builtin_prefetch(&self->table[h & self->mask]);
        }
#endif
        if (walk(scan, t, start, s->hash[t], -1) < 0)
            return -1;
        if (s->gap[t] == 0)
            continue; /* glued to a CJK character: only the token itself starts a word */
        Py_UCS4 c = PyUnicode_READ(kind, data, start);
        if (c == '#' || c == '@') { /* #Libya, @Haftar */
            for (Py_ssize_t i = start + 1; i < end; i++) {
                if (walk(scan, t, i, token_hash(kind, data, i, end), -1) < 0)
                    return -1;
                Py_UCS4 d = PyUnicode_READ(kind, data, i);
                if (d != '#' && d != '@')
                    break;
            }
            continue;
        }
        if (!arabic(c))
            continue;
        for (int j = 0; j < self->nproclitics; j++) {
            int length = self->proclitic_len[j];
            if (end - start <= length || !arabic(PyUnicode_READ(kind, data, start + length)))
                continue;
            int same = 1;
            for (int i = 0; i < length && same; i++)
                same = PyUnicode_READ(kind, data, start + i) == self->proclitic[j][i];
            if (same && walk(scan, t, start + length,
                             token_hash(kind, data, start + length, end), j) < 0)
                return -1;
        }
    }
    return 0;
}

/* The result from the hits found: a list of them, or grouped by watchlist and atom.
 * With `quick`, only the watchlists that can still match are grouped: not those without
 * rules whose score is below their threshold (an exclusion hit scores -inf; watchlists
 * with rules have a threshold of -inf: rules may add any score). The rounding of the
 * score to 3 decimals gets 0.001 of room (ten times 0.1 is 0.9999999999999999). Nothing
 * is made for the others. */
static int
build(Scan *scan, int grouped, int quick)
{
    Scanner *self = scan->self;
    Scratch *s = scan->s;
    if (grouped) {
        for (Py_ssize_t list = 0; list < self->nlists; list++)
            s->keep[list] = s->list_stamp[list] == s->generation &&
                            (!quick || s->list_score[list] + 0.001 >= self->threshold[list]);
        scratch_next(s, self->natoms, self->nlists); /* stamps now mark what was made */
    }
    for (Py_ssize_t i = 0; i < s->nfound; i++) {
        const Found *f = &s->found[i];
        PyObject *into = scan->out;
        if (grouped) {
            if (!s->keep[self->list_of[f->atom]])
                continue;
            if ((into = atom_hits(scan, f->atom)) == NULL)
                return -1;
        }
        PyObject *hit = PyTuple_New(5);
        if (hit == NULL)
            return -1;
        PyTuple_SET_ITEM(hit, 0, PyLong_FromLong(f->atom));
        PyTuple_SET_ITEM(hit, 1, PyLong_FromLong(f->field));
        PyTuple_SET_ITEM(hit, 2, PyLong_FromSsize_t(f->start));
        PyTuple_SET_ITEM(hit, 3, PyLong_FromSsize_t(f->end));
        PyTuple_SET_ITEM(hit, 4, Py_NewRef(f->alias));
        int failed = 0;
        for (int j = 0; j < 4; j++)
            failed |= PyTuple_GET_ITEM(hit, j) == NULL;
        if (failed || PyList_Append(into, hit) < 0) {
            Py_DECREF(hit);
            return -1;
        }
        Py_DECREF(hit);
    }
    return 0;
}

static PyObject *
run(Scanner *self, PyObject *args, const char *format, int grouped)
{
    PyObject *text;
    Py_ssize_t body_at;
    int cap, quick = 0;
    if (grouped ? !PyArg_ParseTuple(args, format, &text, &body_at, &cap, &quick)
                : !PyArg_ParseTuple(args, format, &text, &body_at, &cap))
        return NULL;
    /* Building the results can run Python code (a collection's finalizers), which could
       scan again with this scanner: such a nested scan gets scratch of its own. */
    Scratch own;
    Scan scan = {self, &self->scratch, PyUnicode_KIND(text), PyUnicode_DATA(text),
                 PyUnicode_GET_LENGTH(text), 0, body_at, cap, NULL};
    if (self->busy) {
        if (scratch_init(&own, self->natoms, self->nlists) < 0)
            return NULL;
        scan.s = &own;
    }
    self->busy++;
    scan.out = grouped ? PyDict_New() : PyList_New(0);
    scan.ntokens = scan.out ? tokenize(scan.s, text) : -1;
    if (scan.ntokens >= 0) {
        scratch_next(scan.s, self->natoms, self->nlists);
        scan.s->nfound = 0;
    }
    if (scan.ntokens < 0 || walk_all(&scan) < 0 || build(&scan, grouped, quick) < 0)
        Py_CLEAR(scan.out);
    self->busy--;
    if (scan.s == &own)
        scratch_free(&own);
    return scan.out;
}

static PyObject *
scanner_scan(Scanner *self, PyObject *args)
{
    return run(self, args, "Uni:scan", 0);
}

static PyObject *
scanner_lists(Scanner *self, PyObject *args)
{
    return run(self, args, "Unip:lists", 1);
}

static PyMethodDef scanner_methods[] = {
    {"scan", (PyCFunction)scanner_scan, METH_VARARGS,
     "scan(text, body_at, cap) -> [(atom, field, start, end, alias)]: the hits of the "
     "terms in the folded text, title before body_at, at most cap per atom and field."},
    {"lists", (PyCFunction)scanner_lists, METH_VARARGS,
     "lists(text, body_at, cap, quick) -> {watchlist: {atom: [hit, ...]}}: scan()'s hits "
     "by watchlist and atom; with quick, only watchlists that can still match."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor._scan.Scanner",
    .tp_doc = "The terms of all watchlists, hashed by their tokens.",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = scanner_new,
    .tp_dealloc = (destructor)scanner_dealloc,
    .tp_methods = scanner_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "monitor._scan",
    .m_doc = "monitor.match's candidate scan at C speed, word by word.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    HashCollision = PyErr_NewException("monitor._scan.HashCollision", PyExc_ValueError, NULL);
    if (HashCollision == NULL || PyModule_AddObjectRef(m, "HashCollision", HashCollision) < 0 ||
        PyModule_AddObjectRef(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
