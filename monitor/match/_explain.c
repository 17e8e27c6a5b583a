/* monitor._explain: monitor.match.Matcher's explanations at C speed: matches() past the
 * scan for watchlists without rules or `require`, _hits and _snippet.
 *
 * At 100k terms nearly every document matches some watchlist, and each match carries its
 * hits: about 15,000 Hit values for 2 MB of text (bench/match.py). Made in Python, each
 * costs a frozen dataclass's __init__ (seven object.__setattr__ calls) and a Folded.span
 * (two bisections in Python): more time than the C scan that found them. This module makes
 * the same values from the scanner's raw hits. It sets a Hit's fields as object.__setattr__
 * does (PyObject_GenericSetAttr: the class's slot descriptors, past the frozen
 * __setattr__), and maps folded offsets back to the original as Folded.span does, from
 * the packed rows of Folded.shifts. matches() then does the rest of Matcher.matches for
 * the watchlists whose verdict is a sum (no rules, no `require`): the score over the
 * atoms in config order, Python's round() to 3 decimals, the cached breakdown lines,
 * hits, snippet and the Match; it hands the other watchlists back to Python.
 * tests/test_match.py compares all of it with the Python path on random texts and terms.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum { KIND, TERM, ALIAS, MATCHED, FIELD, OFFSET, WEIGHT, NFIELDS };
static const char *field_names[NFIELDS] = {"kind", "term", "alias", "matched",
                                           "field", "offset", "weight"};
static PyObject *names[NFIELDS];
static PyObject *original_name, *shifts_name;

/* One field of the item (monitor.text.Folded): its original text and, once a hit in it
 * needs them, its shifts (Folded.shifts: rows of four long longs, folded offset, original
 * offset, length folded to, shift after). */
typedef struct {
    PyObject *folded, *original;
    Py_buffer shifts;
    Py_ssize_t rows; /* -1 while not read */
} Field;

static void
field_release(Field *f)
{
    if (f->rows > 0)
        PyBuffer_Release(&f->shifts);
    f->rows = -1;
    Py_CLEAR(f->original);
}

/* folded.name, for a field of the item: a TypeError, as for any argument of the wrong
 * type, when it is not a monitor.text.Folded (has no such attribute). */
static PyObject *
field_attr(PyObject *folded, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(folded, name);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "fields must be monitor.text.Folded, not %.100s",
                     Py_TYPE(folded)->tp_name);
    }
    return value;
}

/* Reads the field's original text and shifts, the first time a hit in it needs them. */
static int
field_read(Field *f)
{
    if (f->rows >= 0)
        return 0;
    f->original = field_attr(f->folded, original_name);
    if (f->original == NULL)
        return -1;
    if (!PyUnicode_Check(f->original)) {
        PyErr_SetString(PyExc_TypeError, "hits(): Folded.original must be str");
        return -1;
    }
    PyObject *shifts = field_attr(f->folded, shifts_name);
    if (shifts == NULL)
        return -1;
    if (shifts == Py_None) {
        Py_DECREF(shifts);
        f->rows = 0;
        return 0;
    }
    int failed = PyObject_GetBuffer(shifts, &f->shifts, PyBUF_SIMPLE);
    Py_DECREF(shifts); /* the buffer holds the object */
    if (failed)
        return -1;
    Py_ssize_t row = 4 * (Py_ssize_t)sizeof(long long);
    if (f->shifts.len == 0 || f->shifts.len % row) {
        PyBuffer_Release(&f->shifts);
        PyErr_SetString(PyExc_ValueError, "hits(): Folded.shifts must be rows of four");
        return -1;
    }
    f->rows = f->shifts.len / row;
    return 0;
}

