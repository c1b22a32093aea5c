/*
 * task.c - opening, restoring and closing a job's tasks (see task.h).
 *
 * Opening a task, in order:
 *   1. its local state: batch, nonce, watermarks, changelog offset (task meta), and the
 *      records its outbox holds (a batch committed here whose publication a crash cut);
 *   2. its producer: init_transactions fences the task's earlier producer, wherever it
 *      runs, and aborts its open transaction, so the changelog's read_committed end is
 *      final;
 *   3. its changelog partition, read to its end from where the local state knows it
 *      (all of it into an empty state): state records are written into the store, each
 *      marker tells which batch they complete. A marker of the outbox's batch means
 *      Kafka has it; another marker at or past it means another instance went on from
 *      an earlier batch, and the local state (which holds a batch Kafka never got) is
 *      dropped and restored whole;
 *   4. the outcome: the last marker's meta when it is newer than the local state; or the
 *      outbox's batch published, and its records written again over any older ones the
 *      read replayed; or, when the changelog has never had this state (a store from
 *      before changelogs, a topic made anew), all of it published as one batch.
 * Without a changelog only the outbox is published, by reading the output topic.
 */
#include "task.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "commit/changelog.h"
#include "commit/outbox.h"
#include "commit/reconcile.h"
#include "commit/restore.h"
#include "job_int.h"
#include "kafka.h"
#include "layout.h"
#include "log.h"
#include "query/window.h"

int sl__task_of(const sl_job_t *job, int partition)
{
    return job->conf->source.co_partitioned && partition >= 0 ? partition : 0;
}

sl_err_t sl__tasks_init(sl_job_t *job, int n)
{
    job->tasks = calloc((size_t)(n > 0 ? n : 1), sizeof(*job->tasks));
    if (!job->tasks)
        return SL_ERR_NOMEM;
    job->ntasks = n;
    for (int i = 0; i < n; i++) {
        sl_task_t *t = &job->tasks[i];
        t->id = i;
        t->wm = t->wm_late = t->maxev = SL_WM_NONE;
        t->clog = t->clog_stored = -1;
    }
    return SL_OK;
}

void sl__tasks_fini(sl_job_t *job)
{
    free(job->tasks);
    job->tasks = NULL;
    job->ntasks = 0;
}

/* ---- the local state ---- */

/* A task's 8-byte meta value: SL_OK, SL_ERR_NOTFOUND, or an error in @p errstr. */
static sl_err_t meta_u64(sl_store_t *st, int task, const char *name, uint64_t *out, char *errstr,
                         size_t errstr_size)
{
    char key[64], *v = NULL;
    size_t vl;
    int kl = sl__meta_key(key, sizeof(key), task, "%s", name);
    sl_err_t e = sl__store_get(st, SL_CF_META, key, (size_t)kl, &v, &vl, errstr, errstr_size);
    if (e)
        return e;
    if (vl != 8) {
        free(v);
        snprintf(errstr, errstr_size, "state: task %d's %s is corrupt", task, name);
        return SL_ERR_STATE;
    }
    *out = sl__be64_get((const uint8_t *)v);
    free(v);
    return SL_OK;
}

static sl_err_t load_local(sl_job_t *job, sl_task_t *t, char *errstr, size_t errstr_size)
{
    sl_store_t *st = job->run.store;
    struct {
        const char *name;
        int64_t *to, dflt;
    } f[] = {{"seq", &t->seq, 0},          {"wm", &t->wm, SL_WM_NONE},
             {"wm_evict", &t->wm_late, SL_WM_NONE}, {"maxev", &t->maxev, SL_WM_NONE},
             {"clog", &t->clog_stored, -1}};
    for (size_t i = 0; i < SL_ARRAY_LEN(f); i++) {
        uint64_t v;
        sl_err_t e = meta_u64(st, t->id, f[i].name, &v, errstr, errstr_size);
        if (e == SL_ERR_NOTFOUND)
            *f[i].to = f[i].dflt;
        else if (e)
            return e;
        else
            *f[i].to = (int64_t)v;
    }
    uint64_t nonce = 0;
    sl_err_t e = meta_u64(st, t->id, "nonce", &nonce, errstr, errstr_size);
    if (e && e != SL_ERR_NOTFOUND)
        return e;
    t->nonce = nonce;
    if (t->seq < 0) {
        snprintf(errstr, errstr_size, "state %s: task %d's batch sequence is corrupt",
                 job->conf->state.dir, t->id);
        return SL_ERR_STATE;
    }
    /* State written before the two watermarks were kept: lateness is checked against the
     * last one for a batch, as it was then. */
    if (t->wm_late == SL_WM_NONE)
        t->wm_late = t->wm;
    t->clog = t->clog_stored;
    return SL_OK;
}

/* The records of a task's outbox: batches committed here that Kafka may lack. */
typedef struct pending {
    sl_buf_t data;
    sl_out_row_t *rows;
    size_t *offs, *lens;
    size_t n, cap;
    sl_err_t err;
} pending_t;

static int collect(void *opaque, int stream, int64_t seq, uint32_t idx, const uint8_t *rec,
                   size_t len)
{
    (void)stream;
    pending_t *pr = opaque;
    const sl_grow_t arrays[] = {{&pr->rows, sizeof(*pr->rows)},
                                {&pr->offs, sizeof(*pr->offs)},
                                {&pr->lens, sizeof(*pr->lens)}};
    if ((pr->err = sl__grow(&pr->cap, pr->n + 1, 256, arrays, 3)))
        return 1;
    pr->rows[pr->n] = (sl_out_row_t){.seq = seq, .idx = idx};
    pr->offs[pr->n] = pr->data.len;
    pr->lens[pr->n] = len;
    if (sl__buf_append(&pr->data, rec, len)) {
        pr->err = SL_ERR_NOMEM;
        return 1;
    }
    pr->n++;
    return 0;
}

