/*
 * job.c - the micro-batch loop.
 *
 * One batch: consume records until the trigger fires (interval or max records), decode,
 * compute derived fields, filter, assign windows and fold each record into the batch
 * table (or, for a query without aggregation, keep its selected values); then merge the
 * table into the state (merge.h), and write the new aggregates, every partition's next
 * position, the batch sequence, the watermark and the outbox of result rows in ONE
 * synced WriteBatch. Only then are the rows published, and the outbox entries of the
 * batch deleted once the sink has them. A crash anywhere leaves the state at a batch
 * boundary; on restart the consumer seeks to the stored positions and whatever the
 * outbox holds is reconciled with the sink.
 *
 * The merge, the write and the publish of a batch run on a commit thread while the main
 * thread consumes the next batch into a second table; the next hand-over waits for that
 * commit first, so commits stay in order and at most one batch is uncommitted besides
 * the one being read. A failed commit stops the job before anything later commits.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "crash.h"
#include "job_int.h"
#include "kafka.h"
#include "log.h"
#include "merge.h"
#include "outbox.h"
#include "output.h"
#include "sink.h"
#include "sink_local.h"
#include "source.h"
#include "source_local.h"
#include "store.h"
#include "table.h"
#include "util/util.h"
#include "window.h"

#define CONSUME_MAX 1000

void sl__job_fatal(sl_job_t *job, sl_err_t err, const char *fmt, ...)
{
    if (job->fatal_err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->fatal, sizeof(job->fatal), fmt, ap);
    va_end(ap);
    job->fatal_err = err;
}

/* ---- public lifecycle ---- */

SL_API sl_err_t sl_job_new_from_json(const char *json, const char *base_dir, const char *origin,
                                     sl_job_t **jobp, char *errstr, size_t errstr_size)
{
    *jobp = NULL;
    sl_job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    sl_err_t err = sl__conf_parse(json, base_dir, origin, &job->conf, errstr, errstr_size);
    if (err) {
        free(job);
        return err;
    }
    *jobp = job;
    return SL_OK;
}