/* Folded._original: where the folded offset j falls in the original text. */
static Py_ssize_t
original_offset(const Field *f, Py_ssize_t j, int end)
{
    const long long *rows = f->shifts.buf;
    Py_ssize_t lo = 0, hi = f->rows; /* bisect_right over the rows' folded offsets */
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (j < rows[4 * mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == 0)
        return j;
    const long long *row = rows + 4 * (lo - 1);
    if (j < row[0] + row[2]) /* at or inside an expansion such as ß -> ss */
        return (Py_ssize_t)row[1] + (end && j > row[0] ? 1 : 0);
    return j - (Py_ssize_t)row[3];
}

/* A `type` (a frozen dataclass with slots) with these fields, set as object.__setattr__
 * does; the values are stolen. */
static PyObject *
make_value(PyTypeObject *type, int n, PyObject *const *fields, PyObject **values)
{
    PyObject *value = type->tp_alloc(type, 0);
    for (int i = 0; i < n; i++) {
        if (value != NULL && (values[i] == NULL ||
                              PyObject_GenericSetAttr(value, fields[i], values[i]) < 0))
            Py_CLEAR(value);
        Py_XDECREF(values[i]);
    }
    return value;
}

/* The body's first hit by offset (the first of those at that offset), for the snippet. */
typedef struct {
    PyObject *hit;
    Py_ssize_t offset, length;
} First;

/* Per atom: kind, term and weight (monitor.match.Matcher's columns). */
typedef struct {
    PyObject *kind, *term, *weight;
} Atoms;

static int add_raw_hit(PyObject *out, PyObject *raw, Field fields[2], const Atoms *atoms,
                       PyTypeObject *type, PyObject *labels, First *first);

/* The Hit of one raw hit (atom, field, start, end, alias), appended to `out`; the raw hit
 * is held meanwhile, as making objects can run a collection's finalizers. */
static int
add_hit(PyObject *out, PyObject *raw, Field fields[2], const Atoms *atoms,
        PyTypeObject *type, PyObject *labels, First *first)
{
    Py_INCREF(raw);
    int result = add_raw_hit(out, raw, fields, atoms, type, labels, first);
    Py_DECREF(raw);
    return result;
}

static int
add_raw_hit(PyObject *out, PyObject *raw, Field fields[2], const Atoms *atoms,
        PyTypeObject *type, PyObject *labels, First *first)
{
    Py_ssize_t atom, start, end;
    int which;
    PyObject *alias;
    if (!PyTuple_Check(raw) ||
        !PyArg_ParseTuple(raw, "ninnO!:hits", &atom, &which, &start, &end, &PyUnicode_Type,
                          &alias))
        return PyTuple_Check(raw) ? -1 : (PyErr_SetString(PyExc_TypeError,
                                                            "hits(): raw hits are tuples"), -1);
    if (atom < 0 || atom >= PyList_GET_SIZE(atoms->kind) || which < 0 || which > 1) {
        PyErr_SetString(PyExc_ValueError, "hits(): atom or field out of range");
        return -1;
    }
    Field *f = &fields[which];
    if (field_read(f) < 0)
        return -1;
    Py_ssize_t a = start, b = end;
    if (f->rows > 0) {
        a = original_offset(f, start, 0);
        b = original_offset(f, end, 1);
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(f->original);
    if (a < 0 || b < a || b > length) {
        PyErr_SetString(PyExc_ValueError, "hits(): a hit outside its text");
        return -1;
    }
    PyObject *values[NFIELDS] = {
        Py_NewRef(PyList_GET_ITEM(atoms->kind, atom)),
        Py_NewRef(PyList_GET_ITEM(atoms->term, atom)),
        Py_NewRef(alias),                       PyUnicode_Substring(f->original, a, b),
        Py_NewRef(PyTuple_GET_ITEM(labels, which)), PyLong_FromSsize_t(a),
        Py_NewRef(PyList_GET_ITEM(atoms->weight, atom)),
    };
    PyObject *hit = make_value(type, NFIELDS, names, values);
    if (hit == NULL || PyList_Append(out, hit) < 0) {
        Py_XDECREF(hit);
        return -1;
    }
    if (which == 1 && (first->hit == NULL || a < first->offset)) {
        first->hit = hit; /* borrowed: `out` holds it */
        first->offset = a;
        first->length = b - a;
    }
    Py_DECREF(hit);
    return 0;
}

/* A Hit per raw hit of the groups (an iterable of lists), in order, as a tuple; in
 * *first, the body's first by offset. */
static PyObject *
make_hits(PyObject *groups, PyObject *folded, const Atoms *atoms, PyTypeObject *type,
          PyObject *labels, First *first)
{
    Field fields[2] = {{PyTuple_GET_ITEM(folded, 0), NULL, {0}, -1},
                       {PyTuple_GET_ITEM(folded, 1), NULL, {0}, -1}};
    PyObject *out = PyList_New(0), *iter = out ? PyObject_GetIter(groups) : NULL, *group;
    int failed = iter == NULL;
    while (!failed && (group = PyIter_Next(iter)) != NULL) {
        if (!PyList_Check(group)) {
            PyErr_SetString(PyExc_TypeError, "hits(): each group is a list of raw hits");
            failed = 1;
        }
        for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(group); i++)
            failed = add_hit(out, PyList_GET_ITEM(group, i), fields, atoms, type, labels,
                             first) < 0;
        Py_DECREF(group);
    }
    failed = failed || PyErr_Occurred();
    Py_XDECREF(iter);
    field_release(&fields[0]);
    field_release(&fields[1]);
    PyObject *hits = failed ? NULL : PyList_AsTuple(out);
    Py_XDECREF(out);
    if (hits == NULL)
        first->hit = NULL;
    return hits;
}

/* hits(groups, fields, kinds, terms, weights, hit_type, labels): see
 * monitor/match/_explain.pyi. */
static PyObject *
explain_hits(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *groups, *folded, *labels;
    Atoms atoms;
    PyTypeObject *type;
    if (!PyArg_ParseTuple(args, "OO!O!O!O!O!O!:hits", &groups, &PyTuple_Type, &folded,
                          &PyList_Type, &atoms.kind, &PyList_Type, &atoms.term, &PyList_Type,
                          &atoms.weight, &PyType_Type, &type, &PyTuple_Type, &labels))
        return NULL;
    if (PyTuple_GET_SIZE(folded) != 2 || PyTuple_GET_SIZE(labels) != 2 ||
        PyList_GET_SIZE(atoms.term) != PyList_GET_SIZE(atoms.kind) ||
        PyList_GET_SIZE(atoms.weight) != PyList_GET_SIZE(atoms.kind)) {
        PyErr_SetString(PyExc_ValueError, "hits(): two fields, two labels, equal columns");
        return NULL;
    }
    First first = {NULL, 0, 0};
    PyObject *hits = make_hits(groups, folded, &atoms, type, labels, &first);
    return hits ? Py_BuildValue("(NO)", hits, first.hit ? first.hit : Py_None) : NULL;
}

#define ELLIPSIS 0x2026

/* body[start:end] with its runs of white space made one space and its ends stripped, as
 * " ".join(body[start:end].split()), after "… " if `cut_before` and before " …" if
 * `cut_after`. */
static PyObject *
collapse(PyObject *body, Py_ssize_t start, Py_ssize_t end, int cut_before, int cut_after)
{
    int kind = PyUnicode_KIND(body);
    const void *data = PyUnicode_DATA(body);
    Py_UCS4 *out = PyMem_Malloc((size_t)(end - start + 4) * sizeof(Py_UCS4));
    if (out == NULL)
        return PyErr_NoMemory();
    Py_ssize_t n = 0, kept = 0;
    int gap = 0;
    if (cut_before) {
        out[n++] = ELLIPSIS;
        out[n++] = ' ';
    }
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (Py_UNICODE_ISSPACE(ch)) {
            gap = kept > 0;
            continue;
        }
        if (gap)
            out[n++] = ' ';
        gap = 0;
        out[n++] = ch;
        kept++;
    }
    if (cut_after) {
        out[n++] = ' ';
        out[n++] = ELLIPSIS;
    }
    PyObject *result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, n);
    PyMem_Free(out);
    return result;
}