static sl_err_t load_pending(sl_store_t *st, int task, pending_t *pr, char *errstr,
                             size_t errstr_size)
{
    sl_err_t e = sl__outbox_scan(st, task, collect, pr, errstr, errstr_size);
    if (!e && pr->err) {
        e = pr->err;
        snprintf(errstr, errstr_size, "task %d: the outbox cannot be read: %s", task,
                 sl_err2str(e));
    }
    for (size_t i = 0; !e && i < pr->n; i++) {
        if (sl__outbox_row(pr->data.p + pr->offs[i], pr->lens[i], &pr->rows[i]) < 0) {
            snprintf(errstr, errstr_size, "state: task %d: a corrupt outbox entry (batch %" PRId64 ")",
                     task, pr->rows[i].seq);
            e = SL_ERR_STATE;
        }
    }
    return e;
}

static void pending_fini(pending_t *pr)
{
    sl__buf_fini(&pr->data);
    free(pr->rows);
    free(pr->offs);
    free(pr->lens);
    memset(pr, 0, sizeof(*pr));
}

/* ---- markers and meta ---- */

static sl_err_t add_u64(sl_marker_t *m, const char *name, uint64_t v)
{
    uint8_t b[8];
    sl__be64_put(b, v);
    return sl__marker_add(m, name, b, 8);
}

static sl_err_t add_mark(void *opaque, const char *name, const void *v, size_t vlen)
{
    return sl__marker_add(opaque, name, v, vlen);
}

sl_err_t sl__task_snapshot(sl_job_t *job, int id, sl_marker_t *m)
{
    const sl_task_t *t = &job->tasks[id];
    sl_err_t e = add_u64(m, "seq", (uint64_t)t->seq);
    if (!e)
        e = add_u64(m, "nonce", t->nonce);
    const int64_t times[] = {t->wm, t->wm_late, t->maxev};
    const char *names[] = {"wm", "wm_evict", "maxev"};
    for (int i = 0; i < 3 && !e; i++) {
        if (times[i] != SL_WM_NONE)
            e = add_u64(m, names[i], (uint64_t)times[i]);
    }
    const sl_source_t *src = &job->run.src;
    for (int ti = 0; ti < src->ntopics && !e; ti++) {
        for (int p = 0; p < src->topics[ti].nparts && !e; p++) {
            const sl_part_t *part = &src->topics[ti].parts[p];
            if (part->pos < 0 || sl__task_of(job, p) != id)
                continue;
            char name[600];
            snprintf(name, sizeof(name), "pos/%s/%d", src->topics[ti].name, p);
            e = add_u64(m, name, (uint64_t)part->pos);
        }
    }
    if (!e && job->run.lsrc)
        e = sl__lsrc_marks(job->run.lsrc, add_mark, m);
    return e;
}

/* The meta entries of a task in the store that a marker carries (all but what only this
 * store knows: where its changelog and output were confirmed to). */
static int meta_cb(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    void **a = opaque;
    sl_marker_t *m = a[0];
    size_t plen = (size_t)(uintptr_t)a[1];
    char name[1200];
    if (klen <= plen || klen - plen >= sizeof(name))
        return 0;
    memcpy(name, k + plen, klen - plen);
    name[klen - plen] = 0;
    if (!strcmp(name, "clog") || !strncmp(name, "pub/", 4))
        return 0;
    if (sl__marker_add(m, name, v, vlen)) {
        a[2] = (void *)1;
        return 1;
    }
    return 0;
}

static sl_err_t stored_snapshot(sl_store_t *st, int id, sl_marker_t *m, char *errstr,
                                size_t errstr_size)
{
    char prefix[32];
    int pl = sl__meta_prefix(prefix, sizeof(prefix), id);
    void *a[3] = {m, (void *)(uintptr_t)pl, NULL};
    sl_err_t e = sl__store_scan(st, SL_CF_META, prefix, (size_t)pl, meta_cb, a, errstr, errstr_size);
    return e ? e : a[2] ? SL_ERR_NOMEM : SL_OK;
}

/* The input offsets a task's meta holds, for its transaction's offset commit. */
static rd_kafka_topic_partition_list_t *offsets_of(const sl_marker_t *m)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < m->nmeta; i++) {
        const sl_meta_entry_t *e = &m->meta[i];
        if (strncmp(e->name, "pos/", 4) || e->vlen != 8)
            continue;
        char topic[600];
        const char *slash = strrchr(e->name + 4, '/');
        if (!slash || (size_t)(slash - (e->name + 4)) >= sizeof(topic))
            continue;
        memcpy(topic, e->name + 4, (size_t)(slash - (e->name + 4)));
        topic[slash - (e->name + 4)] = 0;
        rd_kafka_topic_partition_list_add(l, topic, (int32_t)strtol(slash + 1, NULL, 10))->offset =
            (int64_t)sl__be64_get(e->val);
    }
    return l;
}

