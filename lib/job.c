/*
 * job.c - the micro-batch loop.
 *
 * One batch: consume records until the trigger fires (interval or max records), decode,
 * filter and fold each into the batch table; then merge the table with the stored
 * aggregates (one MultiGet), and write the new aggregates, every partition's next
 * position, the batch sequence and the outbox of result rows in ONE synced WriteBatch.
 * Only then are the rows published, and the outbox entries of the batch deleted once
 * Kafka has acknowledged them. A crash anywhere leaves the state at a batch boundary; on
 * restart the consumer seeks to the stored positions and any outbox left over is
 * published again (at-least-once until the transactional outbox lands).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "crash.h"
#include "kafka.h"
#include "log.h"
#include "outbox.h"
#include "output.h"
#include "sink.h"
#include "source.h"
#include "store.h"
#include "table.h"
#include "util/util.h"

#define CONSUME_MAX 1000

struct sl_job {
    sl_conf_t *conf;
    FILE *console;
    atomic_int stop;
    struct {
        atomic_uint_fast64_t batches, records_in, records_bad, records_kept, rows_out;
        atomic_int_fast64_t first_record_ms, last_commit_ms;
    } stats;

    /* while running */
    sl_source_t src;
    sl_sink_t sink;
    sl_store_t *store;
    sl_store_batch_t *wb;
    sl_table_t table;
    sl_val_t *row;
    sl_buf_t key;
    sl_buf_t out; /* encoded rows of the batch being published */
    int64_t seq;
    int fingerprint_stored;
    /* counted per record without atomics, added to stats after each consume call */
    uint64_t n_in, n_bad, n_kept;
    uint64_t batch_records; /* records (good or bad) in the batch under way */
    char fatal[1024];
    sl_err_t fatal_err;
};

#define STAT_ADD(job, f, n) atomic_fetch_add_explicit(&(job)->stats.f, (n), memory_order_relaxed)

static void set_fatal(sl_job_t *job, sl_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_fatal(sl_job_t *job, sl_err_t err, const char *fmt, ...)
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
}

SL_API void sl_job_destroy(sl_job_t *job)
{
    if (!job)
        return;
    sl__conf_destroy(job->conf);
    free(job);
}

/* ---- state: fingerprint, sequence, outbox recovery ---- */

static sl_err_t load_meta(sl_job_t *job, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    char *val = NULL;
    size_t vlen;
    sl_err_t e = sl__store_get(job->store, SL_CF_META, "job", 3, &val, &vlen, errstr,
                               errstr_size);
    if (e == SL_OK) {
        uint64_t stored = vlen == 8 ? sl__be64_get((const uint8_t *)val) : 0;
        free(val);
        if (stored != c->fingerprint) {
            char *q = NULL;
            size_t qlen;
            sl__store_get(job->store, SL_CF_META, "query", 5, &q, &qlen, errstr, errstr_size);
            int query_changed = !q || strcmp(q, c->query_desc) != 0;
            snprintf(errstr, errstr_size,
                     "state %s was written by an incompatible job: the %s changed%s%s%s%s. "
                     "Use a new state directory (the job then starts over from the source), "
                     "or restore the old job",
                     c->state_dir, query_changed ? "query" : "input schema",
                     query_changed ? " (stored: " : "", query_changed && q ? q : "",
                     query_changed ? ", now: " : "", query_changed ? c->query_desc : "");
            free(q);
            return SL_ERR_MISMATCH;
        }
        job->fingerprint_stored = 1;
    } else if (e != SL_ERR_NOTFOUND) {
        return e;
    }
    e = sl__store_get(job->store, SL_CF_META, "seq", 3, &val, &vlen, errstr, errstr_size);
    if (e == SL_OK) {
        job->seq = vlen == 8 ? (int64_t)sl__be64_get((const uint8_t *)val) : -1;
        free(val);
        if (job->seq < 0) {
            snprintf(errstr, errstr_size, "state %s: the batch sequence is corrupt",
                     c->state_dir);
            return SL_ERR_STATE;
        }
    } else if (e != SL_ERR_NOTFOUND) {
        return e;
    }
    return SL_OK;
}

