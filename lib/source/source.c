/*
 * source.c - the Kafka source (see source.h).
 *
 * On assignment the rebalance callback looks up each partition's stored position and
 * assigns the consumer there; a partition the state has never seen starts at the
 * earliest (or latest) offset. Kafka's committed offsets are never used: the state's
 * positions are the truth, written atomically with the aggregates they produced.
 *
 * The prefetch queue is bounded by a count of records (each costs librdkafka about 350
 * bytes of memory however small it is), and kept flowing by sl__source_refill(): when
 * the queue holds queued.min.messages, librdkafka 2.0 stops fetching and looks again
 * only when its broker thread next wakes up (a response, a request to send, or its 1 s
 * timer; fetch.queue.backoff.ms came in 2.2). A consumer that drains the queue sooner
 * then waits out the rest of the second: with 16 MiB of small records, reading was
 * capped at about one queue a second (1.4 M records/s against 4 M). So once the queue
 * has been near its bound and has drained, a helper thread sends the partitions'
 * leaders a ListOffsets request, which wakes their broker threads to fetch again.
 */
#include "source.h"

#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "layout.h"
#include "log.h"
#include "util.h"

static void src_fail(sl_source_t *src, sl_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records why the job cannot go on (callbacks cannot return errors); the first wins. */
static void src_fail(sl_source_t *src, sl_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__first_err_vset(&src->fatal, err, fmt, ap);
    va_end(ap);
}

int sl__source_pos_key(char *buf, size_t size, int task, const char *topic, int partition)
{
    return snprintf(buf, size, "t/%d/pos/%s/%d", task, topic, partition);
}

int sl__source_task(const sl_source_t *src, int partition)
{
    return src->cs->co_partitioned && partition >= 0 ? partition : 0;
}

static sl_part_t *part_of(sl_source_t *src, int t, int32_t p)
{
    sl_source_topic_t *st = &src->topics[t];
    if (p < 0)
        return NULL;
    if (p >= st->nparts) {
        int n = p + 1;
        sl_part_t *np = realloc(st->parts, (size_t)n * sizeof(*np));
        if (!np)
            return NULL;
        for (int i = st->nparts; i < n; i++)
            np[i] = (sl_part_t){.pos = -1, .committed = -1, .end = -1, .maxev = INT64_MIN};
        st->parts = np;
        st->nparts = n;
    }
    return &st->parts[p];
}

/* The index of a source topic; with a pattern, a topic seen for the first time (the
 * group only hands out matching ones) is added. -1: not ours, or out of memory. */
static int topic_index(sl_source_t *src, const char *name)
{
    for (int i = 0; i < src->ntopics; i++) {
        if (!strcmp(src->topics[i].name, name))
            return i;
    }
    if (!src->cs->pattern || regexec(&src->re, name, 0, NULL, 0) != 0)
        return -1;
    sl_source_topic_t *nt = realloc(src->topics, (size_t)(src->ntopics + 1) * sizeof(*nt));
    if (!nt)
        return -1;
    src->topics = nt;
    nt[src->ntopics] = (sl_source_topic_t){.name = strdup(name)};
    if (!nt[src->ntopics].name)
        return -1;
    sl_log(SL_LOG_INFO, "source", "topic %s matches the pattern %s", name, src->cs->pattern);
    return src->ntopics++;
}

sl_part_t *sl__source_part_lookup(sl_source_t *src, const rd_kafka_message_t *m)
{
    if (m->rkt != src->last_rkt) {
        src->last_name = rd_kafka_topic_name(m->rkt);
        src->last_topic = topic_index(src, src->last_name);
        src->last_rkt = m->rkt;
    }
    return src->last_topic < 0 ? NULL : part_of(src, src->last_topic, m->partition);
}

static int64_t stored_pos(sl_source_t *src, const char *topic, int partition)
{
    char key[512];
    int klen = sl__source_pos_key(key, sizeof(key), sl__source_task(src, partition), topic,
                                  partition);
    char *val = NULL, err[512];
    size_t vlen;
    sl_err_t e =
        sl__store_get(src->store, SL_CF_META, key, (size_t)klen, &val, &vlen, err, sizeof(err));
    if (e == SL_ERR_NOTFOUND)
        return -1;
    if (e || vlen != 8) {
        src_fail(src, SL_ERR_STATE, "%s", e ? err : "state: a stored position is corrupt");
        free(val);
        return -2;
    }
    int64_t pos = (int64_t)sl__be64_get((const uint8_t *)val);
    free(val);
    return pos;
}

/* Where a partition the state has never read starts. The job's starting offsets apply
 * when it first runs; partitions and topics that appear later start at the earliest
 * offset, so nothing written to them is missed (Spark's rule). */
static int64_t starting_offset(sl_source_t *src, rd_kafka_t *rk, const char *topic, int partition,
                               char *how, size_t how_size)
{
    const sl_conf_source_t *c = src->cs;
    if (!src->fresh) {
        snprintf(how, how_size, "the earliest offset (new since the job first ran)");
        return RD_KAFKA_OFFSET_BEGINNING;
    }
    for (int i = 0; i < c->nstart_at; i++) {
        const sl_start_off_t *s = &c->start_at[i];
        if (s->partition == partition && !strcmp(s->topic, topic)) {
            if (s->offset >= 0)
                snprintf(how, how_size, "offset %" PRId64 " (starting_offsets)", s->offset);
            else
                snprintf(how, how_size, "the %s offset (starting_offsets)",
                         s->offset == -1 ? "latest" : "earliest");
            return s->offset == -1   ? RD_KAFKA_OFFSET_END
                   : s->offset == -2 ? RD_KAFKA_OFFSET_BEGINNING
                                     : s->offset;
        }
    }
    if (c->starting_ts >= 0) {
        /* The first offset whose timestamp is at or after it; the end when none is. */
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = c->starting_ts;
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, 10000);
        int64_t off = e ? RD_KAFKA_OFFSET_INVALID : l->elems[0].offset;
        if (!e && l->elems[0].err)
            e = l->elems[0].err;
        rd_kafka_topic_partition_list_destroy(l);
        if (e) {
            src_fail(src, SL_ERR_KAFKA,
                     "source %s[%d]: cannot find the offset of starting_timestamp %" PRId64 ": %s",
                     topic, partition, c->starting_ts, rd_kafka_err2str(e));
            return RD_KAFKA_OFFSET_END;
        }
        snprintf(how, how_size, "offset %" PRId64 " (starting_timestamp %" PRId64 ")", off,
                 c->starting_ts);
        return off < 0 ? RD_KAFKA_OFFSET_END : off;
    }
    snprintf(how, how_size, "the %s offset", c->starting_latest ? "latest" : "earliest");
    return c->starting_latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
}