SL_API sl_err_t sl_job_new_from_file(const char *path, sl_job_t **jobp, char *errstr,
                                     size_t errstr_size)
{
    *jobp = NULL;
    char *text = NULL;
    sl_err_t err = sl__read_file(path, &text, NULL);
    if (err) {
        snprintf(errstr, errstr_size, "%s: cannot read the job file: %s", path,
                 err == SL_ERR_NOTFOUND ? "no such file" : sl_err2str(err));
        return err;
    }
    char *dir = strdup(path);
    if (!dir) {
        free(text);
        return SL_ERR_NOMEM;
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    err = sl_job_new_from_json(text, slash ? (*dir ? dir : "/") : ".", path, jobp, errstr,
                               errstr_size);
    free(dir);
    free(text);
    return err;
}

SL_API void sl_job_set_console(sl_job_t *job, FILE *out)
{
    job->console = out;
}

SL_API void sl_job_set_foreach_batch(sl_job_t *job, sl_foreach_batch_fn fn, void *opaque)
{
    job->foreach = fn;
    job->foreach_opaque = opaque;
}

SL_API char *sl_job_memory_rows(const sl_job_t *job)
{
    sl_job_t *j = (sl_job_t *)job;
    if (!j->local.c)
        return strdup("[]");
    return sl__local_memory_json(&j->local);
}

SL_API void sl_job_stop(sl_job_t *job)
{
    atomic_store(&job->stop, 1);
}

SL_API char *sl_job_avro_schema(const sl_job_t *job, int key_only)
{
    return sl__out_avro_schema(job->conf, key_only);
}

SL_API void sl_job_stats(const sl_job_t *job, sl_job_stats_t *out)
{
    sl_job_t *j = (sl_job_t *)job;
    out->batches = atomic_load(&j->stats.batches);
    out->records_in = atomic_load(&j->stats.records_in);
    out->records_bad = atomic_load(&j->stats.records_bad);
    out->records_kept = atomic_load(&j->stats.records_kept);
    out->rows_out = atomic_load(&j->stats.rows_out);
    out->first_record_ms = atomic_load(&j->stats.first_record_ms);
    out->last_commit_ms = atomic_load(&j->stats.last_commit_ms);
    out->records_late = atomic_load(&j->stats.records_late);
    out->records_untimed = atomic_load(&j->stats.records_untimed);
    out->windows_closed = atomic_load(&j->stats.windows_closed);
    out->watermark_ms = atomic_load(&j->stats.watermark_ms);
    out->records_lost = atomic_load(&j->stats.records_lost);
}

SL_API void sl_job_destroy(sl_job_t *job)
{
    if (!job)
        return;
    sl__local_close(&job->local);
    sl__conf_destroy(job->conf);
    free(job);
}

/* ---- state: fingerprint, sequence, outbox recovery ---- */

/* Names what changed between the stored query layout and this job's, part by part. */
static void describe_change(const char *stored, const char *now, char *out, size_t size)
{
    json_t *a = stored ? json_loads(stored, 0, NULL) : NULL;
    json_t *b = json_loads(now, 0, NULL);
    out[0] = 0;
    if (!json_is_object(a) || !json_is_object(b)) {
        snprintf(out, size, "the input schema or the query changed");
        goto done;
    }
    const char *k;
    json_t *v;
    json_t *keys = json_object();
    json_object_foreach(a, k, v) json_object_set(keys, k, json_true());
    json_object_foreach(b, k, v) json_object_set(keys, k, json_true());
    json_object_foreach(keys, k, v)
    {
        json_t *x = json_object_get(a, k), *y = json_object_get(b, k);
        if (!strcmp(k, "where") || (x && y && json_equal(x, y)))
            continue;
        char *xs = x ? json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *ys = y ? json_dumps(y, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        sl__strlcatf(out, size, "%s%s changed from %s to %s", out[0] ? "; " : "", k,
                     xs ? xs : "(none)", ys ? ys : "(none)");
        free(xs);
        free(ys);
    }
    json_decref(keys);
    if (!out[0])
        snprintf(out, size, "the input schema changed");
done:
    json_decref(a);
    json_decref(b);
}

static sl_err_t load_meta(sl_job_t *job, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    char *val = NULL;
    size_t vlen;
    sl_err_t e = sl__store_get(job->store, SL_CF_META, "job", 3, &val, &vlen, errstr, errstr_size);
    if (e == SL_OK) {
        uint64_t stored = vlen == 8 ? sl__be64_get((const uint8_t *)val) : 0;
        free(val);
        if (stored != c->fingerprint) {
            char *q = NULL;
            size_t qlen;
            sl__store_get(job->store, SL_CF_META, "query", 5, &q, &qlen, errstr, errstr_size);
            char what[1536];
            describe_change(q, c->query_desc, what, sizeof(what));
            snprintf(errstr, errstr_size,
                     "state %s was written by an incompatible job: %s. Use a new state "
                     "directory (the job then starts over from the source), or restore the "
                     "old job",
                     c->state_dir, what);
            free(q);
            return SL_ERR_MISMATCH;
        }
        job->fingerprint_stored = 1;
    } else if (e != SL_ERR_NOTFOUND) {
        return e;
    }
    int64_t *times[] = {&job->wm, &job->maxev};
    const char *names[] = {"wm", "maxev"};
    for (int i = 0; i < 2; i++) {
        *times[i] = SL_WM_NONE;
        e = sl__store_get(job->store, SL_CF_META, names[i], strlen(names[i]), &val, &vlen, errstr,
                          errstr_size);
        if (e == SL_OK) {
            *times[i] = vlen == 8 ? (int64_t)sl__be64_get((const uint8_t *)val) : SL_WM_NONE;
            free(val);
        } else if (e != SL_ERR_NOTFOUND) {
            return e;
        }
    }
    atomic_store(&job->stats.watermark_ms, job->wm);
    e = sl__store_get(job->store, SL_CF_META, "seq", 3, &val, &vlen, errstr, errstr_size);
    if (e == SL_OK) {
        job->seq = vlen == 8 ? (int64_t)sl__be64_get((const uint8_t *)val) : -1;
        free(val);
        if (job->seq < 0) {
            snprintf(errstr, errstr_size, "state %s: the batch sequence is corrupt", c->state_dir);
            return SL_ERR_STATE;
        }
    } else if (e != SL_ERR_NOTFOUND) {
        return e;
    }
    return SL_OK;
}

/* ---- commit and publish ---- */

/* A new producer fences the old one and aborts its open transaction; the outbox still
 * holds the batch, so reconciliation publishes what is missing. Being fenced again while
 * doing so (another instance keeps starting) is retried a few times. */
static sl_err_t recover_producer(sl_job_t *job, char *errstr, size_t errstr_size)
{
    for (int attempt = 1;; attempt++) {
        sl_log(SL_LOG_WARN, "sink", "%s; starting a new producer and reconciling", errstr);
        sl_err_t e = sl__sink_reset(&job->sink, errstr, errstr_size);
        if (!e)
            e = sl__outbox_reconcile(job->store, job->wb, &job->sink, errstr, errstr_size);
        if (e != SL_ERR_FENCED || attempt == 5)
            return e;
    }
}

static int positions_moved(const sl_job_t *job)
{
    if (job->lsrc && sl__lsrc_moved(job->lsrc))
        return 1;
    const sl_source_t *src = &job->src;
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
    sl__store_batch_put(job->wb, job->store, SL_CF_META, name, strlen(name), b, 8);
}

/* The sinks whose rows go through the outbox (redelivered after a crash). */
static int uses_outbox(const sl_conf_t *c)
{
    return c->sink == SL_SINK_KAFKA || c->sink == SL_SINK_FILE || c->sink == SL_SINK_FOREACH;
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
    if (job->lsrc) { /* one stream, read in order: Spark's rule, the largest seen */
        *all = job->lpart.maxev;
        return *all;
    }
    const sl_source_t *src = &job->src;
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
                (job->conf->available_now && (part->end < 0 || part->pos >= part->end)))
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
    sl_table_t *t = &job->ctable;
    int64_t seq = job->cm.seq, wm = job->cm.wm;
    int64_t t0 = sl__now_ms(), t_commit = 0;
    sl_err_t e = SL_OK;
    const sl_val_t *rows;
    size_t n;
    size_t *spans = NULL; /* row i's outbox entry: spans[2i] bytes at out[spans[2i]] */
    sl_out_row_t *orows = NULL;
    sl_buf_t k, v;
    sl__buf_init(&k);
    sl__buf_init(&v);
    if (c->aggregating) {
        if ((e = sl__merge_batch(&job->merge, job->store, job->wb, t, wm, errstr, errstr_size)))
            goto done;
        rows = job->merge.rows;
        n = job->merge.nrows;
    } else {
        rows = job->csel;
        n = job->cnsel;
    }
    if (uses_outbox(c)) {
        spans = malloc((2 * n + 1) * sizeof(*spans));
        orows = malloc((n ? n : 1) * sizeof(*orows));
        if (!spans || !orows) {
            e = SL_ERR_NOMEM;
            goto done;
        }
        sl_outbox_writer_t w;
        sl__outbox_begin(&w, job->store, job->wb, seq, &job->out);
        for (size_t i = 0; i < n; i++) {
            sl__buf_reset(&k);
            sl__buf_reset(&v);
            const sl_val_t *row = &rows[i * (size_t)c->ncols];
            if (c->sink == SL_SINK_KAFKA)
                e = sl__out_encode(c, row, &k, &v);
            else
                e = sl__out_json(c, row, &v);
            if (!e)
                e = sl__outbox_add(&w, &k, &v, &spans[2 * i], &spans[2 * i + 1]);
            if (e)
                goto done;
        }
        sl__outbox_end(&w);
        for (size_t i = 0; i < n; i++) {
            orows[i].seq = seq;
            orows[i].idx = (uint32_t)i;
            sl__outbox_row(job->out.p + spans[2 * i], spans[2 * i + 1], &orows[i]);
        }
    }
    if (!job->fingerprint_stored) {
        uint8_t fp[8];
        sl__be64_put(fp, c->fingerprint);
        sl__store_batch_put(job->wb, job->store, SL_CF_META, "job", 3, fp, 8);
        sl__store_batch_put(job->wb, job->store, SL_CF_META, "query", 5, c->query_desc,
                            strlen(c->query_desc));
    }
    if (c->sink == SL_SINK_KAFKA)
        sl__outbox_put_published(job->store, job->wb, &job->sink);
    sl__crash_point("before-commit");
    if ((e = sl__store_write(job->store, job->wb, 1, errstr, errstr_size)))
        goto done;
    sl__crash_point("after-commit");
    t_commit = sl__now_ms();
    job->fingerprint_stored = 1;
    STAT_ADD(job, batches, 1);
    STAT_ADD(job, windows_closed, c->aggregating ? job->merge.closed : 0);
    atomic_store(&job->stats.watermark_ms, wm);

    /* Publish. */
    switch (c->sink) {
    case SL_SINK_CONSOLE:
        /* Like Spark, a batch that read records prints its table even when the filter left
         * no rows; one that only moved positions (past transaction markers) does not. */
        if (job->cm.records || n)
            sl__sink_console(&job->sink, seq, rows, n);
        break;
    case SL_SINK_KAFKA:
        if (!n)
            break;
        e = sl__sink_publish(&job->sink, orows, n, "mid-publish", errstr, errstr_size);
        if (e == SL_ERR_FENCED && !(e = recover_producer(job, errstr, errstr_size)))
            break; /* the outbox is empty now */
        if (e)
            goto done;
        sl__crash_point("after-publish-before-outbox-delete");
        e = sl__outbox_delete(job->store, job->wb, seq, seq + 1, errstr, errstr_size);
        break;
    default:
        /* File and foreach rows come from the outbox entries, which hold their JSON. */
        e = sl__local_deliver(&job->local, seq, rows, n, orows, errstr, errstr_size);
        if (!e && uses_outbox(c))
            e = sl__outbox_delete(job->store, job->wb, seq, seq + 1, errstr, errstr_size);
        break;
    }
    if (e)
        goto done;
    sl_log(SL_LOG_DEBUG, "job",
           "batch %" PRId64 ": %" PRIu64 " records, %zu rows; merge and commit %" PRId64
           " ms, publish %" PRId64 " ms",
           seq, job->cm.records, n, t_commit - t0, sl__now_ms() - t_commit);
    STAT_ADD(job, rows_out, n);
    atomic_store(&job->stats.last_commit_ms, sl__now_ms());
done:
    free(spans);
    free(orows);
    sl__buf_fini(&k);
    sl__buf_fini(&v);
    sl__table_clear(t);
    job->cnsel = 0;
    return e;
}

static void *commit_thread(void *opaque)
{
    sl_job_t *job = opaque;
    job->cm.err = commit_batch(job, job->cm.errstr, sizeof(job->cm.errstr));
    return NULL;
}

/* Waits for the commit under way, if any; its error, with its message in @p errstr. */
static sl_err_t finish_commit(sl_job_t *job, char *errstr, size_t errstr_size)
{
    if (!job->committing)
        return SL_OK;
    pthread_join(job->committer, NULL);
    job->committing = 0;
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
static sl_err_t commit(sl_job_t *job, int64_t wm_idle, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_err_t e = finish_commit(job, errstr, errstr_size);
    if (e)
        return e;
    if ((e = sl__job_fold_flush(job)) || job->fq.lost) {
        /* Positions already passed the records of the fold that failed. */
        snprintf(errstr, errstr_size,
                 "out of memory while aggregating; the batch is not committed");
        return SL_ERR_NOMEM;
    }
    int64_t wm = job->wm, maxev = job->maxev;
    if (c->wm_slot >= 0) {
        int64_t all;
        wm = sl__watermark_next(wm, event_time(job, &all), c->wm_delay_ms);
        if (wm_idle != SL_WM_NONE && wm_idle > wm)
            wm = wm_idle;
        if (all != SL_WM_NONE && (maxev == SL_WM_NONE || all > maxev))
            maxev = all;
    }
    if (job->table.n == 0 && job->nsel == 0 && !positions_moved(job) && wm == job->wm)
        return SL_OK;
    int64_t seq = job->seq + 1;
    /* Positions: every partition whose next offset moved in this batch. */
    sl_source_t *src = &job->src;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++) {
            sl_part_t *part = &src->topics[ti].parts[pi];
            if (part->pos < 0 || part->pos == part->committed)
                continue;
            char key[512];
            uint8_t pv[8];
            int kl = sl__source_pos_key(key, sizeof(key), src->topics[ti].name, pi);
            sl__be64_put(pv, (uint64_t)part->pos);
            sl__store_batch_put(job->wb, job->store, SL_CF_META, key, (size_t)kl, pv, 8);
        }
    }
    if (job->lsrc)
        sl__lsrc_put(job->lsrc, job->store, job->wb);
    put_time(job, "seq", seq);
    if (wm != job->wm)
        put_time(job, "wm", wm);
    if (maxev != job->maxev)
        put_time(job, "maxev", maxev);
    if ((e = sl__sink_flush_side(&job->sink, errstr, errstr_size)))
        return e;

    /* Hand over. */
    sl_table_t tt = job->ctable;
    job->ctable = job->table;
    job->table = tt;
    sl_val_t *ts = job->csel;
    size_t tcap = job->csel_cap;
    job->csel = job->sel;
    job->cnsel = job->nsel;
    job->csel_cap = job->sel_cap;
    job->sel = ts;
    job->sel_cap = tcap;
    job->nsel = 0;
    job->cm.seq = seq;
    job->cm.wm = wm;
    job->cm.records = job->batch_records;
    job->cm.err = SL_OK;
    job->batch_records = 0;
    job->seq = seq;
    job->wm = wm;
    job->maxev = maxev;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++)
            src->topics[ti].parts[pi].committed = src->topics[ti].parts[pi].pos;
    }
    job->src.fresh = 0; /* partitions that appear from now on start at the earliest offset */
    /* A files or socket source commits in line: its progress marks are the live ones. */
    if (!job->lsrc && !pthread_create(&job->committer, NULL, commit_thread, job)) {
        job->committing = 1;
        return SL_OK;
    }
    if ((e = commit_batch(job, errstr, errstr_size)))
        return e;
    if (job->lsrc)
        sl__lsrc_committed(job->lsrc);
    return SL_OK;
}