/* ---- per record ---- */

static void bad_record(sl_job_t *job, const rd_kafka_message_t *m, sl_part_t *p,
                       const char *why)
{
    const sl_conf_t *c = job->conf;
    const char *topic = rd_kafka_topic_name(m->rkt);
    job->n_bad++;
    switch (c->on_bad) {
    case SL_ON_BAD_FAIL:
        set_fatal(job, SL_ERR_DECODE,
                  "%s[%d] offset %" PRId64 ": %s (the job stops before this record; set "
                  "source.on_decode_error to skip it or send it to a dead-letter topic)",
                  topic, m->partition, m->offset, why);
        return; /* the position stays before the bad record */
    case SL_ON_BAD_SKIP:
        sl_log(SL_LOG_WARN, "decode", "skipped %s[%d] offset %" PRId64 ": %s", topic,
               m->partition, m->offset, why);
        break;
    case SL_ON_BAD_DEAD_LETTER: {
        char err[512];
        if (sl__sink_dead_letter(&job->sink, m, why, err, sizeof(err)) != SL_OK) {
            set_fatal(job, SL_ERR_KAFKA, "%s", err);
            return;
        }
        break;
    }
    }
    p->pos = m->offset + 1;
}

static void process(sl_job_t *job, rd_kafka_message_t *m)
{
    const sl_conf_t *c = job->conf;
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            sl_part_t *p = sl__source_part(&job->src, m);
            if (p && m->offset > p->pos)
                p->pos = m->offset; /* also steps over transaction markers at the end */
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            char why[512];
            rd_kafka_fatal_error(job->src.rk, why, sizeof(why));
            set_fatal(job, SL_ERR_KAFKA, "source: %s (is another instance of job '%s' running "
                      "with the same group.instance.id?)", why, c->name);
        } else if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                   m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                   m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                   m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
            set_fatal(job, SL_ERR_KAFKA, "source %s[%d]: %s",
                      m->rkt ? rd_kafka_topic_name(m->rkt) : "?", m->partition,
                      rd_kafka_message_errstr(m));
        } else {
            sl_log(SL_LOG_WARN, "source", "%s", rd_kafka_message_errstr(m));
        }
        return;
    }
    sl_part_t *p = sl__source_part(&job->src, m);
    if (!p || (p->pos >= 0 && m->offset < p->pos))
        return; /* not ours, or read again after a seek */
    job->n_in++;
    char why[512];
    if (!m->payload) {
        bad_record(job, m, p, "the record has no value (a tombstone)");
        return;
    }
    if (sl__codec_decode(c->codec, m->payload, m->len, job->row, why, sizeof(why)) != SL_OK) {
        bad_record(job, m, p, why);
        return;
    }
    p->pos = m->offset + 1;
    if (c->where && !sl__expr_match(c->where, job->row))
        return;
    job->n_kept++;
    sl__buf_reset(&job->key);
    if (sl__key_encode(job->row, c->group_slots, c->ngroup, &job->key) != SL_OK)
        goto nomem;
    sl_entry_t *e = sl__table_upsert(&job->table, job->key.p, (uint32_t)job->key.len);
    if (!e)
        goto nomem;
    for (int i = 0; i < c->naggs; i++) {
        const sl_agg_spec_t *s = &c->aggs[i];
        if (sl__acc_update(s, &e->acc[i], s->slot >= 0 ? &job->row[s->slot] : NULL,
                           &job->table.arena) != SL_OK)
            goto nomem;
    }
    return;
nomem:
    set_fatal(job, SL_ERR_NOMEM, "out of memory while aggregating");
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