/* Writes @p m's meta as the task's (its old meta gone), and the in-memory task after it. */
static void adopt_marker(sl_job_t *job, sl_task_t *t, const sl_marker_t *m, sl_store_batch_t *wb)
{
    sl_store_t *st = job->run.store;
    char from[32], to[32];
    int fl = sl__meta_prefix(from, sizeof(from), t->id);
    memcpy(to, from, (size_t)fl);
    to[fl - 1] = '/' + 1;
    sl__store_batch_delete_range(wb, st, SL_CF_META, from, (size_t)fl, to, (size_t)fl);
    t->seq = m->seq;
    t->nonce = m->nonce;
    t->wm = t->wm_late = t->maxev = SL_WM_NONE;
    for (size_t i = 0; i < m->nmeta; i++) {
        const sl_meta_entry_t *e = &m->meta[i];
        char key[1300];
        int kl = sl__meta_key(key, sizeof(key), t->id, "%s", e->name);
        if (kl > 0)
            sl__store_batch_put(wb, st, SL_CF_META, key, (size_t)kl, e->val, e->vlen);
        int64_t v = e->vlen == 8 ? (int64_t)sl__be64_get(e->val) : SL_WM_NONE;
        if (!strcmp(e->name, "wm"))
            t->wm = v;
        else if (!strcmp(e->name, "wm_evict"))
            t->wm_late = v;
        else if (!strcmp(e->name, "maxev"))
            t->maxev = v;
    }
    if (t->wm_late == SL_WM_NONE)
        t->wm_late = t->wm;
}

static void put_u64(sl_store_t *st, sl_store_batch_t *wb, int task, const char *name, uint64_t v)
{
    char key[64];
    uint8_t b[8];
    int kl = sl__meta_key(key, sizeof(key), task, "%s", name);
    sl__be64_put(b, v);
    sl__store_batch_put(wb, st, SL_CF_META, key, (size_t)kl, b, 8);
}

/* ---- reading the changelog ---- */

typedef struct opening {
    sl_task_t *t;
    int64_t from;   /* where reading started */
    int probe;      /* only looking for markers: the local state stays unless there are */
    int check;      /* only looking for the outbox's batch: nothing is restored */
    int restart;    /* just moved back to the start of its partition */
    int diverged;   /* check: another instance went on past the outbox's batch */
    int full;       /* the local state was dropped: all of it is restored */
    int at_end;
    int64_t end;    /* the changelog's end, once read to it */
    int64_t read_ms; /* how long reading it to its end took */
    uint64_t markers, records;
    sl_marker_t last; /* the last marker read (seq 0: none) */
    int ours;         /* the outbox's batch has its marker: Kafka has it */
    pending_t pend;
    int64_t pend_seq; /* the outbox's last batch; 0 none */
    sl_restore_t r;
} opening_t;

/* Drops the task's part of the store, to restore all of it, in bulk. Synced: the
 * restore's table files are ingested durably, and a crash must not leave them over the
 * old state and its meta. */
static sl_err_t wipe(sl_job_t *job, opening_t *o, char *errstr, size_t errstr_size)
{
    sl_store_batch_t *wb = sl__store_batch_new();
    if (!wb)
        return SL_ERR_NOMEM;
    sl__restore_wipe_put(job->run.store, wb, o->t->id);
    sl_err_t e = sl__store_write(job->run.store, wb, 1, errstr, errstr_size);
    sl__store_batch_destroy(wb);
    o->r.bulk = 1;
    o->full = 1;
    o->probe = 0;
    o->t->seq = 0;
    o->t->nonce = 0;
    o->t->clog_stored = -1;
    o->pend_seq = 0;
    pending_fini(&o->pend);
    sl__marker_fini(&o->last);
    return e;
}

static sl_err_t seek_start(rd_kafka_t *rk, const char *topic, int partition, char *errstr,
                           size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = 0;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(rk, l, 10000);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        snprintf(errstr, errstr_size, "changelog %s[%d]: cannot read it from its start: %s", topic,
                 partition, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return SL_ERR_KAFKA;
    }
    return SL_OK;
}

/* A marker: which batch the records before it complete. */
static sl_err_t on_marker(sl_job_t *job, rd_kafka_t *rk, opening_t *o, const rd_kafka_message_t *m,
                          char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_marker_t mk;
    char why[300];
    sl_err_t e = sl__marker_decode(m->payload, m->len, &mk, why, sizeof(why));
    if (e) {
        snprintf(errstr, errstr_size, "changelog %s[%d] offset %" PRId64 ": %s",
                 job->clog_topic, m->partition, m->offset, why);
        sl__marker_fini(&mk);
        return e;
    }
    if (mk.fingerprint != c->fingerprint || mk.task != o->t->id) {
        snprintf(errstr, errstr_size,
                 "changelog %s[%d] holds the state of an incompatible job (its batch %" PRId64
                 " was written by a job of fingerprint %016" PRIx64 ", task %d; this one's is "
                 "%016" PRIx64 "): the query or the input schema changed. Give the job another "
                 "name, or delete the topic to start over",
                 job->clog_topic, m->partition, mk.seq, mk.fingerprint, mk.task, c->fingerprint);
        sl__marker_fini(&mk);
        return SL_ERR_MISMATCH;
    }
    o->markers++;
    int diverged = 0;
    if (o->pend_seq && !o->full) {
        if (mk.seq == o->pend_seq && mk.nonce == o->t->nonce)
            o->ours = 1;
        else if (mk.seq >= o->pend_seq)
            diverged = 1;
    }
    if (o->check) {
        o->diverged |= diverged;
        sl__marker_fini(&mk);
        return SL_OK;
    }
    if (diverged || o->probe) {
        /* Kafka went on without what is here (or never had it): all of the task's state
         * comes from the changelog. */
        sl_log(SL_LOG_WARN, "task",
               "task %d: %s; its state is restored whole from %s", o->t->id,
               diverged ? "another instance went on from before the batch this state directory "
                          "committed last (its publication was cut), so that batch is dropped"
                        : "the changelog holds state this state directory does not know",
               job->clog_topic);
        sl__marker_fini(&mk);
        sl__restore_fini(&o->r);
        if ((e = sl__restore_init(&o->r, job->run.store, o->t->id, c->plan.window != SL_WIN_NONE,
                                  sl__merge_closing(&c->plan))) ||
            (e = wipe(job, o, errstr, errstr_size)))
            return e;
        o->markers = 0;
        o->restart = 1;
        return seek_start(rk, job->clog_topic, o->t->id, errstr, errstr_size);
    }
    sl__marker_fini(&o->last);
    o->last = mk;
    return SL_OK;
}

