/*
 * upgrade.c - layout 1 stores brought to layout 2 (see upgrade.h).
 */
#include "upgrade.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "log.h"
#include "outbox.h"
#include "restore.h"
#include "util.h"

/* Puts go out in WriteBatches of this many entries. */
#define UPGRADE_CHUNK 10000

typedef struct copy {
    sl_store_t *st;
    sl_store_batch_t *wb;
    sl_buf_t key;
    sl_err_t err;
    char *errstr;
    size_t errstr_size;
    uint64_t n;
    /* the outbox being copied */
    sl_outbox_writer_t w;
    sl_buf_t out;
    int64_t seq; /* the batch whose rows are being copied; -1 none */
} copy_t;

static int flush_some(copy_t *c)
{
    if (sl__store_batch_count(c->wb) < UPGRADE_CHUNK)
        return 0;
    c->err = sl__store_write(c->st, c->wb, 0, c->errstr, c->errstr_size);
    return c->err != SL_OK;
}

static const uint8_t task0[SL_TASK_PREFIX] = {0, 0};

static int copy_agg(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    copy_t *c = opaque;
    sl__buf_reset(&c->key);
    if (sl__buf_append(&c->key, task0, sizeof(task0)) || sl__buf_append(&c->key, k, klen)) {
        c->err = SL_ERR_NOMEM;
        return 1;
    }
    sl__store_batch_put(c->wb, c->st, SL_CF_AGG, c->key.p, c->key.len, v, vlen);
    c->n++;
    return flush_some(c);
}

/* Layout 1's expiry key is the end (8 bytes) and the state key. */
static int copy_expiry(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    copy_t *c = opaque;
    if (klen < 8) {
        c->err = SL_ERR_STATE;
        snprintf(c->errstr, c->errstr_size, "state: a corrupt expiry entry");
        return 1;
    }
    sl__buf_reset(&c->key);
    if (sl__buf_append(&c->key, task0, sizeof(task0)) || sl__buf_append(&c->key, k, 8) ||
        sl__buf_append(&c->key, task0, sizeof(task0)) || sl__buf_append(&c->key, k + 8, klen - 8)) {
        c->err = SL_ERR_NOMEM;
        return 1;
    }
    sl__store_batch_put(c->wb, c->st, SL_CF_EXPIRY, c->key.p, c->key.len, "", 0);
    return flush_some(c);
}

static int copy_outbox(void *opaque, int stream, int64_t seq, uint32_t idx, const uint8_t *rec,
                       size_t len)
{
    (void)stream;
    (void)idx;
    copy_t *c = opaque;
    sl_out_row_t row;
    if (sl__outbox_row_legacy(rec, len, &row) < 0) {
        c->err = SL_ERR_STATE;
        snprintf(c->errstr, c->errstr_size, "state: a corrupt outbox entry (batch %" PRId64 ")",
                 seq);
        return 1;
    }
    if (seq != c->seq) {
        if (c->seq >= 0)
            sl__outbox_end(&c->w);
        sl__outbox_begin(&c->w, c->st, c->wb, 0, seq, &c->out);
        c->seq = seq;
    }
    size_t off, rl;
    if ((c->err = sl__outbox_add(&c->w, SL_DEST_OUTPUT, row.key, row.klen, row.val, row.vlen,
                                 &off, &rl)))
        return 1;
    c->n++;
    return 0;
}

/* Layout 1's meta keys that are task 0's now. */
static int task_meta(const char *k, size_t klen)
{
    static const char *const exact[] = {"wm", "wm_evict", "maxev", NULL};
    static const char *const prefixes[] = {"pos/", "file/", "pub/", NULL};
    for (const char *const *e = exact; *e; e++) {
        if (klen == strlen(*e) && !memcmp(k, *e, klen))
            return 1;
    }
    for (const char *const *p = prefixes; *p; p++) {
        if (klen > strlen(*p) && !memcmp(k, *p, strlen(*p)))
            return 1;
    }
    return 0;
}

static int move_meta(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    copy_t *c = opaque;
    int keep = klen == 3 && !memcmp(k, "seq", 3); /* the store's batch, and task 0's */
    if ((!keep && !task_meta(k, klen)) || (klen >= 2 && !memcmp(k, "t/", 2)))
        return 0;
    char key[1400];
    if (klen > 1200)
        return 0;
    int kl = sl__meta_key(key, sizeof(key), 0, "%.*s", (int)klen, k);
    if (kl < 0)
        return 0;
    sl__store_batch_put(c->wb, c->st, SL_CF_META, key, (size_t)kl, v, vlen);
    if (!keep)
        sl__store_batch_delete(c->wb, c->st, SL_CF_META, k, klen);
    return 0;
}

static int any_cb(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    (void)k;
    (void)klen;
    (void)v;
    (void)vlen;
    *(int *)opaque = 1;
    return 1;
}