int64_t sl__source_data_loss(sl_source_t *src, rd_kafka_t *rk, const char *topic, int partition,
                             int64_t pos)
{
    int64_t lo, hi;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 10000);
    if (e) {
        src_fail(src, SL_ERR_KAFKA,
                 "source %s[%d]: cannot read its offsets to check for data loss: %s", topic,
                 partition, rd_kafka_err2str(e));
        return -1;
    }
    if (pos >= lo && pos <= hi)
        return pos;
    /* Below the log start: retention deleted records before they were read. Above the
     * end: the topic was deleted and made again, its offsets start over. */
    int64_t lost = pos < lo ? lo - pos : 0;
    char what[300];
    if (pos < lo)
        snprintf(what, sizeof(what),
                 "offsets %" PRId64 " to %" PRId64 " were deleted (retention) before they were "
                 "read: %" PRId64 " record(s) lost",
                 pos, lo - 1, lost);
    else
        snprintf(what, sizeof(what),
                 "the stored position %" PRId64 " is past the partition's end %" PRId64
                 " (was the topic deleted and made again?)",
                 pos, hi);
    if (!src->cs->data_loss_skip) {
        src_fail(src, SL_ERR_KAFKA,
                 "source %s[%d]: %s. The job stops rather than skip them silently; set "
                 "source.on_data_loss to \"skip\" to go on from offset %" PRId64,
                 topic, partition, what, lo);
        return -1;
    }
    sl_log(SL_LOG_WARN, "source",
           "%s[%d]: %s; skipped (on_data_loss: skip), going on from "
           "offset %" PRId64,
           topic, partition, what, lo);
    src->lost += (uint64_t)lost;
    return lo;
}


/* The end offsets of the partitions of @p l assigned at RD_KAFKA_OFFSET_END, made
 * concrete (one ListOffsets request a leader). librdkafka 2.0 looks a logical offset up
 * when the partition is assigned, and an answer that comes after a seek (outdated by it)
 * starts the lookup again, which moves the partition back to its end: a held partition
 * released while its end was being looked up skipped every record between the position
 * its task restored and the end. A concrete offset is never looked up. -1 (the source
 * failed, named) when the broker does not answer. */
