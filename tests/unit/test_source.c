/*
 * test_source.c - the Kafka source, against the embedded mock cluster: the consumer group
 * and static member id it joins with, partitions tracked per topic (and topics found by a
 * pattern), where assigned partitions start (stored positions first) and the end offsets
 * an available-now run stops at, records lost to retention or to a topic made again (stop,
 * or skip and count), and topics checked at open.
 *
 * Each test runs in a process of its own with a cluster of its own. In librdkafka 2.0.2
 * every call handed to the mock cluster's thread (making a topic, stopping the cluster)
 * can stall a second, so the tests are few, each checking one stage whole, and they let
 * the cluster make the topics they use when a client first asks for them (with its
 * default partition count, 4).
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <limits.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "sluice/sluice_dev.h"
#include "source/source.h"
#include "store.h"
#include "tk.h"
#include "util.h"

static sl_mock_t *mock;
static const char *bootstrap;
static char *dir;
static sl_conf_t *conf;
static sl_source_t src;
static sl_store_t *store;

static void setup(void)
{
    char err[512] = "";
    sl_log_configure(SL_LOG_ERROR, 0, NULL);
    cr_assert_eq(sl_mock_new(1, &mock, err, sizeof(err)), SL_OK, "%s", err);
    bootstrap = sl_mock_bootstraps(mock);
    dir = tk_tmpdir("sluice-src");
}

static void teardown(void)
{
    sl__source_close(&src, 0);
    sl__store_close(store);
    store = NULL;
    sl__conf_destroy(conf);
    conf = NULL;
    sl_mock_destroy(mock);
    mock = NULL;
    tk_rmrf(dir);
    free(dir);
}

TestSuite(source, .init = setup, .fini = teardown);

/* Parses job @p name reading @p source (the members of the source object) with the
 * Kafka properties @p kafka (more members of the kafka object, may be ""). */
static void parse_job(const char *name, const char *source, const char *kafka)
{
    char job[2048], err[2048] = "";
    snprintf(job, sizeof(job),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"%s},"
             " \"source\": {%s, \"format\": \"text\"},"
             " \"query\": {\"group_by\": \"value\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"output\": {\"sink\": \"memory\"}, \"state\": {\"dir\": \"st\"}}",
             name, bootstrap, kafka, source);
    sl__conf_destroy(conf);
    cr_assert_eq(sl__conf_parse(job, dir, "job.json", &conf, err, sizeof(err)), SL_OK, "%s", err);
}

/* Opens the source of the parsed job, naming @p state_dir; closes the one before. */
static void open_src(const char *state_dir)
{
    char err[1024] = "";
    sl__source_close(&src, 0);
    cr_assert_eq(sl__source_open(&src, conf->name, &conf->kafka, &conf->source, state_dir, err,
                                 sizeof(err)),
                 SL_OK, "%s", err);
}

/* A setting of the source's consumer, as librdkafka was given it. */
static const char *consumer_setting(const char *name)
{
    static char v[512];
    size_t n = sizeof(v);
    cr_assert_eq(rd_kafka_conf_get(rd_kafka_conf(src.rk), name, v, &n), RD_KAFKA_CONF_OK, "%s",
                 name);
    return v;
}

/* Records to produce: @p n values of @p size bytes to @p topic's @p partition. */
typedef struct batch {
    const char *topic;
    int partition;
    int n;
    size_t size;
} batch_t;

/* Produces every batch of @p b (ended by one without a topic) with one producer, so the
 * topics they make are asked for together. */
static void produce(const batch_t *b)
{
    rd_kafka_t *p = tk_producer(bootstrap);
    for (; b->topic; b++) {
        char *value = malloc(b->size + 1);
        memset(value, 'v', b->size);
        value[b->size] = 0;
        for (int i = 0; i < b->n; i++)
            tk_produce(p, b->topic, b->partition, NULL, value);
        free(value);
    }
    cr_assert_eq(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR, "records acknowledged");
    rd_kafka_destroy(p);
}