/* str.find / str.rfind of a space in body[from:to], or -1. */
static Py_ssize_t
find_space(PyObject *body, Py_ssize_t from, Py_ssize_t to, int direction)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(body);
    from = from < 0 ? 0 : from;
    to = to > n ? n : to;
    if (from >= to)
        return -1;
    return PyUnicode_FindChar(body, ' ', from, to, direction);
}

/* snippet(body, offset, length, chars): see monitor/match/_explain.pyi. */
static PyObject *cut_snippet(PyObject *body, Py_ssize_t offset, Py_ssize_t length,
                             Py_ssize_t chars);

static PyObject *
explain_snippet(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *body;
    Py_ssize_t offset, length, chars;
    if (!PyArg_ParseTuple(args, "Unnn:snippet", &body, &offset, &length, &chars))
        return NULL;
    return cut_snippet(body, offset, length, chars);
}

static PyObject *
cut_snippet(PyObject *body, Py_ssize_t offset, Py_ssize_t length, Py_ssize_t chars)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(body);
    if (chars < 0 || offset > n) {
        PyErr_SetString(PyExc_ValueError, "snippet(): a hit outside the body");
        return NULL;
    }
    if (offset < 0)
        return collapse(body, 0, chars < n ? chars : n, 0, 0);
    Py_ssize_t start = offset - chars / 3 > 0 ? offset - chars / 3 : 0;
    if (start) {
        Py_ssize_t space = find_space(body, start, n, 1);
        if (space == -2)
            return NULL;
        start = 0 <= space && space < offset ? space + 1 : start;
    }
    Py_ssize_t end = start + chars < n ? start + chars : n;
    Py_ssize_t space = find_space(body, offset + length, end, -1);
    if (space == -2)
        return NULL;
    end = space > 0 && end < n ? space : end;
    return collapse(body, start, end, start > 0, end < n);
}

