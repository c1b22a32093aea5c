/*
 * merge.c - the batch table merged into the state (see merge.h).
 *
 * A windowed aggregate's state value starts with its window's end (8 bytes) so that a
 * session, whose end moves as it grows, is read back whole; the accumulators follow
 * (agg.h). The expiry index holds one entry per open window while a watermark can close
 * it, and only then.
 */
#include "merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "query/window.h"
#include "sink/output.h"

/* One aggregate the batch changes: its key, window end, combined accumulators, and what
 * the state held before. */
typedef struct change {
    const uint8_t *key;
    uint32_t klen;
    int64_t wend;
    int existed;
    int64_t old_end;
    sl_acc_t *accs;
} change_t;

/* Passes over a batch's entries in key order fetch the entry this far ahead. */
#define PREFETCH_AHEAD 8

/* A window start key: the group values, then the start as a timestamp value. */
#define WSTART_LEN 9

sl_err_t sl__merge_init(sl_merge_t *m, const sl_plan_t *c, const char *state_dir)
{
    memset(m, 0, sizeof(*m));
    m->c = c;
    m->state_dir = state_dir;
    return sl__table_init(&m->handled, 0);
}

void sl__merge_fini(sl_merge_t *m)
{
    free(m->rows);
    free(m->row_tasks);
    sl__table_fini(&m->handled);
    memset(m, 0, sizeof(*m));
}

static int windowed(const sl_plan_t *c)
{
    return c->window != SL_WIN_NONE;
}

/* Windows close (and the expiry index is kept) only with a watermark and not in complete
 * mode, which keeps every row, as Spark does. */
int sl__merge_closing(const sl_plan_t *c)
{
    return windowed(c) && c->wm_slot >= 0 && c->mode != SL_MODE_COMPLETE;
}

static int closing(const sl_plan_t *c)
{
    return sl__merge_closing(c);
}

/* The watermark that closes @p task's windows in this batch. The batch's tasks are few
 * and looked up in key order, so the last one found is tried first. */
static int64_t task_wm(sl_merge_t *m, int task)
{
    int last = m->task_hint;
    if (last < m->ntasks && m->tasks[last].task == task)
        return m->tasks[last].wm;
    int lo = 0, hi = m->ntasks - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (m->tasks[mid].task == task) {
            m->task_hint = mid;
            return m->tasks[mid].wm;
        }
        if (m->tasks[mid].task < task)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return SL_WM_NONE; /* not a task of the batch: nothing of it closes */
}

static sl_err_t emit(sl_merge_t *m, const uint8_t *key, uint32_t klen, int64_t wend,
                     const sl_acc_t *accs)
{
    const sl_plan_t *c = m->c;
    if (klen < SL_TASK_PREFIX)
        return SL_ERR_STATE;
    /* A row is ncols values: the array grows by rows. */
    sl_grow_t rows[] = {{&m->rows, (size_t)c->ncols * sizeof(sl_val_t)},
                        {&m->row_tasks, sizeof(*m->row_tasks)}};
    if (sl__grow(&m->cap, m->nrows + 1, 1024, rows, 2))
        return SL_ERR_NOMEM;
    sl_val_t *row = &m->rows[m->nrows * (size_t)c->ncols];
    m->row_tasks[m->nrows] = (uint16_t)sl__task_get(key);
    sl_err_t e = sl__out_columns(c, key + SL_TASK_PREFIX, klen - SL_TASK_PREFIX, wend, accs, row,
                                 m->why, sizeof(m->why));
    if (e)
        return e;
    /* Strings may point into state values that are freed before the rows are published. */
    for (int i = 0; i < c->ncols; i++) {
        if (row[i].t == SL_T_STRING &&
            !(row[i].u.s = sl__arena_dup(&m->batch->arena, row[i].u.s, row[i].n ? row[i].n : 1)))
            return SL_ERR_NOMEM;
    }
    m->nrows++;
    return SL_OK;
}

/* The keys the batch wrote or dropped, which closing windows and complete mode skip:
 * without sessions those of the batch table itself; a session's key moves as it grows,
 * so session merging records the keys it handled. */
