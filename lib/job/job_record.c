/*
 * job_record.c - what happens to each record of a batch: decoding, the Kafka metadata
 * and derived fields, the filter, event time (the watermark's input, late records) and
 * window assignment, and the fold into the batch table; undecodable records go by the
 * job's dead-letter policy, positions the log no longer holds by its data-loss policy.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_int.h"
#include "layout.h"
#include "log.h"
#include "query/window.h"
#include "sink/output.h"

/* An undecodable record: 1 when it is dealt with (skipped, or sent to the dead-letter
 * topic) and its position may pass it, 0 when the job stops before it. */
static int bad_record(sl_job_t *job, const sl_rec_t *r, const char *why)
{
    const sl_conf_t *c = job->conf;
    job->rd.n_bad++;
    switch (c->source.on_bad) {
    case SL_ON_BAD_FAIL:
        sl__job_fatal(job, SL_ERR_DECODE,
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
        if (sl__sink_side(&job->run.sink, c->source.dead_letter_topic, r, why, err, sizeof(err)) != SL_OK) {
            sl__job_fatal(job, SL_ERR_KAFKA, "%s", err);
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
    sl_val_t *row = job->rd.row + c->plan.meta_base;
    if (c->plan.meta_used & (1u << SL_META_TOPIC))
        row[SL_META_TOPIC] =
            (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)strlen(m->topic), .u.s = m->topic};
    if (c->plan.meta_used & (1u << SL_META_PARTITION))
        row[SL_META_PARTITION] = (sl_val_t){.t = SL_T_LONG, .u.i = m->partition};
    if (c->plan.meta_used & (1u << SL_META_OFFSET))
        row[SL_META_OFFSET] = (sl_val_t){.t = SL_T_LONG, .u.i = m->offset};
    if (c->plan.meta_used & (1u << SL_META_TIMESTAMP))
        row[SL_META_TIMESTAMP] =
            m->ts >= 0 ? (sl_val_t){.t = SL_T_TIMESTAMP, .u.i = m->ts} : (sl_val_t){.t = SL_T_NULL};
    if (c->plan.meta_used & (1u << SL_META_KEY))
        row[SL_META_KEY] = m->key
                               ? (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)m->klen, .u.s = m->key}
                               : (sl_val_t){.t = SL_T_NULL};
    if (c->source.nheaders && m->km) {
        rd_kafka_headers_t *h = NULL;
        rd_kafka_message_headers(m->km, &h);
        for (int i = 0; i < c->source.nheaders; i++) {
            const void *v;
            size_t n;
            sl_val_t *out = &row[SL_META_COUNT + i];
            if (h && !rd_kafka_header_get_last(h, c->source.headers[i], &v, &n) && v)
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
    sl_grow_t rows[] = {{&job->rd.sel, (size_t)c->plan.ncols * sizeof(*job->rd.sel)}, /* by rows */
                        {&job->rd.sel_tasks, sizeof(*job->rd.sel_tasks)}};
    if (sl__grow(&job->rd.sel_cap, job->rd.nsel + 1, 1024, rows, 2))
        return SL_ERR_NOMEM;
    job->rd.sel_tasks[job->rd.nsel] = (uint16_t)job->rd.task;
    sl_val_t *out = &job->rd.sel[job->rd.nsel * (size_t)c->plan.ncols];
    sl__out_select(&c->plan, job->rd.row, out);
    for (int i = 0; i < c->plan.ncols; i++) {
        if (out[i].t == SL_T_STRING &&
            !(out[i].u.s = sl__arena_dup(&job->rd.table.arena, out[i].u.s, out[i].n ? out[i].n : 1)))
            return SL_ERR_NOMEM;
    }
    job->rd.nsel++;
    return SL_OK;
}

static sl_err_t apply(sl_job_t *job, const uint8_t *key, uint32_t klen, uint64_t h, int64_t wend,
                      const sl_val_t *vals)
{
    const sl_conf_t *c = job->conf;
    sl_entry_t *e = sl__table_upsert_hashed(&job->rd.table, key, klen, h);
    if (!e)
        return SL_ERR_NOMEM;
    e->wend = wend; /* the same for every record of a window (or session start) */
    for (int i = 0; i < c->plan.naggs; i++) {
        const sl_agg_spec_t *s = &c->plan.aggs[i];
        const sl_val_t *v = s->slot >= 0 ? &job->rd.row[s->slot] : NULL;
        const sl_val_t *t = s->time_slot >= 0 ? &job->rd.row[s->time_slot] : NULL;
        if (vals) {
            v = v ? &vals[2 * i] : NULL;
            t = t ? &vals[2 * i + 1] : NULL;
        }
        if (sl__acc_update(s, &e->acc[i], v, t, &job->rd.table.arena) != SL_OK)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* A count, or a sum or an average of a number, folds by its kind; -1 for the others. */
static int fold_kind(const sl_agg_spec_t *s)
{
    switch (s->fn) {
    case SL_AGG_COUNT:
        return s->slot < 0 ? FK_COUNT_ALL : FK_COUNT;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        if (sl__type_integral(s->in_type))
            return FK_SUM_LONG;
        return s->in_type == SL_T_DOUBLE ? FK_SUM_DOUBLE : -1;
    default:
        return -1;
    }
}

sl_err_t sl__reading_init(sl_reading_t *rd, const sl_plan_t *p)
{
    memset(rd, 0, sizeof(*rd));
    sl__arena_init(&rd->scratch);
    sl__buf_init(&rd->key);
    if (sl__table_init(&rd->table, p->naggs) != SL_OK ||
        !(rd->row = calloc((size_t)p->nslots + 1, sizeof(sl_val_t))))
        return SL_ERR_NOMEM;
    /* The fold queue: its inputs copied by value when no aggregate takes a string; as
     * plain numbers when every aggregate is a count, or a sum or average of a number. */
    rd->fq.on = p->aggregating;
    rd->fq.fast = p->aggregating && p->naggs <= 64;
    for (int i = 0; i < p->naggs; i++) {
        rd->fq.on &= p->aggs[i].slot < 0 || p->aggs[i].in_type != SL_T_STRING;
        rd->fq.fast &= fold_kind(&p->aggs[i]) >= 0;
    }
    size_t n = (size_t)(p->naggs ? p->naggs : 1);
    if (rd->fq.fast) {
        rd->fq.on = 1;
        rd->fq.naggs = p->naggs;
        rd->fq.kinds = malloc(n);
        rd->fq.slots = malloc(n * sizeof(int));
        rd->fq.nums = calloc((size_t)FOLD_AHEAD * n, sizeof(sl_fold_num_t));
        if (!rd->fq.kinds || !rd->fq.slots || !rd->fq.nums)
            return SL_ERR_NOMEM;
        for (int i = 0; i < p->naggs; i++) {
            rd->fq.kinds[i] = (uint8_t)fold_kind(&p->aggs[i]);
            rd->fq.slots[i] = p->aggs[i].slot < 0 ? 0 : p->aggs[i].slot;
        }
    } else if (rd->fq.on &&
               !(rd->fq.vals = calloc((size_t)FOLD_AHEAD * 2 * n, sizeof(sl_val_t)))) {
        return SL_ERR_NOMEM;
    }
    return SL_OK;
}

void sl__reading_fini(sl_reading_t *rd)
{
    sl__table_fini(&rd->table);
    sl__arena_fini(&rd->scratch);
    sl__buf_fini(&rd->key);
    free(rd->row);
    free(rd->sel);
    free(rd->sel_tasks);
    free(rd->fq.vals);
    free(rd->fq.kinds);
    free(rd->fq.slots);
    free(rd->fq.nums);
    memset(rd, 0, sizeof(*rd));
}

/* The record's inputs of fast folds into @p nums; the null ones as bits. */
static inline uint64_t fast_inputs(const sl_job_t *job, sl_fold_num_t *nums)
{
    const sl_val_t *row = job->rd.row;
    const int *slots = job->rd.fq.slots;
    const uint8_t *kinds = job->rd.fq.kinds;
    uint64_t nulls = 0;
    for (int a = 0, n = job->rd.fq.naggs; a < n; a++) {
        const sl_val_t *v = &row[slots[a]];
        int k = kinds[a];
        if (k == FK_COUNT_ALL)
            continue;
        nulls |= (uint64_t)(v->t == SL_T_NULL) << a;
        if (k == FK_SUM_LONG)
            nums[a].i = v->u.i;
        else if (k == FK_SUM_DOUBLE)
            nums[a].d = sl__val_num(v);
    }
    return nulls;
}

/* The fast folds into @p e, as sl__acc_update() would do them. */
static inline sl_err_t apply_fast(sl_job_t *job, const uint8_t *key, uint32_t klen, uint64_t h,
                                  int64_t wend, const sl_fold_num_t *nums, uint64_t nulls)
{
    sl_entry_t *e = sl__table_upsert_hashed(&job->rd.table, key, klen, h);
    if (!e)
        return SL_ERR_NOMEM;
    e->wend = wend;
    int naggs = job->rd.fq.naggs;
    const uint8_t *kinds = job->rd.fq.kinds;
    for (int a = 0; a < naggs; a++) {
        sl_acc_t *acc = &e->acc[a];
        if (nulls >> a & 1)
            continue; /* aggregates of a field skip nulls */
        switch (kinds[a]) {
        case FK_COUNT_ALL:
        case FK_COUNT:
            break;
        case FK_SUM_LONG:
            sl__acc_add(acc, nums[a].i);
            break;
        case FK_SUM_DOUBLE:
            acc->sum.d += nums[a].d;
            break;
        }
        acc->n++;
    }
    return SL_OK;
}

/* The oldest queued fold, applied. */
static inline sl_err_t fold_pop(sl_job_t *job)
{
    int naggs = job->conf->plan.naggs;
    unsigned i = job->rd.fq.head;
    const sl_fold_t *f = &job->rd.fq.items[i];
    job->rd.fq.head = (i + 1) % FOLD_AHEAD;
    job->rd.fq.n--;
    sl_err_t e = job->rd.fq.fast ? apply_fast(job, f->key, f->klen, f->hash, f->wend,
                                           &job->rd.fq.nums[(size_t)i * (size_t)naggs], f->nulls)
                              : apply(job, f->key, f->klen, f->hash, f->wend,
                                      &job->rd.fq.vals[(size_t)i * 2 * (size_t)naggs]);
    if (e)
        job->rd.fq.lost = 1;
    return e;
}

sl_err_t sl__job_fold_flush(sl_job_t *job)
{
    while (job->rd.fq.n) {
        sl_err_t e = fold_pop(job);
        if (e)
            return e;
    }
    return SL_OK;
}

/*
 * Folds the row into its group in the batch table. With many keys the table's slot and
 * entry are both cache misses, so the fold waits in a queue of FOLD_AHEAD: its slot is
 * fetched when it joins, its entry half-way, and it is applied (in arrival order) when
 * it leaves. Aggregates over strings (which point into the record or a scratch arena
 * that the next record reuses) and long keys fold at once.
 *
 * fold_next() gives the queue's next free item (the oldest applied first when it is
 * full), or NULL after an error; fold_queue() queues it once its key is written.
 */
static sl_fold_t *fold_next(sl_job_t *job, sl_err_t *e)
{
    if (job->rd.fq.n == FOLD_AHEAD && (*e = fold_pop(job)))
        return NULL;
    return &job->rd.fq.items[(job->rd.fq.head + job->rd.fq.n) % FOLD_AHEAD];
}

static inline void fold_queue(sl_job_t *job, sl_fold_t *f, uint32_t klen, int64_t wend)
{
    const sl_conf_t *c = job->conf;
    unsigned i = (unsigned)(f - job->rd.fq.items);
    uint64_t h = sl__hash(f->key, klen);
    f->hash = h;
    f->wend = wend;
    f->klen = klen;
    job->rd.fq.n++;
    if (job->rd.fq.fast) {
        f->nulls = fast_inputs(job, &job->rd.fq.nums[(size_t)i * (size_t)c->plan.naggs]);
    } else {
        sl_val_t *vals = &job->rd.fq.vals[(size_t)i * 2 * (size_t)c->plan.naggs];
        for (int a = 0; a < c->plan.naggs; a++) {
            const sl_agg_spec_t *s = &c->plan.aggs[a];
            if (s->slot >= 0)
                vals[2 * a] = job->rd.row[s->slot];
            if (s->time_slot >= 0)
                vals[2 * a + 1] = job->rd.row[s->time_slot];
        }
    }
    sl__table_prefetch(&job->rd.table, h);
    if (job->rd.fq.n > FOLD_AHEAD / 2)
        sl__table_prefetch_entry(
            &job->rd.table,
            job->rd.fq.items[(job->rd.fq.head + job->rd.fq.n - 1 - FOLD_AHEAD / 2) % FOLD_AHEAD].hash);
}

/* The record's state key in job->rd.key: its task, then its group. */
static sl_err_t group_key(sl_job_t *job)
{
    const sl_conf_t *c = job->conf;
    uint8_t prefix[SL_TASK_PREFIX];
    sl__task_put(prefix, job->rd.task);
    sl__buf_reset(&job->rd.key);
    if (sl__buf_append(&job->rd.key, prefix, sizeof(prefix)))
        return SL_ERR_NOMEM;
    return sl__key_encode(job->rd.row, c->plan.group_slots, c->plan.ngroup, &job->rd.key);
}

/* The fold of the key in job->rd.key. */
static sl_err_t fold_into(sl_job_t *job, int64_t wend)
{
    const uint8_t *key = job->rd.key.p;
    uint32_t klen = (uint32_t)job->rd.key.len;
    sl_err_t e = SL_OK;
    if (!job->rd.fq.on || klen > FOLD_KEY_MAX) {
        uint64_t h = sl__hash(key, klen);
        if ((e = sl__job_fold_flush(job)))
            return e;
        if (job->rd.fq.fast) {
            sl_fold_num_t nums[64];
            uint64_t nulls = fast_inputs(job, nums);
            return apply_fast(job, key, klen, h, wend, nums, nulls);
        }
        return apply(job, key, klen, h, wend, NULL);
    }
    sl_fold_t *f = fold_next(job, &e);
    if (!f)
        return e;
    memcpy(f->key, key, klen);
    fold_queue(job, f, klen, wend);
    return SL_OK;
}

/* The fold of the row's group, outside windows: its key written straight into the
 * queue when it fits. */
static sl_err_t fold_group(sl_job_t *job)
{
    const sl_conf_t *c = job->conf;
    if (job->rd.fq.on) {
        sl_err_t e = SL_OK;
        sl_fold_t *f = fold_next(job, &e);
        if (!f)
            return e;
        sl__task_put(f->key, job->rd.task);
        size_t klen = sl__key_put(job->rd.row, c->plan.group_slots, c->plan.ngroup,
                                  f->key + SL_TASK_PREFIX, FOLD_KEY_MAX - SL_TASK_PREFIX);
        if (klen) {
            fold_queue(job, f, (uint32_t)(klen + SL_TASK_PREFIX), 0);
            return SL_OK;
        }
    }
    if (group_key(job) != SL_OK)
        return SL_ERR_NOMEM;
    return fold_into(job, 0);
}

/* A record behind the watermark for a closed window: counted, and copied to the late
 * topic when the job has one. */
static sl_err_t late_record(sl_job_t *job, const sl_rec_t *m, int64_t t)
{
    const sl_conf_t *c = job->conf;
    job->rd.n_late++;
    if (!c->plan.late_topic)
        return SL_OK;
    char why[160], err[512];
    snprintf(why, sizeof(why),
             "late: event time %" PRId64 " is behind the watermark %" PRId64 " for a closed window",
             t, job->tasks[job->rd.task].wm_late);
    if (sl__sink_side(&job->run.sink, c->plan.late_topic, m, why, err, sizeof(err)) != SL_OK) {
        sl__job_fatal(job, SL_ERR_KAFKA, "%s", err);
        return SL_ERR_KAFKA;
    }
    return SL_OK;
}

/* An event time the windows and the watermark can compute with: Spark's timestamp
 * range, years 1 to 9999 (durations are at most SL_DURATION_MAX, so nothing overflows). */
static int time_in_range(const sl_val_t *t)
{
    return t->t == SL_T_NULL || (t->u.i >= SL_TIME_MIN && t->u.i <= SL_TIME_MAX);
}

/* Derived fields, the filter, then the record's windows and group. SL_ERR_OVERFLOW or
 * SL_ERR_DECODE with @p why: the record's values cannot be computed with (an expression
 * overflows, an event time is out of range); it goes by the decode-error policy. */
static sl_err_t fold(sl_job_t *job, const sl_rec_t *m, sl_part_t *part, char *why,
                     size_t why_size)
{
    const sl_conf_t *c = job->conf;
    if (c->plan.meta_used || c->source.nheaders)
        fill_meta(job, m);
    if (c->plan.nderived || c->plan.where)
        sl__arena_reset(&job->rd.scratch); /* the expressions' strings */
    for (int i = 0; i < c->plan.nderived; i++) {
        const sl_derived_t *d = &c->plan.derived[i];
        sl_err_t e = sl__expr_eval(d->expr, job->rd.row, &job->rd.scratch, &job->rd.row[d->slot]);
        if (e == SL_ERR_OVERFLOW)
            snprintf(why, why_size, "'%s' (field '%s') overflows a long", d->text, d->name);
        if (e)
            return e;
    }
    if (c->plan.where) {
        int r = sl__expr_match(c->plan.where, job->rd.row, &job->rd.scratch);
        if (r == SL_ERR_OVERFLOW)
            snprintf(why, why_size, "query.where '%s' overflows a long", c->plan.where_text);
        if (r <= 0)
            return (sl_err_t)r;
    }
    int tslots[2] = {c->plan.time_slot, c->plan.wm_slot};
    for (int i = 0; i < 2; i++) {
        if (tslots[i] >= 0 && !time_in_range(&job->rd.row[tslots[i]])) {
            snprintf(why, why_size,
                     "the event time %" PRId64 " ('%s') is outside years 1 to 9999",
                     job->rd.row[tslots[i]].u.i, sl__conf_slot_name(c, tslots[i]));
            return SL_ERR_DECODE;
        }
    }
    job->rd.n_kept++;
    if (c->plan.wm_slot >= 0) {
        const sl_val_t *t = &job->rd.row[c->plan.wm_slot];
        if (t->t != SL_T_NULL && t->u.i > part->maxev)
            part->maxev = t->u.i;
    }
    if (!c->plan.aggregating)
        return keep_selected(job);
    if (c->plan.window == SL_WIN_NONE)
        return fold_group(job);
    if (group_key(job) != SL_OK)
        return SL_ERR_NOMEM;

    const sl_val_t *tv = &job->rd.row[c->plan.time_slot];
    if (tv->t == SL_T_NULL) {
        job->rd.n_untimed++; /* no event time, no window: as Spark, not aggregated */
        return SL_OK;
    }
    int64_t t = tv->u.i, starts[MAX_WINDOWS];
    int n = 1;
    if (c->plan.window == SL_WIN_SESSION)
        starts[0] = t;
    else
        n = sl__window_starts(t, c->plan.win_size_ms, c->plan.win_slide_ms, c->plan.win_offset_ms, starts,
                              MAX_WINDOWS);
    /* Complete mode keeps every window: nothing is late there. A late record is copied
     * to the late topic before any of its windows is folded, so a failed copy leaves
     * the record unapplied and the job stops before it. */
    int check_late = c->plan.wm_slot >= 0 && c->plan.mode != SL_MODE_COMPLETE;
    int64_t wm_late = job->tasks[job->rd.task].wm_late;
    int late = 0;
    for (int i = 0; check_late && i < n; i++)
        late |= sl__window_closed(starts[i] + c->plan.win_size_ms, wm_late);
    sl_err_t e;
    if (late && (e = late_record(job, m, t)))
        return e;
    size_t glen = job->rd.key.len;
    for (int i = 0; i < n; i++) {
        int64_t end = starts[i] + c->plan.win_size_ms;
        if (check_late && sl__window_closed(end, wm_late))
            continue;
        job->rd.key.len = glen;
        sl_val_t ws = {.t = SL_T_TIMESTAMP, .u.i = starts[i]};
        static const int zero = 0;
        if (sl__key_encode(&ws, &zero, 1, &job->rd.key) != SL_OK)
            return SL_ERR_NOMEM;
        if ((e = fold_into(job, end)))
            return e;
    }
    return SL_OK;
}

/* One record of any source: decode, fold. 1 when it is consumed (its position may pass
 * it), 0 when the job stops before it. */
int sl__job_process_rec(sl_job_t *job, const sl_rec_t *r, sl_part_t *p)
{
    const sl_conf_t *c = job->conf;
    job->rd.n_in++;
    job->tasks[job->rd.task].batch_records++;
    char why[512];
    if (!r->payload)
        return bad_record(job, r, "the record has no value (a tombstone)");
    if (sl__codec_decode(c->source.codec, r->payload, r->len, job->rd.row, why, sizeof(why)) != SL_OK)
        return bad_record(job, r, why);
    sl_err_t e = fold(job, r, p, why, sizeof(why));
    if (e == SL_ERR_OVERFLOW || e == SL_ERR_DECODE)
        return bad_record(job, r, why);
    if (e == SL_ERR_NOMEM) {
        sl__job_fatal(job, SL_ERR_NOMEM, "out of memory while aggregating");
        return 0;
    }
    if (e) {
        job->rd.n_late--; /* its late copy failed: the job stops before the record */
        return 0;
    }
    return 1;
}

/* The position of a partition fell out of its log while the job ran (retention deleted
 * records it had not read yet): stop, or skip to the log start (on_data_loss). */
static void data_loss(sl_job_t *job, const rd_kafka_message_t *m)
{
    sl_part_t *p = m->rkt ? sl__source_part(&job->run.src, m) : NULL;
    if (!p || p->pos < 0) {
        sl__job_fatal(job, SL_ERR_KAFKA, "source %s[%d]: %s",
                      m->rkt ? rd_kafka_topic_name(m->rkt) : "?", m->partition,
                      rd_kafka_message_errstr(m));
        return;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    int64_t pos = sl__source_data_loss(&job->run.src, job->run.src.rk, topic, m->partition, p->pos);
    if (pos < 0) {
        sl__job_fatal(job, SL_ERR_KAFKA, "%s", job->run.src.fatal.msg);
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, m->partition)->offset = pos;
    char why[600];
    sl_err_t e = sl__source_seek(&job->run.src, l, why, sizeof(why));
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        sl__job_fatal(job, e, "%s", why);
        return;
    }
    p->pos = pos;
}

void sl__job_process(sl_job_t *job, rd_kafka_message_t *m)
{
    const sl_conf_t *c = job->conf;
    /* What comes of a partition whose task is not open here (held while it opens, or
     * revoked while it was fetched) is its owner's to read. */
    if (m->rkt && m->partition >= 0) {
        int task = sl__task_of(job, m->partition);
        if (task >= job->ntasks || job->tasks[task].state != SL_TASK_ACTIVE)
            return;
        job->rd.task = task;
    }
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            sl_part_t *p = sl__source_part(&job->run.src, m);
            if (p && m->offset > p->pos)
                p->pos = m->offset; /* also steps over transaction markers at the end */
            if (p && m->offset >= p->pos)
                p->at_end = 1;
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            char why[512];
            rd_kafka_resp_err_t fe = rd_kafka_fatal_error(job->run.src.rk, why, sizeof(why));
            if (fe == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID)
                sl__job_fatal(job, SL_ERR_BUSY,
                              "source: %s: another instance of job '%s' joined its consumer "
                              "group with this one's group.instance.id. This instance stops "
                              "without committing the batch it was reading",
                              why, c->name);
            else
                sl__job_fatal(job, SL_ERR_KAFKA, "source: %s", why);
        } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                   m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
            data_loss(job, m);
        } else if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                   m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                   m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
            sl__job_fatal(job, SL_ERR_KAFKA, "source %s[%d]: %s",
                          m->rkt ? rd_kafka_topic_name(m->rkt) : "?", m->partition,
                          rd_kafka_message_errstr(m));
        } else {
            sl_log(SL_LOG_WARN, "source", "%s", rd_kafka_message_errstr(m));
        }
        return;
    }
    sl_part_t *p = sl__source_part(&job->run.src, m);
    if (!p || (p->pos >= 0 && m->offset < p->pos))
        return; /* not ours, or read again after a seek */
    /* The timestamp only when the query reads it: a call into librdkafka a record. */
    int ts_used = (c->plan.meta_used & (1u << SL_META_TIMESTAMP)) != 0;
    sl_rec_t r = {.payload = m->payload,
                  .len = m->len,
                  .key = m->key,
                  .klen = m->key_len,
                  .topic = job->run.src.last_name,
                  .partition = m->partition,
                  .offset = m->offset,
                  .ts = ts_used ? rd_kafka_message_timestamp(m, NULL) : -1,
                  .km = m};
    p->at_end = 0;
    if (sl__job_process_rec(job, &r, p))
        p->pos = m->offset + 1;
}
