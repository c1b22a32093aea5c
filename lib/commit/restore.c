/*
 * restore.c - changelog records into the store (see restore.h).
 */
#include "restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"

/* Records a chunk gathers before it is written: large enough that RocksDB writes them
 * in key order at its bulk rate, small enough to stay in the cache's reach. */
#define CHUNK_RECORDS 65536
#define CHUNK_BYTES (32u << 20)

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
    r->nslots = 2 * CHUNK_RECORDS;
    r->slots = calloc(r->nslots, sizeof(*r->slots));
    r->wb = sl__store_batch_new();
    return r->slots && r->wb ? SL_OK : SL_ERR_NOMEM;
}

void sl__restore_fini(sl_restore_t *r)
{
    sl__store_batch_destroy(r->wb);
    free(r->recs);
    free(r->slots);
    sl__buf_fini(&r->keys);
    sl__buf_fini(&r->vals);
    sl__buf_fini(&r->tmp);
    memset(r, 0, sizeof(*r));
}

sl_err_t sl__restore_record(sl_restore_t *r, const uint8_t *key, size_t klen, const uint8_t *val,
                            size_t vlen, char *errstr, size_t errstr_size)
{
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
    if (r->n >= CHUNK_RECORDS || r->keys.len + r->vals.len >= CHUNK_BYTES)
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
    e = SL_OK;
    for (size_t i = 0; i < n && !e; i++) {
        const sl_restore_rec_t *x = order[i];
        const uint8_t *k = (const uint8_t *)keys[i];
        const uint8_t *v = r->vals.p + x->voff;
        int existed = old[i] != NULL;
        int64_t old_end = existed ? value_end((const uint8_t *)old[i], olens[i]) : 0;
        if (x->tomb) {
            sl__store_batch_delete(r->wb, r->st, SL_CF_AGG, k, x->klen);
            r->deletes++;
        } else {
            if (r->windowed && x->vlen < 8) {
                snprintf(errstr, errstr_size,
                         "the changelog of task %d holds a windowed aggregate of %zu bytes, "
                         "too short to be one",
                         r->task, x->vlen);
                e = SL_ERR_STATE;
                break;
            }
            sl__store_batch_put(r->wb, r->st, SL_CF_AGG, k, x->klen, v, x->vlen);
            r->puts++;
        }
        if (!r->closing)
            continue;
        int64_t new_end = x->tomb ? 0 : value_end(v, x->vlen);
        if (existed && (x->tomb || old_end != new_end)) {
            if ((e = sl__expiry_key(&r->tmp, old_end, k, x->klen)))
                break;
            sl__store_batch_delete(r->wb, r->st, SL_CF_EXPIRY, r->tmp.p, r->tmp.len);
        }
        if (!x->tomb) {
            if ((e = sl__expiry_key(&r->tmp, new_end, k, x->klen)))
                break;
            sl__store_batch_put(r->wb, r->st, SL_CF_EXPIRY, r->tmp.p, r->tmp.len, "", 0);
        }
    }
    if (e == SL_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory while restoring task %d", r->task);
    if (!e)
        e = sl__store_write(r->st, r->wb, 0, errstr, errstr_size);
done:
    if (e == SL_ERR_NOMEM && !errstr[0])
        snprintf(errstr, errstr_size, "out of memory while restoring task %d", r->task);
    sl__store_vals_release(pins);
    free(order);
    free(keys);
    free(klens);
    free(old);
    free(olens);
    r->n = 0;
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