static int mark_handled(sl_merge_t *m, const uint8_t *key, uint32_t klen)
{
    return sl__table_upsert(&m->handled, key, klen) ? 0 : -1;
}

static int handled(const sl_merge_t *m, const uint8_t *key, uint32_t klen)
{
    const sl_table_t *t = m->c->window == SL_WIN_SESSION ? &m->handled : m->batch;
    return sl__table_find(t, key, klen) != NULL;
}

/* Splits a stored value into its window end and accumulators. */
static sl_err_t decode_value(sl_merge_t *m, const uint8_t *v, size_t vlen, int64_t *wend,
                             sl_acc_t *accs)
{
    const sl_plan_t *c = m->c;
    *wend = 0;
    if (windowed(c)) {
        if (vlen < 8)
            return SL_ERR_STATE;
        *wend = (int64_t)sl__be64_get(v);
        v += 8;
        vlen -= 8;
    }
    return sl__accs_decode(c->aggs, c->naggs, v, vlen, accs, &m->batch->arena);
}

static sl_err_t put_value(sl_merge_t *m, const change_t *ch, sl_buf_t *enc)
{
    const sl_plan_t *c = m->c;
    sl__buf_reset(enc);
    if (windowed(c)) {
        uint8_t w[8];
        sl__be64_put(w, (uint64_t)ch->wend);
        if (sl__buf_append(enc, w, 8))
            return SL_ERR_NOMEM;
    }
    sl_err_t e = sl__accs_encode(c->aggs, c->naggs, ch->accs, enc);
    if (e)
        return e;
    sl__store_batch_put(m->wb, m->store, SL_CF_AGG, ch->key, ch->klen, enc->p, enc->len);
    return m->on_change ? m->on_change(m->change_opaque, ch->key, ch->klen, enc->p, enc->len)
                        : SL_OK;
}

static sl_err_t drop(sl_merge_t *m, const uint8_t *key, uint32_t klen, int64_t end, sl_buf_t *tmp)
{
    sl__store_batch_delete(m->wb, m->store, SL_CF_AGG, key, klen);
    if (sl__expiry_key(tmp, end, key, klen))
        return SL_ERR_NOMEM;
    sl__store_batch_delete(m->wb, m->store, SL_CF_EXPIRY, tmp->p, tmp->len);
    return m->on_change ? m->on_change(m->change_opaque, key, klen, NULL, 0) : SL_OK;
}

/* Writes the changes, closes the windows the watermark passed, and emits rows. */
static sl_err_t apply(sl_merge_t *m, change_t *chs, size_t n)
{
    const sl_plan_t *c = m->c;
    sl_buf_t enc, xk;
    sl__buf_init(&enc);
    sl__buf_init(&xk);
    sl_err_t e = SL_OK;
    for (size_t i = 0; i < n && !e; i++) {
        change_t *ch = &chs[i];
        if (i + PREFETCH_AHEAD < n) {
            sl__prefetch(chs[i + PREFETCH_AHEAD].accs);
            sl__prefetch((const char *)chs[i + PREFETCH_AHEAD].accs + 64);
            sl__prefetch(chs[i + PREFETCH_AHEAD].key);
        }
        int closed = closing(c) && sl__window_closed(ch->wend, task_wm(m, sl__task_get(ch->key)));
        if (closed) {
            m->closed++;
            if (ch->existed)
                e = drop(m, ch->key, ch->klen, ch->old_end, &xk);
        } else {
            e = put_value(m, ch, &enc);
            if (!e && closing(c) && (!ch->existed || ch->old_end != ch->wend)) {
                if (ch->existed && !(e = sl__expiry_key(&xk, ch->old_end, ch->key, ch->klen)))
                    sl__store_batch_delete(m->wb, m->store, SL_CF_EXPIRY, xk.p, xk.len);
                if (!e && !(e = sl__expiry_key(&xk, ch->wend, ch->key, ch->klen)))
                    sl__store_batch_put(m->wb, m->store, SL_CF_EXPIRY, xk.p, xk.len, "", 0);
            }
        }
        if (!e && (c->mode != SL_MODE_APPEND || closed))
            e = emit(m, ch->key, ch->klen, ch->wend, ch->accs);
    }
    sl__buf_fini(&enc);
    sl__buf_fini(&xk);
    return e;
}

