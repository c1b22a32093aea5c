/*
 * codec_avro.c - Avro binary records, decoded by a small program compiled from the
 * writer schema.
 *
 * Avro C parses and checks the schemas; decoding is ours: a tree of operations, one per
 * writer-schema node, that reads straight from the record's bytes into the row, with no
 * allocation (strings point into the record). Every length and block count is checked
 * against the bytes left before it is used, because Avro C 1.11's own reader trusts them;
 * a corrupt record gets an error that names the byte and the field, never a crash.
 *
 * Resolution (Avro spec, "Schema Resolution"): the query sees the reader schema's fields,
 * flattened ("geo.country" for a nested record). Writer fields are matched by name; a
 * writer field the reader lacks is skipped; a reader field the writer lacks takes the
 * reader's default. Promotions: int -> long/float/double, long -> float/double,
 * float -> double, string <-> bytes.
 */
#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"
#include "util/util.h"

#define MAX_DEPTH 64

typedef enum {
    A_NULL,
    A_BOOL,
    A_INT,
    A_LONG,
    A_FLOAT,
    A_DOUBLE,
    A_BYTES,
    A_STRING,
    A_FIXED,
    A_ENUM,
    A_RECORD,
    A_UNION,
    A_ARRAY,
    A_MAP,
    A_LINK,
} akind_t;

typedef struct aop aop_t;
struct aop {
    akind_t k;
    int slot;          /* row slot for a leaf the query reads, else -1 */
    char *name;        /* field path, for error messages (owned) */
    uint32_t n;        /* record fields, union branches, enum symbols */
    aop_t **kids;      /* record fields, union branches, array items / map values */
    const char **syms; /* enum symbols (owned by the schema) */
    int64_t fixed;     /* fixed size */
    aop_t *target;     /* A_LINK: the record it names */
};

typedef struct avro_impl {
    avro_schema_t reader;
    avro_schema_t writer;
    json_t *reader_doc; /* for defaults */
    int confluent;
    aop_t *prog;
    aop_t **all; /* every op, for freeing */
    size_t nall, capall;
    sl_val_t *defaults; /* per slot: value when the writer lacks the field */
    uint8_t *has_default;
    uint8_t *from_writer; /* per slot: the writer fills it */
} avro_impl_t;

/* ---- reader schema: flatten into fields ---- */

static avro_schema_t nonnull_branch(avro_schema_t u, int *nullable)
{
    size_t n = avro_schema_union_size(u);
    avro_schema_t other = NULL;
    int nulls = 0;
    for (size_t i = 0; i < n; i++) {
        avro_schema_t b = avro_schema_union_branch(u, (int)i);
        if (is_avro_null(b)) {
            nulls++;
        } else if (other) {
            return NULL; /* two non-null branches */
        } else {
            other = b;
        }
    }
    *nullable = nulls > 0;
    return other;
}

static int flatten(sl_codec_t *c, avro_schema_t s, const char *path, int nullable, int depth)
{
    if (depth > MAX_DEPTH)
        return sl__codec_add_field(c, path, SL_T_NULL, 1, "is nested too deeply") < 0 ? -1 : 0;
    switch (avro_typeof(s)) {
    case AVRO_RECORD: {
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++) {
            const char *fname = avro_schema_record_field_name(s, (int)i);
            char sub[512];
            if (*path)
                snprintf(sub, sizeof(sub), "%s.%s", path, fname);
            else
                snprintf(sub, sizeof(sub), "%s", fname);
            if (flatten(c, avro_schema_record_field_get_by_index(s, (int)i), sub, nullable,
                        depth + 1) < 0)
                return -1;
        }
        return 0;
    }
    case AVRO_UNION: {
        int nl = 0;
        avro_schema_t b = nonnull_branch(s, &nl);
        if (!b)
            return sl__codec_add_field(c, path, SL_T_NULL, 1,
                                       "has a union of several types, which sluice cannot "
                                       "use (only [\"null\", T])") < 0
                       ? -1
                       : 0;
        if (is_avro_union(b))
            return sl__codec_add_field(c, path, SL_T_NULL, 1, "is a nested union") < 0 ? -1 : 0;
        return flatten(c, b, path, 1, depth + 1);
    }
    case AVRO_BOOLEAN:
        return sl__codec_add_field(c, path, SL_T_BOOL, nullable, NULL) < 0 ? -1 : 0;
    case AVRO_INT32:
    case AVRO_INT64:
        return sl__codec_add_field(c, path, SL_T_LONG, nullable, NULL) < 0 ? -1 : 0;
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        return sl__codec_add_field(c, path, SL_T_DOUBLE, nullable, NULL) < 0 ? -1 : 0;
    case AVRO_STRING:
    case AVRO_BYTES:
    case AVRO_ENUM:
    case AVRO_FIXED:
        return sl__codec_add_field(c, path, SL_T_STRING, nullable, NULL) < 0 ? -1 : 0;
    case AVRO_NULL:
        return sl__codec_add_field(c, path, SL_T_NULL, 1, "is always null") < 0 ? -1 : 0;
    case AVRO_ARRAY:
    case AVRO_MAP:
        return sl__codec_add_field(c, path, SL_T_NULL, 1,
                                   "is an array or map, which sluice cannot group or "
                                   "aggregate yet") < 0
                   ? -1
                   : 0;
    case AVRO_LINK:
        return sl__codec_add_field(c, path, SL_T_NULL, 1, "is a recursive type") < 0 ? -1 : 0;
    }
    return 0;
}