static int resolve_ends(sl_source_t *src, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(l->cnt);
    for (int i = 0; i < l->cnt; i++) {
        if (l->elems[i].offset == RD_KAFKA_OFFSET_END)
            rd_kafka_topic_partition_list_add(q, l->elems[i].topic, l->elems[i].partition)
                ->offset = RD_KAFKA_OFFSET_END; /* as a timestamp: the latest */
    }
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, q, 10000);
    for (int i = 0; !err && i < q->cnt; i++) {
        rd_kafka_topic_partition_t *r = &q->elems[i];
        if (r->err || r->offset < 0) {
            err = r->err ? r->err : RD_KAFKA_RESP_ERR__NO_OFFSET;
            break;
        }
        rd_kafka_topic_partition_list_find(l, r->topic, r->partition)->offset = r->offset;
    }
    if (err)
        src_fail(src, SL_ERR_KAFKA, "source: cannot look up the end offsets of %d partition(s) "
                                    "assigned while their tasks open: %s",
                 q->cnt, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(q);
    return err ? -1 : 0;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sl_source_t *src = opaque;
    /* NULL until the group has chosen a protocol: a consumer closed before its first
     * poll (SIGTERM during start-up) is called back with that. */
    const char *proto = rd_kafka_rebalance_protocol(rk);
    int cooperative = proto && !strcmp(proto, "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && (src->closing || !src->store)) {
        /* Closing, or not started: nothing is read any more, no position is looked up. */
        if (!cooperative)
            rd_kafka_assign(rk, NULL);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Only partitions of our topics are taken; a group that once ran with other
         * topics can hand back a stale assignment. */
        rd_kafka_topic_partition_list_t *ours = rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int t = topic_index(src, tp->topic);
            sl_part_t *p = t >= 0 ? part_of(src, t, tp->partition) : NULL;
            if (!p) {
                sl_log(SL_LOG_WARN, "source",
                       "the group assigned %s[%d], which is not a source topic of this job; "
                       "ignored (does another job use this job's consumer group?)",
                       tp->topic, tp->partition);
                continue;
            }
            if (src->cs->co_partitioned && tp->partition >= src->ntasks) {
                src_fail(src, SL_ERR_INVAL,
                         "source: topic %s has partition %d, but the job was started with %d "
                         "task(s), one a partition number of its co-partitioned input: a topic "
                         "grew, or one of another partition count matches the pattern. Every "
                         "input topic must keep the partition count the job started with",
                         tp->topic, tp->partition, src->ntasks);
                rd_kafka_topic_partition_list_destroy(ours);
                return;
            }
            rd_kafka_topic_partition_list_add(ours, tp->topic, tp->partition);
        }
        /* The tasks of these partitions open first: their state, restored or checked
         * against the changelog, holds the positions the partitions start at. */
        if (src->hooks.assigned && ours->cnt) {
            sl_err_t he = src->hooks.assigned(src->hooks.opaque, ours);
            if (he) {
                rd_kafka_topic_partition_list_destroy(ours);
                return;
            }
        }
        rd_kafka_topic_partition_list_t *all = ours;
        ours = rd_kafka_topic_partition_list_new(all->cnt);
        rd_kafka_topic_partition_list_t *held = rd_kafka_topic_partition_list_new(all->cnt);
        for (int i = 0; i < all->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &all->elems[i];
            int t = topic_index(src, tp->topic);
            sl_part_t *p = t >= 0 ? part_of(src, t, tp->partition) : NULL;
            if (!p)
                continue;
            /* A partition whose task is still opening is held: assigned at its end
             * (where nothing is read, and no position can be out of the log; looked up
             * below), paused, and moved to where its task's state says once that is
             * known. */
            if (src->hooks.ready && !src->hooks.ready(src->hooks.opaque, tp->partition)) {
                p->assigned = 1;
                p->held = 1;
                p->pos = p->committed = -1;
                rd_kafka_topic_partition_list_add(ours, tp->topic, tp->partition)->offset =
                    RD_KAFKA_OFFSET_END;
                rd_kafka_topic_partition_list_add(held, tp->topic, tp->partition);
                continue;
            }
            /* A revoked partition's batch was committed before it went, so the stored
             * position is where it goes on (and what its task's new owner restored). */
            int64_t pos = stored_pos(src, tp->topic, tp->partition);
            if (pos == -2) {
                rd_kafka_topic_partition_list_destroy(all);
                rd_kafka_topic_partition_list_destroy(held);
                rd_kafka_topic_partition_list_destroy(ours);
                return;
            }
            p->committed = pos;
            p->assigned = 1;
            rd_kafka_topic_partition_t *o =
                rd_kafka_topic_partition_list_add(ours, tp->topic, tp->partition);
            if (pos >= 0) {
                pos = sl__source_data_loss(src, rk, tp->topic, tp->partition, pos);
                if (pos < 0) {
                    rd_kafka_topic_partition_list_destroy(all);
                    rd_kafka_topic_partition_list_destroy(held);
                    rd_kafka_topic_partition_list_destroy(ours);
                    return;
                }
                p->pos = pos;
                o->offset = pos;
                sl_log(SL_LOG_INFO, "source", "assigned %s[%d] at the stored position %" PRId64,
                       tp->topic, tp->partition, pos);
            } else {
                char how[160];
                o->offset = starting_offset(src, rk, tp->topic, tp->partition, how, sizeof(how));
                sl_log(SL_LOG_INFO, "source", "assigned %s[%d] at %s (no stored position)",
                       tp->topic, tp->partition, how);
            }
        }
        rd_kafka_topic_partition_list_destroy(all);
        if (held->cnt && resolve_ends(src, rk, ours) != 0) {
            rd_kafka_topic_partition_list_destroy(held);
            rd_kafka_topic_partition_list_destroy(ours);
            return;
        }
        parts = ours;
        rd_kafka_error_t *e = NULL;
        rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        if (e || aerr) {
            src_fail(src, SL_ERR_KAFKA, "cannot assign partitions: %s",
                     e ? rd_kafka_error_string(e) : rd_kafka_err2str(aerr));
            rd_kafka_error_destroy(e);
        } else if (held->cnt) {
            rd_kafka_pause_partitions(rk, held);
        }
        rd_kafka_topic_partition_list_destroy(held);
        rd_kafka_topic_partition_list_destroy(ours);
    } else {
        /* What was read of these partitions is committed (or, lost to another instance,
         * given up) before they go. */
        if (src->hooks.revoked && !src->closing)
            src->hooks.revoked(src->hooks.opaque, parts, cooperative, rd_kafka_assignment_lost(rk));
        for (int i = 0; i < parts->cnt; i++) {
            int t = topic_index(src, parts->elems[i].topic);
            sl_part_t *p = t >= 0 ? part_of(src, t, parts->elems[i].partition) : NULL;
            if (p) {
                /* Assigned again, it starts where its task's state says. */
                p->assigned = 0;
                p->held = 0;
                p->pos = p->committed = -1;
                p->maxev = INT64_MIN;
                p->at_end = 0;
            }
            sl_log(SL_LOG_INFO, "source", "revoked %s[%d]", parts->elems[i].topic,
                   parts->elems[i].partition);
        }
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
    }
}

/* The absolute path of @p path with no "." or ".." and no symbolic link, however it is
 * spelled ("st", "./st", "/abs/st"); a path that does not exist yet is resolved through
 * its parent. */