/* ---- group by and sliding windows: one MultiGet ---- */

static sl_err_t merge_keys(sl_merge_t *m, char *errstr, size_t errstr_size)
{
    const sl_plan_t *c = m->c;
    sl_table_t *t = m->batch;
    size_t n = t->n;
    if (n == 0)
        return SL_OK;
    sl_err_t e = SL_ERR_NOMEM;
    const char **keys = malloc(n * sizeof(*keys));
    size_t *klens = malloc(n * sizeof(*klens));
    const char **vals = calloc(n, sizeof(*vals));
    size_t *vlens = malloc(n * sizeof(*vlens));
    sl_store_vals_t *pins = NULL;
    change_t *chs = sl__arena_alloc(&t->arena, n * sizeof(*chs));
    if (!keys || !klens || !vals || !vlens || !chs)
        goto done;
    /* In the state's order: RocksDB's memtable inserts a run of ascending keys next to
     * the previous one instead of searching its whole skip list for each (the writes took
     * a fifth of a batch with 100,000 keys in random order), and rows come out sorted. */
    sl__entries_sort(t->order, n);
    for (size_t i = 0; i < n; i++) {
        /* Key order is random in memory: each entry is fetched a few keys ahead. */
        if (i + PREFETCH_AHEAD < n)
            sl__entry_prefetch(t, t->order[i + PREFETCH_AHEAD]);
        keys[i] = (const char *)t->order[i]->key;
        klens[i] = t->order[i]->klen;
    }
    if ((e = sl__store_multiget(m->store, n, keys, klens, 1, &pins, vals, vlens, errstr,
                                errstr_size)))
        goto done;
    /* Each stored aggregate is folded into the batch's entry, which then holds the new
     * value: no third copy of the accumulators (24 MB with 200,000 keys). */
    sl_acc_t *stored = sl__arena_alloc(&t->arena, (size_t)(c->naggs ? c->naggs : 1) *
                                                      sizeof(sl_acc_t));
    if (!stored) {
        e = SL_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        sl_entry_t *en = t->order[i];
        change_t *ch = &chs[i];
        if (i + PREFETCH_AHEAD < n)
            sl__entry_prefetch(t, t->order[i + PREFETCH_AHEAD]);
        *ch = (change_t){.key = en->key,
                         .klen = en->klen,
                         .wend = en->wend,
                         .existed = vals[i] != NULL,
                         .accs = en->acc};
        if (!vals[i])
            continue;
        e = decode_value(m, (const uint8_t *)vals[i], vlens[i], &ch->old_end, stored);
        if (e) {
            if (e == SL_ERR_STATE)
                snprintf(errstr, errstr_size, "state %s: a stored aggregate is corrupt",
                         m->state_dir);
            goto done;
        }
        for (int a = 0; a < c->naggs; a++) {
            if ((e = sl__acc_merge_older(&c->aggs[a], &en->acc[a], &stored[a], &t->arena)))
                goto done;
        }
    }
    e = apply(m, chs, n);
done:
    sl__store_vals_release(pins);
    free(keys);
    free(klens);
    free(vals);
    free(vlens);
    return e;
}

/* ---- session windows: a prefix scan per key, then merging overlaps ---- */

typedef struct session {
    const uint8_t *key;
    uint32_t klen;
    int64_t end;
    sl_acc_t *accs;
    int stored; /* read from the state (else made by the batch) */
} session_t;

typedef struct session_list {
    sl_merge_t *m;
    session_t *s;
    size_t n, cap;
} session_list_t;

static int push_session(session_list_t *l, session_t s)
{
    if (SL_GROW(l->s, l->cap, l->n + 1, 16))
        return -1;
    l->s[l->n++] = s;
    return 0;
}