static sl_err_t commit(sl_job_t *job, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_table_t *t = &job->table;
    size_t n = t->n;
    if (n == 0 && !positions_moved(job))
        return SL_OK;
    int64_t seq = job->seq + 1;
    int64_t t0 = sl__now_ms(), t_commit = 0;
    int ncols = sl__out_ncols(c);
    sl_err_t e = SL_ERR_NOMEM;
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    size_t *klens = malloc((n ? n : 1) * sizeof(*klens));
    char **vals = calloc(n ? n : 1, sizeof(*vals));
    size_t *vlens = malloc((n ? n : 1) * sizeof(*vlens));
    sl_acc_t *merged = malloc((size_t)(c->naggs ? c->naggs : 1) * sizeof(sl_acc_t));
    sl_val_t *cols = malloc((size_t)ncols * (n ? n : 1) * sizeof(sl_val_t));
    size_t *spans = malloc((n + 1) * sizeof(size_t)); /* row i is out[spans[i], spans[i+1]) */
    sl_out_row_t *rows = malloc((n ? n : 1) * sizeof(*rows));
    sl_buf_t enc;
    sl__buf_init(&enc);
    if (!keys || !klens || !vals || !vlens || !merged || !cols || !spans || !rows)
        goto done;
    for (size_t i = 0; i < n; i++) {
        keys[i] = (const char *)t->order[i]->key;
        klens[i] = t->order[i]->klen;
    }
    if ((e = sl__store_multiget(job->store, n, keys, klens, vals, vlens, errstr, errstr_size)))
        goto done;
    sl__buf_reset(&job->out);
    spans[0] = 0;
    for (size_t i = 0; i < n; i++) {
        sl_entry_t *en = t->order[i];
        if (vals[i]) {
            if (sl__accs_decode(c->aggs, c->naggs, (const uint8_t *)vals[i], vlens[i], merged)) {
                snprintf(errstr, errstr_size, "state %s: a stored aggregate is corrupt",
                         c->state_dir);
                e = SL_ERR_STATE;
                goto done;
            }
        } else {
            memset(merged, 0, (size_t)c->naggs * sizeof(sl_acc_t));
        }
        for (int a = 0; a < c->naggs; a++) {
            if ((e = sl__acc_merge(&c->aggs[a], &merged[a], &en->acc[a], &t->arena)))
                goto done;
        }
        sl__buf_reset(&enc);
        if ((e = sl__accs_encode(c->aggs, c->naggs, merged, &enc)))
            goto done;
        sl__store_batch_put(job->wb, job->store, SL_CF_AGG, en->key, en->klen, enc.p, enc.len);
        sl_val_t *row = &cols[i * (size_t)ncols];
        if ((e = sl__out_columns(c, en->key, en->klen, merged, row)))
            goto done;
        /* Strings of merged min/max point into vals[i] or the arena; both live until the
         * rows are published at the end of this function. */
        if (c->sink == SL_SINK_KAFKA) {
            sl_buf_t k, v;
            sl__buf_init(&k);
            sl__buf_init(&v);
            e = sl__out_encode(c, row, &k, &v);
            if (!e)
                e = sl__outbox_put(job->store, job->wb, seq, (uint32_t)i, &k, &v, &job->out);
            sl__buf_fini(&k);
            sl__buf_fini(&v);
            if (e)
                goto done;
        }
        spans[i + 1] = job->out.len;
    }
    /* Positions: every partition whose next offset moved in this batch. */
    sl_source_t *src = &job->src;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++) {
            sl_part_t *part = &src->topics[ti].parts[pi];
            if (part->pos < 0 || part->pos == part->committed)
                continue;
            char key[512];
            uint8_t v[8];
            int kl = sl__source_pos_key(key, sizeof(key), src->topics[ti].name, pi);
            sl__be64_put(v, (uint64_t)part->pos);
            sl__store_batch_put(job->wb, job->store, SL_CF_META, key, (size_t)kl, v, 8);
        }
    }
    uint8_t sv[8];
    sl__be64_put(sv, (uint64_t)seq);
    sl__store_batch_put(job->wb, job->store, SL_CF_META, "seq", 3, sv, 8);
    if (!job->fingerprint_stored) {
        uint8_t fp[8];
        sl__be64_put(fp, c->fingerprint);
        sl__store_batch_put(job->wb, job->store, SL_CF_META, "job", 3, fp, 8);
        sl__store_batch_put(job->wb, job->store, SL_CF_META, "query", 5, c->query_desc,
                            strlen(c->query_desc));
    }
    if (c->sink == SL_SINK_KAFKA)
        sl__outbox_put_published(job->store, job->wb, &job->sink);
    /* Dead letters must be in Kafka before the positions pass the records they hold. */
    if ((e = sl__sink_flush_dead_letters(&job->sink, errstr, errstr_size)))
        goto done;
    sl__crash_point("before-commit");
    if ((e = sl__store_write(job->store, job->wb, 1, errstr, errstr_size)))
        goto done;
    sl__crash_point("after-commit");
    t_commit = sl__now_ms();
    job->fingerprint_stored = 1;
    job->seq = seq;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++)
            src->topics[ti].parts[pi].committed = src->topics[ti].parts[pi].pos;
    }
    STAT_ADD(job, batches, 1);

    /* Publish. */
    if (c->sink == SL_SINK_CONSOLE) {
        /* Like Spark, a batch that read records prints its table even when the filter left
         * no rows; one that only moved positions (past transaction markers) does not. */
        if (job->batch_records)
            sl__sink_console(&job->sink, seq, cols, n);
    } else if (n) {
        for (size_t i = 0; i < n; i++) {
            rows[i].seq = seq;
            rows[i].idx = (uint32_t)i;
            sl__outbox_row(job->out.p + spans[i], spans[i + 1] - spans[i], &rows[i]);
        }
        e = sl__sink_publish(&job->sink, rows, n, "mid-publish", errstr, errstr_size);
        if (e == SL_ERR_FENCED && !(e = recover_producer(job, errstr, errstr_size)))
            goto published; /* the outbox is empty now */
        if (e)
            goto done;
        sl__crash_point("after-publish-before-outbox-delete");
        if ((e = sl__outbox_delete(job->store, job->wb, seq, seq + 1, errstr, errstr_size)))
            goto done;
    }