static void open_store(void)
{
    char path[600], err[512] = "";
    snprintf(path, sizeof(path), "%s/st", dir);
    cr_assert_eq(sl__store_open(path, 1, 0, &store, err, sizeof(err)), SL_OK, "%s", err);
}

static void store_pos(const char *topic, int partition, int64_t pos)
{
    char key[300], err[512] = "";
    uint8_t v[8];
    int kl = sl__source_pos_key(key, sizeof(key), 0, topic, partition);
    sl__be64_put(v, (uint64_t)pos);
    sl_store_batch_t *wb = sl__store_batch_new();
    sl__store_batch_put(wb, store, SL_CF_META, key, (size_t)kl, v, 8);
    cr_assert_eq(sl__store_write(store, wb, 1, err, sizeof(err)), SL_OK, "%s", err);
    sl__store_batch_destroy(wb);
}

/* A message of @p rkt's partition @p partition, as the consumer hands them over. */
static rd_kafka_message_t message(rd_kafka_topic_t *rkt, int32_t partition)
{
    return (rd_kafka_message_t){.rkt = rkt, .partition = partition};
}

Test(source, messages_find_their_partition_and_a_pattern_adds_the_topics_that_match)
{
    parse_job("j", "\"topics\": \"in\"", "");
    open_src("/s");
    rd_kafka_topic_t *in = rd_kafka_topic_new(src.rk, "in", NULL);
    rd_kafka_topic_t *other = rd_kafka_topic_new(src.rk, "other", NULL);
    cr_assert_eq(src.topics[0].nparts, 0, "partitions are known as they are seen");
    rd_kafka_message_t m = message(in, 4);
    sl_part_t *p4 = sl__source_part_lookup(&src, &m);
    cr_assert_eq(p4, &src.topics[0].parts[4]);
    cr_assert_eq(src.topics[0].nparts, 5);
    cr_assert_str_eq(src.last_name, "in");
    for (int i = 0; i < 5; i++) {
        const sl_part_t *p = &src.topics[0].parts[i];
        cr_assert(p->pos == -1 && p->committed == -1 && p->end == -1 && !p->assigned &&
                      !p->at_end && p->maxev == INT64_MIN,
                  "partition %d starts unknown", i);
    }
    m = message(in, 1);
    cr_assert_eq(sl__source_part(&src, &m), &src.topics[0].parts[1], "a known partition");
    cr_assert_eq(src.topics[0].nparts, 5, "not grown");
    m = message(in, -1);
    cr_assert_null(sl__source_part(&src, &m), "no partition");
    m = message(other, 0);
    cr_assert_null(sl__source_part(&src, &m), "not a source topic");
    cr_assert_str_eq(src.last_name, "other", "named for the caller's message");
    cr_assert_eq(src.ntopics, 1);
    m = message(in, 2);
    cr_assert_eq(sl__source_part(&src, &m), &src.topics[0].parts[2], "back to a source topic");
    rd_kafka_topic_destroy(in);
    rd_kafka_topic_destroy(other);

    parse_job("j", "\"pattern\": \"pv-.*\"", "");
    cr_assert_str_eq(conf->source.pattern, "^pv-.*");
    open_src("/s");
    cr_assert_eq(src.ntopics, 0);
    open_store();
    char err[1024] = "", want[600];
    cr_assert_eq(sl__source_start(&src, store, 1, err, sizeof(err)), SL_ERR_KAFKA);
    snprintf(want, sizeof(want), "source.pattern: no topic on %s matches ^pv-.*", bootstrap);
    cr_assert_str_eq(err, want, "an available-now run needs a topic that matches at start");
    rd_kafka_topic_t *a = rd_kafka_topic_new(src.rk, "pv-a", NULL);
    rd_kafka_topic_t *near = rd_kafka_topic_new(src.rk, "xpv-a", NULL);
    m = message(a, 2);
    sl_part_t *p = sl__source_part(&src, &m);
    cr_assert_not_null(p, "pv-a matches");
    cr_assert_eq(src.ntopics, 1);
    cr_assert_str_eq(src.topics[0].name, "pv-a");
    cr_assert_eq(src.topics[0].nparts, 3);
    m = message(near, 0);
    cr_assert_null(sl__source_part(&src, &m), "the pattern is anchored");
    m = message(a, 0);
    cr_assert_eq(sl__source_part(&src, &m), &src.topics[0].parts[0], "added once");
    cr_assert_eq(src.ntopics, 1);
    rd_kafka_topic_destroy(a);
    rd_kafka_topic_destroy(near);
}