/* ---- writer schema: compile the decoding program ---- */

typedef struct compile_ctx {
    sl_codec_t *c;
    avro_impl_t *impl;
    char *errstr;
    size_t errstr_size;
    struct {
        avro_schema_t s;
        aop_t *op;
    } records[64];
    int nrecords;
} compile_ctx_t;

static aop_t *new_op(avro_impl_t *impl, akind_t k, const char *name)
{
    if (impl->nall == impl->capall) {
        size_t cap = impl->capall ? impl->capall * 2 : 32;
        aop_t **a = realloc(impl->all, cap * sizeof(*a));
        if (!a)
            return NULL;
        impl->all = a;
        impl->capall = cap;
    }
    aop_t *op = calloc(1, sizeof(*op));
    char *nm = strdup(name);
    if (!op || !nm) {
        free(op);
        free(nm);
        return NULL;
    }
    impl->all[impl->nall++] = op;
    op->k = k;
    op->slot = -1;
    op->name = nm;
    return op;
}

/* May a writer value of kind @p k fill a reader field of type @p t? */
static int promotable(akind_t k, sl_type_t t)
{
    switch (t) {
    case SL_T_BOOL:
        return k == A_BOOL;
    case SL_T_LONG:
        return k == A_INT || k == A_LONG;
    case SL_T_DOUBLE:
        return k == A_INT || k == A_LONG || k == A_FLOAT || k == A_DOUBLE;
    case SL_T_STRING:
        return k == A_STRING || k == A_BYTES || k == A_ENUM || k == A_FIXED;
    default:
        return 0;
    }
}

static const char *kind_name(akind_t k)
{
    static const char *names[] = {"null",   "boolean", "int",    "long",  "float",
                                  "double", "bytes",   "string", "fixed", "enum",
                                  "record", "union",   "array",  "map",   "recursive type"};
    return names[k];
}

static aop_t *compile(compile_ctx_t *cx, avro_schema_t s, const char *path, int depth);

static int alloc_kids(aop_t *op, size_t n)
{
    op->n = (uint32_t)n;
    op->kids = calloc(n ? n : 1, sizeof(aop_t *));
    return op->kids ? 0 : -1;
}

static int bind_leaf(compile_ctx_t *cx, aop_t *op, const char *path)
{
    sl_codec_t *c = cx->c;
    int slot = sl__codec_field_slot(c, path, strlen(path));
    if (slot < 0 || !c->used[slot])
        return 0; /* the reader lacks it, or the query does not read it: skip */
    const sl_field_t *f = &c->fields[slot];
    if (op->k == A_NULL) {
        if (!f->nullable) {
            snprintf(cx->errstr, cx->errstr_size,
                     "writer schema: field '%s' can be null, the reader schema's cannot", path);
            return -1;
        }
    } else if (!promotable(op->k, f->type)) {
        snprintf(cx->errstr, cx->errstr_size,
                 "writer schema: field '%s' is %s, which does not resolve to the reader "
                 "schema's %s",
                 path, kind_name(op->k), sl__type_name(f->type));
        return -1;
    }
    op->slot = slot;
    cx->impl->from_writer[slot] = 1;
    return 0;
}

