/*
 * codec.h - input formats. A codec turns one Kafka record's bytes into a row of typed
 * values (row.h), one per input field, and says clearly why when it cannot. Avro is
 * decoded by a program compiled from the writer schema and resolved against the reader
 * schema; JSON by jansson against declared field types.
 */
#ifndef SL_CODEC_H
#define SL_CODEC_H

#include <jansson.h>
#include <stddef.h>

#include "row.h"
#include "sluice/sluice.h"

typedef struct sl_codec sl_codec_t;

/* Records in the Confluent wire format: a 5-byte header (magic byte 0, the schema id,
 * 4 bytes big-endian) before the Avro bytes. Only records of these ids are decoded with
 * the job's schema; any other id is a decode error (the job's policy applies). */
typedef struct sl_confluent {
    const int32_t *ids; /* borrowed */
    int nids;
} sl_confluent_t;

/**
 * Builds an Avro codec. The query sees the fields of @p reader_json (the job's schema);
 * records were written with @p writer_json (NULL: the same schema) and are resolved to
 * the reader's by Avro's rules (fields by name, promotions int->long->float->double,
 * string<->bytes, reader defaults for fields the writer lacks).
 * @param confluent records carry the Confluent wire-format header and these ids are
 * accepted (copied); NULL: plain Avro bytes.
 */
sl_err_t sl__codec_avro_new(const char *reader_json, const char *writer_json,
                            const sl_confluent_t *confluent, sl_codec_t **out, char *errstr,
                            size_t errstr_size);

/**
 * Builds a JSON codec from a declaration object {"field": "string"|"long"|"double"|
 * "boolean", ...} (borrowed). A field missing from a record, or JSON null, is null.
 */
sl_err_t sl__codec_json_new(json_t *fields, sl_codec_t **out, char *errstr, size_t errstr_size);

/** Builds the plain-text codec: each record is one line, the string field "value". */
sl_err_t sl__codec_text_new(sl_codec_t **out, char *errstr, size_t errstr_size);

/** The input fields; valid while the codec lives. */
const sl_field_t *sl__codec_fields(const sl_codec_t *c, int *n);
/** Slot of the field named @p name (length @p len), or -1. */
int sl__codec_field_slot(const sl_codec_t *c, const char *name, size_t len);
/**
 * Marks a field as read by the query; only marked fields are filled by decode (the
 * others are skipped). Fails for a field whose type sluice cannot use, with why in
 * @p errstr. Call before sl__codec_prepare().
 */
sl_err_t sl__codec_use(sl_codec_t *c, int slot, char *errstr, size_t errstr_size);
/** Compiles the decoder after every sl__codec_use(); fills errstr on a schema conflict. */
sl_err_t sl__codec_prepare(sl_codec_t *c, char *errstr, size_t errstr_size);

/**
 * Decodes one record into @p row (an array of as many values as there are fields).
 * Strings in the row point into @p buf (or the codec) and stay valid until the next
 * decode on this codec. On error @p errstr says what was wrong and at which byte.
 */
sl_err_t sl__codec_decode(sl_codec_t *c, const void *buf, size_t len, sl_val_t *row, char *errstr,
                          size_t errstr_size);

/** A stable text that identifies the input schema, for the job fingerprint. */
const char *sl__codec_canonical(const sl_codec_t *c);

void sl__codec_destroy(sl_codec_t *c);

#endif