/* What monitor.match.Matcher knows once per config, for matches(): see
 * monitor/match/_explain.pyi. */
typedef struct {
    Atoms atoms;
    const char *role; /* per atom: monitor.match's _TERM, _SCORED or _EXCLUDE */
    PyObject *points[2], *lines[2], *line_of, *names, *thresholds;
    const char *simple; /* per watchlist: no rules and no require */
    PyTypeObject *hit_type, *match_type;
    PyObject *labels;
    Py_ssize_t chars, natoms, nlists;
} Plan;

#define SCORED 1
#define EXCLUDE 2

static int
read_plan(PyObject *tuple, Plan *p)
{
    PyObject *role, *simple;
    if (!PyTuple_Check(tuple) ||
        !PyArg_ParseTuple(tuple, "O!O!O!SO!O!O!O!OO!O!SO!O!O!n:matches", &PyList_Type,
                          &p->atoms.kind, &PyList_Type, &p->atoms.term, &PyList_Type,
                          &p->atoms.weight, &role, &PyList_Type, &p->points[0], &PyList_Type,
                          &p->points[1], &PyList_Type, &p->lines[0], &PyList_Type,
                          &p->lines[1], &p->line_of, &PyList_Type, &p->names, &PyList_Type,
                          &p->thresholds, &simple, &PyType_Type, &p->hit_type, &PyType_Type,
                          &p->match_type, &PyTuple_Type, &p->labels, &p->chars))
        return -1;
    p->natoms = PyList_GET_SIZE(p->atoms.kind);
    p->nlists = PyList_GET_SIZE(p->names);
    p->role = PyBytes_AS_STRING(role);
    p->simple = PyBytes_AS_STRING(simple);
    int consistent = PyList_GET_SIZE(p->atoms.term) == p->natoms &&
                     PyList_GET_SIZE(p->atoms.weight) == p->natoms &&
                     PyBytes_GET_SIZE(role) == p->natoms && PyTuple_GET_SIZE(p->labels) == 2 &&
                     PyBytes_GET_SIZE(simple) == p->nlists &&
                     PyList_GET_SIZE(p->thresholds) == p->nlists && p->chars >= 0;
    for (int f = 0; f < 2; f++)
        consistent = consistent && PyList_GET_SIZE(p->points[f]) == p->natoms &&
                     PyList_GET_SIZE(p->lines[f]) == p->natoms;
    if (!consistent) {
        PyErr_SetString(PyExc_ValueError, "matches(): inconsistent plan");
        return -1;
    }
    return 0;
}