static sl_err_t on_record(sl_job_t *job, rd_kafka_t *rk, opening_t *o, const rd_kafka_message_t *m,
                          char *errstr, size_t errstr_size)
{
    const uint8_t *k = m->key;
    o->records++;
    if (m->key_len == 1 && k[0] == SL_CLOG_MARKER)
        return on_marker(job, rk, o, m, errstr, errstr_size);
    if (m->key_len < 1 || k[0] != SL_CLOG_STATE) {
        snprintf(errstr, errstr_size,
                 "changelog %s[%d] offset %" PRId64 ": a record that is not sluice's (its key "
                 "is neither a state key nor a marker): is the topic another program's?",
                 job->clog_topic, m->partition, m->offset);
        return SL_ERR_STATE;
    }
    if (o->probe || o->check)
        return SL_OK;
    return sl__restore_record(&o->r, k + 1, m->key_len - 1, m->payload, m->payload ? m->len : 0,
                              errstr, errstr_size);
}

/* The read of the changelog partitions of the tasks being opened. */
typedef struct reading {
    sl_job_t *job;
    rd_kafka_t *rk;
    opening_t *ops;
    int n, left; /* tasks, and those not read to their end */
    int64_t t0;  /* when reading began */
    sl_err_t e;
    char *errstr;
    size_t errstr_size;
} reading_t;

/* Marks a task read to its end, or (@p at 0) not: a record came after the end it saw. */
static void at_end(reading_t *rd, opening_t *o, int at)
{
    if (at)
        o->read_ms = sl__now_ms() - rd->t0;
    if (at && !o->at_end)
        rd->left--;
    else if (!at && o->at_end)
        rd->left++;
    o->at_end = at;
}

static void on_message(void *opaque, rd_kafka_message_t *m)
{
    reading_t *rd = opaque;
    sl_job_t *job = rd->job;
    opening_t *o = NULL;
    for (int j = 0; j < rd->n && !o; j++)
        o = rd->ops[j].t->id == m->partition ? &rd->ops[j] : NULL;
    if (rd->e || !o)
        return;
    char *errstr = rd->errstr;
    size_t errstr_size = rd->errstr_size;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        at_end(rd, o, 1);
        o->end = m->offset;
    } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
               m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
        int64_t lo = -1, hi = -1;
        rd_kafka_query_watermark_offsets(rd->rk, job->clog_topic, o->t->id, &lo, &hi, 10000);
        if (o->full || o->check) {
            snprintf(errstr, errstr_size,
                     "changelog %s[%d] starts at offset %" PRId64 " and ends at %" PRId64
                     ", not holding offset %" PRId64 ": records of it were deleted "
                     "(retention, DeleteRecords, the topic made anew), so task %d's state "
                     "cannot be restored from it",
                     job->clog_topic, o->t->id, lo, hi, o->from, o->t->id);
            rd->e = SL_ERR_STATE;
        } else {
            /* The changelog no longer reaches where this state knew it (a topic made
             * anew): whether it holds other state decides. */
            sl_log(SL_LOG_WARN, "task",
                   "task %d: changelog %s[%d] ends at %" PRId64 ", before offset %" PRId64
                   " this state directory published up to; reading it from its start",
                   o->t->id, job->clog_topic, o->t->id, hi, o->from);
            o->probe = 1;
            o->markers = 0;
            at_end(rd, o, 0);
            rd->e = seek_start(rd->rk, job->clog_topic, o->t->id, errstr, errstr_size);
        }
    } else if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
            m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
            sl_log(SL_LOG_WARN, "task", "changelog: %s", rd_kafka_message_errstr(m));
        } else {
            snprintf(errstr, errstr_size, "changelog %s[%d]: %s", job->clog_topic,
                     m->partition, rd_kafka_message_errstr(m));
            rd->e = SL_ERR_KAFKA;
        }
    } else {
        /* A record after an end seen: the end moved (a transaction decided since). */
        at_end(rd, o, 0);
        rd->e = on_record(job, rd->rk, o, m, errstr, errstr_size);
        /* Read again from the start (a restore replacing the local state): its end comes
         * again. */
        if (!rd->e && o->restart) {
            o->restart = 0;
            at_end(rd, o, 0);
        }
    }
}

/* Reads the tasks' changelog partitions to their ends, each from its o->from. */
static sl_err_t read_changelogs(sl_job_t *job, opening_t *ops, int n, char *errstr,
                                size_t errstr_size)
{
    rd_kafka_t *rk = sl__kafka_reader(&job->conf->kafka, "changelog", errstr, errstr_size);
    if (!rk)
        return SL_ERR_KAFKA;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, job->clog_topic, ops[i].t->id)->offset = ops[i].from;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    reading_t rd = {.job = job, .rk = rk, .ops = ops, .n = n, .left = n, .t0 = sl__now_ms(),
                    .errstr = errstr, .errstr_size = errstr_size};
    while (rd.left > 0 && !rd.e && !atomic_load(&job->stop) && !atomic_load(&job->opener.stop))
        sl__kafka_consume(rk, q, 1000, 10000, on_message, &rd, NULL);
    sl_err_t e = rd.e;
    for (int i = 0; i < n && !e; i++)
        e = sl__restore_flush(&ops[i].r, errstr, errstr_size);
    for (int i = 0; i < n; i++)
        atomic_fetch_add(&job->stats.records_restored, ops[i].records);
    atomic_fetch_add(&job->stats.restore_ms, sl__now_ms() - rd.t0);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return e;
}