static int has_any(sl_store_t *st, sl_cf_t cf, const char *prefix, char *errstr, size_t errstr_size)
{
    int any = 0;
    sl__store_scan(st, cf, prefix, prefix ? strlen(prefix) : 0, any_cb, &any, errstr, errstr_size);
    return any;
}

static sl_err_t write_layout(sl_store_t *st, sl_store_batch_t *wb, char *errstr,
                             size_t errstr_size)
{
    char v[8];
    int n = snprintf(v, sizeof(v), "%d", SL_LAYOUT);
    sl__store_batch_put(wb, st, SL_CF_META, "layout", 6, v, (size_t)n);
    return sl__store_write(st, wb, 1, errstr, errstr_size);
}

sl_err_t sl__upgrade_store(sl_store_t *st, const char *dir, int ntasks, char *errstr,
                           size_t errstr_size)
{
    char *lv = NULL;
    size_t lvlen;
    sl_err_t e = sl__store_get(st, SL_CF_META, "layout", 6, &lv, &lvlen, errstr, errstr_size);
    if (e && e != SL_ERR_NOTFOUND)
        return e;
    int layout = e == SL_OK ? (int)strtol(lv, NULL, 10) : 0;
    free(lv);
    if (layout > SL_LAYOUT) {
        snprintf(errstr, errstr_size,
                 "state %s has layout %d, written by a later sluice; this one reads layout %d "
                 "and older. Run the later sluice, or restore the directory of before it",
                 dir, layout, SL_LAYOUT);
        return SL_ERR_STATE;
    }
    sl_store_batch_t *wb = sl__store_batch_new();
    if (!wb)
        return SL_ERR_NOMEM;
    copy_t c = {.st = st, .wb = wb, .errstr = errstr, .errstr_size = errstr_size, .seq = -1};
    sl__buf_init(&c.key);
    sl__buf_init(&c.out);
    int legacy = sl__store_has_legacy(st);
    if (layout == SL_LAYOUT || !legacy) {
        if (!layout)
            e = write_layout(st, wb, errstr, errstr_size);
        if (!e && legacy) /* dropped after an upgrade a crash cut short */
            e = sl__store_drop_legacy(st, errstr, errstr_size);
        goto done;
    }
    int state = has_any(st, SL_CF_LEGACY_AGG, NULL, errstr, errstr_size) ||
                has_any(st, SL_CF_LEGACY_OUTBOX, NULL, errstr, errstr_size) ||
                has_any(st, SL_CF_META, "seq", errstr, errstr_size);
    if (state && ntasks > 1) {
        snprintf(errstr, errstr_size,
                 "state %s was written by a sluice before tasks: it keeps the aggregates of "
                 "all input partitions together and cannot split them among the %d tasks of "
                 "a co-partitioned job (source.co_partitioned). Run the job without "
                 "source.co_partitioned, which upgrades this state in place; or give it a new "
                 "state directory and name, which reads its input again from the start",
                 dir, ntasks);
        e = SL_ERR_MISMATCH;
        goto done;
    }
    sl_log(SL_LOG_INFO, "state", "state %s: upgrading from layout 1 to layout %d", dir,
           SL_LAYOUT);
    /* What an upgrade a crash cut short left of task 0 goes first. */
    sl__restore_wipe_put(st, wb, 0);
    if ((e = sl__store_write(st, wb, 0, errstr, errstr_size)))
        goto done;
    if ((e = sl__store_scan(st, SL_CF_LEGACY_AGG, NULL, 0, copy_agg, &c, errstr, errstr_size)) ||
        (e = c.err))
        goto done;
    uint64_t aggs = c.n;
    if ((e = sl__store_scan(st, SL_CF_LEGACY_EXPIRY, NULL, 0, copy_expiry, &c, errstr,
                            errstr_size)) ||
        (e = c.err))
        goto done;
    c.n = 0;
    if ((e = sl__outbox_scan_legacy(st, copy_outbox, &c, errstr, errstr_size)) || (e = c.err))
        goto done;
    if (c.seq >= 0)
        sl__outbox_end(&c.w);
    uint64_t rows = c.n;
    if ((e = sl__store_write(st, wb, 0, errstr, errstr_size)))
        goto done;
    /* The meta, with "layout", in one synced write: the upgrade is done when it is. */
    if ((e = sl__store_scan(st, SL_CF_META, NULL, 0, move_meta, &c, errstr, errstr_size)) ||
        (e = write_layout(st, wb, errstr, errstr_size)) ||
        (e = sl__store_drop_legacy(st, errstr, errstr_size)))
        goto done;
    sl_log(SL_LOG_INFO, "state", "state %s upgraded: %" PRIu64 " aggregate(s), %" PRIu64
           " row(s) of the outbox", dir, aggs, rows);
done:
    sl__buf_fini(&c.key);
    sl__buf_fini(&c.out);
    sl__store_batch_destroy(wb);
    return e;
}