static PyObject *match_fields[5];

/* The Match of watchlist `index` (without rules or require) from its hits by atom, or
 * Py_None when it does not match: Matcher._verdict then Matcher._explain. */
static PyObject *
simple_match(const Plan *p, Py_ssize_t index, PyObject *by_atom, PyObject *folded)
{
    PyObject *atoms = PyDict_Keys(by_atom), *lines = PyList_New(0), *result = NULL;
    PyObject *rounded = NULL, *score_obj = NULL;
    if (atoms == NULL || lines == NULL || PyList_Sort(atoms) < 0)
        goto done;
    double score = 0.0;
    int excluded = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(atoms); i++) { /* in config order */
        PyObject *key = PyList_GET_ITEM(atoms, i);
        Py_ssize_t atom = PyLong_AsSsize_t(key);
        if (atom < 0 || atom >= p->natoms) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "matches(): atom out of range");
            goto done;
        }
        if (p->role[atom] == EXCLUDE)
            excluded = 1;
        if (p->role[atom] != SCORED)
            continue;
        PyObject *raws = PyDict_GetItemWithError(by_atom, key), *raw;
        if (raws == NULL || !PyList_Check(raws) || PyList_GET_SIZE(raws) == 0 ||
            !PyTuple_Check(raw = PyList_GET_ITEM(raws, 0)) || PyTuple_GET_SIZE(raw) != 5) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "matches(): hits by atom are lists of tuples");
            goto done;
        }
        long field = PyLong_AsLong(PyTuple_GET_ITEM(raw, 1)); /* title hits come first */
        if (field != 0 && field != 1) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "matches(): field out of range");
            goto done;
        }
        PyObject *line = PyList_GET_ITEM(p->lines[field], atom);
        line = line == Py_None ? PyObject_CallFunction(p->line_of, "nnl", index, atom, field)
                               : Py_NewRef(line);
        int failed = line == NULL || PyList_Append(lines, line) < 0;
        Py_XDECREF(line);
        if (failed)
            goto done;
        score += PyFloat_AsDouble(PyList_GET_ITEM(p->points[field], atom));
        if (PyErr_Occurred())
            goto done;
    }
    /* round(score, 3), Python's own rounding */
    if ((score_obj = PyFloat_FromDouble(score)) == NULL ||
        (rounded = PyObject_CallMethod(score_obj, "__round__", "i", 3)) == NULL)
        goto done;
    double value = PyFloat_AsDouble(rounded), threshold = PyFloat_AsDouble(
        PyList_GET_ITEM(p->thresholds, index));
    if (PyErr_Occurred())
        goto done;
    if (!(PyList_GET_SIZE(lines) > 0 && value > 0 && value >= threshold && !excluded)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *groups = PyDict_Values(by_atom);
    First first = {NULL, 0, 0};
    PyObject *hits = groups ? make_hits(groups, folded, &p->atoms, p->hit_type, p->labels,
                                        &first) : NULL;
    Py_XDECREF(groups);
    PyObject *body = hits ? field_attr(PyTuple_GET_ITEM(folded, 1), original_name) : NULL;
    PyObject *snippet = NULL;
    if (body != NULL && PyUnicode_Check(body))
        snippet = cut_snippet(body, first.hit ? first.offset : -1, first.length, p->chars);
    else if (body != NULL)
        PyErr_SetString(PyExc_TypeError, "matches(): Folded.original must be str");
    Py_XDECREF(body);
    if (snippet == NULL) {
        Py_XDECREF(hits);
        goto done;
    }
    PyObject *values[5] = {Py_NewRef(PyList_GET_ITEM(p->names, index)), Py_NewRef(rounded),
                           hits, snippet, PyList_AsTuple(lines)};
    result = make_value(p->match_type, 5, match_fields, values);
done:
    Py_XDECREF(atoms);
    Py_XDECREF(lines);
    Py_XDECREF(score_obj);
    Py_XDECREF(rounded);
    return result;
}