/* ---- what the changelog lacks, published ---- */

/* Publishes the outbox's batches, each in a transaction of its own. */
static sl_err_t publish_pending(sl_job_t *job, opening_t *o, char *errstr, size_t errstr_size)
{
    sl_txn_t *txn = job->run.sink.txns[o->t->id];
    sl_err_t e = SL_OK;
    for (size_t i = 0; i < o->pend.n && !e;) {
        size_t j = i;
        while (j < o->pend.n && o->pend.rows[j].seq == o->pend.rows[i].seq)
            j++;
        /* The batch's marker carries its positions, committed to the group with it. */
        rd_kafka_topic_partition_list_t *offs = NULL;
        for (size_t k = i; k < j; k++) {
            if (o->pend.rows[k].dest != SL_DEST_MARKER)
                continue;
            sl_marker_t mk;
            char why[256];
            if (!sl__marker_decode(o->pend.rows[k].val, o->pend.rows[k].vlen, &mk, why,
                                   sizeof(why)))
                offs = offsets_of(&mk);
            sl__marker_fini(&mk);
        }
        e = sl__sink_publish(txn, o->pend.rows + i, j - i, 1, offs, "mid-reconcile", errstr,
                             errstr_size);
        if (offs)
            rd_kafka_topic_partition_list_destroy(offs);
        i = j;
    }
    if (!e)
        sl_log(SL_LOG_WARN, "task",
               "task %d: %zu record(s) of batch %" PRId64 " left in the outbox by an "
               "interrupted run, published now",
               o->t->id, o->pend.n, o->pend_seq);
    return e;
}

typedef struct seed {
    sl_txn_t *txn;
    sl_buf_t keys, vals;
    sl_out_row_t rows[1024];
    size_t n;
    uint64_t total;
    sl_err_t err;
    char *errstr;
    size_t errstr_size;
} seed_t;

static sl_err_t seed_flush(seed_t *s)
{
    /* The rows point into keys and vals: fixed up now that they stopped moving. */
    size_t ko = 0, vo = 0;
    for (size_t i = 0; i < s->n; i++) {
        s->rows[i].key = s->keys.p + ko;
        s->rows[i].val = s->vals.p + vo;
        ko += s->rows[i].klen;
        vo += s->rows[i].vlen;
    }
    sl_err_t e = s->n ? sl__sink_txn_add(s->txn, s->rows, s->n, s->errstr, s->errstr_size) : SL_OK;
    s->total += s->n;
    s->n = 0;
    sl__buf_reset(&s->keys);
    sl__buf_reset(&s->vals);
    return e;
}

static int seed_cb(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    seed_t *s = opaque;
    char tag = SL_CLOG_STATE;
    if (klen < SL_TASK_PREFIX ||
        sl__buf_append(&s->keys, &tag, 1) ||
        sl__buf_append(&s->keys, k + SL_TASK_PREFIX, klen - SL_TASK_PREFIX) ||
        (vlen && sl__buf_append(&s->vals, v, vlen))) {
        s->err = SL_ERR_NOMEM;
        return 1;
    }
    s->rows[s->n++] = (sl_out_row_t){.dest = SL_DEST_CHANGELOG,
                                     .klen = klen - SL_TASK_PREFIX + 1,
                                     .vlen = vlen};
    if (s->n == SL_ARRAY_LEN(s->rows) && (s->err = seed_flush(s)))
        return 1;
    return 0;
}

/*
 * The changelog has never had this task's state (a store from before changelogs, or the
 * topic was made anew): all of it goes out as one batch, with what the outbox holds (its
 * result rows; its marker, else one of the stored meta).
 */