/* What one partition of the run below read. */
typedef struct seen_part {
    const char *topic;
    int partition;
    int64_t first; /* the first offset read; -1 none */
    int eof;
} seen_part_t;

/* Consumes until each of @p parts reported its end; a record of another partition fails. */
static void read_to_end(seen_part_t *parts, int n)
{
    int64_t deadline = sl__now_ms() + 20000;
    for (int left = n; left > 0;) {
        cr_assert_lt(sl__now_ms(), deadline, "%d partition(s) not read to their end in time",
                     left);
        cr_assert_eq(src.fatal.err, SL_OK, "%s", src.fatal.msg);
        rd_kafka_message_t *msgs[64];
        ssize_t got = rd_kafka_consume_batch_queue(src.q, 200, msgs, 64);
        cr_assert_geq(got, 0);
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            const char *topic = rd_kafka_topic_name(m->rkt);
            seen_part_t *sp = NULL;
            for (int k = 0; k < n; k++) {
                if (!strcmp(parts[k].topic, topic) && parts[k].partition == m->partition)
                    sp = &parts[k];
            }
            sl_part_t *p = sl__source_part(&src, m);
            cr_assert(sp && p, "%s[%d] is not read by this job", topic, m->partition);
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                left -= !sp->eof;
                sp->eof = 1;
            } else {
                cr_assert_eq(m->err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_message_errstr(m));
                if (sp->first < 0)
                    sp->first = m->offset;
                p->pos = m->offset + 1; /* as the job does */
            }
            rd_kafka_message_destroy(m);
        }
    }
}