static int collect_stored(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    session_list_t *l = opaque;
    sl_merge_t *m = l->m;
    sl_arena_t *a = &m->batch->arena;
    session_t s = {.stored = 1, .klen = (uint32_t)klen};
    /* The scan's buffers are only valid in this call: keep copies. */
    uint8_t *kc = sl__arena_dup(a, k, klen);
    uint8_t *vc = sl__arena_dup(a, v, vlen ? vlen : 1);
    s.accs = sl__arena_alloc(a, (size_t)(m->c->naggs ? m->c->naggs : 1) * sizeof(sl_acc_t));
    if (!kc || !vc || !s.accs) {
        m->err = SL_ERR_NOMEM;
        return 1;
    }
    s.key = kc;
    if ((m->err = decode_value(m, vc, vlen, &s.end, s.accs)) != SL_OK)
        return 1;
    if (push_session(l, s) < 0) {
        m->err = SL_ERR_NOMEM;
        return 1;
    }
    return 0;
}

static int64_t session_start(const session_t *s)
{
    return (int64_t)(sl__be64_get(s->key + s->klen - 8) ^ (1ULL << 63));
}

static int cmp_session(const void *a, const void *b)
{
    const session_t *x = a, *y = b;
    uint32_t n = x->klen < y->klen ? x->klen : y->klen;
    int r = memcmp(x->key, y->key, n);
    if (r)
        return r;
    return x->stored != y->stored ? y->stored - x->stored : 0; /* stored first */
}

static sl_err_t merge_sessions(sl_merge_t *m, char *errstr, size_t errstr_size)
{
    const sl_plan_t *c = m->c;
    sl_table_t *t = m->batch;
    sl_arena_t *a = &t->arena;
    size_t n = t->n;
    if (n == 0)
        return SL_OK;
    sl_entry_t **sorted = malloc(n * sizeof(*sorted));
    session_list_t l = {.m = m};
    change_t *chs = NULL;
    size_t nch = 0, capch = 0;
    sl_buf_t xk;
    sl__buf_init(&xk);
    sl_err_t e = SL_ERR_NOMEM;
    if (!sorted)
        goto done;
    memcpy(sorted, t->order, n * sizeof(*sorted));
    sl__entries_sort(sorted, n);
    for (size_t i = 0; i < n;) {
        const uint8_t *g = sorted[i]->key;
        uint32_t glen = sorted[i]->klen - WSTART_LEN;
        size_t j = i;
        while (j < n && sorted[j]->klen == glen + WSTART_LEN && !memcmp(sorted[j]->key, g, glen))
            j++;
        /* This key's sessions: the stored ones, then the batch's. */
        l.n = 0;
        m->err = SL_OK;
        if ((e = sl__store_scan(m->store, SL_CF_AGG, g, glen, collect_stored, &l, errstr,
                                errstr_size)))
            goto done;
        if ((e = m->err)) {
            if (e == SL_ERR_STATE)
                snprintf(errstr, errstr_size, "state %s: a stored session is corrupt",
                         m->state_dir);
            goto done;
        }
        for (size_t k = i; k < j; k++) {
            session_t s = {.key = sorted[k]->key,
                           .klen = sorted[k]->klen,
                           .end = sorted[k]->wend,
                           .accs = sorted[k]->acc};
            if (push_session(&l, s) < 0)
                goto nomem;
        }
        /* Sorted by start (the key's last value): stored before batch on equal starts, so
         * a merged session keeps its stored key. */
        qsort(l.s, l.n, sizeof(*l.s), cmp_session);
        for (size_t k = 0; k < l.n;) {
            session_t *first = &l.s[k];
            int64_t end = first->end;
            size_t last = k + 1;
            while (last < l.n && session_start(&l.s[last]) <= end) {
                if (l.s[last].end > end)
                    end = l.s[last].end;
                last++;
            }
            int has_batch = 0;
            for (size_t x = k; x < last; x++)
                has_batch |= !l.s[x].stored;
            if (has_batch) {
                if (SL_GROW(chs, capch, nch + 1, 64))
                    goto nomem;
                change_t *ch = &chs[nch++];
                *ch = (change_t){.key = first->key,
                                 .klen = first->klen,
                                 .wend = end,
                                 .existed = first->stored,
                                 .old_end = first->end};
                ch->accs = sl__arena_alloc(a, (size_t)(c->naggs ? c->naggs : 1) * sizeof(sl_acc_t));
                if (!ch->accs || mark_handled(m, ch->key, ch->klen) < 0)
                    goto nomem;
                memset(ch->accs, 0, (size_t)c->naggs * sizeof(sl_acc_t));
                for (size_t x = k; x < last; x++) {
                    for (int ai = 0; ai < c->naggs; ai++) {
                        if ((e = sl__acc_merge(&c->aggs[ai], &ch->accs[ai], &l.s[x].accs[ai], a)))
                            goto done;
                    }
                    /* Stored sessions merged into an earlier one are gone. */
                    if (x > k && l.s[x].stored) {
                        if (drop(m, l.s[x].key, l.s[x].klen, l.s[x].end, &xk) ||
                            mark_handled(m, l.s[x].key, l.s[x].klen) < 0)
                            goto nomem;
                    }
                }
            }
            k = last;
        }
        i = j;
    }
    e = apply(m, chs, nch);
    goto done;
nomem:
    e = SL_ERR_NOMEM;
done:
    free(sorted);
    free(l.s);
    free(chs);
    sl__buf_fini(&xk);
    return e;
}

