/*
 * job_commit.c - the end of a batch: the hand-over from the consuming thread (each task's
 * positions, event times and marker, the side producer flushed, the batch table swapped
 * for an empty one) and the commit thread that merges the batch into the state, writes
 * its one WriteBatch (with every task's records for Kafka in its outbox) and publishes
 * each task's records in a transaction of the task's producer (see job.c).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commit/changelog.h"
#include "commit/merge.h"
#include "commit/outbox.h"
#include "commit/reconcile.h"
#include "crash.h"
#include "job_int.h"
#include "layout.h"
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
 * holds the batch, so what Kafka lacks of it is published. But a fence that came from
 * another instance of a job that runs alone is not answered with one: the job stops
 * (SL_ERR_BUSY) and leaves the outbox for its next start, rather than fight over the
 * output. Only a fence with no other instance about (a transaction the coordinator timed
 * out, a fatal producer error) is recovered from. */
sl_err_t sl__job_recover_producer(sl_job_t *job, int task, char *errstr, size_t errstr_size)
{
    if (job->run.src.rk && !job->conf->source.co_partitioned) {
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
    sl_err_t e;
    for (int attempt = 1;; attempt++) {
        sl_log(SL_LOG_WARN, "sink", "%s; starting a new producer for task %d and publishing what "
               "Kafka lacks", errstr, task);
        e = sl__task_recover(job, task, errstr, errstr_size);
        if (e != SL_ERR_FENCED || attempt == 5)
            break;
    }
    return e;
}

sl_err_t sl__commit_init(sl_commit_t *cm, const sl_plan_t *plan, const char *state_dir,
                         int ntasks)
{
    memset(cm, 0, sizeof(*cm));
    sl__buf_init(&cm->lout);
    size_t n = (size_t)(ntasks > 0 ? ntasks : 1);
    if (sl__table_init(&cm->table, plan->naggs) != SL_OK ||
        sl__merge_init(&cm->merge, plan, state_dir) != SL_OK ||
        !(cm->wb = sl__store_batch_new()) || !(cm->tasks = calloc(n, sizeof(*cm->tasks))) ||
        !(cm->ids = calloc(n, sizeof(*cm->ids))) || !(cm->mtasks = calloc(n, sizeof(*cm->mtasks))))
        return SL_ERR_NOMEM;
    cm->ntasks = (int)n;
    for (size_t i = 0; i < n; i++) {
        cm->tasks[i].task = (int)i;
        sl__buf_init(&cm->tasks[i].marker);
        sl__buf_init(&cm->tasks[i].out);
    }
    return SL_OK;
}

void sl__commit_fini(sl_commit_t *cm)
{
    sl__table_fini(&cm->table);
    sl__merge_fini(&cm->merge);
    sl__store_batch_destroy(cm->wb);
    sl__buf_fini(&cm->lout);
    for (int i = 0; cm->tasks && i < cm->ntasks; i++) {
        sl_commit_task_t *ct = &cm->tasks[i];
        sl__buf_fini(&ct->marker);
        sl__buf_fini(&ct->out);
        free(ct->rows);
        free(ct->spans);
        if (ct->offsets)
            rd_kafka_topic_partition_list_destroy(ct->offsets);
    }
    free(cm->tasks);
    free(cm->ids);
    free(cm->mtasks);
    free(cm->sel);
    free(cm->sel_tasks);
    memset(cm, 0, sizeof(*cm));
}

/* Whether any of @p task's partitions moved since its last batch. */
static int positions_moved(const sl_job_t *job, int task)
{
    if (job->run.lsrc && sl__lsrc_moved(job->run.lsrc))
        return 1;
    const sl_source_t *src = &job->run.src;
    for (int t = 0; t < src->ntopics; t++) {
        for (int p = 0; p < src->topics[t].nparts; p++) {
            const sl_part_t *part = &src->topics[t].parts[p];
            if (part->pos >= 0 && part->pos != part->committed && sl__task_of(job, p) == task)
                return 1;
        }
    }
    return 0;
}

static void put_meta(sl_job_t *job, int task, const char *name, int64_t v)
{
    char key[64];
    uint8_t b[8];
    int kl = sl__meta_key(key, sizeof(key), task, "%s", name);
    sl__be64_put(b, (uint64_t)v);
    sl__store_batch_put(job->cm.wb, job->run.store, SL_CF_META, key, (size_t)kl, b, 8);
}

/* The sinks whose rows go through the outbox (redelivered after a crash). */
static int local_outbox(const sl_conf_t *c)
{
    return c->output.sink == SL_SINK_FILE || c->output.sink == SL_SINK_FOREACH;
}

/*
 * The event time @p task's watermark follows: the smallest of its partitions' largest
 * event times, over the partitions that still have records to read, so that a partition
 * read ahead of the others (librdkafka hands over large runs of one partition) does not
 * make the others' records late; when every partition is read to its end, the largest
 * of all. A partition with records pending but none read yet holds the watermark where
 * it is. *all gets the largest event time of any of its partitions.
 */
static int64_t event_time(const sl_job_t *job, int task, int64_t *all)
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
            if (sl__task_of(job, p) != task)
                continue;
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

/* A task's producer; NULL when the job publishes nothing to Kafka. */
static sl_txn_t *txn_of(const sl_job_t *job, int task)
{
    return job->run.sink.txns ? job->run.sink.txns[task] : NULL;
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
 * A batch's state written (synced) on a thread of its own while this one queues every
 * task's records in its transaction: the two take about as long as each other with many
 * keys, and the transactions are committed only after both (readers see none of the
 * records before; a crash leaves the transactions open, and the next start aborts them
 * and publishes what the outbox holds, this batch's records too once its state is
 * written). The records (each task's out) are kept until the next batch, after the
 * producer has them or was reset, and freed after the sink is closed: no copies.
 */
static sl_err_t write_while_queuing(sl_job_t *job, char *errstr, size_t errstr_size)
{
    sl_commit_t *cm = &job->cm;
    state_write_t w = {.store = job->run.store, .wb = cm->wb, .t0 = sl__now_ms()};
    pthread_t th;
    int threaded = !pthread_create(&th, NULL, state_write_thread, &w);
    sl_err_t e = SL_OK;
    for (int i = 0; i < cm->nids && !e; i++) {
        sl_commit_task_t *ct = &cm->tasks[cm->ids[i]];
        sl_txn_t *txn = txn_of(job, ct->task);
        if (ct->nrows && txn)
            e = sl__sink_publish_start(txn, ct->rows, ct->nrows, 0, "mid-publish", errstr,
                                       errstr_size);
        /* A producer fenced while queuing: its publish meets the fence again, and the
         * task's recovery publishes the batch from the outbox, which holds it by then. */
        if (e == SL_ERR_FENCED)
            e = SL_OK;
    }
    cm->queue_ms = sl__now_ms() - w.t0;
    if (threaded)
        pthread_join(th, NULL);
    else
        state_write_thread(&w);
    cm->write_ms = w.ms;
    if (w.err) {
        for (int i = 0; i < cm->nids; i++) {
            sl_txn_t *txn = txn_of(job, cm->ids[i]);
            if (txn)
                sl__sink_publish_abort(txn);
        }
        snprintf(errstr, errstr_size, "%s", w.errstr);
        return w.err;
    }
    return e;
}

/* A state key the merge wrote or deleted, as a changelog record of its task. */
static sl_err_t clog_change(void *opaque, const uint8_t *key, size_t klen, const uint8_t *val,
                            size_t vlen)
{
    sl_job_t *job = opaque;
    int task = sl__task_get(key);
    if (task >= job->ntasks)
        return SL_ERR_STATE;
    sl_commit_task_t *ct = &job->cm.tasks[task];
    uint8_t tag = SL_CLOG_STATE;
    /* The changelog key is the state key without its task prefix, after the tag. The
     * writer takes the key in two parts: the tag goes first into the record itself. */
    uint8_t kb[SL_TASK_PREFIX + 512];
    const uint8_t *k = key;
    size_t kl = klen;
    uint8_t *heap = NULL;
    if (klen <= sizeof(kb)) {
        kb[SL_TASK_PREFIX - 1] = tag;
        memcpy(kb + SL_TASK_PREFIX, key + SL_TASK_PREFIX, klen - SL_TASK_PREFIX);
        k = kb + SL_TASK_PREFIX - 1;
        kl = klen - SL_TASK_PREFIX + 1;
    } else {
        if (!(heap = malloc(klen)))
            return SL_ERR_NOMEM;
        heap[0] = tag;
        memcpy(heap + 1, key + SL_TASK_PREFIX, klen - SL_TASK_PREFIX);
        k = heap;
        kl = klen - SL_TASK_PREFIX + 1;
    }
    size_t off, len;
    sl_err_t e = SL_GROW(ct->spans, ct->cap, 2 * (ct->nrows + 1), 1024);
    if (!e)
        e = sl__outbox_add(&ct->w, val ? SL_DEST_CHANGELOG : SL_DEST_TOMBSTONE, k, kl, val,
                           val ? vlen : 0, &off, &len);
    free(heap);
    if (!e) {
        ct->spans[2 * ct->nrows] = len;
        ct->spans[2 * ct->nrows + 1] = off;
        ct->nrows++;
    }
    return e;
}

/* Adds a record to a task's outbox writer, noting where its encoding is. */
static sl_err_t task_add(sl_commit_task_t *ct, sl_dest_t dest, const void *k, size_t kl,
                         const void *v, size_t vl)
{
    size_t off, len;
    sl_err_t e = SL_GROW(ct->spans, ct->cap, 2 * (ct->nrows + 1), 1024);
    if (!e)
        e = sl__outbox_add(&ct->w, dest, k, kl, v, vl, &off, &len);
    if (!e) {
        ct->spans[2 * ct->nrows] = len;
        ct->spans[2 * ct->nrows + 1] = off;
        ct->nrows++;
    }
    return e;
}

/* Decodes a task's records from its writer's buffer, now that it stopped growing. */
static sl_err_t task_rows(sl_commit_task_t *ct)
{
    if (ct->nrows && SL_GROW(ct->rows, ct->rows_cap, ct->nrows, 1024))
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < ct->nrows; i++) {
        ct->rows[i].seq = ct->seq;
        ct->rows[i].idx = (uint32_t)i;
        if (sl__outbox_row(ct->out.p + ct->spans[2 * i + 1], ct->spans[2 * i], &ct->rows[i]) < 0)
            return SL_ERR_STATE;
    }
    return SL_OK;
}

/* Encodes the batch's result rows into their tasks' outboxes (Kafka) or the local one. */
static sl_err_t encode_rows(sl_job_t *job, const sl_val_t *rows, const uint16_t *tasks, size_t n,
                            sl_out_row_t *local, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_buf_t k, v;
    sl__buf_init(&k);
    sl__buf_init(&v);
    sl_err_t e = SL_OK;
    size_t *lspans = NULL;
    if (local && !(lspans = malloc((2 * n + 1) * sizeof(*lspans))))
        e = SL_ERR_NOMEM;
    for (size_t i = 0; i < n && !e; i++) {
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
                     job->cm.seq, group, why);
            e = SL_ERR_INVAL;
        }
        if (e)
            break;
        if (c->output.sink == SL_SINK_KAFKA) {
            sl_commit_task_t *ct = &job->cm.tasks[tasks ? tasks[i] : 0];
            e = task_add(ct, SL_DEST_OUTPUT, k.p, k.len, v.p, v.len);
            ct->rows_out++;
        } else if (local) {
            e = sl__outbox_add(&job->cm.lw, SL_DEST_OUTPUT, NULL, 0, v.p, v.len, &lspans[2 * i],
                               &lspans[2 * i + 1]);
        }
    }
    if (!e && local) {
        sl__outbox_end(&job->cm.lw);
        for (size_t i = 0; i < n; i++) {
            local[i] = (sl_out_row_t){.seq = job->cm.seq, .idx = (uint32_t)i};
            sl__outbox_row(job->cm.lout.p + lspans[2 * i], lspans[2 * i + 1], &local[i]);
        }
    }
    if (e == SL_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory while encoding a batch's rows");
    free(lspans);
    sl__buf_fini(&k);
    sl__buf_fini(&v);
    return e;
}

/* Publishes each task's records in its transaction; a fenced producer is recovered. */
static sl_err_t publish_tasks(sl_job_t *job, char *errstr, size_t errstr_size)
{
    sl_commit_t *cm = &job->cm;
    sl_err_t e = SL_OK;
    for (int i = 0; i < cm->nids && !e; i++) {
        sl_commit_task_t *ct = &cm->tasks[cm->ids[i]];
        sl_task_t *t = &job->tasks[ct->task];
        sl_txn_t *txn = txn_of(job, ct->task);
        if (!ct->nrows || !txn)
            continue;
        e = sl__sink_publish(txn, ct->rows, ct->nrows, 0, ct->offsets, "mid-publish", errstr,
                             errstr_size);
        if (e == SL_ERR_FENCED && job->conf->source.co_partitioned) {
            /* Another instance may have the task now: it is not taken back from here. The
             * batch stays in the outbox; the consuming thread holds the task's partitions
             * and asks the group whose it is (task.c). */
            sl_log(SL_LOG_WARN, "task", "task %d: %s; its batch %" PRId64 " is not published",
                   ct->task, errstr, ct->seq);
            atomic_store(&t->fenced, 1);
            e = SL_OK;
            continue;
        }
        if (e == SL_ERR_FENCED) {
            /* The outbox holds the batch now: the recovery publishes it (or finds it in
             * Kafka) and empties the outbox. */
            e = sl__job_recover_producer(job, ct->task, errstr, errstr_size);
            if (!e)
                ct->published = 1;
            continue;
        }
        if (e)
            break;
        if (txn->clog_confirmed > t->clog)
            t->clog = txn->clog_confirmed;
        sl__outbox_delete_put(job->run.store, cm->wb, ct->task, ct->seq, ct->seq + 1);
        ct->published = 1;
    }
    return e;
}

/*
 * The commit of one batch, on the commit thread (or, for a files or socket source, on
 * the consuming thread): merge the batch table into the state, add every task's records
 * (result rows, changelog records, marker) to the WriteBatch the hand-over filled with
 * positions and times, write it, publish. The main thread consumes the next batch
 * meanwhile; it touches none of what this uses until it has joined the thread
 * (finish_commit).
 */
static sl_err_t commit_batch(sl_job_t *job, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_commit_t *cm = &job->cm;
    sl_table_t *t = &cm->table;
    int64_t seq = cm->seq;
    int64_t t0 = sl__now_ms(), t_merge = t0, t_rows, t_commit = 0;
    sl_err_t e = SL_OK;
    const sl_val_t *rows;
    const uint16_t *row_tasks;
    size_t n;
    sl_out_row_t *local = NULL;
    cm->queue_ms = 0;
    cm->write_ms = -1; /* written here, not beside the queuing */
    for (int i = 0; i < cm->nids; i++) {
        sl_commit_task_t *ct = &cm->tasks[cm->ids[i]];
        sl__outbox_begin(&ct->w, job->run.store, cm->wb, ct->task, ct->seq, &ct->out);
        ct->nrows = 0;
        ct->rows_out = 0;
        ct->published = 0;
    }
    cm->merge.on_change = job->clog_topic[0] ? clog_change : NULL;
    cm->merge.change_opaque = job;
    if (c->plan.aggregating) {
        if ((e = sl__merge_batch(&cm->merge, job->run.store, cm->wb, t, cm->mtasks, cm->nids,
                                 errstr, errstr_size)))
            goto done;
        t_merge = sl__now_ms();
        rows = cm->merge.rows;
        row_tasks = cm->merge.row_tasks;
        n = cm->merge.nrows;
    } else {
        rows = cm->sel;
        row_tasks = cm->sel_tasks;
        n = cm->nsel;
    }
    if (local_outbox(c)) {
        sl__outbox_begin(&cm->lw, job->run.store, cm->wb, SL_STREAM_LOCAL, seq, &cm->lout);
        if (!(local = malloc((n ? n : 1) * sizeof(*local)))) {
            snprintf(errstr, errstr_size, "out of memory while encoding a batch's rows");
            e = SL_ERR_NOMEM;
            goto done;
        }
    }
    if ((c->output.sink == SL_SINK_KAFKA || local) &&
        (e = encode_rows(job, rows, row_tasks, n, local, errstr, errstr_size)))
        goto done;
    for (int i = 0; i < cm->nids && !e; i++) {
        sl_commit_task_t *ct = &cm->tasks[cm->ids[i]];
        if (job->clog_topic[0])
            e = task_add(ct, SL_DEST_MARKER, "m", 1, ct->marker.p, ct->marker.len);
        sl__outbox_end(&ct->w);
        if (!e && (e = task_rows(ct)) == SL_ERR_STATE)
            snprintf(errstr, errstr_size, "a batch's outbox records cannot be read back");
    }
    if (e) {
        if (e == SL_ERR_NOMEM)
            snprintf(errstr, errstr_size, "out of memory while encoding a batch's records");
        goto done;
    }
    if (c->output.sink == SL_SINK_KAFKA && !job->clog_topic[0]) {
        for (int i = 0; i < cm->nids; i++) {
            sl_txn_t *txn = txn_of(job, cm->ids[i]);
            if (txn)
                sl__reconcile_put_published(job->run.store, cm->wb, txn);
        }
    }
    t_rows = sl__now_ms();
    sl__crash_point("before-commit");
    if (job->run.sink.transactional && sl__sink_has_producers(&job->run.sink)) {
        if ((e = write_while_queuing(job, errstr, errstr_size)))
            goto done;
    } else if ((e = sl__store_write(job->run.store, cm->wb, 1, errstr, errstr_size))) {
        goto done;
    }
    if ((e = sl__store_mark(job->run.store, seq, errstr, errstr_size)))
        goto done;
    sl__crash_point("after-commit");
    t_commit = sl__now_ms();
    STAT_ADD(job, batches, 1);
    STAT_ADD(job, windows_closed, c->plan.aggregating ? cm->merge.closed : 0);
    atomic_store(&job->stats.watermark_ms, cm->wm_next);

    /* Publish. */
    if (c->output.sink == SL_SINK_CONSOLE && (cm->records || n)) {
        /* Like Spark, a batch that read records prints its table even when the filter left
         * no rows; one that only moved positions (past transaction markers) does not. */
        sl__sink_console(&job->run.sink, seq, rows, n);
    } else if (local) {
        /* File and foreach rows come from the outbox entries, which hold their JSON. */
        if ((e = sl__local_deliver(&job->local, seq, rows, n, local, errstr, errstr_size)))
            goto done;
        sl__outbox_delete_put(job->run.store, cm->wb, SL_STREAM_LOCAL, seq, seq + 1);
    } else if (c->output.sink == SL_SINK_MEMORY) {
        if ((e = sl__local_deliver(&job->local, seq, rows, n, NULL, errstr, errstr_size)))
            goto done;
    }
    if ((e = publish_tasks(job, errstr, errstr_size)))
        goto done;
    sl__crash_point("after-publish-before-outbox-delete");
    if (sl__store_batch_count(cm->wb) &&
        (e = sl__store_write(job->run.store, cm->wb, 0, errstr, errstr_size)))
        goto done;
    sl_log(SL_LOG_DEBUG, "job",
           "batch %" PRId64 ": %" PRIu64 " records, %zu rows, %d task(s); merge and commit %" PRId64
           " ms (merge %" PRId64 ", rows %" PRId64 ", state write %" PRId64
           " while queuing records %" PRId64 "), publish %" PRId64 " ms",
           seq, cm->records, n, cm->nids, t_commit - t0, t_merge - t0, t_rows - t_merge,
           cm->write_ms >= 0 ? cm->write_ms : t_commit - t_rows, cm->queue_ms,
           sl__now_ms() - t_commit);
    STAT_ADD(job, rows_out, n);
    atomic_store(&job->stats.last_commit_ms, sl__now_ms());
done:
    free(local);
    sl__table_clear(t);
    cm->nsel = 0;
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

int sl__job_wm_pending(const sl_job_t *job)
{
    for (int i = 0; i < job->ntasks; i++) {
        const sl_task_t *t = &job->tasks[i];
        if (t->state == SL_TASK_ACTIVE && t->wm != t->wm_late)
            return 1;
    }
    return 0;
}

/* The input offsets of @p task, as its marker has them, for the group. */
static void task_offsets(sl_job_t *job, sl_commit_task_t *ct)
{
    if (ct->offsets)
        rd_kafka_topic_partition_list_destroy(ct->offsets);
    ct->offsets = rd_kafka_topic_partition_list_new(4);
    const sl_source_t *src = &job->run.src;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int p = 0; p < src->topics[ti].nparts; p++) {
            const sl_part_t *part = &src->topics[ti].parts[p];
            if (part->pos >= 0 && sl__task_of(job, p) == ct->task)
                rd_kafka_topic_partition_list_add(ct->offsets, src->topics[ti].name, p)->offset =
                    part->pos;
        }
    }
}

