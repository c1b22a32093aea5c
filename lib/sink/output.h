/*
 * output.h - result rows: the window and the group key's values followed by each
 * aggregate's result (or the selected values of a record passed through), and their encodings for
 * sinks (JSON, or Avro with a schema derived from the query). The Kafka message key of a row is its
 * group key in the same format, so a compacted output topic keeps the latest row per key.
 */
#ifndef SL_OUTPUT_H
#define SL_OUTPUT_H

#include "conf/conf.h"
#include "util.h"

/* At most this many group-by values (a key is decoded on the stack). */
#define SL_MAX_GROUP 64

/** Number of output columns (conf.h: window, group values, aggregates; or the select). */
static inline int sl__out_ncols(const sl_plan_t *c)
{
    return c->ncols;
}

/**
 * Fills @p cols (sl__out_ncols() values) from a state key, the window's end (windowed
 * queries) and the accumulators. SL_ERR_OVERFLOW when a sum does not fit a long (every
 * column is filled all the same, that one null); *why then names the group, the column
 * and the sum (@p why may be NULL).
 */
sl_err_t sl__out_columns(const sl_plan_t *c, const uint8_t *key, size_t klen, int64_t wend,
                         const sl_acc_t *accs, sl_val_t *cols, char *why, size_t why_size);
/** Names a row's group for people: "page=/a, window_start=..." ("all records" without
 *  group columns). */
void sl__out_describe_group(const sl_plan_t *c, const sl_val_t *cols, char *buf, size_t size);
/** Fills @p cols from a record's row (queries without aggregation). */
void sl__out_select(const sl_plan_t *c, const sl_val_t *row, sl_val_t *cols);
/** Appends a row as a JSON object to @p out. */
sl_err_t sl__out_json(const sl_plan_t *c, const sl_val_t *cols, sl_buf_t *out);
/** Appends the encoded message key and value of a row to @p key and @p value. */
sl_err_t sl__out_encode(const sl_plan_t *c, sl_out_fmt_t format, const sl_val_t *cols,
                        sl_buf_t *key, sl_buf_t *value);
/** The Avro schema (JSON text) of output values, or of keys with @p key_only; free(). */
char *sl__out_avro_schema(const sl_plan_t *c, const char *job, int key_only);
/** Formats a value as text for people (console, inspect). */
void sl__val_format(const sl_val_t *v, char *buf, size_t size);

#endif
