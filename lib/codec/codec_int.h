/*
 * codec_int.h - what the input formats share inside the codec module: the field list,
 * which fields the query reads, the default values, and a table of format operations.
 */
#ifndef SL_CODEC_INT_H
#define SL_CODEC_INT_H

#include "codec.h"

typedef struct codec_ops {
    sl_err_t (*prepare)(sl_codec_t *c, char *errstr, size_t errstr_size);
    sl_err_t (*decode)(sl_codec_t *c, const void *buf, size_t len, sl_val_t *row, char *errstr,
                       size_t errstr_size);
    void (*destroy)(sl_codec_t *c);
} codec_ops_t;

struct sl_codec {
    const codec_ops_t *ops;
    sl_field_t *fields;
    int nfields;
    size_t cap;
    uint8_t *used;
    char **unusable; /* per field: why the query cannot use it, or NULL */
    char *canonical;
    void *impl; /* the format's own data */
};

/** Appends a field (the name is copied); returns its slot or -1 when out of memory. */
int sl__codec_add_field(sl_codec_t *c, const char *name, sl_type_t type, int nullable,
                        const char *unusable);
sl_codec_t *sl__codec_alloc(const codec_ops_t *ops);
/**
 * Converts a JSON value to a value of @p type (null for a missing or null one); strings
 * point into @p v. -1 when the JSON value is not of that type.
 */
int sl__codec_json_value(json_t *v, sl_type_t type, sl_val_t *out);

#endif
