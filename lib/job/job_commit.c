/*
 * job_commit.c - the end of a batch: the hand-over from the consuming thread (positions,
 * event times, the side producer flushed, the batch table swapped for an empty one) and
 * the commit thread that merges the batch into the state, writes its one WriteBatch and
 * publishes its rows (see job.c for the protocol).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit/merge.h"
#include "commit/outbox.h"
#include "crash.h"
#include "job_int.h"
#include "log.h"
#include "query/window.h"
#include "sink/output.h"
#include "sink/sink.h"
#include "sink/sink_local.h"
#include "source/source.h"
#include "source/source_local.h"
#include "store.h"
#include "util.h"

/* A new producer fences the old one and aborts its open transaction; the outbox still
 * holds the batch, so reconciliation publishes what is missing. But a fence that came from
 * another instance of the job is not answered with one: the job stops (SL_ERR_BUSY) and
 * leaves the outbox for its next start, rather than fight over the output. Only a fence
 * with no other instance about (a transaction the coordinator timed out, a fatal producer
 * error) is recovered from. */
sl_err_t sl__job_recover_producer(sl_job_t *job, char *errstr, size_t errstr_size)
{
    if (job->run.src.rk) {
        char why[1024];
        if (sl__source_check_alone(&job->run.src, why, sizeof(why)) == SL_ERR_BUSY) {
            char fenced[512];
            snprintf(fenced, sizeof(fenced), "%s", errstr);
            snprintf(errstr, errstr_size,
                     "the output producer was fenced (%s), and %s. This instance stops; its "
                     "committed rows stay in its outbox for its next start",
                     fenced, why);
            return SL_ERR_BUSY;
        }
    }
    /* A WriteBatch of its own: job->cm.wb may hold a batch that is not written yet (a
     * producer fenced while it queued the batch's rows), which must stay whole. */
    sl_store_batch_t *wb = sl__store_batch_new();
    if (!wb) {
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    sl_err_t e;
    for (int attempt = 1;; attempt++) {
        sl_log(SL_LOG_WARN, "sink", "%s; starting a new producer and reconciling", errstr);
        e = sl__sink_reset(&job->run.sink, errstr, errstr_size);
        if (!e)
            e = sl__outbox_reconcile(job->run.store, wb, &job->run.sink, errstr, errstr_size);
        if (e != SL_ERR_FENCED || attempt == 5)
            break;
    }
    sl__store_batch_destroy(wb);
    return e;
}

sl_err_t sl__commit_init(sl_commit_t *cm, const sl_plan_t *plan, const char *state_dir)
{
    memset(cm, 0, sizeof(*cm));
    sl__buf_init(&cm->out);
    if (sl__table_init(&cm->table, plan->naggs) != SL_OK ||
        sl__merge_init(&cm->merge, plan, state_dir) != SL_OK || !(cm->wb = sl__store_batch_new()))
        return SL_ERR_NOMEM;
    return SL_OK;
}

void sl__commit_fini(sl_commit_t *cm)
{
    sl__table_fini(&cm->table);
    sl__merge_fini(&cm->merge);
    sl__store_batch_destroy(cm->wb);
    sl__buf_fini(&cm->out);
    free(cm->sel);
    memset(cm, 0, sizeof(*cm));
}

static int positions_moved(const sl_job_t *job)
{
    if (job->run.lsrc && sl__lsrc_moved(job->run.lsrc))
        return 1;
    const sl_source_t *src = &job->run.src;
    for (int t = 0; t < src->ntopics; t++) {
        for (int p = 0; p < src->topics[t].nparts; p++) {
            const sl_part_t *part = &src->topics[t].parts[p];
            if (part->pos >= 0 && part->pos != part->committed)
                return 1;
        }
    }
    return 0;
}

static void put_time(sl_job_t *job, const char *name, int64_t v)
{
    uint8_t b[8];
    sl__be64_put(b, (uint64_t)v);
    sl__store_batch_put(job->cm.wb, job->run.store, SL_CF_META, name, strlen(name), b, 8);
}

/* The sinks whose rows go through the outbox (redelivered after a crash). */
static int uses_outbox(const sl_conf_t *c)
{
    return c->output.sink == SL_SINK_KAFKA || c->output.sink == SL_SINK_FILE || c->output.sink == SL_SINK_FOREACH;
}

/*
 * The event time the watermark follows: the smallest of the partitions' largest event
 * times, over the partitions that still have records to read, so that a partition read
 * ahead of the others (librdkafka hands over large runs of one partition) does not make
 * the others' records late; when every partition is read to its end, the largest of all.
 * A partition with records pending but none read yet holds the watermark where it is.
 * *all gets the largest event time of any partition.
 */
static int64_t event_time(const sl_job_t *job, int64_t *all)
{
    if (job->run.lsrc) { /* one stream, read in order: Spark's rule, the largest seen */
        *all = job->run.lpart.maxev;
        return *all;
    }
    const sl_source_t *src = &job->run.src;
    int64_t min_active = INT64_MAX;
    int active = 0, unknown = 0;
    *all = SL_WM_NONE;
    for (int t = 0; t < src->ntopics; t++) {
        for (int p = 0; p < src->topics[t].nparts; p++) {
            const sl_part_t *part = &src->topics[t].parts[p];
            if (part->maxev != SL_WM_NONE && part->maxev > *all)
                *all = part->maxev;
            /* Nothing pending: read to the end, or (available-now) to the end offset seen
             * at start, or empty at start. */
            if (!part->assigned || part->at_end ||
                (job->conf->trigger.available_now && (part->end < 0 || part->pos >= part->end)))
                continue;
            if (part->maxev == SL_WM_NONE) {
                unknown = 1;
                continue;
            }
            active = 1;
            if (part->maxev < min_active)
                min_active = part->maxev;
        }
    }
    if (unknown)
        return SL_WM_NONE;
    return active ? min_active : *all;
}

typedef struct state_write {
    sl_store_t *store;
    sl_store_batch_t *wb;
    sl_err_t err;
    int64_t t0, ms; /* when it started, and how long it took */
    char errstr[512];
} state_write_t;

static void *state_write_thread(void *opaque)
{
    state_write_t *w = opaque;
    w->err = sl__store_write(w->store, w->wb, 1, w->errstr, sizeof(w->errstr));
    w->ms = sl__now_ms() - w->t0;
    return NULL;
}

/*
 * A batch's state written (synced) on a thread of its own while this one queues its rows
 * in a transaction: the two take about as long as each other with many keys, and the
 * transaction is committed only after both (readers see none of the rows before; a crash
 * leaves the transaction open, and the next start aborts it and publishes what the
 * outbox holds, this batch's rows too once its state is written). The rows (job->cm.out)
 * are kept until the next batch, after the producer has them or was reset, and freed
 * after the sink is closed: no copies.
 */
static sl_err_t write_while_queuing(sl_job_t *job, const sl_out_row_t *orows, size_t n,
                                    char *errstr, size_t errstr_size)
{
    state_write_t w = {.store = job->run.store, .wb = job->cm.wb, .t0 = sl__now_ms()};
    pthread_t th;
    int threaded = !pthread_create(&th, NULL, state_write_thread, &w);
    sl_err_t e =
        sl__sink_publish_start(&job->run.sink, orows, n, 0, "mid-publish", errstr, errstr_size);
    job->cm.queue_ms = sl__now_ms() - w.t0;
    if (threaded)
        pthread_join(th, NULL);
    else
        state_write_thread(&w);
    job->cm.write_ms = w.ms;
    if (w.err) {
        if (!e)
            sl__sink_publish_abort(&job->run.sink);
        snprintf(errstr, errstr_size, "%s", w.errstr);
        return w.err;
    }
    /* A producer fenced while queuing: the publish that follows meets the fence again and
     * replaces the producer, and the new one's reconciliation publishes the batch from the
     * outbox, which holds it now. */
    return e == SL_ERR_FENCED ? SL_OK : e;
}

/*
 * The commit of one batch, on the commit thread (or, for a files or socket source, on
 * the consuming thread): merge the batch table into the state, add the result rows'
 * outbox entries to the WriteBatch the hand-over filled with positions and times, write
 * it, publish. The main thread consumes the next batch meanwhile; it touches none of
 * what this uses until it has joined the thread (finish_commit).
 */
static sl_err_t commit_batch(sl_job_t *job, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_table_t *t = &job->cm.table;
    int64_t seq = job->cm.seq, wm = job->cm.wm;
    int64_t t0 = sl__now_ms(), t_merge = t0, t_rows, t_commit = 0;
    sl_err_t e = SL_OK;
    const sl_val_t *rows;
    size_t n;
    size_t *spans = NULL; /* row i's outbox entry: spans[2i] bytes at out[spans[2i]] */
    sl_out_row_t *orows = NULL;
    sl_buf_t k, v;
    sl__buf_init(&k);
    sl__buf_init(&v);
    job->cm.queue_ms = 0;
    job->cm.write_ms = -1; /* written here, not beside the queuing */
    if (c->plan.aggregating) {
        if ((e = sl__merge_batch(&job->cm.merge, job->run.store, job->cm.wb, t, wm, errstr, errstr_size)))
            goto done;
        t_merge = sl__now_ms();
        rows = job->cm.merge.rows;
        n = job->cm.merge.nrows;
    } else {
        rows = job->cm.sel;
        n = job->cm.nsel;
    }
    if (uses_outbox(c)) {
        spans = malloc((2 * n + 1) * sizeof(*spans));
        orows = malloc((n ? n : 1) * sizeof(*orows));
        if (!spans || !orows) {
            snprintf(errstr, errstr_size, "out of memory while encoding a batch's rows");
            e = SL_ERR_NOMEM;
            goto done;
        }
        sl_outbox_writer_t w;
        sl__outbox_begin(&w, job->run.store, job->cm.wb, seq, &job->cm.out);
        for (size_t i = 0; i < n; i++) {
            sl__buf_reset(&k);
            sl__buf_reset(&v);
            const sl_val_t *row = &rows[i * (size_t)c->plan.ncols];
            if (c->output.sink == SL_SINK_KAFKA)
                e = sl__out_encode(&c->plan, c->output.format, row, &k, &v);
            else
                e = sl__out_json(&c->plan, row, &v);
            /* A row the topic would refuse is found before anything is committed: once in
             * the outbox it would fail every publish and every restart. */
            char why[700];
            if (!e && c->output.sink == SL_SINK_KAFKA &&
                sl__sink_check_size(&job->run.sink, k.len, v.len, why, sizeof(why))) {
                char group[300];
                sl__out_describe_group(&c->plan, row, group, sizeof(group));
                snprintf(errstr, errstr_size,
                         "batch %" PRId64 ", group (%s): %s. The job stops before this batch is "
                         "committed",
                         seq, group, why);
                e = SL_ERR_INVAL;
            }
            if (!e)
                e = sl__outbox_add(&w, &k, &v, &spans[2 * i], &spans[2 * i + 1]);
            if (e == SL_ERR_NOMEM)
                snprintf(errstr, errstr_size, "out of memory while encoding a batch's rows");
            if (e)
                goto done;
        }
        sl__outbox_end(&w);
        for (size_t i = 0; i < n; i++) {
            orows[i].seq = seq;
            orows[i].idx = (uint32_t)i;
            sl__outbox_row(job->cm.out.p + spans[2 * i], spans[2 * i + 1], &orows[i]);
        }
    }
    if (!job->fingerprint_stored) {
        uint8_t fp[8];
        sl__be64_put(fp, c->fingerprint);
        sl__store_batch_put(job->cm.wb, job->run.store, SL_CF_META, "job", 3, fp, 8);
        sl__store_batch_put(job->cm.wb, job->run.store, SL_CF_META, "query", 5, c->query_desc,
                            strlen(c->query_desc));
    }
    if (c->output.sink == SL_SINK_KAFKA)
        sl__outbox_put_published(job->run.store, job->cm.wb, &job->run.sink);
    t_rows = sl__now_ms();
    sl__crash_point("before-commit");
    if (c->output.sink == SL_SINK_KAFKA && job->run.sink.transactional && n) {
        if ((e = write_while_queuing(job, orows, n, errstr, errstr_size)))
            goto done;
    } else if ((e = sl__store_write(job->run.store, job->cm.wb, 1, errstr, errstr_size))) {
        goto done;
    }
    if ((e = sl__store_mark(job->run.store, seq, errstr, errstr_size)))
        goto done;
    sl__crash_point("after-commit");
    t_commit = sl__now_ms();
    job->fingerprint_stored = 1;
    STAT_ADD(job, batches, 1);
    STAT_ADD(job, windows_closed, c->plan.aggregating ? job->cm.merge.closed : 0);
    atomic_store(&job->stats.watermark_ms, job->cm.wm_next);

    /* Publish. */
    switch (c->output.sink) {
    case SL_SINK_CONSOLE:
        /* Like Spark, a batch that read records prints its table even when the filter left
         * no rows; one that only moved positions (past transaction markers) does not. */
        if (job->cm.records || n)
            sl__sink_console(&job->run.sink, seq, rows, n);
        break;
    case SL_SINK_KAFKA:
        if (!n)
            break;
        e = sl__sink_publish(&job->run.sink, orows, n, 0, "mid-publish", errstr, errstr_size);
        if (e == SL_ERR_FENCED && !(e = sl__job_recover_producer(job, errstr, errstr_size)))
            break; /* the outbox is empty now */
        if (e)
            goto done;
        sl__crash_point("after-publish-before-outbox-delete");
        e = sl__outbox_delete(job->run.store, job->cm.wb, seq, seq + 1, errstr, errstr_size);
        break;
    default:
        /* File and foreach rows come from the outbox entries, which hold their JSON. */
        e = sl__local_deliver(&job->local, seq, rows, n, orows, errstr, errstr_size);
        if (!e && uses_outbox(c))
            e = sl__outbox_delete(job->run.store, job->cm.wb, seq, seq + 1, errstr, errstr_size);
        break;
    }
    if (e)
        goto done;
    sl_log(SL_LOG_DEBUG, "job",
           "batch %" PRId64 ": %" PRIu64 " records, %zu rows; merge and commit %" PRId64
           " ms (merge %" PRId64 ", rows %" PRId64 ", state write %" PRId64
           " while queuing rows %" PRId64 "), publish %" PRId64 " ms",
           seq, job->cm.records, n, t_commit - t0, t_merge - t0, t_rows - t_merge,
           job->cm.write_ms >= 0 ? job->cm.write_ms : t_commit - t_rows, job->cm.queue_ms,
           sl__now_ms() - t_commit);
    STAT_ADD(job, rows_out, n);
    atomic_store(&job->stats.last_commit_ms, sl__now_ms());
done:
    free(spans);
    free(orows);
    sl__buf_fini(&k);
    sl__buf_fini(&v);
    sl__table_clear(t);
    job->cm.nsel = 0;
    return e;
}

static void *commit_thread(void *opaque)
{
    sl_job_t *job = opaque;
    job->cm.err = commit_batch(job, job->cm.errstr, sizeof(job->cm.errstr));
    return NULL;
}

/* Waits for the commit under way, if any; its error, with its message in @p errstr. */
sl_err_t sl__job_finish_commit(sl_job_t *job, char *errstr, size_t errstr_size)
{
    if (!job->cm.running)
        return SL_OK;
    pthread_join(job->cm.thread, NULL);
    job->cm.running = 0;
    if (job->cm.err)
        snprintf(errstr, errstr_size, "%s", job->cm.errstr);
    return job->cm.err;
}

/*
 * Ends the batch under way: waits for the previous commit, puts every moved position and
 * the batch's sequence and event times into the WriteBatch, flushes the side producer
 * (dead letters and late records must be in Kafka before the positions pass them), and
 * hands the batch table to a commit thread. From here on the main thread works as if the
 * batch were committed: a failed commit stops the job before anything later is.
 * @p wm_idle: the watermark an idle source has earned by wall clock (SL_WM_NONE: none).
 */
sl_err_t sl__job_commit(sl_job_t *job, int64_t wm_idle, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_err_t e = sl__job_finish_commit(job, errstr, errstr_size);
    if (e)
        return e;
    if ((e = sl__job_fold_flush(job)) || job->rd.fq.lost) {
        /* Positions already passed the records of the fold that failed. */
        snprintf(errstr, errstr_size,
                 "out of memory while aggregating; the batch is not committed");
        return SL_ERR_NOMEM;
    }
    /* Spark's two watermarks: this batch evicts with the watermark the last commit computed
     * (its records were checked for lateness against the one before); the new one, from
     * this batch's event times, is for the next batch to evict with. */
    int64_t evict = job->wm, wm = job->wm, maxev = job->maxev;
    if (c->plan.wm_slot >= 0) {
        int64_t all;
        wm = sl__watermark_next(wm, event_time(job, &all), c->plan.wm_delay_ms);
        if (wm_idle != SL_WM_NONE && wm_idle > wm)
            wm = wm_idle;
        if (all != SL_WM_NONE && (maxev == SL_WM_NONE || all > maxev))
            maxev = all;
    }
    /* Nothing read, nothing to evict: no batch. A watermark that moved past the one last
     * evicted with makes a batch of no records, as Spark's no-data batch. */
    if (job->rd.table.n == 0 && job->rd.nsel == 0 && !positions_moved(job) && wm == job->wm &&
        evict == job->wm_late)
        return SL_OK;
    int64_t seq = job->seq + 1;
    /* Positions: every partition whose next offset moved in this batch. */
    sl_source_t *src = &job->run.src;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++) {
            sl_part_t *part = &src->topics[ti].parts[pi];
            if (part->pos < 0 || part->pos == part->committed)
                continue;
            char key[512];
            uint8_t pv[8];
            int kl = sl__source_pos_key(key, sizeof(key), src->topics[ti].name, pi);
            sl__be64_put(pv, (uint64_t)part->pos);
            sl__store_batch_put(job->cm.wb, job->run.store, SL_CF_META, key, (size_t)kl, pv, 8);
        }
    }
    if (job->run.lsrc)
        sl__lsrc_put(job->run.lsrc, job->run.store, job->cm.wb);
    put_time(job, "seq", seq);
    if (wm != job->wm)
        put_time(job, "wm", wm);
    if (evict != job->wm_late)
        put_time(job, "wm_evict", evict);
    if (maxev != job->maxev)
        put_time(job, "maxev", maxev);
    if ((e = sl__sink_flush_side(&job->run.sink, errstr, errstr_size)))
        return e;

    /* Hand over. */
    sl_table_t tt = job->cm.table;
    job->cm.table = job->rd.table;
    job->rd.table = tt;
    sl_val_t *ts = job->cm.sel;
    size_t tcap = job->cm.sel_cap;
    job->cm.sel = job->rd.sel;
    job->cm.nsel = job->rd.nsel;
    job->cm.sel_cap = job->rd.sel_cap;
    job->rd.sel = ts;
    job->rd.sel_cap = tcap;
    job->rd.nsel = 0;
    job->cm.seq = seq;
    job->cm.wm = evict;
    job->cm.wm_next = wm;
    job->cm.records = job->rd.batch_records;
    job->cm.err = SL_OK;
    job->rd.batch_records = 0;
    job->seq = seq;
    job->wm_late = evict;
    job->wm = wm;
    job->maxev = maxev;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++)
            src->topics[ti].parts[pi].committed = src->topics[ti].parts[pi].pos;
    }
    job->run.src.fresh = 0; /* partitions that appear from now on start at the earliest offset */
    /* A files or socket source commits in line: its progress marks are the live ones. */
    if (!job->run.lsrc && !pthread_create(&job->cm.thread, NULL, commit_thread, job)) {
        job->cm.running = 1;
        return SL_OK;
    }
    if ((e = commit_batch(job, errstr, errstr_size)))
        return e;
    if (job->run.lsrc)
        sl__lsrc_committed(job->run.lsrc);
    return SL_OK;
}
