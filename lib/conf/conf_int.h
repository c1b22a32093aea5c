/*
 * conf_int.h - what the parts of the job-file reader share (conf.c, conf_source.c,
 * conf_query.c): the checker that collects every problem with its path, and the helpers
 * that read JSON members through it.
 */
#ifndef SL_CONF_INT_H
#define SL_CONF_INT_H

#include <jansson.h>

#include "conf.h"
#include "util.h"

typedef struct checker {
    sl_conf_t *c;
    sl_buf_t errs;
    int nerrs;
    int wm_refused; /* a watermark was given, but its field was refused (reported) */
} checker_t;

/** Adds a problem: "origin: path: message". */
void sl__conf_problem(checker_t *ck, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Reports every member of @p obj that is not in @p allowed (NULL-terminated). */
void sl__conf_check_keys(checker_t *ck, json_t *obj, const char *path, const char *const *allowed);
/** The object member @p key, or NULL (a problem when @p required or not an object). */
json_t *sl__conf_get_object(checker_t *ck, json_t *parent, const char *key, const char *path,
                            int required);
/** The non-empty string member @p key, or NULL (a problem when @p required or not one). */
const char *sl__conf_get_string(checker_t *ck, json_t *parent, const char *key, const char *path,
                                int required);
/** @p rel taken from @p base unless absolute; free(). */
char *sl__conf_join_path(const char *base, const char *rel);
/** A duration ("2s", "500ms", "10 minutes", or milliseconds) in ms; -1 when it is not one. */
int sl__conf_duration(json_t *v, int64_t *out);
/** 1 when @p s is an Avro name ([A-Za-z_][A-Za-z0-9_]*). */
int sl__conf_valid_name(const char *s);

/** The type (and nullability) of a row slot. */
sl_type_t sl__conf_slot_type(const sl_conf_t *c, int slot, int *nullable);

void sl__conf_parse_source(checker_t *ck, json_t *root);
void sl__conf_parse_query(checker_t *ck, json_t *root);
/** Spark's rules for output modes; needs the query and the output parsed. */
void sl__conf_check_mode(checker_t *ck);
/** The output columns, then their names checked (unique; Avro names for Avro output). */
void sl__conf_build_columns(checker_t *ck);
void sl__conf_check_columns(checker_t *ck);

#endif