/* ---- the loop ---- */

/* Creates the parents of the state directory; what cannot be created is reported by the
 * store when it opens the directory. */
static void mkdirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    free(p);
}

static void run_batches(sl_job_t *job)
{
    const sl_conf_t *c = job->conf;
    rd_kafka_message_t *msgs[CONSUME_MAX];
    static __thread sl_rec_t recs[CONSUME_MAX];
    char err[1024];
    for (;;) {
        int64_t start = sl__now_ms();
        int64_t nrec = 0;
        int done = 0;
        while (!atomic_load(&job->stop) && !job->fatal_err) {
            int64_t left = c->interval_ms - (sl__now_ms() - start);
            if (c->max_records && nrec >= c->max_records)
                break;
            if ((int64_t)(job->table.n + job->nsel) >= c->max_keys)
                break;
            if (left <= 0) {
                /* min_records: wait for more, up to max_trigger_delay past the interval. */
                if (!c->min_records || nrec >= c->min_records || -left >= c->max_trigger_delay_ms)
                    break;
                left = c->max_trigger_delay_ms + left;
            }
            size_t want = CONSUME_MAX;
            if (c->max_records && (int64_t)want > c->max_records - nrec)
                want = (size_t)(c->max_records - nrec);
            int wait = left < 100 ? (int)left : 100;
            if (job->lsrc) {
                int src_done = 0;
                int got = sl__lsrc_poll(job->lsrc, recs, (int)want, wait, c->available_now,
                                        &src_done, err, sizeof(err));
                if (got < 0) {
                    sl__job_fatal(job, SL_ERR_IO, "%s", err);
                    break;
                }
                for (int i = 0; i < got && !job->fatal_err; i++) {
                    if (sl__job_process_rec(job, &recs[i], &job->lpart))
                        sl__lsrc_ack(job->lsrc, &recs[i]);
                }
                done = src_done && !job->fatal_err;
            } else {
                ssize_t got = rd_kafka_consume_batch_queue(job->src.q, wait, msgs, want);
                if (got < 0) {
                    sl__job_fatal(job, SL_ERR_KAFKA, "consume failed: %s",
                                  rd_kafka_err2str(rd_kafka_last_error()));
                    break;
                }
                for (ssize_t i = 0; i < got; i++) {
                    if (!job->fatal_err)
                        sl__job_process(job, msgs[i]);
                    rd_kafka_message_destroy(msgs[i]);
                }
            }
            nrec += (int64_t)job->n_in; /* records, not partition-end events */
            if (job->n_in) {
                job->last_input_ms = sl__now_ms();
                if (!atomic_load(&job->stats.first_record_ms))
                    atomic_store(&job->stats.first_record_ms, job->last_input_ms);
            }
            STAT_ADD(job, records_in, job->n_in);
            STAT_ADD(job, records_bad, job->n_bad);
            STAT_ADD(job, records_kept, job->n_kept);
            STAT_ADD(job, records_late, job->n_late);
            STAT_ADD(job, records_untimed, job->n_untimed);
            job->batch_records += job->n_in;
            job->n_in = job->n_bad = job->n_kept = job->n_late = job->n_untimed = 0;
            atomic_store(&job->stats.records_lost, job->src.lost);
            if (job->src.fatal[0])
                sl__job_fatal(job, job->src.fatal_err, "%s", job->src.fatal);
            if (done || (c->available_now && !job->lsrc && sl__source_caught_up(&job->src))) {
                done = 1;
                break;
            }
        }
        /* An idle source: event time is taken to go on at wall-clock speed, so windows
         * close without waiting for the next record. */
        int64_t wm_idle = SL_WM_NONE;
        int64_t idle = sl__now_ms() - job->last_input_ms;
        if (c->idle_timeout_ms && job->batch_records == 0 && job->maxev != SL_WM_NONE &&
            idle >= c->idle_timeout_ms)
            wm_idle = job->maxev + idle - c->wm_delay_ms;
        /* The records before a fatal one are committed, so no work is lost. */
        int last = done || job->fatal_err || atomic_load(&job->stop);
        sl_err_t e = commit(job, wm_idle, err, sizeof(err));
        if (!e && last)
            e = finish_commit(job, err, sizeof(err));
        if (e) {
            job->fatal_err = 0;
            sl__job_fatal(job, e, "%s", err);
        }
        if (last || job->fatal_err) {
            finish_commit(job, err, sizeof(err)); /* after a failed hand-over */
            return;
        }
    }
}