static aop_t *compile(compile_ctx_t *cx, avro_schema_t s, const char *path, int depth)
{
    avro_impl_t *impl = cx->impl;
    if (depth > MAX_DEPTH) {
        snprintf(cx->errstr, cx->errstr_size, "writer schema: '%s' is nested too deeply", path);
        return NULL;
    }
    aop_t *op;
    switch (avro_typeof(s)) {
    case AVRO_RECORD: {
        op = new_op(impl, A_RECORD, path);
        if (!op)
            goto nomem;
        if (cx->nrecords < (int)SL_ARRAY_LEN(cx->records)) {
            cx->records[cx->nrecords].s = s;
            cx->records[cx->nrecords++].op = op;
        }
        if (alloc_kids(op, avro_schema_record_size(s)) < 0)
            goto nomem;
        for (uint32_t i = 0; i < op->n; i++) {
            const char *fname = avro_schema_record_field_name(s, (int)i);
            char sub[512];
            if (*path)
                snprintf(sub, sizeof(sub), "%s.%s", path, fname);
            else
                snprintf(sub, sizeof(sub), "%s", fname);
            op->kids[i] =
                compile(cx, avro_schema_record_field_get_by_index(s, (int)i), sub, depth + 1);
            if (!op->kids[i])
                return NULL;
        }
        return op;
    }
    case AVRO_UNION: {
        op = new_op(impl, A_UNION, path);
        if (!op)
            goto nomem;
        if (alloc_kids(op, avro_schema_union_size(s)) < 0)
            goto nomem;
        for (uint32_t i = 0; i < op->n; i++) {
            op->kids[i] = compile(cx, avro_schema_union_branch(s, (int)i), path, depth + 1);
            if (!op->kids[i])
                return NULL;
        }
        return op;
    }
    case AVRO_ARRAY:
    case AVRO_MAP: {
        int arr = is_avro_array(s);
        op = new_op(impl, arr ? A_ARRAY : A_MAP, path);
        if (!op)
            goto nomem;
        if (alloc_kids(op, 1) < 0)
            goto nomem;
        /* Items are skipped, never bound: the path gets a suffix no field has. */
        char sub[512];
        snprintf(sub, sizeof(sub), "%s[]", path);
        op->kids[0] = compile(cx, arr ? avro_schema_array_items(s) : avro_schema_map_values(s), sub,
                              depth + 1);
        return op->kids[0] ? op : NULL;
    }
    case AVRO_LINK: {
        op = new_op(impl, A_LINK, path);
        if (!op)
            goto nomem;
        avro_schema_t target = avro_schema_link_target(s);
        for (int i = 0; i < cx->nrecords; i++) {
            if (cx->records[i].s == target)
                op->target = cx->records[i].op;
        }
        if (!op->target) {
            snprintf(cx->errstr, cx->errstr_size, "writer schema: '%s' names an unknown type",
                     path);
            return NULL;
        }
        return op;
    }
    case AVRO_ENUM: {
        op = new_op(impl, A_ENUM, path);
        if (!op)
            goto nomem;
        op->n = (uint32_t)avro_schema_enum_number_of_symbols(s);
        op->syms = calloc(op->n ? op->n : 1, sizeof(char *));
        if (!op->syms)
            goto nomem;
        for (uint32_t i = 0; i < op->n; i++)
            op->syms[i] = avro_schema_enum_get(s, (int)i);
        break;
    }
    case AVRO_FIXED:
        op = new_op(impl, A_FIXED, path);
        if (!op)
            goto nomem;
        op->fixed = avro_schema_fixed_size(s);
        break;
    default: {
        static const struct {
            avro_type_t t;
            akind_t k;
        } leaves[] = {{AVRO_NULL, A_NULL},   {AVRO_BOOLEAN, A_BOOL}, {AVRO_INT32, A_INT},
                      {AVRO_INT64, A_LONG},  {AVRO_FLOAT, A_FLOAT},  {AVRO_DOUBLE, A_DOUBLE},
                      {AVRO_BYTES, A_BYTES}, {AVRO_STRING, A_STRING}};
        op = NULL;
        for (size_t i = 0; i < SL_ARRAY_LEN(leaves); i++) {
            if (avro_typeof(s) == leaves[i].t)
                op = new_op(impl, leaves[i].k, path);
        }
        if (!op)
            goto nomem;
    }
    }
    return bind_leaf(cx, op, path) < 0 ? NULL : op;
nomem:
    snprintf(cx->errstr, cx->errstr_size, "out of memory");
    return NULL;
}

