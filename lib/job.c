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
#define MAX_WINDOWS 1000 /* per record; conf.c refuses a window/slide ratio above */

struct sl_job {
    sl_conf_t *conf;
    FILE *console;
    atomic_int stop;
    sl_foreach_batch_fn foreach;
    void *foreach_opaque;
    struct {
        atomic_uint_fast64_t batches, records_in, records_bad, records_kept, rows_out;
        atomic_uint_fast64_t records_late, records_untimed, windows_closed, records_lost;
        atomic_int_fast64_t first_record_ms, last_commit_ms, watermark_ms;
    } stats;
    sl_local_t local; /* file, memory and foreach sinks; kept after the run for memory */

    /* while running */
    sl_source_t src;   /* Kafka */
    sl_lsrc_t *lsrc;   /* or files or a socket */
    sl_part_t lpart;   /* the event time of the files or socket source */
    sl_sink_t sink;
    sl_store_t *store;
    sl_store_batch_t *wb;
    sl_table_t table;
    sl_merge_t merge;
    sl_arena_t scratch; /* strings made by derived fields, reset per record */
    sl_val_t *row;
    sl_val_t *sel;      /* a query without aggregation: the batch's selected rows */
    size_t nsel, sel_cap;
    sl_buf_t key;
    sl_buf_t out; /* encoded rows of the batch being published */
    int64_t seq;
    int fingerprint_stored;
    /* event time: the watermark records are checked against, the largest event time
     * committed, and when input last arrived (for idle_timeout); each partition keeps
     * its own largest (sl_part_t.maxev) */
    int64_t wm, maxev, last_input_ms;
    /* counted per record without atomics, added to stats after each consume call */
    uint64_t n_in, n_bad, n_kept, n_late, n_untimed;
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
    sl_err_t e = sl__store_get(job->store, SL_CF_META, "job", 3, &val, &vlen, errstr,
                               errstr_size);
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
        e = sl__store_get(job->store, SL_CF_META, names[i], strlen(names[i]), &val, &vlen,
                          errstr, errstr_size);
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

/* An undecodable record: 1 when it is dealt with (skipped, or sent to the dead-letter
 * topic) and its position may pass it, 0 when the job stops before it. */
static int bad_record(sl_job_t *job, const sl_rec_t *r, const char *why)
{
    const sl_conf_t *c = job->conf;
    job->n_bad++;
    switch (c->on_bad) {
    case SL_ON_BAD_FAIL:
        set_fatal(job, SL_ERR_DECODE,
                  "%s[%d] offset %" PRId64 ": %s (the job stops before this record; set "
                  "source.on_decode_error to skip it or send it to a dead-letter topic)",
                  r->topic, r->partition, r->offset, why);
        return 0;
    case SL_ON_BAD_SKIP:
        sl_log(SL_LOG_WARN, "decode", "skipped %s[%d] offset %" PRId64 ": %s", r->topic,
               r->partition, r->offset, why);
        return 1;
    case SL_ON_BAD_DEAD_LETTER: {
        char err[512];
        if (sl__sink_side(&job->sink, c->dead_letter_topic, r, why, err, sizeof(err)) != SL_OK) {
            set_fatal(job, SL_ERR_KAFKA, "%s", err);
            return 0;
        }
        return 1;
    }
    }
    return 0;
}

/* The Kafka metadata fields the query reads. */
static void fill_meta(sl_job_t *job, const sl_rec_t *m)
{
    const sl_conf_t *c = job->conf;
    sl_val_t *row = job->row + c->meta_base;
    if (c->meta_used & (1u << SL_META_TOPIC))
        row[SL_META_TOPIC] =
            (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)strlen(m->topic), .u.s = m->topic};
    row[SL_META_PARTITION] = (sl_val_t){.t = SL_T_LONG, .u.i = m->partition};
    row[SL_META_OFFSET] = (sl_val_t){.t = SL_T_LONG, .u.i = m->offset};
    row[SL_META_TIMESTAMP] = m->ts >= 0 ? (sl_val_t){.t = SL_T_TIMESTAMP, .u.i = m->ts}
                                        : (sl_val_t){.t = SL_T_NULL};
    if (c->meta_used & (1u << SL_META_KEY))
        row[SL_META_KEY] = m->key ? (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)m->klen,
                                               .u.s = m->key}
                                  : (sl_val_t){.t = SL_T_NULL};
    if (c->nheaders && m->km) {
        rd_kafka_headers_t *h = NULL;
        rd_kafka_message_headers(m->km, &h);
        for (int i = 0; i < c->nheaders; i++) {
            const void *v;
            size_t n;
            sl_val_t *out = &row[SL_META_COUNT + i];
            if (h && !rd_kafka_header_get_last(h, c->headers[i], &v, &n) && v)
                *out = (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)n, .u.s = v};
            else
                *out = (sl_val_t){.t = SL_T_NULL};
        }
    }
}

