/*
 * codec_avro.h - what the Avro codec's schema compiler (codec_avro.c) and its decoder
 * (codec_avro_decode.c) share: the compiled program.
 *
 * The program is a tree of operations, one per writer-schema node. A record made only
 * of primitive fields, nested records and unions of primitives (nullable fields) also
 * gets a flat plan: its leaves in order, decoded in one loop.
 */
#ifndef SL_CODEC_AVRO_H
#define SL_CODEC_AVRO_H

#include <avro.h>
#include <jansson.h>

#include "codec_int.h"

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
    int empty;         /* its values take no bytes: null, fixed(0), records of those */
};

/* A leaf of the flat plan, with its kind and slot beside the op: the loop reads one
 * array, not the op tree. */
typedef struct fstep {
    akind_t k;
    int slot;
    const aop_t *op;
} fstep_t;

typedef struct avro_impl {
    avro_schema_t reader;
    avro_schema_t writer;
    json_t *reader_doc; /* for defaults */
    int confluent;      /* records carry the Confluent header, with one of these ids */
    int32_t *ids;
    int nids;
    aop_t *prog;
    aop_t **all; /* every op, for freeing */
    size_t nall, capall;
    sl_val_t *defaults; /* per slot: value when the writer lacks the field */
    uint8_t *has_default;
    uint8_t *from_writer; /* per slot: the writer fills it */
    /* The flat plan (NULL when the schema needs the tree: arrays, maps, recursion, a
     * union with a record branch), and the slots decoding must fix up after it. */
    fstep_t *flat;
    size_t nflat;
    int *default_slots, *double_slots;
    int ndefault, ndouble;
} avro_impl_t;

/** Builds the flat plan and the slot lists once the program and the defaults are known;
 *  SL_ERR_NOMEM. */
sl_err_t sl__avro_plan(sl_codec_t *c, avro_impl_t *impl);
/** Decodes one record (codec_ops_t.decode). */
sl_err_t sl__avro_decode(sl_codec_t *c, const void *buf, size_t len, sl_val_t *row, char *errstr,
                         size_t errstr_size);

#endif
