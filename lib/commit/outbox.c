/*
 * outbox.c - the outbox (see outbox.h).
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"

/* A chunk closes past this size: a batch's records go into a few large values instead
 * of one small value each, which RocksDB writes with far less work per record. */
#define CHUNK_BYTES (256u << 10)
#define CHUNK_TAG 'c'

static void outbox_key(uint8_t *k, int stream, int64_t seq, uint32_t idx)
{
    sl__task_put(k, stream);
    sl__be64_put(k + 2, (uint64_t)seq);
    sl__be32_put(k + 10, idx);
    k[14] = CHUNK_TAG;
}

void sl__outbox_begin(sl_outbox_writer_t *w, sl_store_t *st, sl_store_batch_t *wb, int stream,
                      int64_t seq, sl_buf_t *out)
{
    *w = (sl_outbox_writer_t){.st = st, .wb = wb, .stream = stream, .seq = seq, .out = out};
    sl__buf_reset(out);
}

static void put_chunk(sl_outbox_writer_t *w)
{
    if (w->out->len == w->chunk_start)
        return;
    uint8_t okey[SL_OUTBOX_KEY];
    outbox_key(okey, w->stream, w->seq, w->chunk_first);
    sl__store_batch_put(w->wb, w->st, SL_CF_OUTBOX, okey, sizeof(okey), w->out->p + w->chunk_start,
                        w->out->len - w->chunk_start);
    w->chunk_start = w->out->len;
    w->chunk_first = w->n;
}

sl_err_t sl__outbox_add(sl_outbox_writer_t *w, sl_dest_t dest, const void *key, size_t klen,
                        const void *val, size_t vlen, size_t *rec_off, size_t *rec_len)
{
    uint8_t hdr[21];
    hdr[10] = (uint8_t)dest;
    size_t kl = 1 + sl__zz_encode((int64_t)klen, hdr + 11);
    size_t rl = kl + klen + vlen;
    size_t hl = sl__zz_encode((int64_t)rl, hdr);
    memmove(hdr + hl, hdr + 10, kl);
    if (sl__buf_append(w->out, hdr, hl + kl) || (klen && sl__buf_append(w->out, key, klen)) ||
        (vlen && sl__buf_append(w->out, val, vlen)))
        return SL_ERR_NOMEM;
    *rec_off = w->out->len - rl;
    *rec_len = rl;
    w->n++;
    if (w->out->len - w->chunk_start >= CHUNK_BYTES)
        put_chunk(w);
    return SL_OK;
}

void sl__outbox_end(sl_outbox_writer_t *w)
{
    put_chunk(w);
}

typedef struct scan {
    sl_outbox_fn fn;
    void *opaque;
    int legacy; /* layout 1's keys: seq (8), idx (4) [and 'c'] */
    int corrupt;
} scan_t;

static int scan_entry(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    scan_t *sc = opaque;
    const uint8_t *key = (const uint8_t *)k, *p = (const uint8_t *)v, *end = p + vlen;
    int stream = 0, chunked = 1;
    if (sc->legacy) {
        if (klen != 12 && (klen != 13 || key[12] != CHUNK_TAG)) {
            sc->corrupt = 1;
            return 1;
        }
        chunked = klen == 13; /* a 12-byte key holds one row, unprefixed */
    } else {
        if (klen != SL_OUTBOX_KEY || key[14] != CHUNK_TAG) {
            sc->corrupt = 1;
            return 1;
        }
        stream = sl__task_get(key);
        key += 2;
    }
    int64_t seq = (int64_t)sl__be64_get(key);
    uint32_t idx = sl__be32_get(key + 8);
    if (!chunked)
        return sc->fn(sc->opaque, stream, seq, idx, p, vlen);
    while (p < end) {
        int64_t rl;
        if (sl__zz_decode(&p, end, &rl) < 0 || rl < 0 || rl > end - p) {
            sc->corrupt = 1;
            return 1;
        }
        int r = sc->fn(sc->opaque, stream, seq, idx++, p, (size_t)rl);
        if (r)
            return r;
        p += rl;
    }
    return 0;
}

static sl_err_t scan(sl_store_t *st, sl_cf_t cf, int legacy, int stream, sl_outbox_fn fn,
                     void *opaque, char *errstr, size_t errstr_size)
{
    scan_t sc = {.fn = fn, .opaque = opaque, .legacy = legacy};
    uint8_t prefix[2] = {0, 0};
    if (stream >= 0)
        sl__task_put(prefix, stream);
    sl_err_t e = sl__store_scan(st, cf, prefix, stream >= 0 ? 2 : 0, scan_entry, &sc, errstr,
                                errstr_size);
    if (!e && sc.corrupt) {
        snprintf(errstr, errstr_size, "state: a corrupt outbox entry");
        e = SL_ERR_STATE;
    }
    return e;
}

sl_err_t sl__outbox_scan(sl_store_t *st, int stream, sl_outbox_fn fn, void *opaque, char *errstr,
                         size_t errstr_size)
{
    return scan(st, SL_CF_OUTBOX, 0, stream, fn, opaque, errstr, errstr_size);
}

sl_err_t sl__outbox_scan_legacy(sl_store_t *st, sl_outbox_fn fn, void *opaque, char *errstr,
                                size_t errstr_size)
{
    return scan(st, SL_CF_LEGACY_OUTBOX, 1, -1, fn, opaque, errstr, errstr_size);
}

/* A record's key and value after its destination byte. */
static int key_and_value(const uint8_t *p, const uint8_t *end, sl_out_row_t *row)
{
    int64_t kl;
    if (sl__zz_decode(&p, end, &kl) < 0 || kl < 0 || kl > end - p)
        return -1;
    row->key = p;
    row->klen = (size_t)kl;
    row->val = p + kl;
    row->vlen = (size_t)(end - p - kl);
    return 0;
}

int sl__outbox_row(const uint8_t *p, size_t len, sl_out_row_t *row)
{
    if (len < 1)
        return -1;
    switch (p[0]) {
    case SL_DEST_OUTPUT:
    case SL_DEST_CHANGELOG:
    case SL_DEST_TOMBSTONE:
    case SL_DEST_MARKER:
        row->dest = (sl_dest_t)p[0];
        break;
    default:
        return -1;
    }
    return key_and_value(p + 1, p + len, row);
}

int sl__outbox_row_legacy(const uint8_t *p, size_t len, sl_out_row_t *row)
{
    row->dest = SL_DEST_OUTPUT;
    return key_and_value(p, p + len, row);
}

void sl__outbox_delete_put(sl_store_t *st, sl_store_batch_t *wb, int stream, int64_t from_seq,
                           int64_t to_seq)
{
    uint8_t from[SL_OUTBOX_KEY] = {0}, to[SL_OUTBOX_KEY] = {0};
    outbox_key(from, stream, from_seq, 0);
    outbox_key(to, stream, to_seq, 0);
    sl__store_batch_delete_range(wb, st, SL_CF_OUTBOX, from, 10, to, 10);
}

sl_err_t sl__outbox_delete(sl_store_t *st, sl_store_batch_t *wb, int stream, int64_t from_seq,
                           int64_t to_seq, char *errstr, size_t errstr_size)
{
    sl__outbox_delete_put(st, wb, stream, from_seq, to_seq);
    return sl__store_write(st, wb, 0, errstr, errstr_size);
}
