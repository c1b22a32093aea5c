/*
 * restore.c - changelog records into the store (see restore.h).
 */
#include "restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"

/* Records a chunk gathers before it is written: large enough that RocksDB writes them
 * in key order at its bulk rate, small enough to stay in the cache's reach. A bulk chunk
 * is a table file, and larger: the files of a restore overlap one another (each chunk's
 * keys span the task's), so they stack up in level 0 until compaction merges them, and
 * fewer, larger ones leave it less to do. */
#define CHUNK_RECORDS 65536
#define CHUNK_BYTES (32u << 20)
#define BULK_RECORDS 262144
#define BULK_BYTES (64u << 20)

sl_err_t sl__restore_init(sl_restore_t *r, sl_store_t *st, int task, int windowed, int closing)
{
    memset(r, 0, sizeof(*r));
    r->st = st;
    r->task = task;
    r->windowed = windowed;
    r->closing = closing;
    sl__buf_init(&r->keys);
    sl__buf_init(&r->vals);
    sl__buf_init(&r->tmp);
    sl__buf_init(&r->ix);
    r->wb = sl__store_batch_new();
    return r->wb ? SL_OK : SL_ERR_NOMEM;
}

void sl__restore_fini(sl_restore_t *r)
{
    sl__store_batch_destroy(r->wb);
    free(r->recs);
    free(r->slots);
    free(r->ixs);
    sl__buf_fini(&r->keys);
    sl__buf_fini(&r->vals);
    sl__buf_fini(&r->tmp);
    sl__buf_fini(&r->ix);
    memset(r, 0, sizeof(*r));
}

sl_err_t sl__restore_record(sl_restore_t *r, const uint8_t *key, size_t klen, const uint8_t *val,
                            size_t vlen, char *errstr, size_t errstr_size)
{
    size_t max_recs = r->chunk_records ? r->chunk_records : r->bulk ? BULK_RECORDS : CHUNK_RECORDS;
    size_t max_bytes = r->bulk ? BULK_BYTES : CHUNK_BYTES;
    if (!r->slots) {
        for (r->nslots = 16; r->nslots < 2 * max_recs;) /* a power of two, at most half full */
            r->nslots *= 2;
        if (!(r->slots = calloc(r->nslots, sizeof(*r->slots))))
            goto nomem;
    }
    uint8_t prefix[SL_TASK_PREFIX];
    sl__task_put(prefix, r->task);
    size_t koff = r->keys.len;
    if (sl__buf_append(&r->keys, prefix, sizeof(prefix)) ||
        (klen && sl__buf_append(&r->keys, key, klen)))
        goto nomem;
    size_t sklen = klen + SL_TASK_PREFIX;
    uint64_t h = sl__hash(r->keys.p + koff, sklen);
    size_t mask = r->nslots - 1, j = h & mask;
    sl_restore_rec_t *rec = NULL;
    for (; r->slots[j]; j = (j + 1) & mask) {
        sl_restore_rec_t *x = &r->recs[r->slots[j] - 1];
        if (x->hash == h && x->klen == sklen && !memcmp(r->keys.p + x->koff, r->keys.p + koff, sklen)) {
            rec = x; /* a later record of a key: it wins */
            r->keys.len = koff;
            break;
        }
    }
    if (!rec) {
        if (SL_GROW(r->recs, r->cap, r->n + 1, 1024))
            goto nomem;
        rec = &r->recs[r->n++];
        *rec = (sl_restore_rec_t){.hash = h, .koff = koff, .klen = sklen};
        r->slots[j] = r->n;
    }
    rec->tomb = val == NULL;
    rec->voff = r->vals.len;
    rec->vlen = val ? vlen : 0;
    if (val && vlen && sl__buf_append(&r->vals, val, vlen))
        goto nomem;
    r->records++;
    if (r->n >= max_recs || r->keys.len + r->vals.len >= max_bytes)
        return sl__restore_flush(r, errstr, errstr_size);
    return SL_OK;
nomem:
    snprintf(errstr, errstr_size, "out of memory while restoring task %d", r->task);
    return SL_ERR_NOMEM;
}