published:
    sl_log(SL_LOG_DEBUG, "job",
           "batch %" PRId64 ": %" PRIu64 " records, %zu rows; merge and commit %" PRId64
           " ms, publish %" PRId64 " ms",
           seq, job->batch_records, n, t_commit - t0, sl__now_ms() - t_commit);
    STAT_ADD(job, rows_out, n);
    atomic_store(&job->stats.last_commit_ms, sl__now_ms());
    job->batch_records = 0;
    e = SL_OK;
done:
    if (vals) {
        for (size_t i = 0; i < n; i++)
            sl__store_free(vals[i]);
    }
    free(keys);
    free(klens);
    free(vals);
    free(vlens);
    free(merged);
    free(cols);
    free(spans);
    free(rows);
    sl__buf_fini(&enc);
    sl__table_clear(t);
    return e;
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
    char err[1024];
    for (;;) {
        int64_t start = sl__now_ms();
        int64_t nrec = 0;
        int done = 0;
        while (!atomic_load(&job->stop) && !job->fatal_err) {
            int64_t left = c->interval_ms - (sl__now_ms() - start);
            if (left <= 0 || (c->max_records && nrec >= c->max_records))
                break;
            size_t want = CONSUME_MAX;
            if (c->max_records && (int64_t)want > c->max_records - nrec)
                want = (size_t)(c->max_records - nrec);
            ssize_t got = rd_kafka_consume_batch_queue(job->src.q, left < 100 ? (int)left : 100,
                                                       msgs, want);
            if (got < 0) {
                set_fatal(job, SL_ERR_KAFKA, "consume failed: %s",
                          rd_kafka_err2str(rd_kafka_last_error()));
                break;
            }
            for (ssize_t i = 0; i < got; i++) {
                if (!job->fatal_err)
                    process(job, msgs[i]);
                rd_kafka_message_destroy(msgs[i]);
            }
            nrec += (int64_t)job->n_in; /* records, not partition-end events */
            if (job->n_in && !atomic_load(&job->stats.first_record_ms))
                atomic_store(&job->stats.first_record_ms, sl__now_ms());
            STAT_ADD(job, records_in, job->n_in);
            STAT_ADD(job, records_bad, job->n_bad);
            STAT_ADD(job, records_kept, job->n_kept);
            job->batch_records += job->n_in;
            job->n_in = job->n_bad = job->n_kept = 0;
            if (job->src.fatal[0])
                set_fatal(job, SL_ERR_STATE, "%s", job->src.fatal);
            if (c->available_now && sl__source_caught_up(&job->src)) {
                done = 1;
                break;
            }
        }
        /* The records before a fatal one are committed, so no work is lost. */
        sl_err_t e = commit(job, err, sizeof(err));
        if (e) {
            job->fatal_err = 0;
            set_fatal(job, e, "%s", err);
        }
        if (done || job->fatal_err || atomic_load(&job->stop))
            return;
    }
}