static void canonical_dir(const char *path, char *out, size_t size)
{
    char buf[PATH_MAX];
    if (realpath(path, buf)) {
        snprintf(out, size, "%s", buf);
        return;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", path);
    size_t len = strlen(parent);
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = 0;
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : parent;
    if (slash)
        *slash = 0;
    int n = -1;
    if (realpath(slash ? (parent[0] ? parent : "/") : ".", buf))
        n = snprintf(out, size, "%s/%s", strcmp(buf, "/") ? buf : "", base);
    if (n < 0 || (size_t)n >= size)
        snprintf(out, size, "%s", path);
}

/* Co-partitioned input: every topic (those the pattern matches now) has the same
 * partition count, which is the job's number of tasks. */
static sl_err_t count_tasks(sl_source_t *src, char *errstr, size_t errstr_size)
{
    const sl_conf_source_t *cs = src->cs;
    char **names = cs->topics;
    int n = cs->ntopics;
    const struct rd_kafka_metadata *md = NULL;
    if (cs->pattern) {
        rd_kafka_resp_err_t err = rd_kafka_metadata(src->rk, 1, NULL, &md, 10000);
        if (err) {
            snprintf(errstr, errstr_size, "cannot reach Kafka at %s: %s", src->kafka->bootstrap,
                     rd_kafka_err2str(err));
            return SL_ERR_KAFKA;
        }
        names = calloc((size_t)md->topic_cnt + 1, sizeof(*names));
        n = 0;
        for (int i = 0; names && i < md->topic_cnt; i++) {
            if (regexec(&src->re, md->topics[i].topic, 0, NULL, 0) == 0)
                names[n++] = md->topics[i].topic;
        }
    }
    int *parts = calloc((size_t)n + 1, sizeof(int));
    sl_err_t e = !parts || !names ? SL_ERR_NOMEM : SL_OK;
    if (!e && n == 0) {
        snprintf(errstr, errstr_size,
                 "source.pattern: no topic on %s matches %s, so the partition count of the "
                 "co-partitioned input (source.co_partitioned) is not known",
                 src->kafka->bootstrap, cs->pattern);
        e = SL_ERR_KAFKA;
    }
    if (!e)
        e = sl__kafka_check_topics(src->rk, src->kafka->bootstrap, names, n, "source.topics",
                                   parts, errstr, errstr_size);
    for (int i = 1; !e && i < n; i++) {
        if (parts[i] != parts[0]) {
            snprintf(errstr, errstr_size,
                     "source.co_partitioned: topic '%s' has %d partition(s) and '%s' %d; "
                     "co-partitioned topics have as many partitions each (task p reads "
                     "partition p of every one)",
                     names[0], parts[0], names[i], parts[i]);
            e = SL_ERR_INVAL;
        }
    }
    if (!e && parts[0] > SL_TASKS_MAX) {
        snprintf(errstr, errstr_size, "source.co_partitioned: topic '%s' has %d partitions, more "
                 "than the %d tasks a job can have", names[0], parts[0], SL_TASKS_MAX);
        e = SL_ERR_INVAL;
    }
    if (!e)
        src->ntasks = parts[0];
    free(parts);
    if (md) {
        free(names);
        rd_kafka_metadata_destroy(md);
    }
    return e;
}

sl_err_t sl__source_open(sl_source_t *src, const char *job, const sl_conf_kafka_t *kafka,
                         const sl_conf_source_t *cs, const char *state_dir, char *errstr,
                         size_t errstr_size)
{
    memset(src, 0, sizeof(*src));
    src->job = job;
    src->kafka = kafka;
    src->cs = cs;
    src->last_topic = -1;
    src->admin = -1;
    /* The group is the job's; and the member is static (KIP-345), so a restarted job takes
     * its partitions back at once instead of waiting out the dead member's session. The
     * coordinator hands a returning static member its old assignment even when its
     * subscription changed, so the member id names the topic list too; and it names the
     * instance (host and state directory), so that another instance of the job is another
     * member, seen by sl__source_check_alone(), not the same one fenced by the broker. */
    char *group = src->group, *instance = src->instance;
    snprintf(group, sizeof(src->group), "sluice-%s", job);
    uint64_t th = 0;
    for (int i = 0; i < cs->ntopics; i++)
        th = th * 31 + sl__hash(cs->topics[i], strlen(cs->topics[i]));
    if (cs->pattern)
        th = th * 31 + sl__hash(cs->pattern, strlen(cs->pattern));
    char where[4400], host[256] = "", dir[PATH_MAX];
    gethostname(host, sizeof(host) - 1);
    canonical_dir(state_dir, dir, sizeof(dir));
    int wl = snprintf(where, sizeof(where), "%s:%s", host, dir);
    uint64_t ih = sl__hash(where, wl > 0 && (size_t)wl < sizeof(where) ? (size_t)wl : 0);
    snprintf(src->legacy_instance, sizeof(src->legacy_instance), "%s-%08x", group,
             (unsigned)(th & 0xffffffffu));
    snprintf(instance, sizeof(src->instance), "%s-%08x", src->legacy_instance,
             (unsigned)(ih & 0xffffffffu));
    int has_group = 0, has_instance = 0;
    for (int i = 0; i < kafka->props.n + kafka->consumer.n; i++) {
        const sl_kv_t *kv =
            i < kafka->props.n ? &kafka->props.kv[i] : &kafka->consumer.kv[i - kafka->props.n];
        if (!strcmp(kv->k, "group.id")) {
            has_group = 1;
            snprintf(group, sizeof(src->group), "%s", kv->v);
        }
        if (!strcmp(kv->k, "group.instance.id")) {
            has_instance = 1;
            snprintf(instance, sizeof(src->instance), "%s", kv->v);
        }
    }
    /* auto.offset.reset=error: a position that is no longer in the log is reported (and
     * handled by on_data_loss), never silently moved to the end. */
    const char *fixed[13] = {"enable.auto.commit",   "false", "enable.auto.offset.store", "false",
                             "enable.partition.eof", "true",  "auto.offset.reset",        "error"};
    int nf = 8;
    if (!has_group) {
        fixed[nf++] = "group.id";
        fixed[nf++] = group;
    }
    if (!has_instance) {
        fixed[nf++] = "group.instance.id";
        fixed[nf++] = instance;
    }
    fixed[nf] = NULL;
    /* The prefetch queue: 100,000 records (about 35 MB with librdkafka's ~350 bytes a
     * record; 64 MiB of payload bounds large records), filled by fetches of at most 256
     * KiB a partition and 4 MiB in all, so one response overshoots the bound by little.
     * sl__source_refill() keeps it flowing (200,000 read no faster). */
    /* Instances of a job split its tasks: with one input topic cooperative-sticky moves
     * only the partitions that change hands; with several, range gives partition p of
     * every topic to the same instance, as a task needs. */
    const char *assignor = !cs->co_partitioned ? NULL
                           : cs->ntopics == 1 && !cs->pattern ? "cooperative-sticky"
                                                               : "range";
    const char *defaults[] = {"queued.min.messages",
                              "100000",
                              "queued.max.messages.kbytes",
                              "65536",
                              "max.partition.fetch.bytes",
                              "262144",
                              "fetch.max.bytes",
                              "4194304",
                              assignor ? "partition.assignment.strategy" : NULL,
                              assignor,
                              NULL};
    rd_kafka_conf_t *kc =
        sl__kafka_conf(kafka, &kafka->consumer, defaults, fixed, errstr, errstr_size);
    if (!kc)
        return SL_ERR_INVAL;
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_opaque(kc, src);
    char err[512];
    src->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (!src->rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "cannot create the Kafka consumer: %s", err);
        return SL_ERR_KAFKA;
    }
    if (cs->pattern) {
        if (regcomp(&src->re, cs->pattern, REG_EXTENDED | REG_NOSUB) != 0) {
            snprintf(errstr, errstr_size, "source.pattern: not a regular expression");
            return SL_ERR_INVAL;
        }
        src->has_re = 1;
    }
    src->topics = calloc((size_t)cs->ntopics + 1, sizeof(*src->topics));
    if (!src->topics)
        return SL_ERR_NOMEM;
    src->ntopics = cs->ntopics;
    for (int i = 0; i < cs->ntopics; i++) {
        src->topics[i].name = strdup(cs->topics[i]);
        if (!src->topics[i].name)
            return SL_ERR_NOMEM;
    }
    src->ntasks = 1;
    if (!cs->co_partitioned)
        return sl__kafka_check_topics(src->rk, kafka->bootstrap, cs->topics, cs->ntopics,
                                      "source.topics", NULL, errstr, errstr_size);
    return count_tasks(src, errstr, errstr_size);
}

