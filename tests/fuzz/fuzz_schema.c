/*
 * fuzz_schema.c - libFuzzer target: the Avro schema compiler.
 *
 * The input is a schema's JSON text, a NUL byte, and a record. The schema is compiled as
 * the reader (every usable field marked as read), then as the writer of the page-view
 * schema and as both; whatever compiles decodes the record. A schema Avro C accepts and
 * sluice cannot use must be refused with a message, never crash the compiler or make the
 * decoder read outside the record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "fuzz.h"
#include "sluice/sluice_dev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_codec(const char *reader, const char *writer, const uint8_t *rec, size_t len)
{
    sl_codec_t *c = NULL;
    char err[1024];
    if (sl__codec_avro_new(reader, writer, NULL, &c, err, sizeof(err)) != SL_OK) {
        if (!err[0])
            abort(); /* a refusal must say why */
        return;
    }
    int n;
    sl__codec_fields(c, &n);
    for (int i = 0; i < n; i++)
        sl__codec_use(c, i, err, sizeof(err));
    if (sl__codec_prepare(c, err, sizeof(err)) == SL_OK) {
        sl_val_t *row = calloc((size_t)n + 1, sizeof(*row));
        if (row)
            sl__codec_decode(c, rec, len, row, err, sizeof(err));
        free(row);
    }
    sl__codec_destroy(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    char *schema = fuzz_text(data, slen);
    if (!schema)
        return 0;
    const uint8_t *rec = nul ? nul + 1 : data + size;
    size_t rlen = (size_t)(data + size - rec);
    try_codec(schema, NULL, rec, rlen);
    try_codec(sl_gen_pageview_schema(), schema, rec, rlen);
    try_codec(schema, schema, rec, rlen);
    free(schema);
    return 0;
}
