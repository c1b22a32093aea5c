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

#include "codec_avro.h"
#include "util.h"

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
            snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", fname);
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
    if (SL_GROW(impl->all, impl->capall, impl->nall + 1, 32))
        return NULL;
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
        op->empty = 1;
        for (uint32_t i = 0; i < op->n; i++) {
            const char *fname = avro_schema_record_field_name(s, (int)i);
            char sub[512];
            snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", fname);
            op->kids[i] =
                compile(cx, avro_schema_record_field_get_by_index(s, (int)i), sub, depth + 1);
            if (!op->kids[i])
                return NULL;
            op->empty &= op->kids[i]->empty;
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
        op->empty = op->fixed == 0;
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
        op->empty = op->k == A_NULL;
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
    sl_err_t e = set_defaults(c, impl, errstr, errstr_size);
    if (!e && (e = sl__avro_plan(c, impl)))
        snprintf(errstr, errstr_size, "out of memory");
    return e;
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
    free(impl->ids);
    free(impl->flat);
    free(impl->default_slots);
    free(impl->double_slots);
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

static const codec_ops_t avro_ops = {avro_prepare, sl__avro_decode, avro_destroy};

/* What Avro C 1.11 accepts and the Avro specification does not: a fixed of negative (or
 * absurd) size, which made the decoder read backwards; two fields or enum symbols of one
 * name; a union with two branches of one type or a union directly in a union. Named
 * types are checked where they are defined (a reference is not followed again). */
static int check_schema(avro_schema_t s, const char *path, int depth, char *errstr,
                        size_t errstr_size)
{
    const char *where = *path ? path : "(record)";
    if (depth > MAX_DEPTH) {
        snprintf(errstr, errstr_size, "'%s' is nested more than %d levels deep", where,
                 MAX_DEPTH);
        return -1;
    }
    switch (avro_typeof(s)) {
    case AVRO_FIXED: {
        int64_t size = avro_schema_fixed_size(s);
        if (size < 0 || size > INT32_MAX) {
            snprintf(errstr, errstr_size, "'%s': a fixed of size %lld (0 to %d)", where,
                     (long long)size, INT32_MAX);
            return -1;
        }
        return 0;
    }
    case AVRO_ENUM: {
        int n = (int)avro_schema_enum_number_of_symbols(s);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) {
                if (!strcmp(avro_schema_enum_get(s, i), avro_schema_enum_get(s, j))) {
                    snprintf(errstr, errstr_size, "'%s': enum symbol '%s' appears twice", where,
                             avro_schema_enum_get(s, i));
                    return -1;
                }
            }
        }
        return 0;
    }
    case AVRO_RECORD: {
        int n = (int)avro_schema_record_size(s);
        for (int i = 0; i < n; i++) {
            const char *fname = avro_schema_record_field_name(s, i);
            for (int j = 0; j < i; j++) {
                if (!strcmp(fname, avro_schema_record_field_name(s, j))) {
                    snprintf(errstr, errstr_size, "'%s': field '%s' appears twice", where, fname);
                    return -1;
                }
            }
            char sub[512];
            snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", fname);
            if (check_schema(avro_schema_record_field_get_by_index(s, i), sub, depth + 1, errstr,
                             errstr_size) < 0)
                return -1;
        }
        return 0;
    }
    case AVRO_UNION: {
        int n = (int)avro_schema_union_size(s);
        for (int i = 0; i < n; i++) {
            avro_schema_t b = avro_schema_union_branch(s, i);
            if (is_avro_union(b)) {
                snprintf(errstr, errstr_size, "'%s': a union directly inside a union", where);
                return -1;
            }
            for (int j = 0; j < i; j++) {
                avro_schema_t o = avro_schema_union_branch(s, j);
                const char *bn = is_avro_named_type(b) ? avro_schema_name(b) : NULL;
                const char *on = is_avro_named_type(o) ? avro_schema_name(o) : NULL;
                if (avro_typeof(b) == avro_typeof(o) && (!bn || !on || !strcmp(bn, on))) {
                    snprintf(errstr, errstr_size, "'%s': the union has two branches of type %s",
                             where, bn ? bn : avro_schema_type_name(b));
                    return -1;
                }
            }
            if (check_schema(b, path, depth + 1, errstr, errstr_size) < 0)
                return -1;
        }
        return 0;
    }
    case AVRO_ARRAY:
    case AVRO_MAP: {
        char sub[512];
        snprintf(sub, sizeof(sub), "%s[]", path);
        return check_schema(is_avro_array(s) ? avro_schema_array_items(s)
                                             : avro_schema_map_values(s),
                            sub, depth + 1, errstr, errstr_size);
    }
    default:
        return 0;
    }
}

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
    char why[400];
    if (check_schema(*out, "", 0, why, sizeof(why)) < 0) {
        snprintf(errstr, errstr_size, "%s schema: not a valid Avro schema: %s", which, why);
        return SL_ERR_SCHEMA;
    }
    return SL_OK;
}

sl_err_t sl__codec_avro_new(const char *reader_json, const char *writer_json,
                            const sl_confluent_t *confluent, sl_codec_t **out, char *errstr,
                            size_t errstr_size)
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
    if (confluent) {
        impl->confluent = 1;
        impl->nids = confluent->nids;
        impl->ids = malloc((size_t)(confluent->nids ? confluent->nids : 1) * sizeof(int32_t));
        if (!impl->ids)
            goto fail;
        memcpy(impl->ids, confluent->ids, (size_t)confluent->nids * sizeof(int32_t));
    }
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