/* A broker without the admin APIs (the mock cluster) is not asked to describe groups:
 * librdkafka 2.0.2 then trips its own assertion (eonce->refcnt) or hangs in
 * rd_kafka_destroy(). DescribeConfigs on a broker tells at once. */
static int has_admin(sl_source_t *src)
{
    if (src->admin < 0)
        src->admin = sl__kafka_config_value(src->rk, RD_KAFKA_RESOURCE_BROKER, NULL,
                                            "message.max.bytes") > 0;
    return src->admin;
}

sl_err_t sl__source_check_alone(sl_source_t *src, char *errstr, size_t errstr_size)
{
    if (!has_admin(src)) {
        sl_log(SL_LOG_DEBUG, "source", "the broker cannot describe groups: other instances of "
               "job '%s' are not looked for", src->job);
        return SL_OK;
    }
    const char *groups[] = {src->group};
    rd_kafka_queue_t *q = rd_kafka_queue_new(src->rk);
    rd_kafka_DescribeConsumerGroups(src->rk, groups, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    sl_err_t e = SL_OK;
    const rd_kafka_ConsumerGroupDescription_t **g = NULL;
    size_t n = 0;
    if (ev && !rd_kafka_event_error(ev))
        g = rd_kafka_DescribeConsumerGroups_result_groups(
            rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    if (n != 1 || rd_kafka_ConsumerGroupDescription_error(g[0])) {
        const rd_kafka_error_t *ge = n == 1 ? rd_kafka_ConsumerGroupDescription_error(g[0]) : NULL;
        sl_log(SL_LOG_DEBUG, "source", "cannot describe group %s (%s): other instances of job "
               "'%s' are not looked for",
               src->group, ge ? rd_kafka_error_string(ge) : ev ? rd_kafka_event_error_string(ev)
                                                             : "no answer",
               src->job);
        n = 0;
    }
    char *me = rd_kafka_memberid(src->rk);
    for (size_t i = 0; n == 1 && i < rd_kafka_ConsumerGroupDescription_member_count(g[0]); i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(g[0], i);
        const char *iid = rd_kafka_MemberDescription_group_instance_id(m);
        const char *mid = rd_kafka_MemberDescription_consumer_id(m);
        if ((iid && (!strcmp(iid, src->instance) || !strcmp(iid, src->legacy_instance))) ||
            (me && mid && !strcmp(mid, me)))
            continue;
        snprintf(errstr, errstr_size,
                 "job '%s' is running elsewhere: its consumer group '%s' has member '%s' "
                 "(client '%s' on %s). Two instances of one job fence each other's output "
                 "transactions and publish partial aggregates; run one instance of a job (a "
                 "state directory each is not enough). Stop the other one; if it has stopped "
                 "already, the group lets it go within session.timeout.ms (45 s by default)",
                 src->job, src->group, iid ? iid : mid,
                 rd_kafka_MemberDescription_client_id(m), rd_kafka_MemberDescription_host(m));
        e = SL_ERR_BUSY;
        break;
    }
    if (me)
        rd_kafka_mem_free(src->rk, me);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return e;
}

/* Available-now: the end of every partition as it is now is where the job stops. */
static sl_err_t record_ends(sl_source_t *src, char *errstr, size_t errstr_size)
{
    if (src->cs->pattern) {
        /* The topics that match now are the ones an available-now run reads. */
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t err = rd_kafka_metadata(src->rk, 1, NULL, &md, 10000);
        if (err) {
            snprintf(errstr, errstr_size, "cannot reach Kafka at %s: %s", src->kafka->bootstrap,
                     rd_kafka_err2str(err));
            return SL_ERR_KAFKA;
        }
        for (int i = 0; i < md->topic_cnt; i++)
            topic_index(src, md->topics[i].topic);
        rd_kafka_metadata_destroy(md);
        if (!src->ntopics) {
            snprintf(errstr, errstr_size, "source.pattern: no topic on %s matches %s",
                     src->kafka->bootstrap, src->cs->pattern);
            return SL_ERR_KAFKA;
        }
    }
    int *nparts = calloc((size_t)src->ntopics, sizeof(int));
    char **names = calloc((size_t)src->ntopics, sizeof(char *));
    if (!nparts || !names) {
        free(nparts);
        free(names);
        return SL_ERR_NOMEM;
    }
    for (int t = 0; t < src->ntopics; t++)
        names[t] = src->topics[t].name;
    sl_err_t e = sl__kafka_check_topics(src->rk, src->kafka->bootstrap, names, src->ntopics,
                                        "source.topics", nparts, errstr, errstr_size);
    free(names);
    for (int t = 0; !e && t < src->ntopics; t++) {
        for (int p = 0; p < nparts[t]; p++) {
            int64_t lo, hi;
            rd_kafka_resp_err_t err =
                rd_kafka_query_watermark_offsets(src->rk, src->topics[t].name, p, &lo, &hi, 10000);
            sl_part_t *part = part_of(src, t, p);
            if (err || !part) {
                snprintf(errstr, errstr_size, "cannot read the end offset of %s[%d]: %s",
                         src->topics[t].name, p, rd_kafka_err2str(err));
                e = SL_ERR_KAFKA;
                break;
            }
            part->end = hi;
            /* A partition with nothing to read is caught up whatever its position. */
            if (hi <= lo)
                part->end = -1;
        }
    }
    free(nparts);
    return e;
}

static void refill_start(sl_source_t *src);

sl_err_t sl__source_start(sl_source_t *src, sl_store_t *store, int available_now, char *errstr,
                          size_t errstr_size)
{
    src->store = store;
    if (available_now) {
        sl_err_t e = record_ends(src, errstr, errstr_size);
        if (e)
            return e;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(src->ntopics + 1);
    if (src->cs->pattern)
        rd_kafka_topic_partition_list_add(l, src->cs->pattern, RD_KAFKA_PARTITION_UA);
    else
        for (int i = 0; i < src->ntopics; i++)
            rd_kafka_topic_partition_list_add(l, src->topics[i].name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(src->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        snprintf(errstr, errstr_size, "cannot subscribe: %s", rd_kafka_err2str(err));
        return SL_ERR_KAFKA;
    }
    src->q = rd_kafka_queue_get_consumer(src->rk);
    refill_start(src);
    return SL_OK;
}

int sl__source_caught_up(const sl_source_t *src)
{
    for (int t = 0; t < src->ntopics; t++) {
        for (int p = 0; p < src->topics[t].nparts; p++) {
            const sl_part_t *part = &src->topics[t].parts[p];
            if (part->end >= 0 && part->pos < part->end)
                return 0;
        }
    }
    return 1;
}

/* ---- keeping the prefetch queue flowing ---- */

static long conf_long(rd_kafka_t *rk, const char *name, long dflt)
{
    char v[64];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, v, &n) != RD_KAFKA_CONF_OK)
        return dflt;
    return strtol(v, NULL, 10);
}

/* The helper thread: each list handed over becomes one ListOffsets request per leader
 * (the latest offset, which the broker answers from memory). Sending it wakes the
 * leader's broker thread; the answer itself is not needed. */
static void *refill_thread(void *opaque)
{
    sl_source_t *src = opaque;
    sl_refill_t *r = &src->refill;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->want && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop)
            break;
        rd_kafka_topic_partition_list_t *l = r->want;
        r->want = NULL;
        pthread_mutex_unlock(&r->mu);
        rd_kafka_offsets_for_times(src->rk, l, 1000);
        rd_kafka_topic_partition_list_destroy(l);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void refill_start(sl_source_t *src)
{
    sl_refill_t *r = &src->refill;
    long msgs = conf_long(src->rk, "queued.min.messages", 100000);
    long kbytes = conf_long(src->rk, "queued.max.messages.kbytes", 65536);
    r->high = (size_t)(msgs - msgs / 4);
    r->low = (size_t)(msgs / 4);
    r->high_bytes = (double)kbytes * 1024.0 * 0.75;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->started = !pthread_create(&r->thread, NULL, refill_thread, src);
    if (!r->started) { /* no wake-ups: reading still works, at librdkafka's pace */
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
    }
}

static void refill_stop(sl_source_t *src)
{
    sl_refill_t *r = &src->refill;
    if (!r->started)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    if (r->want)
        rd_kafka_topic_partition_list_destroy(r->want);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    r->started = 0;
}

void sl__source_refill(sl_source_t *src, size_t n, size_t bytes)
{
    sl_refill_t *r = &src->refill;
    if (!r->started || !src->q)
        return;
    if (n)
        r->avg_len = r->avg_len * 0.9 + ((double)bytes / (double)n) * 0.1;
    size_t len = rd_kafka_queue_length(src->q);
    if (len >= r->high || (double)len * r->avg_len >= r->high_bytes) {
        r->full = 1;
        return;
    }
    if (!r->full || len > r->low || (double)len * r->avg_len > r->high_bytes / 3)
        return;
    /* Drained after being full: the fetcher may be waiting for its timer. */
    r->full = 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int t = 0; t < src->ntopics; t++) {
        for (int p = 0; p < src->topics[t].nparts; p++) {
            if (src->topics[t].parts[p].assigned && !src->topics[t].parts[p].at_end)
                rd_kafka_topic_partition_list_add(l, src->topics[t].name, p)->offset =
                    RD_KAFKA_OFFSET_END;
        }
    }
    if (l->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    pthread_mutex_lock(&r->mu);
    if (r->want) /* the helper has not taken the last one yet: this one replaces it */
        rd_kafka_topic_partition_list_destroy(r->want);
    r->want = l;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* The held partitions of @p task, for a seek or a pause; NULL when it has none. */
static rd_kafka_topic_partition_list_t *task_parts(sl_source_t *src, int task, int held)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (int t = 0; t < src->ntopics; t++) {
        for (int p = 0; p < src->topics[t].nparts; p++) {
            sl_part_t *part = &src->topics[t].parts[p];
            if (!part->assigned || part->held != held || sl__source_task(src, p) != task)
                continue;
            if (!l)
                l = rd_kafka_topic_partition_list_new(4);
            rd_kafka_topic_partition_list_add(l, src->topics[t].name, p);
        }
    }
    return l;
}

/* librdkafka stops fetching a partition whose position fell out of its log (with
 * auto.offset.reset=error), and a seek of a stopped partition fails: it is assigned
 * again, at the offset. Eager assignment replaces the whole assignment, so the others are
 * assigned again too, each where it was read to (held ones paused again). */
static rd_kafka_resp_err_t reassign(sl_source_t *src, const rd_kafka_topic_partition_t *tp)
{
    rd_kafka_t *rk = src->rk;
    const char *proto = rd_kafka_rebalance_protocol(rk);
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, tp->topic, tp->partition)->offset = tp->offset;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (proto && !strcmp(proto, "COOPERATIVE")) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, one);
        if (!e)
            e = rd_kafka_incremental_assign(rk, one);
        if (e) {
            err = rd_kafka_error_code(e);
            rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(one);
        return err;
    }
    rd_kafka_topic_partition_list_t *cur = NULL, *held = rd_kafka_topic_partition_list_new(4);
    if (!(err = rd_kafka_assignment(rk, &cur))) {
        for (int i = 0; i < cur->cnt; i++) {
            rd_kafka_topic_partition_t *c = &cur->elems[i];
            int t = topic_index(src, c->topic);
            sl_part_t *p = t >= 0 ? part_of(src, t, c->partition) : NULL;
            if (!strcmp(c->topic, tp->topic) && c->partition == tp->partition)
                c->offset = tp->offset;
            else if (p && p->pos >= 0)
                c->offset = p->pos;
            if (p && p->held)
                rd_kafka_topic_partition_list_add(held, c->topic, c->partition);
        }
        err = rd_kafka_assign(rk, cur);
        if (!err && held->cnt)
            rd_kafka_pause_partitions(rk, held);
    }
    if (cur)
        rd_kafka_topic_partition_list_destroy(cur);
    rd_kafka_topic_partition_list_destroy(held);
    rd_kafka_topic_partition_list_destroy(one);
    return err;
}