static sl_err_t seed(sl_job_t *job, opening_t *o, char *errstr, size_t errstr_size)
{
    sl_store_t *st = job->run.store;
    sl_txn_t *txn = job->run.sink.txns[o->t->id];
    seed_t s = {.txn = txn, .errstr = errstr, .errstr_size = errstr_size};
    sl__buf_init(&s.keys);
    sl__buf_init(&s.vals);
    sl_marker_t mk = {0};
    sl_buf_t mj;
    sl__buf_init(&mj);
    sl_err_t e = SL_OK;
    const sl_out_row_t *marker = NULL;
    for (size_t i = 0; i < o->pend.n; i++) {
        if (o->pend.rows[i].dest == SL_DEST_MARKER)
            marker = &o->pend.rows[i];
    }
    char why[256];
    if (marker)
        e = sl__marker_decode(marker->val, marker->vlen, &mk, why, sizeof(why));
    if (!marker) {
        mk.task = o->t->id;
        mk.seq = o->t->seq;
        mk.nonce = o->t->nonce;
        mk.fingerprint = job->conf->fingerprint;
        mk.committed_ms = (int64_t)time(NULL) * 1000;
        if (!(e = stored_snapshot(st, o->t->id, &mk, errstr, errstr_size)))
            e = sl__marker_encode(&mk, job->conf->name, &mj);
    }
    if (e) {
        if (e == SL_ERR_STATE)
            snprintf(errstr, errstr_size, "task %d: %s", o->t->id, why);
        goto done;
    }
    sl_log(SL_LOG_INFO, "task", "task %d: changelog %s[%d] lacks its state: publishing all of it",
           o->t->id, job->clog_topic, o->t->id);
    if ((e = sl__sink_txn_begin(txn, errstr, errstr_size)))
        goto done;
    /* The outbox's result rows, then every aggregate, then the marker. */
    for (size_t i = 0; i < o->pend.n && !e; i++) {
        if (o->pend.rows[i].dest == SL_DEST_OUTPUT)
            e = sl__sink_txn_add(txn, &o->pend.rows[i], 1, errstr, errstr_size);
    }
    uint8_t prefix[SL_TASK_PREFIX];
    sl__task_put(prefix, o->t->id);
    if (!e)
        e = sl__store_scan(st, SL_CF_AGG, prefix, sizeof(prefix), seed_cb, &s, errstr, errstr_size);
    if (!e && s.err)
        e = s.err;
    if (!e)
        e = seed_flush(&s);
    if (!e) {
        sl_out_row_t mr = marker ? *marker
                                 : (sl_out_row_t){.dest = SL_DEST_MARKER,
                                                  .key = (const uint8_t *)"m",
                                                  .klen = 1,
                                                  .val = mj.p,
                                                  .vlen = mj.len};
        e = sl__sink_txn_add(txn, &mr, 1, errstr, errstr_size);
    }
    if (!e) {
        rd_kafka_topic_partition_list_t *offs = offsets_of(&mk);
        e = sl__sink_txn_commit(txn, offs, errstr, errstr_size);
        rd_kafka_topic_partition_list_destroy(offs);
    }
    if (!e)
        sl_log(SL_LOG_INFO, "task", "task %d: %" PRIu64 " aggregate(s) published to %s", o->t->id,
               s.total, job->clog_topic);
done:
    if (e == SL_ERR_NOMEM && !errstr[0])
        snprintf(errstr, errstr_size, "out of memory while publishing task %d's state", o->t->id);
    sl__marker_fini(&mk);
    sl__buf_fini(&mj);
    sl__buf_fini(&s.keys);
    sl__buf_fini(&s.vals);
    return e;
}

/* The outbox's changelog records written again, over older values a replay wrote. */
static sl_err_t reapply(sl_job_t *job, opening_t *o, char *errstr, size_t errstr_size)
{
    sl_err_t e = SL_OK;
    for (size_t i = 0; i < o->pend.n && !e; i++) {
        const sl_out_row_t *r = &o->pend.rows[i];
        if ((r->dest == SL_DEST_CHANGELOG || r->dest == SL_DEST_TOMBSTONE) && r->klen >= 1)
            e = sl__restore_record(&o->r, r->key + 1, r->klen - 1,
                                   r->dest == SL_DEST_TOMBSTONE ? NULL : r->val, r->vlen, errstr,
                                   errstr_size);
    }
    return e ? e : sl__restore_flush(&o->r, errstr, errstr_size);
}

/* Settles one task once its changelog is read: what its state is, what Kafka lacks. */
static sl_err_t settle(sl_job_t *job, opening_t *o, char *errstr, size_t errstr_size)
{
    sl_store_t *st = job->run.store;
    sl_task_t *t = o->t;
    sl_txn_t *txn = job->run.sink.txns[t->id];
    sl_store_batch_t *wb = sl__store_batch_new();
    if (!wb)
        return SL_ERR_NOMEM;
    sl_err_t e = SL_OK;
    const char *how;
    if (o->last.seq > 0 && (o->full || o->last.seq > t->seq)) {
        adopt_marker(job, t, &o->last, wb);
        sl__outbox_delete_put(st, wb, t->id, 0, INT64_MAX);
        how = o->full ? "restored" : "brought up to date";
    } else if (o->pend_seq && o->ours) {
        sl__outbox_delete_put(st, wb, t->id, 0, INT64_MAX);
        how = "its last batch is in Kafka";
    } else if (t->seq > 0 && o->markers == 0 && (t->clog_stored < 0 || o->probe)) {
        if ((e = seed(job, o, errstr, errstr_size)))
            goto done;
        sl__outbox_delete_put(st, wb, t->id, 0, INT64_MAX);
        how = "its state published to the changelog";
    } else if (o->pend_seq) {
        if ((e = publish_pending(job, o, errstr, errstr_size)) ||
            (e = reapply(job, o, errstr, errstr_size)))
            goto done;
        sl__outbox_delete_put(st, wb, t->id, 0, INT64_MAX);
        how = "its last batch published";
    } else {
        how = t->seq ? "up to date" : "new";
    }
    /* Where the changelog ends now: the next open reads from here. After a publication,
     * past what this instance published. */
    t->clog = o->end;
    if (txn && txn->clog_confirmed > t->clog)
        t->clog = txn->clog_confirmed;
    put_u64(st, wb, t->id, "clog", (uint64_t)t->clog);
    t->clog_stored = t->clog;
    e = sl__store_write(st, wb, 1, errstr, errstr_size);
    if (!e)
        sl_log(SL_LOG_INFO, "task",
               "task %d open at batch %" PRId64 " (%s; %" PRIu64 " changelog record(s) read in "
               "%.2f s, %" PRIu64 " aggregate(s) written, %" PRIu64 " deleted)",
               t->id, t->seq, how, o->records, (double)o->read_ms / 1000.0, o->r.puts,
               o->r.deletes);
done:
    sl__store_batch_destroy(wb);
    return e;
}

/* ---- open, close, recover ---- */