/* One task's part of the hand-over: its positions, times and batch into the WriteBatch
 * and its marker; @p wm and @p evict its watermarks for this batch, @p maxev its largest
 * event time. */
static sl_err_t hand_over_task(sl_job_t *job, sl_task_t *t, int64_t wm, int64_t evict,
                               int64_t maxev, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_commit_task_t *ct = &job->cm.tasks[t->id];
    sl_source_t *src = &job->run.src;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++) {
            sl_part_t *part = &src->topics[ti].parts[pi];
            if (part->pos < 0 || part->pos == part->committed || sl__task_of(job, pi) != t->id)
                continue;
            char key[600];
            uint8_t pv[8];
            int kl = sl__source_pos_key(key, sizeof(key), t->id, src->topics[ti].name, pi);
            sl__be64_put(pv, (uint64_t)part->pos);
            sl__store_batch_put(job->cm.wb, job->run.store, SL_CF_META, key, (size_t)kl, pv, 8);
        }
    }
    t->seq++;
    t->nonce = sl__task_nonce();
    put_meta(job, t->id, "seq", t->seq);
    put_meta(job, t->id, "nonce", (int64_t)t->nonce);
    if (wm != t->wm)
        put_meta(job, t->id, "wm", wm);
    if (evict != t->wm_late)
        put_meta(job, t->id, "wm_evict", evict);
    if (maxev != t->maxev)
        put_meta(job, t->id, "maxev", maxev);
    if (t->clog != t->clog_stored) {
        put_meta(job, t->id, "clog", t->clog);
        t->clog_stored = t->clog;
    }
    t->wm_late = evict;
    t->wm = wm;
    t->maxev = maxev;
    ct->seq = t->seq;
    sl__buf_reset(&ct->marker);
    if (!job->clog_topic[0])
        return SL_OK;
    task_offsets(job, ct);
    sl_marker_t m = {.task = t->id,
                     .seq = t->seq,
                     .nonce = t->nonce,
                     .fingerprint = c->fingerprint,
                     .committed_ms = (int64_t)time(NULL) * 1000};
    sl_err_t e = sl__task_snapshot(job, t->id, &m);
    if (!e)
        e = sl__marker_encode(&m, c->name, &ct->marker);
    sl__marker_fini(&m);
    if (e)
        snprintf(errstr, errstr_size, "out of memory while committing a batch");
    return e;
}