/* A record of a query without aggregation: its selected values, kept for the batch. */
static sl_err_t keep_selected(sl_job_t *job)
{
    const sl_conf_t *c = job->conf;
    if (job->nsel == job->sel_cap) {
        size_t cap = job->sel_cap ? job->sel_cap * 2 : 1024;
        sl_val_t *n = realloc(job->sel, cap * (size_t)c->ncols * sizeof(*n));
        if (!n)
            return SL_ERR_NOMEM;
        job->sel = n;
        job->sel_cap = cap;
    }
    sl_val_t *out = &job->sel[job->nsel * (size_t)c->ncols];
    sl__out_select(c, job->row, out);
    for (int i = 0; i < c->ncols; i++) {
        if (out[i].t == SL_T_STRING &&
            !(out[i].u.s = sl__arena_dup(&job->table.arena, out[i].u.s, out[i].n ? out[i].n : 1)))
            return SL_ERR_NOMEM;
    }
    job->nsel++;
    return SL_OK;
}

static sl_err_t fold_into(sl_job_t *job, int64_t wend)
{
    const sl_conf_t *c = job->conf;
    sl_entry_t *e = sl__table_upsert(&job->table, job->key.p, (uint32_t)job->key.len);
    if (!e)
        return SL_ERR_NOMEM;
    e->wend = wend; /* the same for every record of a window (or session start) */
    for (int i = 0; i < c->naggs; i++) {
        const sl_agg_spec_t *s = &c->aggs[i];
        if (sl__acc_update(s, &e->acc[i], s->slot >= 0 ? &job->row[s->slot] : NULL,
                           s->time_slot >= 0 ? &job->row[s->time_slot] : NULL,
                           &job->table.arena) != SL_OK)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* A record behind the watermark for a closed window: counted, and copied to the late
 * topic when the job has one. */
static sl_err_t late_record(sl_job_t *job, const sl_rec_t *m, int64_t t)
{
    const sl_conf_t *c = job->conf;
    job->n_late++;
    if (!c->late_topic)
        return SL_OK;
    char why[160], err[512];
    snprintf(why, sizeof(why), "late: event time %" PRId64 " is behind the watermark %" PRId64
             " for a closed window", t, job->wm);
    if (sl__sink_side(&job->sink, c->late_topic, m, why, err, sizeof(err)) != SL_OK) {
        set_fatal(job, SL_ERR_KAFKA, "%s", err);
        return SL_ERR_KAFKA;
    }
    return SL_OK;
}

/* Derived fields, the filter, then the record's windows and group. */
static sl_err_t fold(sl_job_t *job, const sl_rec_t *m, sl_part_t *part)
{
    const sl_conf_t *c = job->conf;
    fill_meta(job, m);
    sl__arena_reset(&job->scratch);
    for (int i = 0; i < c->nderived; i++) {
        if (sl__expr_eval(c->derived[i].expr, job->row, &job->scratch,
                          &job->row[c->derived[i].slot]))
            return SL_ERR_NOMEM;
    }
    if (c->where) {
        int r = sl__expr_match(c->where, job->row, &job->scratch);
        if (r <= 0)
            return r < 0 ? SL_ERR_NOMEM : SL_OK;
    }
    job->n_kept++;
    if (c->wm_slot >= 0) {
        const sl_val_t *t = &job->row[c->wm_slot];
        if (t->t != SL_T_NULL && t->u.i > part->maxev)
            part->maxev = t->u.i;
    }
    if (!c->aggregating)
        return keep_selected(job);
    sl__buf_reset(&job->key);
    if (sl__key_encode(job->row, c->group_slots, c->ngroup, &job->key) != SL_OK)
        return SL_ERR_NOMEM;
    if (c->window == SL_WIN_NONE)
        return fold_into(job, 0);

    const sl_val_t *tv = &job->row[c->time_slot];
    if (tv->t == SL_T_NULL) {
        job->n_untimed++; /* no event time, no window: as Spark, not aggregated */
        return SL_OK;
    }
    int64_t t = tv->u.i, starts[MAX_WINDOWS];
    int n = 1;
    if (c->window == SL_WIN_SESSION)
        starts[0] = t;
    else
        n = sl__window_starts(t, c->win_size_ms, c->win_slide_ms, c->win_offset_ms, starts,
                              MAX_WINDOWS);
    /* Complete mode keeps every window: nothing is late there. A late record is copied
     * to the late topic before any of its windows is folded, so a failed copy leaves
     * the record unapplied and the job stops before it. */
    int check_late = c->wm_slot >= 0 && c->mode != SL_MODE_COMPLETE;
    int late = 0;
    for (int i = 0; check_late && i < n; i++)
        late |= sl__window_closed(starts[i] + c->win_size_ms, job->wm);
    sl_err_t e;
    if (late && (e = late_record(job, m, t)))
        return e;
    size_t glen = job->key.len;
    for (int i = 0; i < n; i++) {
        int64_t end = starts[i] + c->win_size_ms;
        if (check_late && sl__window_closed(end, job->wm))
            continue;
        job->key.len = glen;
        sl_val_t ws = {.t = SL_T_TIMESTAMP, .u.i = starts[i]};
        static const int zero = 0;
        if (sl__key_encode(&ws, &zero, 1, &job->key) != SL_OK)
            return SL_ERR_NOMEM;
        if ((e = fold_into(job, end)))
            return e;
    }
    return SL_OK;
}

/* One record of any source: decode, fold. 1 when it is consumed (its position may pass
 * it), 0 when the job stops before it. */
static int process_rec(sl_job_t *job, const sl_rec_t *r, sl_part_t *p)
{
    const sl_conf_t *c = job->conf;
    job->n_in++;
    char why[512];
    if (!r->payload)
        return bad_record(job, r, "the record has no value (a tombstone)");
    if (sl__codec_decode(c->codec, r->payload, r->len, job->row, why, sizeof(why)) != SL_OK)
        return bad_record(job, r, why);
    sl_err_t e = fold(job, r, p);
    if (e == SL_ERR_NOMEM) {
        set_fatal(job, SL_ERR_NOMEM, "out of memory while aggregating");
        return 0;
    }
    if (e) {
        job->n_late--; /* its late copy failed: the job stops before the record */
        return 0;
    }
    return 1;
}

/* The position of a partition fell out of its log while the job ran (retention deleted
 * records it had not read yet): stop, or skip to the log start (on_data_loss). */
static void data_loss(sl_job_t *job, const rd_kafka_message_t *m)
{
    sl_part_t *p = m->rkt ? sl__source_part(&job->src, m) : NULL;
    if (!p || p->pos < 0) {
        set_fatal(job, SL_ERR_KAFKA, "source %s[%d]: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : "?",
                  m->partition, rd_kafka_message_errstr(m));
        return;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    int64_t pos = sl__source_data_loss(&job->src, job->src.rk, topic, m->partition, p->pos);
    if (pos < 0) {
        set_fatal(job, SL_ERR_KAFKA, "%s", job->src.fatal);
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, m->partition)->offset = pos;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(job->src.rk, l, 10000);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        set_fatal(job, SL_ERR_KAFKA, "source %s[%d]: cannot move to offset %" PRId64 ": %s", topic,
                  m->partition, pos, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return;
    }
    p->pos = pos;
}

static void process(sl_job_t *job, rd_kafka_message_t *m)
{
    const sl_conf_t *c = job->conf;
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            sl_part_t *p = sl__source_part(&job->src, m);
            if (p && m->offset > p->pos)
                p->pos = m->offset; /* also steps over transaction markers at the end */
            if (p && m->offset >= p->pos)
                p->at_end = 1;
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            char why[512];
            rd_kafka_fatal_error(job->src.rk, why, sizeof(why));
            set_fatal(job, SL_ERR_KAFKA, "source: %s (is another instance of job '%s' running "
                      "with the same group.instance.id?)", why, c->name);
        } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                   m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
            data_loss(job, m);
        } else if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                   m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                   m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
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
    sl_rec_t r = {.payload = m->payload, .len = m->len, .key = m->key, .klen = m->key_len,
                  .topic = rd_kafka_topic_name(m->rkt), .partition = m->partition,
                  .offset = m->offset, .ts = rd_kafka_message_timestamp(m, NULL), .km = m};
    p->at_end = 0;
    if (process_rec(job, &r, p))
        p->pos = m->offset + 1;
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

/* @p wm_idle: the watermark an idle source has earned by wall clock (SL_WM_NONE: none). */
static sl_err_t commit(sl_job_t *job, int64_t wm_idle, char *errstr, size_t errstr_size)
{
    const sl_conf_t *c = job->conf;
    sl_table_t *t = &job->table;
    int64_t wm = job->wm, maxev = job->maxev;
    if (c->wm_slot >= 0) {
        int64_t all;
        wm = sl__watermark_next(wm, event_time(job, &all), c->wm_delay_ms);
        if (wm_idle != SL_WM_NONE && wm_idle > wm)
            wm = wm_idle;
        if (all != SL_WM_NONE && (maxev == SL_WM_NONE || all > maxev))
            maxev = all;
    }
    if (t->n == 0 && job->nsel == 0 && !positions_moved(job) && wm == job->wm)
        return SL_OK;
    int64_t seq = job->seq + 1;
    int64_t t0 = sl__now_ms(), t_commit = 0;
    sl_err_t e = SL_OK;
    const sl_val_t *rows;
    size_t n;
    size_t *spans = NULL; /* row i's outbox entry is out[spans[i], spans[i + 1]) */
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
        rows = job->sel;
        n = job->nsel;
    }
    sl__buf_reset(&job->out);
    if (uses_outbox(c)) {
        spans = malloc((n + 1) * sizeof(*spans));
        orows = malloc((n ? n : 1) * sizeof(*orows));
        if (!spans || !orows) {
            e = SL_ERR_NOMEM;
            goto done;
        }
        spans[0] = 0;
        for (size_t i = 0; i < n; i++) {
            sl__buf_reset(&k);
            sl__buf_reset(&v);
            const sl_val_t *row = &rows[i * (size_t)c->ncols];
            if (c->sink == SL_SINK_KAFKA)
                e = sl__out_encode(c, row, &k, &v);
            else
                e = sl__out_json(c, row, &v);
            if (!e)
                e = sl__outbox_put(job->store, job->wb, seq, (uint32_t)i, &k, &v, &job->out);
            if (e)
                goto done;
            spans[i + 1] = job->out.len;
        }
    }
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
    if (!job->fingerprint_stored) {
        uint8_t fp[8];
        sl__be64_put(fp, c->fingerprint);
        sl__store_batch_put(job->wb, job->store, SL_CF_META, "job", 3, fp, 8);
        sl__store_batch_put(job->wb, job->store, SL_CF_META, "query", 5, c->query_desc,
                            strlen(c->query_desc));
    }
    if (c->sink == SL_SINK_KAFKA)
        sl__outbox_put_published(job->store, job->wb, &job->sink);
    /* Dead letters and late records must be in Kafka before the positions pass them. */
    if ((e = sl__sink_flush_side(&job->sink, errstr, errstr_size)))
        goto done;
    sl__crash_point("before-commit");
    if ((e = sl__store_write(job->store, job->wb, 1, errstr, errstr_size)))
        goto done;
    sl__crash_point("after-commit");
    t_commit = sl__now_ms();
    job->fingerprint_stored = 1;
    job->seq = seq;
    job->wm = wm;
    job->maxev = maxev;
    for (int ti = 0; ti < src->ntopics; ti++) {
        for (int pi = 0; pi < src->topics[ti].nparts; pi++)
            src->topics[ti].parts[pi].committed = src->topics[ti].parts[pi].pos;
    }
    if (job->lsrc)
        sl__lsrc_committed(job->lsrc);
    job->src.fresh = 0; /* partitions that appear from now on start at the earliest offset */
    STAT_ADD(job, batches, 1);
    STAT_ADD(job, windows_closed, c->aggregating ? job->merge.closed : 0);
    atomic_store(&job->stats.watermark_ms, wm);

    /* Publish. */
    switch (c->sink) {
    case SL_SINK_CONSOLE:
        /* Like Spark, a batch that read records prints its table even when the filter left
         * no rows; one that only moved positions (past transaction markers) does not. */
        if (job->batch_records || n)
            sl__sink_console(&job->sink, seq, rows, n);
        break;
    case SL_SINK_KAFKA:
        if (!n)
            break;
        for (size_t i = 0; i < n; i++) {
            orows[i].seq = seq;
            orows[i].idx = (uint32_t)i;
            sl__outbox_row(job->out.p + spans[i], spans[i + 1] - spans[i], &orows[i]);
        }
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
        for (size_t i = 0; spans && i < n; i++) {
            orows[i].seq = seq;
            orows[i].idx = (uint32_t)i;
            sl__outbox_row(job->out.p + spans[i], spans[i + 1] - spans[i], &orows[i]);
        }
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
           seq, job->batch_records, n, t_commit - t0, sl__now_ms() - t_commit);
    STAT_ADD(job, rows_out, n);
    atomic_store(&job->stats.last_commit_ms, sl__now_ms());
    job->batch_records = 0;
done:
    free(spans);
    free(orows);
    sl__buf_fini(&k);
    sl__buf_fini(&v);
    sl__table_clear(t);
    job->nsel = 0;
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
            if (left <= 0) {
                /* min_records: wait for more, up to max_trigger_delay past the interval. */
                if (!c->min_records || nrec >= c->min_records ||
                    -left >= c->max_trigger_delay_ms)
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
                    set_fatal(job, SL_ERR_IO, "%s", err);
                    break;
                }
                for (int i = 0; i < got && !job->fatal_err; i++) {
                    if (process_rec(job, &recs[i], &job->lpart))
                        sl__lsrc_ack(job->lsrc, &recs[i]);
                }
                done = src_done && !job->fatal_err;
            } else {
                ssize_t got = rd_kafka_consume_batch_queue(job->src.q, wait, msgs, want);
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
                set_fatal(job, job->src.fatal_err, "%s", job->src.fatal);
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
        sl_err_t e = commit(job, wm_idle, err, sizeof(err));
        if (e) {
            job->fatal_err = 0;
            set_fatal(job, e, "%s", err);
        }
        if (done || job->fatal_err || atomic_load(&job->stop))
            return;
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
           c->interval_ms,
           c->available_now ? " (available-now)" : "", sl__mode_name(c->mode),
           sink_desc(c));

    run_batches(job);
    e = job->fatal_err;
    if (e)
        snprintf(errstr, errstr_size, "%s", job->fatal);
    else
        sl_log(SL_LOG_INFO, "job", "job '%s' stopped after batch %" PRId64, c->name, job->seq);

fail_run:
    sl__table_fini(&job->table);
    sl__merge_fini(&job->merge);
    sl__arena_fini(&job->scratch);
    free(job->row);
    job->row = NULL;
    free(job->sel);
    job->sel = NULL;
    job->sel_cap = job->nsel = 0;
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