/* ---- closing windows and the complete table ---- */

typedef struct expired {
    sl_merge_t *m;
    int64_t wm; /* the watermark of the task being scanned */
    const uint8_t **keys;
    size_t *klens;
    int64_t *ends;
    size_t n, cap;
} expired_t;

static int collect_expired(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    expired_t *x = opaque;
    sl_merge_t *m = x->m;
    const size_t head = SL_TASK_PREFIX + 8;
    if (klen < head + SL_TASK_PREFIX) {
        m->err = SL_ERR_STATE;
        return 1;
    }
    int64_t end = (int64_t)(sl__be64_get((const uint8_t *)k + SL_TASK_PREFIX) ^ (1ULL << 63));
    if (!sl__window_closed(end, x->wm))
        return 1; /* the task's index is in end order: the rest is open */
    const uint8_t *key = (const uint8_t *)k + head;
    klen -= head;
    if (handled(m, key, (uint32_t)klen))
        return 0; /* this batch wrote or dropped it already */
    const sl_grow_t arrays[] = {{&x->keys, sizeof(*x->keys)},
                                {&x->klens, sizeof(*x->klens)},
                                {&x->ends, sizeof(*x->ends)}};
    if ((m->err = sl__grow(&x->cap, x->n + 1, 256, arrays, 3)))
        return 1;
    if (!(x->keys[x->n] = sl__arena_dup(&m->batch->arena, key, klen))) {
        m->err = SL_ERR_NOMEM;
        return 1;
    }
    x->klens[x->n] = klen;
    x->ends[x->n++] = end;
    return 0;
}