SL_API sl_err_t sl_job_run(sl_job_t *job, char *errstr, size_t errstr_size)
{
    sl_conf_t *c = job->conf;
    sl_err_t e;
    int nf;
    job->fatal_err = SL_OK;
    job->fatal[0] = 0;
    job->seq = 0;
    job->fingerprint_stored = 0;
    sl__buf_init(&job->key);
    sl__buf_init(&job->out);

    /* Kafka first: a job that cannot reach its brokers or topics writes no state. */
    int quiet = 1;
    sl__kafka_quiet(1);
    if ((e = sl__source_open(&job->src, c, errstr, errstr_size)))
        goto fail_sink; /* the source may be half open */
    if ((e = sl__sink_open(&job->sink, c, job->console, errstr, errstr_size)))
        goto fail_store;
    mkdirs(c->state_dir);
    if ((e = sl__store_open(c->state_dir, 1, 0, &job->store, errstr, errstr_size)))
        goto fail_store;
    e = SL_ERR_NOMEM;
    sl__codec_fields(c->codec, &nf);
    job->wb = sl__store_batch_new();
    job->row = calloc((size_t)(nf ? nf : 1), sizeof(sl_val_t));
    if (!job->wb || !job->row || sl__table_init(&job->table, c->naggs) != SL_OK) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail_run;
    }
    if ((e = load_meta(job, errstr, errstr_size)))
        goto fail_run;
    if (c->sink == SL_SINK_KAFKA &&
        (e = sl__outbox_reconcile(job->store, job->wb, &job->sink, errstr, errstr_size)) ==
            SL_ERR_FENCED)
        e = recover_producer(job, errstr, errstr_size);
    if (e)
        goto fail_run;
    if ((e = sl__source_start(&job->src, job->store, c->available_now, errstr, errstr_size)))
        goto fail_run;
    sl__kafka_quiet(0);
    quiet = 0;
    sl_log(SL_LOG_INFO, "job",
           "job '%s' running: %d topic(s) on %s, state %s, batch %" PRId64 " next, trigger "
           "%" PRId64 " ms%s, output %s",
           c->name, c->ntopics, c->bootstrap, c->state_dir, job->seq + 1, c->interval_ms,
           c->available_now ? " (available-now)" : "",
           c->sink == SL_SINK_CONSOLE ? "to the console (not replayed after a crash)"
           : c->exactly_once          ? "exactly-once (transactions)"
                                      : "at-least-once (idempotent producer, deduplicated on restart)");

    run_batches(job);
    e = job->fatal_err;
    if (e)
        snprintf(errstr, errstr_size, "%s", job->fatal);
    else
        sl_log(SL_LOG_INFO, "job", "job '%s' stopped after batch %" PRId64, c->name, job->seq);

fail_run:
    sl__table_fini(&job->table);
    free(job->row);
    job->row = NULL;
    sl__store_batch_destroy(job->wb);
    job->wb = NULL;
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