/* A task without a changelog: its outbox's rows published by reading the output topic. */
static sl_err_t open_local_only(sl_job_t *job, sl_task_t *t, char *errstr, size_t errstr_size)
{
    pending_t pr = {0};
    sl__buf_init(&pr.data);
    sl_err_t e = load_pending(job->run.store, t->id, &pr, errstr, errstr_size);
    sl_txn_t *txn = job->run.sink.txns ? job->run.sink.txns[t->id] : NULL;
    if (!e && pr.n && txn)
        e = sl__reconcile_output(job->run.store, txn, pr.rows, pr.n, errstr, errstr_size);
    sl_store_batch_t *wb = !e && pr.n ? sl__store_batch_new() : NULL;
    if (wb)
        e = sl__outbox_delete(job->run.store, wb, t->id, 0, INT64_MAX, errstr, errstr_size);
    sl__store_batch_destroy(wb);
    pending_fini(&pr);
    return e;
}

sl_err_t sl__task_open(sl_job_t *job, const int *ids, int n, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    opening_t *ops = calloc((size_t)(n ? n : 1), sizeof(*ops));
    if (!ops)
        return SL_ERR_NOMEM;
    sl_err_t e = SL_OK;
    int nops = 0;
    for (int i = 0; i < n && !e; i++) {
        sl_task_t *t = &job->tasks[ids[i]];
        if (t->state == SL_TASK_ACTIVE || t->state == SL_TASK_READY)
            continue;
        atomic_store(&t->fenced, 0);
        if ((e = load_local(job, t, errstr, errstr_size)))
            break;
        if (sl__sink_has_producers(&job->run.sink) &&
            (e = sl__sink_task_open(&job->run.sink, t->id, errstr, errstr_size)))
            break;
        opening_t *o = &ops[nops++];
        o->t = t;
        sl__buf_init(&o->pend.data);
        if (!job->clog_topic[0])
            continue;
        if ((e = sl__restore_init(&o->r, job->run.store, t->id, c->plan.window != SL_WIN_NONE,
                                  sl__merge_closing(&c->plan))) ||
            (e = load_pending(job->run.store, t->id, &o->pend, errstr, errstr_size)))
            break;
        for (size_t k = 0; k < o->pend.n; k++)
            o->pend_seq = o->pend.rows[k].seq;
        if (t->seq == 0) {
            o->from = 0; /* nothing here: all of it, over whatever a cut restore left */
            e = wipe(job, o, errstr, errstr_size);
        } else if (t->clog_stored >= 0) {
            o->from = t->clog_stored;
        } else {
            o->from = 0; /* never published here: does the changelog know this state? */
            o->probe = 1;
        }
    }
    if (!e && job->clog_topic[0] && nops)
        e = read_changelogs(job, ops, nops, errstr, errstr_size);
    for (int i = 0; i < nops && !e; i++) {
        if (job->clog_topic[0] && !ops[i].at_end) {
            /* Stopped while reading: nothing is settled, the task stays closed. */
            snprintf(errstr, errstr_size,
                     "task %d: stopped while restoring (%" PRIu64 " changelog record(s) read "
                     "from offset %" PRId64 "; job stop %d, opener stop %d)",
                     ops[i].t->id, ops[i].records, ops[i].from, atomic_load(&job->stop),
                     atomic_load(&job->opener.stop));
            e = SL_ERR_BUSY;
            break;
        }
        e = job->clog_topic[0] ? settle(job, &ops[i], errstr, errstr_size)
                            : open_local_only(job, ops[i].t, errstr, errstr_size);
        if (!e) {
            ops[i].t->state = SL_TASK_READY;
            atomic_fetch_add(&job->stats.tasks_opened, 1);
        }
    }
    for (int i = 0; i < nops; i++) {
        pending_fini(&ops[i].pend);
        sl__marker_fini(&ops[i].last);
        sl__restore_fini(&ops[i].r);
    }
    free(ops);
    return e;
}

void sl__task_close(sl_job_t *job, int id)
{
    sl_task_t *t = &job->tasks[id];
    sl__sink_task_close(&job->run.sink, id);
    t->state = SL_TASK_IDLE;
}

sl_err_t sl__task_recover(sl_job_t *job, int id, char *errstr, size_t errstr_size)
{
    sl_task_t *t = &job->tasks[id];
    sl_txn_t *txn = job->run.sink.txns[id];
    sl_err_t e = sl__sink_reset(txn, errstr, errstr_size);
    if (e)
        return e;
    opening_t o = {.t = t, .check = 1, .from = t->clog >= 0 ? t->clog : 0};
    sl__buf_init(&o.pend.data);
    if ((e = load_pending(job->run.store, id, &o.pend, errstr, errstr_size)))
        goto done;
    for (size_t k = 0; k < o.pend.n; k++)
        o.pend_seq = o.pend.rows[k].seq;
    if (!o.pend_seq)
        goto done;
    if (!job->clog_topic[0]) {
        e = sl__reconcile_output(job->run.store, txn, o.pend.rows, o.pend.n, errstr, errstr_size);
    } else if (!(e = read_changelogs(job, &o, 1, errstr, errstr_size))) {
        if (o.diverged) {
            snprintf(errstr, errstr_size,
                     "task %d: another instance of job '%s' published past batch %" PRId64
                     " of this one, which stops without publishing it",
                     id, job->conf->name, o.pend_seq);
            e = SL_ERR_BUSY;
        } else if (!o.ours) {
            e = publish_pending(job, &o, errstr, errstr_size);
        }
        if (!e && txn->clog_confirmed > t->clog)
            t->clog = txn->clog_confirmed;
    }
    if (!e)
        e = sl__outbox_delete(job->run.store, job->cm.wb, id, 0, INT64_MAX, errstr, errstr_size);
done:
    pending_fini(&o.pend);
    return e;
}