static sl_err_t close_windows(sl_merge_t *m, char *errstr, size_t errstr_size)
{
    const sl_plan_t *c = m->c;
    if (!closing(c))
        return SL_OK;
    expired_t x = {.m = m};
    const char **vals = NULL;
    size_t *vlens = NULL;
    sl_store_vals_t *pins = NULL;
    sl_buf_t xk;
    sl__buf_init(&xk);
    m->err = SL_OK;
    sl_err_t e = SL_OK;
    /* Each task's windows by its own watermark, from its part of the index. */
    for (int i = 0; i < m->ntasks && !e && !m->err; i++) {
        if (m->tasks[i].wm == SL_WM_NONE)
            continue;
        uint8_t prefix[SL_TASK_PREFIX];
        sl__task_put(prefix, m->tasks[i].task);
        x.wm = m->tasks[i].wm;
        e = sl__store_scan(m->store, SL_CF_EXPIRY, prefix, sizeof(prefix), collect_expired, &x,
                           errstr, errstr_size);
    }
    if (!e && (e = m->err) == SL_ERR_STATE)
        snprintf(errstr, errstr_size, "state %s: the expiry index is corrupt", m->state_dir);
    if (e || x.n == 0)
        goto done;
    if (c->mode == SL_MODE_APPEND) {
        /* The final rows of the closed windows. */
        e = SL_ERR_NOMEM;
        vals = calloc(x.n, sizeof(*vals));
        vlens = malloc(x.n * sizeof(*vlens));
        sl_acc_t *accs =
            sl__arena_alloc(&m->batch->arena, (size_t)(c->naggs ? c->naggs : 1) * sizeof(sl_acc_t));
        if (!vals || !vlens || !accs)
            goto done;
        /* In the index's order (by window end), not the store's. */
        if ((e = sl__store_multiget(m->store, x.n, (const char *const *)x.keys, x.klens, 0, &pins,
                                    vals, vlens, errstr, errstr_size)))
            goto done;
        for (size_t i = 0; i < x.n; i++) {
            int64_t wend;
            if (!vals[i])
                continue; /* an index entry without its aggregate: nothing to emit */
            if ((e = decode_value(m, (const uint8_t *)vals[i], vlens[i], &wend, accs))) {
                if (e == SL_ERR_STATE)
                    snprintf(errstr, errstr_size, "state %s: a stored aggregate is corrupt",
                             m->state_dir);
                goto done;
            }
            if ((e = emit(m, x.keys[i], (uint32_t)x.klens[i], wend, accs)))
                goto done;
        }
    }
    for (size_t i = 0; i < x.n; i++) {
        if ((e = drop(m, x.keys[i], (uint32_t)x.klens[i], x.ends[i], &xk)))
            goto done;
        m->closed++;
    }
    e = SL_OK;
done:
    sl__store_vals_release(pins);
    free(vals);
    free(vlens);
    free(x.keys);
    free(x.klens);
    free(x.ends);
    sl__buf_fini(&xk);
    return e;
}

static int emit_stored(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    sl_merge_t *m = opaque;
    const sl_plan_t *c = m->c;
    if (handled(m, (const uint8_t *)k, (uint32_t)klen))
        return 0; /* emitted with the batch's changes */
    sl_acc_t *accs =
        sl__arena_alloc(&m->batch->arena, (size_t)(c->naggs ? c->naggs : 1) * sizeof(sl_acc_t));
    int64_t wend;
    if (!accs) {
        m->err = SL_ERR_NOMEM;
        return 1;
    }
    if ((m->err = decode_value(m, (const uint8_t *)v, vlen, &wend, accs)) ||
        (m->err = emit(m, (const uint8_t *)k, (uint32_t)klen, wend, accs)))
        return 1;
    return 0;
}

sl_err_t sl__merge_batch(sl_merge_t *m, sl_store_t *st, sl_store_batch_t *wb, sl_table_t *batch,
                         const sl_merge_task_t *tasks, int ntasks, char *errstr,
                         size_t errstr_size)
{
    const sl_plan_t *c = m->c;
    m->store = st;
    m->wb = wb;
    m->batch = batch;
    m->tasks = tasks;
    m->ntasks = ntasks;
    m->task_hint = 0;
    m->nrows = 0;
    m->closed = 0;
    sl__table_clear(&m->handled);
    sl_err_t e = c->window == SL_WIN_SESSION ? merge_sessions(m, errstr, errstr_size)
                                             : merge_keys(m, errstr, errstr_size);
    if (!e)
        e = close_windows(m, errstr, errstr_size);
    if (!e && c->mode == SL_MODE_COMPLETE) {
        /* The whole table of each task of the batch (the store may hold other tasks'
         * state too, which this instance does not run now). */
        m->err = SL_OK;
        for (int i = 0; i < ntasks && !e && !m->err; i++) {
            uint8_t prefix[SL_TASK_PREFIX];
            sl__task_put(prefix, tasks[i].task);
            e = sl__store_scan(st, SL_CF_AGG, prefix, sizeof(prefix), emit_stored, m, errstr,
                               errstr_size);
        }
        if (!e && (e = m->err) == SL_ERR_STATE)
            snprintf(errstr, errstr_size, "state %s: a stored aggregate is corrupt", m->state_dir);
    }
    if (e == SL_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory while merging a batch into the state");
    else if (e == SL_ERR_OVERFLOW)
        snprintf(errstr, errstr_size, "%s", m->why);
    return e;
}