/* ---- defaults of reader fields the writer lacks ---- */

static json_t *find_field_json(json_t *schema, const char *path)
{
    /* Walk "a.b.c" through nested record declarations (unions of null + record too). */
    json_t *rec = schema;
    const char *p = path;
    for (;;) {
        if (json_is_array(rec)) {
            size_t i;
            json_t *b, *found = NULL;
            json_array_foreach(rec, i, b)
            {
                if (json_is_object(b))
                    found = b;
            }
            rec = found;
        }
        json_t *fields = json_object_get(rec, "fields");
        if (!json_is_array(fields))
            return NULL;
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        json_t *hit = NULL;
        size_t i;
        json_t *f;
        json_array_foreach(fields, i, f)
        {
            const char *n = json_string_value(json_object_get(f, "name"));
            if (n && strlen(n) == len && !strncmp(n, p, len))
                hit = f;
        }
        if (!hit || !dot)
            return hit;
        rec = json_object_get(hit, "type");
        p = dot + 1;
    }
}

/* Strings of defaults point into reader_doc, which lives as long as the codec. */
static sl_err_t set_defaults(sl_codec_t *c, avro_impl_t *impl, char *errstr, size_t errstr_size)
{
    for (int i = 0; i < c->nfields; i++) {
        if (!c->used[i] || impl->from_writer[i])
            continue;
        json_t *f = find_field_json(impl->reader_doc, c->fields[i].name);
        json_t *d = f ? json_object_get(f, "default") : NULL;
        if (!d) {
            snprintf(errstr, errstr_size,
                     "writer schema: has no field '%s', and the reader schema gives it no "
                     "default",
                     c->fields[i].name);
            return SL_ERR_SCHEMA;
        }
        if (sl__codec_json_value(d, c->fields[i].type, &impl->defaults[i]) < 0) {
            snprintf(errstr, errstr_size, "reader schema: the default of field '%s' is not a %s",
                     c->fields[i].name, sl__type_name(c->fields[i].type));
            return SL_ERR_SCHEMA;
        }
        impl->has_default[i] = 1;
    }
    return SL_OK;
}