static const char *source_desc(const sl_job_t *job, char *buf, size_t size)
{
    const sl_conf_t *c = job->conf;
    if (job->lsrc)
        snprintf(buf, size, "%s", sl__lsrc_describe(job->lsrc));
    else if (c->pattern)
        snprintf(buf, size, "topics matching %s on %s", c->pattern, c->bootstrap);
    else
        snprintf(buf, size, "%d topic(s) on %s", c->ntopics, c->bootstrap);
    return buf;
}

static const char *sink_desc(const sl_conf_t *c)
{
    switch (c->sink) {
    case SL_SINK_CONSOLE:
        return "to the console (not replayed after a crash)";
    case SL_SINK_FILE:
        return "to files, one per batch (rewritten whole after a crash)";
    case SL_SINK_MEMORY:
        return "to memory";
    case SL_SINK_FOREACH:
        return "to a callback per batch (handed over again after a crash)";
    default:
        return c->exactly_once ? "exactly-once (transactions)"
                               : "at-least-once (idempotent producer, deduplicated on restart)";
    }
}

SL_API sl_err_t sl_job_run(sl_job_t *job, char *errstr, size_t errstr_size)
{
    sl_conf_t *c = job->conf;
    sl_err_t e;
    char srcdesc[700];
    job->fatal_err = SL_OK;
    job->fatal[0] = 0;
    job->seq = 0;
    job->fingerprint_stored = 0;
    job->last_input_ms = sl__now_ms();
    sl__buf_init(&job->key);
    sl__buf_init(&job->out);

    /* Kafka first: a job that cannot reach its brokers or topics writes no state. */
    int quiet = 1;
    sl__kafka_quiet(1);
    if (c->src_kind == SL_SRC_KAFKA && (e = sl__source_open(&job->src, c, errstr, errstr_size)))
        goto fail_sink; /* the source may be half open */
    if ((e = sl__sink_open(&job->sink, c, job->console, errstr, errstr_size)))
        goto fail_store;
    sl__local_close(&job->local); /* a memory sink's rows of an earlier run */
    if ((e = sl__local_open(&job->local, c, job->foreach, job->foreach_opaque, errstr,
                            errstr_size)))
        goto fail_store;
    mkdirs(c->state_dir);
    if ((e = sl__store_open(c->state_dir, 1, 0, &job->store, errstr, errstr_size)))
        goto fail_store;
    e = SL_ERR_NOMEM;
    job->wb = sl__store_batch_new();
    job->row = calloc((size_t)c->nslots + 1, sizeof(sl_val_t));
    sl__arena_init(&job->scratch);
    if (!job->wb || !job->row || sl__table_init(&job->table, c->naggs) != SL_OK ||
        sl__table_init(&job->ctable, c->naggs) != SL_OK || sl__job_fold_init(job) != SL_OK ||
        sl__merge_init(&job->merge, c) != SL_OK) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail_run;
    }
    if ((e = load_meta(job, errstr, errstr_size)))
        goto fail_run;
    if (c->sink == SL_SINK_KAFKA &&
        (e = sl__outbox_reconcile(job->store, job->wb, &job->sink, errstr, errstr_size)) ==
            SL_ERR_FENCED)
        e = recover_producer(job, errstr, errstr_size);
    if (!e && (c->sink == SL_SINK_FILE || c->sink == SL_SINK_FOREACH))
        e = sl__local_replay(&job->local, job->store, job->wb, errstr, errstr_size);
    if (e)
        goto fail_run;
    job->src.fresh = job->seq == 0;
    job->lpart = (sl_part_t){.maxev = SL_WM_NONE, .assigned = 1};
    if (c->src_kind != SL_SRC_KAFKA)
        e = sl__lsrc_open(c, job->store, &job->lsrc, errstr, errstr_size);
    else
        e = sl__source_start(&job->src, job->store, c->available_now, errstr, errstr_size);
    if (e)
        goto fail_run;
    sl__kafka_quiet(0);
    quiet = 0;
    sl_log(SL_LOG_INFO, "job",
           "job '%s' running: %s, state %s, batch %" PRId64 " next, trigger "
           "%" PRId64 " ms%s, %s mode, output %s",
           c->name, source_desc(job, srcdesc, sizeof(srcdesc)), c->state_dir, job->seq + 1,
           c->interval_ms, c->available_now ? " (available-now)" : "", sl__mode_name(c->mode),
           sink_desc(c));

    run_batches(job);
    e = job->fatal_err;
    if (e)
        snprintf(errstr, errstr_size, "%s", job->fatal);
    else
        sl_log(SL_LOG_INFO, "job", "job '%s' stopped after batch %" PRId64, c->name, job->seq);

fail_run:
    sl__table_fini(&job->table);
    sl__table_fini(&job->ctable);
    sl__merge_fini(&job->merge);
    sl__arena_fini(&job->scratch);
    free(job->row);
    job->row = NULL;
    free(job->sel);
    job->sel = NULL;
    job->sel_cap = job->nsel = 0;
    free(job->csel);
    job->csel = NULL;
    free(job->fq.vals);
    job->fq.vals = NULL;
    job->csel_cap = job->cnsel = 0;
    sl__store_batch_destroy(job->wb);
    job->wb = NULL;
    sl__lsrc_close(job->lsrc);
    job->lsrc = NULL;
    sl__store_close(job->store);
    job->store = NULL;
fail_store:
    sl__sink_close(&job->sink);
fail_sink:
    sl__source_close(&job->src);
    sl__buf_fini(&job->key);
    sl__buf_fini(&job->out);
    if (quiet)
        sl__kafka_quiet(0);
    return e;
}