/* Orders records by key; @p keys is the chunk's key bytes. */
static int cmp_rec(const void *a, const void *b, void *keys)
{
    const sl_restore_rec_t *x = *(sl_restore_rec_t *const *)a, *y = *(sl_restore_rec_t *const *)b;
    const uint8_t *k = keys;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(k + x->koff, k + y->koff, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static int64_t value_end(const uint8_t *v, size_t vlen)
{
    return vlen >= 8 ? (int64_t)sl__be64_get(v) : 0;
}

/* One entry of the expiry index a bulk chunk writes or deletes. */
struct sl_restore_ix {
    size_t off, len;
    int del;
};

static int cmp_ix(const void *a, const void *b, void *keys)
{
    const struct sl_restore_ix *x = a, *y = b;
    const uint8_t *k = keys;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(k + x->off, k + y->off, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* An entry of the expiry index (@p del: its deletion), the key in r->tmp: into the batch,
 * or for a bulk chunk gathered to be sorted into its own file. */
static sl_err_t ix_op(sl_restore_t *r, int del)
{
    if (!r->bulk) {
        if (del)
            sl__store_batch_delete(r->wb, r->st, SL_CF_EXPIRY, r->tmp.p, r->tmp.len);
        else
            sl__store_batch_put(r->wb, r->st, SL_CF_EXPIRY, r->tmp.p, r->tmp.len, "", 0);
        return SL_OK;
    }
    if (SL_GROW(r->ixs, r->ixcap, r->nix + 1, 1024))
        return SL_ERR_NOMEM;
    r->ixs[r->nix++] = (struct sl_restore_ix){.off = r->ix.len, .len = r->tmp.len, .del = del};
    return sl__buf_append(&r->ix, r->tmp.p, r->tmp.len);
}

/* A bulk chunk's expiry index: sorted, one file. */
static sl_err_t ingest_ix(sl_restore_t *r, char *errstr, size_t errstr_size)
{
    if (r->nix == 0)
        return SL_OK;
    qsort_r(r->ixs, r->nix, sizeof(*r->ixs), cmp_ix, r->ix.p);
    sl_store_sst_t *f;
    sl_err_t e = sl__store_sst_new(r->st, SL_CF_EXPIRY, &f, errstr, errstr_size);
    for (size_t i = 0; i < r->nix && !e; i++)
        e = sl__store_sst_put(f, r->ix.p + r->ixs[i].off, r->ixs[i].len,
                              r->ixs[i].del ? NULL : "", 0, errstr, errstr_size);
    if (!e)
        return sl__store_sst_ingest(f, errstr, errstr_size);
    sl__store_sst_discard(f);
    return e;
}

sl_err_t sl__restore_flush(sl_restore_t *r, char *errstr, size_t errstr_size)
{
    size_t n = r->n;
    if (n == 0)
        return SL_OK;
    sl_err_t e = SL_ERR_NOMEM;
    sl_restore_rec_t **order = malloc(n * sizeof(*order));
    const char **keys = malloc(n * sizeof(*keys));
    size_t *klens = malloc(n * sizeof(*klens));
    const char **old = calloc(n, sizeof(*old));
    size_t *olens = calloc(n, sizeof(*olens));
    sl_store_vals_t *pins = NULL;
    sl_store_sst_t *agg = NULL;
    r->nix = 0;
    sl__buf_reset(&r->ix);
    if (!order || !keys || !klens || !old || !olens)
        goto done;
    for (size_t i = 0; i < n; i++)
        order[i] = &r->recs[i];
    qsort_r(order, n, sizeof(*order), cmp_rec, r->keys.p);
    for (size_t i = 0; i < n; i++) {
        keys[i] = (const char *)r->keys.p + order[i]->koff;
        klens[i] = order[i]->klen;
    }
    /* The values the chunk replaces, for their windows' index entries. */
    if (r->closing &&
        (e = sl__store_multiget(r->st, n, keys, klens, 1, &pins, old, olens, errstr, errstr_size)))
        goto done;
    if (r->bulk && (e = sl__store_sst_new(r->st, SL_CF_AGG, &agg, errstr, errstr_size)))
        goto done;
    e = SL_OK;
    for (size_t i = 0; i < n && !e; i++) {
        const sl_restore_rec_t *x = order[i];
        const uint8_t *k = (const uint8_t *)keys[i];
        const uint8_t *v = r->vals.p + x->voff;
        int existed = old[i] != NULL;
        int64_t old_end = existed ? value_end((const uint8_t *)old[i], olens[i]) : 0;
        if (!x->tomb && r->windowed && x->vlen < 8) {
            snprintf(errstr, errstr_size,
                     "the changelog of task %d holds a windowed aggregate of %zu bytes, "
                     "too short to be one",
                     r->task, x->vlen);
            e = SL_ERR_STATE;
            break;
        }
        if (agg)
            e = sl__store_sst_put(agg, k, x->klen, x->tomb ? NULL : v, x->vlen, errstr,
                                  errstr_size);
        else if (x->tomb)
            sl__store_batch_delete(r->wb, r->st, SL_CF_AGG, k, x->klen);
        else
            sl__store_batch_put(r->wb, r->st, SL_CF_AGG, k, x->klen, v, x->vlen);
        if (x->tomb)
            r->deletes++;
        else
            r->puts++;
        if (e || !r->closing)
            continue;
        int64_t new_end = x->tomb ? 0 : value_end(v, x->vlen);
        if (existed && (x->tomb || old_end != new_end) &&
            (e = sl__expiry_key(&r->tmp, old_end, k, x->klen)) == SL_OK)
            e = ix_op(r, 1);
        if (!e && !x->tomb && (e = sl__expiry_key(&r->tmp, new_end, k, x->klen)) == SL_OK)
            e = ix_op(r, 0);
    }
    if (!e && agg) {
        /* The aggregates first: an index entry without its aggregate would close nothing. */
        e = sl__store_sst_ingest(agg, errstr, errstr_size);
        agg = NULL;
        if (!e)
            e = ingest_ix(r, errstr, errstr_size);
    } else if (!e) {
        e = sl__store_write(r->st, r->wb, 0, errstr, errstr_size);
    }
done:
    if (e == SL_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory while restoring task %d", r->task);
    sl__store_sst_discard(agg);
    sl__store_vals_release(pins);
    free(order);
    free(keys);
    free(klens);
    free(old);
    free(olens);
    r->n = 0;
    if (r->slots)
        memset(r->slots, 0, r->nslots * sizeof(*r->slots));
    sl__buf_reset(&r->keys);
    sl__buf_reset(&r->vals);
    return e;
}

void sl__restore_wipe_put(sl_store_t *st, sl_store_batch_t *wb, int task)
{
    uint8_t from[SL_TASK_PREFIX], to[SL_TASK_PREFIX + 1];
    sl__task_put(from, task);
    /* to: the next task's prefix; for the last possible task, the prefix and a byte past
     * every key's next one. */
    sl__task_put(to, task + 1);
    size_t tlen = SL_TASK_PREFIX;
    if (task == SL_TASKS_MAX) {
        sl__task_put(to, task);
        to[2] = 0xff;
        tlen = 3;
    }
    sl__store_batch_delete_range(wb, st, SL_CF_AGG, from, sizeof(from), to, tlen);
    sl__store_batch_delete_range(wb, st, SL_CF_EXPIRY, from, sizeof(from), to, tlen);
    sl__store_batch_delete_range(wb, st, SL_CF_OUTBOX, from, sizeof(from), to, tlen);
    char mf[32], mt[32];
    int fl = sl__meta_prefix(mf, sizeof(mf), task);
    memcpy(mt, mf, (size_t)fl);
    mt[fl - 1] = '/' + 1; /* "t/<task>0": just past every "t/<task>/..." */
    sl__store_batch_delete_range(wb, st, SL_CF_META, mf, (size_t)fl, mt, (size_t)fl);
}