/* matches(per_list, fields, plan, other): see monitor/match/_explain.pyi. */
static PyObject *
explain_matches(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *per_list, *folded, *plan_tuple, *other;
    Plan plan;
    if (!PyArg_ParseTuple(args, "O!O!O!O:matches", &PyDict_Type, &per_list, &PyTuple_Type,
                          &folded, &PyTuple_Type, &plan_tuple, &other) ||
        read_plan(plan_tuple, &plan) < 0)
        return NULL;
    if (PyTuple_GET_SIZE(folded) != 2) {
        PyErr_SetString(PyExc_ValueError, "matches(): two fields");
        return NULL;
    }
    PyObject *indexes = PyDict_Keys(per_list), *out = PyList_New(0);
    int failed = indexes == NULL || out == NULL || PyList_Sort(indexes) < 0;
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(indexes); i++) {
        PyObject *key = PyList_GET_ITEM(indexes, i);
        Py_ssize_t index = PyLong_AsSsize_t(key);
        PyObject *by_atom = PyDict_GetItemWithError(per_list, key), *match;
        if (index < 0 || index >= plan.nlists || by_atom == NULL || !PyDict_Check(by_atom)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "matches(): a watchlist out of range");
            failed = 1;
            break;
        }
        Py_INCREF(by_atom); /* held: the Python called below could drop it from per_list */
        match = plan.simple[index] ? simple_match(&plan, index, by_atom, folded)
                                   : PyObject_CallFunctionObjArgs(other, key, by_atom, NULL);
        Py_DECREF(by_atom);
        failed = match == NULL || (match != Py_None && PyList_Append(out, match) < 0);
        Py_XDECREF(match);
    }
    Py_XDECREF(indexes);
    if (failed)
        Py_CLEAR(out);
    return out;
}

static PyMethodDef methods[] = {
    {"matches", explain_matches, METH_VARARGS,
     "matches(per_list, fields, plan, other) -> [Match]: Matcher.matches past the scan."},
    {"snippet", explain_snippet, METH_VARARGS,
     "snippet(body, offset, length, chars) -> about `chars` of the body around the hit at "
     "offset (-1: none) of that length, cut at spaces (monitor.match._snippet)."},
    {"hits", explain_hits, METH_VARARGS,
     "hits(groups, fields, kinds, terms, weights, hit_type, labels) -> (hits, the body's "
     "first or None): "
     "a Hit per raw hit, the groups' in order, pointing at the original text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "monitor._explain",
    .m_doc = "monitor.match.Matcher's explanations at C speed.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__explain(void)
{
    for (int i = 0; i < NFIELDS; i++)
        if ((names[i] = PyUnicode_InternFromString(field_names[i])) == NULL)
            return NULL;
    static const char *match_names[5] = {"watchlist", "score", "hits", "snippet", "breakdown"};
    for (int i = 0; i < 5; i++)
        if ((match_fields[i] = PyUnicode_InternFromString(match_names[i])) == NULL)
            return NULL;
    if ((original_name = PyUnicode_InternFromString("original")) == NULL ||
        (shifts_name = PyUnicode_InternFromString("shifts")) == NULL)
        return NULL;
    return PyModule_Create(&module);
}