/*
 * Ends the batch under way: waits for the previous commit, puts every task's moved
 * positions, batch and event times into the WriteBatch, flushes the side producer (dead
 * letters and late records must be in Kafka before the positions pass them), and hands
 * the batch table to a commit thread. From here on the main thread works as if the batch
 * were committed: a failed commit stops the job before anything later is.
 */
sl_err_t sl__job_commit(sl_job_t *job, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_commit_t *cm = &job->cm;
    sl_err_t e = sl__job_finish_commit(job, errstr, errstr_size);
    if (e)
        return e;
    if ((e = sl__job_fold_flush(job)) || job->rd.fq.lost) {
        /* Positions already passed the records of the fold that failed. */
        snprintf(errstr, errstr_size,
                 "out of memory while aggregating; the batch is not committed");
        return SL_ERR_NOMEM;
    }
    int64_t now = sl__now_ms(), wm_next = SL_WM_NONE;
    cm->nids = 0;
    for (int i = 0; i < job->ntasks; i++) {
        sl_task_t *t = &job->tasks[i];
        if (t->state != SL_TASK_ACTIVE)
            continue;
        if (t->batch_records)
            t->last_input_ms = now;
        /* Spark's two watermarks: this batch evicts with the watermark the last commit
         * computed (its records were checked for lateness against the one before); the
         * new one, from this batch's event times, is for the next batch to evict with. An
         * idle task's event time is taken to go on at wall-clock speed, so windows close
         * without waiting for its next record. */
        int64_t evict = t->wm, wm = t->wm, maxev = t->maxev;
        if (c->plan.wm_slot >= 0) {
            int64_t all;
            wm = sl__watermark_next(wm, event_time(job, i, &all), c->plan.wm_delay_ms);
            int64_t idle = now - t->last_input_ms;
            if (c->plan.idle_timeout_ms && !t->batch_records && t->maxev != SL_WM_NONE &&
                idle >= c->plan.idle_timeout_ms && t->maxev + idle - c->plan.wm_delay_ms > wm)
                wm = t->maxev + idle - c->plan.wm_delay_ms;
            if (all != SL_WM_NONE && (maxev == SL_WM_NONE || all > maxev))
                maxev = all;
        }
        /* Nothing read, nothing to evict: no batch for the task. A watermark that moved
         * past the one last evicted with makes a batch of no records, as Spark's no-data
         * batch. */
        if (!t->batch_records && !positions_moved(job, i) && wm == t->wm && evict == t->wm_late)
            continue;
        if ((e = hand_over_task(job, t, wm, evict, maxev, errstr, errstr_size)))
            return e;
        cm->mtasks[cm->nids] = (sl_merge_task_t){.task = i, .wm = evict};
        cm->ids[cm->nids++] = i;
        if (wm_next == SL_WM_NONE || (wm != SL_WM_NONE && wm < wm_next))
            wm_next = wm;
    }
    for (int i = 0; i < job->ntasks; i++)
        job->tasks[i].batch_records = 0;
    if (!cm->nids)
        return SL_OK;
    int64_t seq = job->seq + 1;
    if (job->run.lsrc)
        sl__lsrc_put(job->run.lsrc, job->run.store, cm->wb);
    uint8_t sb[8];
    sl__be64_put(sb, (uint64_t)seq);
    sl__store_batch_put(cm->wb, job->run.store, SL_CF_META, "seq", 3, sb, 8);
    if ((e = sl__sink_flush_side(&job->run.sink, errstr, errstr_size)))
        return e;

    /* Hand over. */
    sl_table_t tt = cm->table;
    cm->table = job->rd.table;
    job->rd.table = tt;
    sl_val_t *ts = cm->sel;
    uint16_t *tk = cm->sel_tasks;
    size_t tcap = cm->sel_cap;
    cm->sel = job->rd.sel;
    cm->sel_tasks = job->rd.sel_tasks;
    cm->nsel = job->rd.nsel;
    cm->sel_cap = job->rd.sel_cap;
    job->rd.sel = ts;
    job->rd.sel_tasks = tk;
    job->rd.sel_cap = tcap;
    job->rd.nsel = 0;
    cm->seq = seq;
    cm->wm_next = wm_next;
    cm->records = job->rd.batch_records;
    cm->err = SL_OK;
    job->rd.batch_records = 0;
    job->seq = seq;
    sl_source_t *src = &job->run.src;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++)
            src->topics[ti].parts[pi].committed = src->topics[ti].parts[pi].pos;
    }
    job->run.src.fresh = 0; /* partitions that appear from now on start at the earliest offset */
    /* A files or socket source commits in line: its progress marks are the live ones. */
    if (!job->run.lsrc && !pthread_create(&cm->thread, NULL, commit_thread, job)) {
        cm->running = 1;
        return SL_OK;
    }
    if ((e = commit_batch(job, errstr, errstr_size)))
        return e;
    if (job->run.lsrc)
        sl__lsrc_committed(job->run.lsrc);
    return SL_OK;
}