sl_err_t sl__source_seek(sl_source_t *src, rd_kafka_topic_partition_list_t *l, char *errstr,
                         size_t errstr_size)
{
    rd_kafka_error_t *se = rd_kafka_seek_partitions(src->rk, l, 10000);
    if (se) {
        snprintf(errstr, errstr_size, "source: cannot move %d partition(s) to their positions: %s",
                 l->cnt, rd_kafka_error_string(se));
        rd_kafka_error_destroy(se);
        return SL_ERR_KAFKA;
    }
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        rd_kafka_resp_err_t err = tp->err;
        if (err == RD_KAFKA_RESP_ERR__STATE)
            err = reassign(src, tp);
        if (err) {
            snprintf(errstr, errstr_size, "source: cannot move %s[%d] to offset %" PRId64 ": %s",
                     tp->topic, tp->partition, tp->offset, rd_kafka_err2str(err));
            return SL_ERR_KAFKA;
        }
    }
    return SL_OK;
}

sl_err_t sl__source_release(sl_source_t *src, int task, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l = task_parts(src, task, 1);
    if (!l)
        return SL_OK;
    sl_err_t e = SL_OK;
    for (int i = 0; i < l->cnt && !e; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        int t = topic_index(src, tp->topic);
        sl_part_t *p = part_of(src, t, tp->partition);
        int64_t pos = stored_pos(src, tp->topic, tp->partition);
        if (pos == -2) {
            e = SL_ERR_STATE;
            break;
        }
        if (pos >= 0) {
            if ((pos = sl__source_data_loss(src, src->rk, tp->topic, tp->partition, pos)) < 0) {
                e = SL_ERR_KAFKA;
                break;
            }
            tp->offset = pos;
            sl_log(SL_LOG_INFO, "source", "reading %s[%d] from the stored position %" PRId64,
                   tp->topic, tp->partition, pos);
        } else {
            char how[160];
            tp->offset = starting_offset(src, src->rk, tp->topic, tp->partition, how, sizeof(how));
            sl_log(SL_LOG_INFO, "source", "reading %s[%d] from %s (no stored position)",
                   tp->topic, tp->partition, how);
        }
        p->pos = p->committed = pos;
        p->held = 0;
        p->at_end = 0;
    }
    if (!e) {
        char why[600];
        if ((e = sl__source_seek(src, l, why, sizeof(why))))
            src_fail(src, e, "task %d: %s", task, why);
        else
            rd_kafka_resume_partitions(src->rk, l);
    }
    if (e && src->fatal.err)
        snprintf(errstr, errstr_size, "%s", src->fatal.msg);
    else if (e)
        snprintf(errstr, errstr_size, "task %d: its partitions cannot be read", task);
    rd_kafka_topic_partition_list_destroy(l);
    return e;
}