static sl_err_t avro_prepare(sl_codec_t *c, char *errstr, size_t errstr_size)
{
    avro_impl_t *impl = c->impl;
    size_t n = (size_t)(c->nfields ? c->nfields : 1);
    impl->defaults = calloc(n, sizeof(sl_val_t));
    impl->has_default = calloc(n, 1);
    impl->from_writer = calloc(n, 1);
    if (!impl->defaults || !impl->has_default || !impl->from_writer) {
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    compile_ctx_t cx = {.c = c, .impl = impl, .errstr = errstr, .errstr_size = errstr_size};
    impl->prog = compile(&cx, impl->writer ? impl->writer : impl->reader, "", 0);
    if (!impl->prog)
        return SL_ERR_SCHEMA;
    return set_defaults(c, impl, errstr, errstr_size);
}

/* ---- decoding ---- */

typedef struct dstate {
    const uint8_t *start;
    const uint8_t *p;
    const uint8_t *end;
    sl_val_t *row;
    char *errstr;
    size_t errstr_size;
} dstate_t;

static sl_err_t derr(dstate_t *d, const aop_t *op, const char *what, int64_t a, int64_t b)
{
    char msg[160];
    snprintf(msg, sizeof(msg), what, (long long)a, (long long)b);
    snprintf(d->errstr, d->errstr_size, "at byte %ld, field '%s': %s", (long)(d->p - d->start),
             *op->name ? op->name : "(record)", msg);
    return SL_ERR_DECODE;
}

static sl_err_t read_long(dstate_t *d, const aop_t *op, int64_t *v)
{
    if (sl__zz_decode(&d->p, d->end, v) < 0)
        return derr(d, op, d->p >= d->end ? "the record ends early" : "malformed varint", 0, 0);
    return SL_OK;
}

static sl_err_t read_len(dstate_t *d, const aop_t *op, int64_t *len)
{
    sl_err_t err = read_long(d, op, len);
    if (err)
        return err;
    if (*len < 0)
        return derr(d, op, "negative length %lld", *len, 0);
    if (*len > d->end - d->p)
        return derr(d, op, "length %lld exceeds the %lld bytes left", *len, d->end - d->p);
    return SL_OK;
}

static sl_err_t run(dstate_t *d, const aop_t *op, int depth)
{
    sl_err_t err;
    sl_val_t *out = op->slot >= 0 ? &d->row[op->slot] : NULL;
    if (depth > MAX_DEPTH)
        return derr(d, op, "nested more than %lld levels deep", MAX_DEPTH, 0);
    switch (op->k) {
    case A_NULL:
        if (out)
            out->t = SL_T_NULL;
        return SL_OK;
    case A_BOOL:
        if (d->p >= d->end)
            return derr(d, op, "the record ends early", 0, 0);
        if (*d->p > 1)
            return derr(d, op, "boolean byte is %lld, not 0 or 1", *d->p, 0);
        if (out) {
            out->t = SL_T_BOOL;
            out->u.i = *d->p;
        }
        d->p++;
        return SL_OK;
    case A_INT:
    case A_LONG: {
        int64_t v;
        if ((err = read_long(d, op, &v)))
            return err;
        if (op->k == A_INT && (v < INT32_MIN || v > INT32_MAX))
            return derr(d, op, "int value %lld out of range", v, 0);
        if (out) {
            out->t = SL_T_LONG;
            out->u.i = v;
        }
        return SL_OK;
    }
    case A_FLOAT: {
        if (d->end - d->p < 4)
            return derr(d, op, "the record ends early", 0, 0);
        float f;
        memcpy(&f, d->p, 4); /* Avro is little-endian, as is every target we build for */
        d->p += 4;
        if (out) {
            out->t = SL_T_DOUBLE;
            out->u.d = f;
        }
        return SL_OK;
    }
    case A_DOUBLE: {
        if (d->end - d->p < 8)
            return derr(d, op, "the record ends early", 0, 0);
        double f;
        memcpy(&f, d->p, 8);
        d->p += 8;
        if (out) {
            out->t = SL_T_DOUBLE;
            out->u.d = f;
        }
        return SL_OK;
    }
    case A_BYTES:
    case A_STRING: {
        int64_t len;
        if ((err = read_len(d, op, &len)))
            return err;
        if (out) {
            out->t = SL_T_STRING;
            out->u.s = (const char *)d->p;
            out->n = (uint32_t)len;
        }
        d->p += len;
        return SL_OK;
    }
    case A_FIXED:
        if (d->end - d->p < op->fixed)
            return derr(d, op, "fixed of %lld bytes, only %lld left", op->fixed, d->end - d->p);
        if (out) {
            out->t = SL_T_STRING;
            out->u.s = (const char *)d->p;
            out->n = (uint32_t)op->fixed;
        }
        d->p += op->fixed;
        return SL_OK;
    case A_ENUM: {
        int64_t v;
        if ((err = read_long(d, op, &v)))
            return err;
        if (v < 0 || v >= op->n)
            return derr(d, op, "enum index %lld, the schema has %lld symbols", v, op->n);
        if (out) {
            out->t = SL_T_STRING;
            out->u.s = op->syms[v];
            out->n = (uint32_t)strlen(op->syms[v]);
        }
        return SL_OK;
    }
    case A_RECORD:
        for (uint32_t i = 0; i < op->n; i++) {
            if ((err = run(d, op->kids[i], depth + 1)))
                return err;
        }
        return SL_OK;
    case A_LINK:
        return run(d, op->target, depth + 1);
    case A_UNION: {
        int64_t b;
        if ((err = read_long(d, op, &b)))
            return err;
        if (b < 0 || b >= op->n)
            return derr(d, op, "union branch %lld, the schema has %lld", b, op->n);
        return run(d, op->kids[b], depth + 1);
    }
    case A_ARRAY:
    case A_MAP:
        for (;;) {
            int64_t count;
            if ((err = read_long(d, op, &count)))
                return err;
            if (count == 0)
                return SL_OK;
            if (count < 0) {
                int64_t size; /* a negative count is followed by the block's byte size */
                if (count == INT64_MIN)
                    return derr(d, op, "block count out of range", 0, 0);
                count = -count;
                if ((err = read_len(d, op, &size)))
                    return err;
            }
            if (count > d->end - d->p)
                return derr(d, op, "block of %lld items exceeds the %lld bytes left", count,
                            d->end - d->p);
            for (int64_t i = 0; i < count; i++) {
                if (op->k == A_MAP) {
                    int64_t klen;
                    if ((err = read_len(d, op, &klen)))
                        return err;
                    d->p += klen;
                }
                if ((err = run(d, op->kids[0], depth + 1)))
                    return err;
            }
        }
    }
    return SL_OK;
}

static sl_err_t avro_decode(sl_codec_t *c, const void *buf, size_t len, sl_val_t *row, char *errstr,
                            size_t errstr_size)
{
    avro_impl_t *impl = c->impl;
    const uint8_t *p = buf;
    if (impl->confluent) {
        if (len < 5 || p[0] != 0) {
            snprintf(errstr, errstr_size, "not in Confluent wire format (%s)",
                     len < 5 ? "shorter than its 5-byte header" : "magic byte is not 0");
            return SL_ERR_DECODE;
        }
        p += 5;
        len -= 5;
    }
    for (int i = 0; i < c->nfields; i++) {
        if (impl->has_default[i])
            row[i] = impl->defaults[i];
    }
    dstate_t d = {p, p, p + len, row, errstr, errstr_size};
    sl_err_t err = run(&d, impl->prog, 0);
    if (err)
        return err;
    if (d.p != d.end) {
        snprintf(errstr, errstr_size,
                 "%ld bytes left after the record (is the schema the one it was written with?)",
                 (long)(d.end - d.p));
        return SL_ERR_DECODE;
    }
    /* A long written into a double field (promotion) is converted here, once. */
    for (int i = 0; i < c->nfields; i++) {
        if (c->used[i] && c->fields[i].type == SL_T_DOUBLE && row[i].t == SL_T_LONG) {
            row[i].t = SL_T_DOUBLE;
            row[i].u.d = (double)row[i].u.i;
        }
    }
    return SL_OK;
}

static void avro_destroy(sl_codec_t *c)
{
    avro_impl_t *impl = c->impl;
    if (!impl)
        return;
    for (size_t i = 0; i < impl->nall; i++) {
        free(impl->all[i]->kids);
        free(impl->all[i]->syms);
        free(impl->all[i]->name);
        free(impl->all[i]);
    }
    free(impl->all);
    free(impl->defaults);
    free(impl->has_default);
    free(impl->from_writer);
    if (impl->reader)
        avro_schema_decref(impl->reader);
    if (impl->writer)
        avro_schema_decref(impl->writer);
    json_decref(impl->reader_doc);
    free(impl);
}

static const codec_ops_t avro_ops = {avro_prepare, avro_decode, avro_destroy};

static sl_err_t parse_schema(const char *json, const char *which, avro_schema_t *out, char *errstr,
                             size_t errstr_size)
{
    if (avro_schema_from_json_length(json, strlen(json), out) != 0) {
        char msg[256];
        sl__strlcpy(msg, avro_strerror(), sizeof(msg));
        msg[strcspn(msg, "\n")] = 0;
        snprintf(errstr, errstr_size, "%s schema: not a valid Avro schema: %s", which, msg);
        *out = NULL;
        return SL_ERR_SCHEMA;
    }
    if (!is_avro_record(*out)) {
        snprintf(errstr, errstr_size, "%s schema: must be a record, not a %s", which,
                 avro_schema_type_name(*out));
        return SL_ERR_SCHEMA;
    }
    return SL_OK;
}

sl_err_t sl__codec_avro_new(const char *reader_json, const char *writer_json, int confluent,
                            sl_codec_t **out, char *errstr, size_t errstr_size)
{
    *out = NULL;
    sl_err_t err = SL_ERR_NOMEM;
    sl_codec_t *c = sl__codec_alloc(&avro_ops);
    avro_impl_t *impl = calloc(1, sizeof(*impl));
    if (!c || !impl) {
        free(impl);
        goto fail;
    }
    c->impl = impl;
    impl->confluent = confluent;
    if ((err = parse_schema(reader_json, "reader", &impl->reader, errstr, errstr_size)))
        goto fail;
    if (writer_json &&
        (err = parse_schema(writer_json, "writer", &impl->writer, errstr, errstr_size)))
        goto fail;
    impl->reader_doc = json_loads(reader_json, 0, NULL);
    err = SL_ERR_NOMEM;
    if (!impl->reader_doc || flatten(c, impl->reader, "", 0, 0) < 0)
        goto fail;
    c->canonical = json_dumps(impl->reader_doc, JSON_SORT_KEYS | JSON_COMPACT);
    if (!c->canonical)
        goto fail;
    *out = c;
    return SL_OK;
fail:
    if (err == SL_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory");
    sl__codec_destroy(c);
    return err;
}
