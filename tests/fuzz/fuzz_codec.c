/*
 * fuzz_codec.c - libFuzzer target: every input format's decoder on arbitrary bytes.
 *
 * The first byte picks the decoder: Avro of a flat record (the page views), Avro of a
 * record with a union of several types, arrays, maps, a nested record, fixed, enum,
 * bytes and an array of nulls (the tree decoder), Avro in the Confluent wire format,
 * Avro written with an older schema and resolved to a newer one, JSON, and text. The
 * rest is the record. A decoded row's values are then encoded as a group key and
 * decoded back, as a batch does. Any crash, sanitizer report or time-out is a finding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "query/table.h"
#include "sluice/sluice_dev.h"

static const char *TREE =
    "{\"type\":\"record\",\"name\":\"F\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},"
    "{\"name\":\"name\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"long\"]}},"
    "{\"name\":\"geo\",\"type\":{\"type\":\"record\",\"name\":\"Geo\",\"fields\":["
    "  {\"name\":\"country\",\"type\":\"string\"},{\"name\":\"lat\",\"type\":\"double\"},"
    "  {\"name\":\"lon\",\"type\":\"float\"}]}},"
    "{\"name\":\"hash\",\"type\":{\"type\":\"fixed\",\"name\":\"H\",\"size\":4}},"
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"A\",\"B\",\"C\"]}},"
    "{\"name\":\"blob\",\"type\":\"bytes\"},"
    "{\"name\":\"ok\",\"type\":\"boolean\"},"
    "{\"name\":\"nothing\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
    "{\"name\":\"either\",\"type\":[\"null\",\"int\",\"string\",\"Geo\"]},"
    "{\"name\":\"z\",\"type\":{\"type\":\"fixed\",\"name\":\"Z\",\"size\":0}}]}";

static const char *WRITER_V1 =
    "{\"type\":\"record\",\"name\":\"P\",\"fields\":["
    "{\"name\":\"page\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"int\"},"
    "{\"name\":\"old\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    "{\"name\":\"b\",\"type\":\"bytes\"}]}";
static const char *READER_V2 =
    "{\"type\":\"record\",\"name\":\"P\",\"fields\":["
    "{\"name\":\"page\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"double\"},"
    "{\"name\":\"b\",\"type\":\"string\"},"
    "{\"name\":\"country\",\"type\":\"string\",\"default\":\"nl\"}]}";

#define NCODECS 6
static sl_codec_t *codecs[NCODECS];

/* Marks every field the query could use, as a query reading all of them would. */
static sl_codec_t *prepared(sl_codec_t *c)
{
    char err[512];
    int n;
    if (!c)
        abort();
    sl__codec_fields(c, &n);
    for (int i = 0; i < n; i++)
        sl__codec_use(c, i, err, sizeof(err)); /* unusable ones say why; skipped */
    if (sl__codec_prepare(c, err, sizeof(err)) != SL_OK)
        abort();
    return c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    static const int32_t ids[] = {1, 7};
    sl_confluent_t cf = {ids, 2};
    sl__codec_avro_new(sl_gen_pageview_schema(), NULL, NULL, &codecs[0], err, sizeof(err));
    sl__codec_avro_new(TREE, NULL, NULL, &codecs[1], err, sizeof(err));
    sl__codec_avro_new(TREE, NULL, &cf, &codecs[2], err, sizeof(err));
    sl__codec_avro_new(READER_V2, WRITER_V1, NULL, &codecs[3], err, sizeof(err));
    json_t *decl = json_pack("{s:s,s:s,s:s,s:s,s:s}", "page", "string", "n", "long", "x",
                             "double", "ok", "boolean", "ts", "timestamp");
    sl__codec_json_new(decl, &codecs[4], err, sizeof(err));
    json_decref(decl);
    sl__codec_text_new(&codecs[5], err, sizeof(err));
    for (int i = 0; i < NCODECS; i++)
        prepared(codecs[i]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sl_codec_t *c = codecs[data[0] % NCODECS];
    int n;
    sl__codec_fields(c, &n);
    sl_val_t row[32];
    memset(row, 0, sizeof(row)); /* fields no query reads stay null */
    char err[512];
    if (sl__codec_decode(c, data + 1, size - 1, row, err, sizeof(err)) != SL_OK)
        return 0;
    /* The decoded values as a group key, and back. */
    int slots[32];
    for (int i = 0; i < n; i++)
        slots[i] = i;
    sl_buf_t key;
    sl__buf_init(&key);
    if (sl__key_encode(row, slots, n, &key) == SL_OK) {
        sl_val_t back[32];
        if (sl__key_decode(key.p, key.len, n, back) != SL_OK)
            abort();
    }
    sl__buf_fini(&key);
    return 0;
}