uint64_t sl__task_nonce(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof(v), 0) == (ssize_t)sizeof(v))
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)getpid() << 48;
}

/* ---- the opener ---- */

static void *opener_main(void *opaque)
{
    sl_job_t *job = opaque;
    sl_opener_t *op = &job->opener;
    pthread_mutex_lock(&op->mu);
    for (;;) {
        while (!op->n && !atomic_load(&op->stop))
            pthread_cond_wait(&op->cv, &op->mu);
        if (atomic_load(&op->stop))
            break;
        size_t n = op->n;
        int *ids = malloc(n * sizeof(*ids));
        if (ids)
            memcpy(ids, op->queue, n * sizeof(*ids));
        op->n = 0;
        op->busy = 1;
        pthread_mutex_unlock(&op->mu);
        char err[1024] = "", list[256] = "";
        for (size_t i = 0; ids && i < n; i++)
            sl__strlcatf(list, sizeof(list), "%s%d", i ? ", " : "", ids[i]);
        sl_log(SL_LOG_INFO, "task", "opening task(s) %s", list);
        sl_err_t e = ids ? sl__task_open(job, ids, (int)n, err, sizeof(err)) : SL_ERR_NOMEM;
        if (!ids)
            snprintf(err, sizeof(err), "out of memory");
        for (size_t i = 0; ids && i < n; i++) {
            sl_task_t *t = &job->tasks[ids[i]];
            int opening = SL_TASK_OPENING;
            atomic_compare_exchange_strong(&t->state, &opening, e ? SL_TASK_FAILED : SL_TASK_READY);
        }
        pthread_mutex_lock(&op->mu);
        /* Stopped while restoring (the opener, or the job: SIGTERM) is no failure of the
         * job: it stops anyway. */
        if (e && !(e == SL_ERR_BUSY && (atomic_load(&op->stop) || atomic_load(&job->stop))))
            sl__first_err_set(&op->fatal, e, "%s", err);
        op->busy = 0;
        pthread_cond_broadcast(&op->cv);
        free(ids);
    }
    op->busy = 0;
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->mu);
    return NULL;
}

sl_err_t sl__opener_start(sl_job_t *job)
{
    sl_opener_t *op = &job->opener;
    memset(op, 0, sizeof(*op));
    pthread_mutex_init(&op->mu, NULL);
    pthread_cond_init(&op->cv, NULL);
    if (pthread_create(&op->thread, NULL, opener_main, job)) {
        pthread_mutex_destroy(&op->mu);
        pthread_cond_destroy(&op->cv);
        return SL_ERR_NOMEM;
    }
    op->started = 1;
    return SL_OK;
}

void sl__opener_stop(sl_job_t *job)
{
    sl_opener_t *op = &job->opener;
    if (!op->started)
        return;
    pthread_mutex_lock(&op->mu);
    atomic_store(&op->stop, 1);
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->mu);
    pthread_join(op->thread, NULL);
    pthread_mutex_destroy(&op->mu);
    pthread_cond_destroy(&op->cv);
    free(op->queue);
    memset(op, 0, sizeof(*op));
}

void sl__opener_request(sl_job_t *job, int id)
{
    sl_opener_t *op = &job->opener;
    job->tasks[id].state = SL_TASK_OPENING;
    pthread_mutex_lock(&op->mu);
    if (SL_GROW(op->queue, op->cap, op->n + 1, 16))
        sl__first_err_set(&op->fatal, SL_ERR_NOMEM, "out of memory");
    else
        op->queue[op->n++] = id;
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->mu);
}

void sl__opener_wait(sl_job_t *job)
{
    sl_opener_t *op = &job->opener;
    if (!op->started)
        return;
    pthread_mutex_lock(&op->mu);
    while ((op->n || op->busy) && !atomic_load(&op->stop))
        pthread_cond_wait(&op->cv, &op->mu);
    pthread_mutex_unlock(&op->mu);
}

sl_err_t sl__tasks_poll(sl_job_t *job, char *errstr, size_t errstr_size)
{
    sl_opener_t *op = &job->opener;
    if (op->started) {
        pthread_mutex_lock(&op->mu);
        sl_err_t e = op->fatal.err;
        if (e)
            snprintf(errstr, errstr_size, "%s", op->fatal.msg);
        pthread_mutex_unlock(&op->mu);
        if (e)
            return e;
    }
    int64_t now = sl__now_ms();
    for (int i = 0; i < job->ntasks; i++) {
        sl_task_t *t = &job->tasks[i];
        int st = t->state;
        if (st == SL_TASK_READY) {
            sl_err_t e = sl__source_release(&job->run.src, i, errstr, errstr_size);
            if (e)
                return e;
            t->state = SL_TASK_ACTIVE;
            t->last_input_ms = now;
        } else if (st == SL_TASK_ACTIVE && atomic_load(&t->fenced) && !job->cm.running) {
            /* Another producer of the task fenced this one: another instance has it, or
             * a transaction of ours timed out. The group's coordinator tells which;
             * until then its partitions are held. */
            sl__source_hold(&job->run.src, i);
            sl__sink_task_close(&job->run.sink, i);
            atomic_store(&t->fenced, 0);
            t->state = SL_TASK_FENCED;
            t->fenced_check_ms = 0;
        } else if (st == SL_TASK_FENCED && now - t->fenced_check_ms >= 1000) {
            t->fenced_check_ms = now;
            int owns = sl__source_owns(&job->run.src, i);
            if (owns > 0) {
                sl_log(SL_LOG_WARN, "task", "task %d is still this instance's: opening it again",
                       i);
                sl__opener_request(job, i);
            }
        }
    }
    return SL_OK;
}
