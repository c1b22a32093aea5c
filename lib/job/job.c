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

#include "commit/changelog.h"
#include "commit/merge.h"
#include "commit/outbox.h"
#include "commit/upgrade.h"
#include "conf/conf.h"
#include "job_int.h"
#include "kafka.h"
#include "log.h"
#include "query/table.h"
#include "query/window.h"
#include "sink/output.h"
#include "sink/sink.h"
#include "sink/sink_local.h"
#include "source/source.h"
#include "source/source_local.h"
#include "store.h"
#include "util.h"

#define CONSUME_MAX 1000

void sl__job_fatal(sl_job_t *job, sl_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__first_err_vset(&job->fatal, err, fmt, ap);
    va_end(ap);
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
    char why[256];
    sl_err_t err = sl__read_file(path, SL_FILE_MAX, &text, NULL, why, sizeof(why));
    if (err) {
        snprintf(errstr, errstr_size, "%s: cannot read the job file: %s", path, why);
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
    if (!j->local.plan)
        return strdup("[]");
    return sl__local_memory_json(&j->local);
}

SL_API void sl_job_stop(sl_job_t *job)
{
    atomic_store(&job->stop, 1);
}

SL_API char *sl_job_avro_schema(const sl_job_t *job, int key_only)
{
    return sl__out_avro_schema(&job->conf->plan, job->conf->name, key_only);
}

SL_API void sl_job_stats(const sl_job_t *job, sl_job_stats_t *caller, size_t size)
{
    sl_job_t *j = (sl_job_t *)job;
    sl_job_stats_t all = {0}, *out = &all;
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
    out->records_restored = atomic_load(&j->stats.records_restored);
    out->restore_ms = atomic_load(&j->stats.restore_ms);
    out->tasks_opened = atomic_load(&j->stats.tasks_opened);
    memset(caller, 0, size);
    memcpy(caller, &all, size < sizeof(all) ? size : sizeof(all));
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
    sl_err_t e = sl__store_get(job->run.store, SL_CF_META, "job", 3, &val, &vlen, errstr, errstr_size);
    if (e == SL_OK) {
        uint64_t stored = vlen == 8 ? sl__be64_get((const uint8_t *)val) : 0;
        free(val);
        if (stored != c->fingerprint) {
            char *q = NULL;
            size_t qlen;
            sl__store_get(job->run.store, SL_CF_META, "query", 5, &q, &qlen, errstr, errstr_size);
            char what[1536];
            describe_change(q, c->query_desc, what, sizeof(what));
            snprintf(errstr, errstr_size,
                     "state %s was written by an incompatible job: %s. %s, or restore the old "
                     "job",
                     c->state.dir, what,
                     job->clog_topic[0]
                         ? "Give the job another name and a new state directory (it then "
                           "starts over from its input; the changelog of the old name keeps "
                           "the old state)"
                         : "Use a new state directory (the job then starts over from its input)");
            free(q);
            return SL_ERR_MISMATCH;
        }
    } else if (e == SL_ERR_NOTFOUND) {
        /* Whose state this is, from the start: tasks restored from the changelog may be
         * all the store ever holds, and inspect decodes them with the query layout. */
        sl_store_batch_t *wb = sl__store_batch_new();
        if (!wb)
            return SL_ERR_NOMEM;
        uint8_t fp[8];
        sl__be64_put(fp, c->fingerprint);
        sl__store_batch_put(wb, job->run.store, SL_CF_META, "job", 3, fp, 8);
        sl__store_batch_put(wb, job->run.store, SL_CF_META, "query", 5, c->query_desc,
                            strlen(c->query_desc));
        e = sl__store_write(job->run.store, wb, 1, errstr, errstr_size);
        sl__store_batch_destroy(wb);
        if (e)
            return e;
    } else {
        return e;
    }
    e = sl__store_get(job->run.store, SL_CF_META, "seq", 3, &val, &vlen, errstr, errstr_size);
    if (e == SL_OK) {
        job->seq = vlen == 8 ? (int64_t)sl__be64_get((const uint8_t *)val) : -1;
        free(val);
        if (job->seq < 0) {
            snprintf(errstr, errstr_size, "state %s: the batch sequence is corrupt", c->state.dir);
            return SL_ERR_STATE;
        }
    } else if (e != SL_ERR_NOTFOUND) {
        return e;
    }
    /* RocksDB opened the store behind what was committed there: its log or MANIFEST was
     * damaged or replaced. Going on would read the input again and publish it again. */
    int64_t marked = sl__store_marked(job->run.store);
    if (marked > job->seq) {
        char at[48] = "empty";
        if (job->seq)
            snprintf(at, sizeof(at), "at batch %" PRId64, job->seq);
        snprintf(errstr, errstr_size,
                 "state %s is damaged: it opens %s, but batch %" PRId64
                 " was committed there (SLUICE_STATE); its write-ahead log or MANIFEST was "
                 "damaged, truncated or replaced. Restore the directory from a backup; or, to "
                 "start over, move it aside: the job then reads its input again from the start "
                 "and publishes every row again",
                 c->state.dir, at, marked);
        return SL_ERR_STATE;
    }
    /* A store written before SLUICE_STATE existed: from now on it is kept. */
    if (marked < 0 && job->seq > 0)
        return sl__store_mark(job->run.store, job->seq, errstr, errstr_size);
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

/* ---- the group's hand-outs: tasks opened and closed ---- */

/* The distinct tasks of @p parts into @p ids (room for all of them); their number. */
static int tasks_of(const sl_job_t *job, const rd_kafka_topic_partition_list_t *parts, int *ids)
{
    int n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int t = sl__task_of(job, parts->elems[i].partition);
        int seen = t >= job->ntasks;
        for (int j = 0; j < n && !seen; j++)
            seen = ids[j] == t;
        if (!seen)
            ids[n++] = t;
    }
    return n;
}

/* The group gave us partitions: their tasks are opened (a parked one taken up again)
 * before the partitions are read. An eager rebalance hands out the whole assignment, so a
 * parked task not in it went elsewhere. */
static sl_err_t on_assigned(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    sl_job_t *job = opaque;
    int *ids = calloc((size_t)parts->cnt + 1, sizeof(int));
    if (!ids) {
        sl__job_fatal(job, SL_ERR_NOMEM, "out of memory");
        return SL_ERR_NOMEM;
    }
    int n = tasks_of(job, parts, ids);
    for (int i = 0; i < job->ntasks; i++) {
        sl_task_t *t = &job->tasks[i];
        int in = 0;
        for (int j = 0; j < n && !in; j++)
            in = ids[j] == i;
        if (t->state == SL_TASK_PARKED)
            in ? (void)(t->state = SL_TASK_ACTIVE) : sl__task_close(job, i);
    }
    /* The others open on the opener thread, their partitions held meanwhile. */
    for (int i = 0; i < n; i++) {
        int st = job->tasks[ids[i]].state;
        if (st == SL_TASK_IDLE || st == SL_TASK_FENCED)
            sl__opener_request(job, ids[i]);
    }
    free(ids);
    return SL_OK;
}

/* A partition is read at once when its task is open. */
static int task_ready(void *opaque, int partition)
{
    sl_job_t *job = opaque;
    int t = sl__task_of(job, partition);
    return t < job->ntasks && job->tasks[t].state == SL_TASK_ACTIVE;
}

/* The group takes partitions: the batch under way is committed first (with the tasks
 * that stay), then their tasks are closed; an eager rebalance parks them, since it gives
 * back most of what it takes. Tasks lost to another instance commit what they can (their
 * producer may be fenced already). */
static void on_revoked(void *opaque, const rd_kafka_topic_partition_list_t *parts, int cooperative,
                       int lost)
{
    sl_job_t *job = opaque;
    int *ids = calloc((size_t)parts->cnt + 1, sizeof(int));
    if (!ids) {
        sl__job_fatal(job, SL_ERR_NOMEM, "out of memory");
        return;
    }
    int n = tasks_of(job, parts, ids), active = 0, opening = 0;
    for (int i = 0; i < n; i++) {
        active |= job->tasks[ids[i]].state == SL_TASK_ACTIVE;
        opening |= job->tasks[ids[i]].state == SL_TASK_OPENING;
    }
    /* A task being opened is finished first: it is closed, or parked, once open. */
    if (opening)
        sl__opener_wait(job);
    char err[1024];
    if (active && !job->fatal.err) {
        sl_err_t e = sl__job_commit(job, err, sizeof(err));
        if (!e)
            e = sl__job_finish_commit(job, err, sizeof(err));
        if (e && !lost)
            sl__job_fatal(job, e, "%s", err);
    }
    for (int i = 0; i < n; i++) {
        sl_task_t *t = &job->tasks[ids[i]];
        int st = t->state;
        if (st == SL_TASK_FENCED || st == SL_TASK_FAILED) {
            sl__task_close(job, ids[i]);
            continue;
        }
        if (st != SL_TASK_ACTIVE && st != SL_TASK_READY)
            continue;
        if (cooperative || lost) {
            sl__task_close(job, ids[i]);
            sl_log(SL_LOG_INFO, "task", "task %d closed: its partitions went to another "
                   "instance", ids[i]);
        } else {
            t->state = SL_TASK_PARKED;
        }
    }
    free(ids);
}

static void process_message(void *opaque, rd_kafka_message_t *m)
{
    sl_job_t *job = opaque;
    if (!job->fatal.err)
        sl__job_process(job, m);
}

static void run_batches(sl_job_t *job)
{
    const sl_conf_t *c = job->conf;
    static __thread sl_rec_t recs[CONSUME_MAX];
    char err[1024];
    for (;;) {
        int64_t start = sl__now_ms();
        int64_t nrec = 0;
        int done = 0;
        while (!atomic_load(&job->stop) && !job->fatal.err) {
            int64_t left = c->trigger.interval_ms - (sl__now_ms() - start);
            if (c->trigger.max_records && nrec >= c->trigger.max_records)
                break;
            if ((int64_t)(job->rd.table.n + job->rd.nsel) >= c->trigger.max_keys)
                break;
            if (left <= 0) {
                /* min_records: wait for more, up to max_trigger_delay past the interval. */
                if (!c->trigger.min_records || nrec >= c->trigger.min_records || -left >= c->trigger.max_trigger_delay_ms)
                    break;
                left = c->trigger.max_trigger_delay_ms + left;
            }
            size_t want = CONSUME_MAX;
            if (c->trigger.max_records && (int64_t)want > c->trigger.max_records - nrec)
                want = (size_t)(c->trigger.max_records - nrec);
            int wait = left < 100 ? (int)left : 100;
            if (job->run.lsrc) {
                int src_done = 0;
                job->rd.task = 0;
                int got = sl__lsrc_poll(job->run.lsrc, recs, (int)want, wait, c->trigger.available_now,
                                        &src_done, err, sizeof(err));
                if (got < 0) {
                    sl__job_fatal(job, SL_ERR_IO, "%s", err);
                    break;
                }
                for (int i = 0; i < got && !job->fatal.err; i++) {
                    if (sl__job_process_rec(job, &recs[i], &job->run.lpart))
                        sl__lsrc_ack(job->run.lsrc, &recs[i]);
                }
                done = src_done && !job->fatal.err;
            } else {
                size_t bytes = 0;
                size_t got = sl__kafka_consume(job->run.src.rk, job->run.src.q, wait, want,
                                               process_message, job, &bytes);
                sl__source_refill(&job->run.src, got, bytes);
            }
            nrec += (int64_t)job->rd.n_in; /* records, not partition-end events */
            sl_err_t te;
            if (!job->run.lsrc && !job->fatal.err && (te = sl__tasks_poll(job, err, sizeof(err))))
                sl__job_fatal(job, te, "%s", err);
            if (job->rd.n_in) {
                job->last_input_ms = sl__now_ms();
                if (!atomic_load(&job->stats.first_record_ms))
                    atomic_store(&job->stats.first_record_ms, job->last_input_ms);
            }
            STAT_ADD(job, records_in, job->rd.n_in);
            STAT_ADD(job, records_bad, job->rd.n_bad);
            STAT_ADD(job, records_kept, job->rd.n_kept);
            STAT_ADD(job, records_late, job->rd.n_late);
            STAT_ADD(job, records_untimed, job->rd.n_untimed);
            job->rd.batch_records += job->rd.n_in;
            job->rd.n_in = job->rd.n_bad = job->rd.n_kept = job->rd.n_late = job->rd.n_untimed = 0;
            atomic_store(&job->stats.records_lost, job->run.src.lost);
            if (job->run.src.fatal.err)
                sl__job_fatal(job, job->run.src.fatal.err, "%s", job->run.src.fatal.msg);
            if (done || (c->trigger.available_now && !job->run.lsrc && sl__source_caught_up(&job->run.src))) {
                done = 1;
                break;
            }
        }
        /* Another instance of the job took over: committing the batch under way would
         * publish over its output. Its records are read again at the next start. */
        if (job->fatal.err == SL_ERR_BUSY) {
            sl__job_finish_commit(job, err, sizeof(err));
            return;
        }
        /* The records before a fatal one are committed, so no work is lost. */
        int last = done || job->fatal.err || atomic_load(&job->stop);
        sl_err_t e = sl__job_commit(job, err, sizeof(err));
        /* Read to the end: as Spark's no-data batch, one more commit evicts state with the
         * watermark the last records moved (closing their windows, in append mode
         * emitting them). */
        if (!e && done && !job->fatal.err && sl__job_wm_pending(job))
            e = sl__job_commit(job, err, sizeof(err));
        if (!e && last)
            e = sl__job_finish_commit(job, err, sizeof(err));
        if (e) {
            sl__first_err_clear(&job->fatal);
            sl__job_fatal(job, e, "%s", err);
        }
        if (last || job->fatal.err) {
            sl__job_finish_commit(job, err, sizeof(err)); /* after a failed hand-over */
            return;
        }
    }
}

static const char *source_desc(const sl_job_t *job, char *buf, size_t size)
{
    const sl_conf_t *c = job->conf;
    if (job->run.lsrc)
        snprintf(buf, size, "%s", sl__lsrc_describe(job->run.lsrc));
    else if (c->source.pattern)
        snprintf(buf, size, "topics matching %s on %s", c->source.pattern, c->kafka.bootstrap);
    else
        snprintf(buf, size, "%d topic(s) on %s", c->source.ntopics, c->kafka.bootstrap);
    return buf;
}

static const char *sink_desc(const sl_conf_t *c)
{
    switch (c->output.sink) {
    case SL_SINK_CONSOLE:
        return "to the console (not replayed after a crash)";
    case SL_SINK_FILE:
        return "to files, one per batch (rewritten whole after a crash)";
    case SL_SINK_MEMORY:
        return "to memory";
    case SL_SINK_FOREACH:
        return "to a callback per batch (handed over again after a crash)";
    default:
        return c->output.exactly_once ? "exactly-once (transactions)"
                               : "at-least-once (idempotent producer, deduplicated on restart)";
    }
}

/* Closes what a run opened, in reverse: the files or socket source, the consumer before
 * the store (closing it calls the rebalance callback, which reads positions from the
 * store), the store, the sinks. Each part may be closed or never opened. */
static void run_fini(sl_job_t *job)
{
    sl_run_t *run = &job->run;
    sl__opener_stop(job);
    sl__lsrc_close(run->lsrc);
    run->lsrc = NULL;
    /* A job split into tasks leaves its group when it stops, so that its tasks go to its
     * other instances at once; its batch is committed by now. */
    sl__source_close(&run->src, job->conf->source.co_partitioned);
    sl__store_close(run->store);
    run->store = NULL;
    sl__sink_close(&run->sink);
}

SL_API sl_err_t sl_job_run(sl_job_t *job, char *errstr, size_t errstr_size)
{
    sl_conf_t *c = job->conf;
    sl_run_t *run = &job->run;
    sl_err_t e;
    char srcdesc[700];
    sl__first_err_clear(&job->fatal);
    job->seq = 0;
    job->last_input_ms = sl__now_ms();
    job->clog_topic[0] = 0;

    /* A second run on the same state directory is refused before it touches Kafka: its
     * producers would fence the running one's. */
    if ((e = sl__store_check_free(c->state.dir, errstr, errstr_size)))
        return e;
    /* Kafka first: a job that cannot reach its brokers or topics writes no state. While
     * it starts, librdkafka's complaints are held back (one line says what is wrong). */
    int quiet = 1;
    sl__kafka_quiet(1);
    if (c->source.kind == SL_SRC_KAFKA &&
        (e = sl__source_open(&run->src, c->name, &c->kafka, &c->source, c->state.dir, errstr,
                             errstr_size)))
        goto fail_open;
    int ntasks = c->source.kind == SL_SRC_KAFKA ? run->src.ntasks : 1;
    if (c->state.changelog)
        sl__clog_topic(job->clog_topic, sizeof(job->clog_topic), c->name);
    if ((e = sl__sink_open(&run->sink, c->name, &c->kafka, &c->output, &c->plan,
                           c->source.dead_letter_topic, job->clog_topic[0] ? job->clog_topic : NULL,
                           ntasks, c->source.kind == SL_SRC_KAFKA ? run->src.group : NULL,
                           job->console, errstr, errstr_size)))
        goto fail_open;
    sl__local_close(&job->local); /* a memory sink's rows of an earlier run */
    if ((e = sl__local_open(&job->local, &c->plan, &c->output, job->foreach,
                            job->foreach_opaque, errstr, errstr_size)))
        goto fail_open;
    mkdirs(c->state.dir);
    if ((e = sl__store_open(c->state.dir, 1, 0, &run->store, errstr, errstr_size)) ||
        (e = sl__upgrade_store(run->store, c->state.dir, ntasks, errstr, errstr_size)))
        goto fail_open;
    /* The state directory is ours now. A job that runs alone also checks that no other
     * instance is in its consumer group before its producers fence anything; one split
     * into tasks shares them with its other instances. */
    if (c->source.kind == SL_SRC_KAFKA && !c->source.co_partitioned &&
        (e = sl__source_check_alone(&run->src, errstr, errstr_size)))
        goto fail_open;
    if ((e = sl__tasks_init(job, ntasks)) || (e = sl__reading_init(&job->rd, &c->plan)) ||
        (e = sl__commit_init(&job->cm, &c->plan, c->state.dir, ntasks))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail_tasks;
    }
    if ((e = load_meta(job, errstr, errstr_size)))
        goto fail_tasks;
    if (c->output.sink == SL_SINK_FILE || c->output.sink == SL_SINK_FOREACH)
        e = sl__local_replay(&job->local, run->store, job->cm.wb, errstr, errstr_size);
    if (e)
        goto fail_tasks;
    if (atomic_load(&job->stop)) { /* SIGTERM during start-up: nothing read, nothing to do */
        sl_log(SL_LOG_INFO, "job", "job '%s' stopped while starting", c->name);
        goto fail_tasks;
    }
    run->src.fresh = job->seq == 0;
    run->lpart = (sl_part_t){.maxev = SL_WM_NONE, .assigned = 1};
    if (c->source.kind != SL_SRC_KAFKA) {
        /* One task, opened now; a files source reads where its state says. */
        int zero = 0;
        if (!(e = sl__task_open(job, &zero, 1, errstr, errstr_size))) {
            job->tasks[0].state = SL_TASK_ACTIVE;
            e = sl__lsrc_open(&c->source, run->store, &run->lsrc, errstr, errstr_size);
        }
    } else {
        /* Tasks open as the group hands out their partitions. */
        run->src.hooks = (sl_source_hooks_t){.assigned = on_assigned,
                                             .revoked = on_revoked,
                                             .ready = task_ready,
                                             .opaque = job};
        if ((e = sl__opener_start(job)))
            snprintf(errstr, errstr_size, "cannot start the thread that opens tasks");
        else
            e = sl__source_start(&run->src, run->store, c->trigger.available_now, errstr,
                                 errstr_size);
    }
    if (e)
        goto fail_tasks;
    sl__kafka_quiet(0);
    quiet = 0;
    sl_log(SL_LOG_INFO, "job",
           "job '%s' running: %s, state %s, %d task(s), trigger %" PRId64 " ms%s, %s mode, "
           "output %s%s%s",
           c->name, source_desc(job, srcdesc, sizeof(srcdesc)), c->state.dir, ntasks,
           c->trigger.interval_ms, c->trigger.available_now ? " (available-now)" : "",
           sl__mode_name(c->plan.mode), sink_desc(c),
           job->clog_topic[0] ? ", changelog " : "", job->clog_topic);

    run_batches(job);
    e = job->fatal.err;
    if (e)
        snprintf(errstr, errstr_size, "%s", job->fatal.msg);
    else
        sl_log(SL_LOG_INFO, "job", "job '%s' stopped after batch %" PRId64, c->name, job->seq);

fail_tasks:
    run_fini(job); /* before what a revocation while closing would commit from */
    sl__reading_fini(&job->rd);
    sl__commit_fini(&job->cm);
    sl__tasks_fini(job);
fail_open:
    run_fini(job);
    if (quiet)
        sl__kafka_quiet(0);
    return e;
}