void sl__source_hold(sl_source_t *src, int task)
{
    rd_kafka_topic_partition_list_t *l = task_parts(src, task, 0);
    if (!l)
        return;
    rd_kafka_pause_partitions(src->rk, l);
    for (int i = 0; i < l->cnt; i++) {
        int t = topic_index(src, l->elems[i].topic);
        sl_part_t *p = part_of(src, t, l->elems[i].partition);
        p->held = 1;
        p->pos = p->committed = -1;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

int sl__source_owns(sl_source_t *src, int task)
{
    if (!has_admin(src))
        return -1;
    const char *groups[] = {src->group};
    rd_kafka_queue_t *q = rd_kafka_queue_new(src->rk);
    rd_kafka_DescribeConsumerGroups(src->rk, groups, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    int owns = -1;
    const rd_kafka_ConsumerGroupDescription_t **g = NULL;
    size_t n = 0;
    if (ev && !rd_kafka_event_error(ev))
        g = rd_kafka_DescribeConsumerGroups_result_groups(
            rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    char *me = rd_kafka_memberid(src->rk);
    if (n == 1 && !rd_kafka_ConsumerGroupDescription_error(g[0]) &&
        rd_kafka_ConsumerGroupDescription_state(g[0]) == RD_KAFKA_CONSUMER_GROUP_STATE_STABLE) {
        owns = 0;
        for (size_t i = 0; i < rd_kafka_ConsumerGroupDescription_member_count(g[0]); i++) {
            const rd_kafka_MemberDescription_t *m =
                rd_kafka_ConsumerGroupDescription_member(g[0], i);
            const char *mid = rd_kafka_MemberDescription_consumer_id(m);
            if (!me || !mid || strcmp(mid, me))
                continue;
            const rd_kafka_topic_partition_list_t *a = rd_kafka_MemberAssignment_partitions(
                rd_kafka_MemberDescription_assignment(m));
            for (int j = 0; a && j < a->cnt; j++) {
                if (topic_index(src, a->elems[j].topic) >= 0 &&
                    sl__source_task(src, a->elems[j].partition) == task)
                    owns = 1;
            }
        }
    }
    if (me)
        rd_kafka_mem_free(src->rk, me);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return owns;
}

void sl__source_close(sl_source_t *src, int leave)
{
    src->closing = 1;
    refill_stop(src);
    /* Unsubscribing sends a static member's LeaveGroup (closing does not, KIP-345); its
     * revocation is served while the queue is polled. What arrives meanwhile is not read. */
    if (leave && src->rk && src->q && !rd_kafka_unsubscribe(src->rk)) {
        for (int64_t until = sl__now_ms() + 5000; sl__now_ms() < until;) {
            rd_kafka_message_t *m = rd_kafka_consume_queue(src->q, 100);
            if (m)
                rd_kafka_message_destroy(m);
            rd_kafka_topic_partition_list_t *a = NULL;
            int left = rd_kafka_assignment(src->rk, &a) || !a ? 0 : a->cnt;
            if (a)
                rd_kafka_topic_partition_list_destroy(a);
            if (!left)
                break;
        }
    }
    if (src->q)
        rd_kafka_queue_destroy(src->q);
    if (src->rk) {
        rd_kafka_consumer_close(src->rk);
        rd_kafka_destroy(src->rk);
    }
    for (int i = 0; i < src->ntopics; i++) {
        free(src->topics[i].name);
        free(src->topics[i].parts);
    }
    free(src->topics);
    if (src->has_re)
        regfree(&src->re);
    memset(src, 0, sizeof(*src));
}