Test(source, available_now_reads_the_matching_topics_from_their_stored_positions_to_their_ends)
{
    /* Made by their first records: pv-a and pv-b match, xpv does not. */
    produce((const batch_t[]){{"pv-a", 0, 4, 10}, {"pv-b", 0, 3, 10}, {"xpv", 0, 1, 10}, {0}});
    open_store();
    store_pos("pv-a", 0, 2);
    /* The job's first run: starting_offsets apply where no position is stored, and only
     * there. */
    parse_job("j", "\"pattern\": \"pv-.*\", \"starting_offsets\": {\"pv-a\": {\"0\": 3},"
                   " \"pv-b\": {\"0\": 1}}",
              ", \"consumer\": {\"fetch.wait.max.ms\": 10}");
    open_src(dir);
    src.fresh = 1;
    char err[1024] = "";
    cr_assert_eq(sl__source_start(&src, store, 1, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(src.ntopics, 2, "the topics that match now: pv-a and pv-b, not xpv");
    int ia = !strcmp(src.topics[0].name, "pv-a") ? 0 : 1;
    sl_source_topic_t *a = &src.topics[ia], *b = &src.topics[1 - ia];
    cr_assert_str_eq(a->name, "pv-a");
    cr_assert_str_eq(b->name, "pv-b");
    cr_assert(a->nparts >= 2 && b->nparts >= 1, "every partition is known: %d, %d", a->nparts,
              b->nparts);
    cr_assert_eq(a->parts[0].end, 4, "the end offset at start");
    cr_assert_eq(a->parts[1].end, -1, "an empty partition has nothing to wait for");
    cr_assert_eq(b->parts[0].end, 3);
    cr_assert_eq(sl__source_caught_up(&src), 0);

    seen_part_t parts[64];
    int n = 0;
    for (int t = 0; t < 2; t++) {
        for (int p = 0; p < src.topics[t].nparts && n < 64; p++)
            parts[n++] = (seen_part_t){src.topics[t].name, p, -1, 0};
    }
    read_to_end(parts, n);
    for (int k = 0; k < n; k++) {
        int64_t want = !strcmp(parts[k].topic, "pv-a") && parts[k].partition == 0   ? 2
                       : !strcmp(parts[k].topic, "pv-b") && parts[k].partition == 0 ? 1
                                                                                    : -1;
        cr_assert_eq(parts[k].first, want,
                     "%s[%d]: first offset read %" PRId64 ", expected %" PRId64
                     " (pv-a[0]: stored; pv-b[0]: starting_offsets; others: no record)",
                     parts[k].topic, parts[k].partition, parts[k].first, want);
    }
    a = &src.topics[ia];
    cr_assert_eq(a->parts[0].committed, 2, "the stored position is the committed one");
    cr_assert(a->parts[0].assigned && a->parts[1].assigned);
    cr_assert_eq(sl__source_caught_up(&src), 1, "every partition reached its end");
}

Test(source, lost_records_stop_the_job_naming_the_offsets_or_are_skipped_and_counted)
{
    /* Partition 1: 5 records. Partition 0: 8 of 900 KB, of which the mock cluster keeps
     * about 5 MiB, dropping the oldest record batches as retention does. (The topic is
     * made by the first record.) */
    produce((const batch_t[]){{"in", 1, 5, 10}, {"in", 0, 8, 900000}, {0}});
    parse_job("j", "\"topics\": \"in\"", "");
    open_src("/s");
    cr_assert_eq(sl__source_data_loss(&src, src.rk, "in", 1, 3), 3, "within the log");
    cr_assert_eq(sl__source_data_loss(&src, src.rk, "in", 1, 5), 5, "at its end");
    cr_assert_eq(sl__source_data_loss(&src, src.rk, "in", 1, 0), 0, "at its start");
    cr_assert_eq(src.fatal.err, SL_OK, "%s", src.fatal.msg);

    /* A stored position past the end: the topic was deleted and made again. */
    cr_assert_eq(sl__source_data_loss(&src, src.rk, "in", 1, 9), -1);
    cr_assert_eq(src.fatal.err, SL_ERR_KAFKA);
    cr_assert_str_eq(src.fatal.msg,
                     "source in[1]: the stored position 9 is past the partition's end 5 (was "
                     "the topic deleted and made again?). The job stops rather than skip them "
                     "silently; set source.on_data_loss to \"skip\" to go on from offset 0");

    /* Records deleted before they were read. */
    int64_t lo, hi;
    cr_assert_eq(rd_kafka_query_watermark_offsets(src.rk, "in", 0, &lo, &hi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(hi, 8);
    cr_assert(lo > 1 && lo < hi, "the log start moved: %" PRId64, lo);
    sl__first_err_clear(&src.fatal);
    cr_assert_eq(sl__source_data_loss(&src, src.rk, "in", 0, 1), -1);
    char want[1024];
    snprintf(want, sizeof(want),
             "source in[0]: offsets 1 to %" PRId64 " were deleted (retention) before they were "
             "read: %" PRId64 " record(s) lost. The job stops rather than skip them silently; "
             "set source.on_data_loss to \"skip\" to go on from offset %" PRId64,
             lo - 1, lo - 1, lo);
    cr_assert_str_eq(src.fatal.msg, want);
    cr_assert_eq(src.lost, 0, "stopping counts nothing");

    /* on_data_loss "skip": from the log start, the deleted records counted. */
    sl__first_err_clear(&src.fatal);
    conf->source.data_loss_skip = 1;
    cr_assert_eq(sl__source_data_loss(&src, src.rk, "in", 0, 0), lo);
    cr_assert_eq(src.lost, (uint64_t)lo, "%" PRIu64 " lost", src.lost);
    cr_assert_eq(sl__source_data_loss(&src, src.rk, "in", 0, lo), lo, "nothing more lost");
    cr_assert_eq(src.lost, (uint64_t)lo);
    cr_assert_eq(sl__source_data_loss(&src, src.rk, "in", 1, 9), 0, "past the end: from 0");
    cr_assert_eq(src.lost, (uint64_t)lo, "no record is known to be lost past the end");
    cr_assert_eq(src.fatal.err, SL_OK, "%s", src.fatal.msg);
}

/* ---- opening: a broker that says a topic does not exist ---- */

/* The embedded cluster makes any topic a client asks about (librdkafka 2.0.2's mock takes
 * every metadata request as allowing it); librdkafka's mock cluster, used directly, can
 * answer "unknown topic" for one. Here "in" and "in2" are made when asked for. */
static rd_kafka_t *raw_rk;
static rd_kafka_mock_cluster_t *raw;

static void raw_setup(void)
{
    char err[512];
    sl_log_configure(SL_LOG_ERROR, 0, NULL);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "3", NULL, 0);
    raw_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    cr_assert_not_null(raw_rk, "%s", err);
    raw = rd_kafka_mock_cluster_new(raw_rk, 1);
    cr_assert_not_null(raw);
    rd_kafka_mock_topic_set_error(raw, "gone", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    bootstrap = rd_kafka_mock_cluster_bootstraps(raw);
    dir = tk_tmpdir("sluice-src");
}

static void raw_teardown(void)
{
    sl__source_close(&src, 0);
    sl__conf_destroy(conf);
    conf = NULL;
    rd_kafka_mock_cluster_destroy(raw);
    rd_kafka_destroy(raw_rk);
    tk_rmrf(dir);
    free(dir);
}

TestSuite(source_open, .init = raw_setup, .fini = raw_teardown);

Test(source_open, checks_the_topics_and_names_the_consumer_group_and_member)
{
    parse_job("j", "\"topics\": [\"in\", \"gone\"]", "");
    char err[1024] = "", want[1024];
    cr_assert_eq(sl__source_open(&src, conf->name, &conf->kafka, &conf->source, "/s", err,
                                 sizeof(err)),
                 SL_ERR_KAFKA);
    snprintf(want, sizeof(want), "source.topics: topic 'gone' does not exist on %s", bootstrap);
    cr_assert_str_eq(err, want);
    sl__source_close(&src, 0); /* what the failed open made is freed (LeakSanitizer) */
    sl_source_t zero;
    memset(&zero, 0, sizeof(zero));
    cr_assert(!memcmp(&src, &zero, sizeof(src)), "closed is zeroed: closing again does nothing");

    parse_job("pages", "\"topics\": \"in\"", "");
    open_src("/srv/a");
    cr_assert_str_eq(src.group, "sluice-pages");
    cr_assert_str_eq(consumer_setting("group.id"), "sluice-pages");
    cr_assert_str_eq(consumer_setting("group.instance.id"), src.instance);
    unsigned th, ih;
    char tail;
    cr_assert_eq(sscanf(src.instance, "sluice-pages-%8x-%8x%c", &th, &ih, &tail), 2,
                 "sluice-<job>-<topics hash>-<instance hash>: %s", src.instance);
    cr_assert_eq(strlen(src.instance), strlen("sluice-pages-") + 17, "%s", src.instance);
    cr_assert(!strncmp(src.instance, src.legacy_instance, strlen(src.legacy_instance)) &&
                  strlen(src.legacy_instance) == strlen("sluice-pages-") + 8,
              "the id sluice gave before starts it: %s, %s", src.legacy_instance, src.instance);
    /* What sluice fixes whatever the properties say. */
    cr_assert_str_eq(consumer_setting("enable.auto.commit"), "false");
    cr_assert_str_eq(consumer_setting("auto.offset.reset"), "error");
    cr_assert_str_eq(consumer_setting("enable.partition.eof"), "true");
    /* The mock cluster cannot describe groups: no other instance is looked for. */
    err[0] = 0;
    cr_assert_eq(sl__source_check_alone(&src, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(src.admin, 0, "the mock cluster answers no DescribeConfigs");

    char a[360], legacy[340];
    snprintf(a, sizeof(a), "%s", src.instance);
    snprintf(legacy, sizeof(legacy), "%s", src.legacy_instance);
    open_src("/srv/b");
    cr_assert_str_neq(src.instance, a, "another state directory is another member");
    cr_assert_str_eq(src.legacy_instance, legacy, "of the same topics");
    open_src("/srv/a");
    cr_assert_str_eq(src.instance, a, "the same state directory is the same member again");
    /* However its path is spelled, existing or not yet. */
    char *tmp = tk_tmpdir("sluice-src-dir"), cwd[PATH_MAX], abs[PATH_MAX + 8], was[PATH_MAX];
    cr_assert_not_null(getcwd(was, sizeof(was)));
    cr_assert_eq(chdir(tmp), 0);
    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    static const char *const spellings[] = {"st", "./st", "st/", "st//", NULL};
    for (int made = 0; made < 2; made++) {
        snprintf(abs, sizeof(abs), "%s/st", cwd);
        open_src(abs);
        snprintf(a, sizeof(a), "%s", src.instance);
        for (int i = 0; spellings[i]; i++) {
            open_src(spellings[i]);
            cr_assert_str_eq(src.instance, a, "'%s' and '%s' (%s)", spellings[i], abs,
                             made ? "existing" : "not made yet");
        }
        if (!made)
            cr_assert_eq(mkdir("st", 0755), 0);
    }
    cr_assert_eq(chdir(was), 0);
    tk_rmrf(tmp);
    free(tmp);

    parse_job("pages", "\"topics\": [\"in\", \"in2\"]", "");
    open_src("/srv/a");
    cr_assert_str_eq(src.group, "sluice-pages");
    cr_assert_str_neq(src.legacy_instance, legacy, "other topics: another member id");
    cr_assert_str_neq(src.instance, a);

    /* A group.id or group.instance.id of the job's Kafka properties wins. */
    parse_job("pages", "\"topics\": \"in\"",
              ", \"group.id\": \"mine\", \"consumer\": {\"group.instance.id\": \"me-1\"}");
    open_src("/srv/a");
    cr_assert_str_eq(src.group, "mine");
    cr_assert_str_eq(src.instance, "me-1");
    cr_assert_str_eq(consumer_setting("group.id"), "mine");
    cr_assert_str_eq(consumer_setting("group.instance.id"), "me-1");
}

/* ---- without a broker ---- */

Test(source_offline, position_keys_name_task_topic_and_partition)
{
    char key[64];
    cr_assert_eq(sl__source_pos_key(key, sizeof(key), 0, "in", 0), 12);
    cr_assert_str_eq(key, "t/0/pos/in/0");
    cr_assert_eq(sl__source_pos_key(key, sizeof(key), 117, "page.views-v2", 117), 27);
    cr_assert_str_eq(key, "t/117/pos/page.views-v2/117");
    cr_assert_eq(sl__source_pos_key(key, 10, 3, "in", 3), 12, "the length it needs, as snprintf");
    cr_assert_str_eq(key, "t/3/pos/i", "cut and terminated");
}

Test(source_offline, caught_up_once_every_partition_with_an_end_reached_it)
{
    sl_part_t a[2] = {{.pos = 0, .end = 10}, {.pos = -1, .end = -1}};
    sl_part_t b[1] = {{.pos = 4, .end = 5}};
    sl_source_topic_t topics[2] = {{.name = "a", .parts = a, .nparts = 2},
                                   {.name = "b", .parts = b, .nparts = 1}};
    sl_source_t s;
    memset(&s, 0, sizeof(s));
    s.topics = topics;
    s.ntopics = 2;
    cr_assert_eq(sl__source_caught_up(&s), 0);
    a[0].pos = 10;
    cr_assert_eq(sl__source_caught_up(&s), 0, "b[0] is one short");
    b[0].pos = 5;
    cr_assert_eq(sl__source_caught_up(&s), 1, "a[1] has no end to reach");
    b[0].pos = 7;
    cr_assert_eq(sl__source_caught_up(&s), 1, "past the end");
    s.ntopics = 0;
    cr_assert_eq(sl__source_caught_up(&s), 1, "nothing to read");
}

Test(source_offline, closing_a_zeroed_source_does_nothing)
{
    sl_source_t zero, s;
    memset(&zero, 0, sizeof(zero));
    memset(&s, 0, sizeof(s));
    sl__source_close(&s, 0);
    cr_assert(!memcmp(&s, &zero, sizeof(s)), "still zeroed");
}
