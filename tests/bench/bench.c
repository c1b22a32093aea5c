/*
 * bench.c - sluice next to the limit of its design, on the same topic in one run.
 *
 * It produces the workload once (Avro page views over 6 partitions), then runs one after
 * the other:
 *   raw consume    a minimal librdkafka consumer that reads and discards every record;
 *   sluice         count + sum + avg by page, update mode, to a topic, exactly-once,
 *                  available-now trigger;
 *   peers          the same aggregation in Kafka Streams (exactly_once_v2, RocksDB),
 *                  Spark Structured Streaming (availableNow) and Quix Streams
 *                  (exactly-once), each a process of its own (tests/bench/peers/run-peer).
 * Each run records records/s from its first record to its last output, CPU seconds and
 * peak resident memory (of this process during the run; of a peer's process tree), and
 * every output is checked
 * (each page's latest row equals its exact total) or its figures do not count. It prints
 * one table with ratios to raw consume and to sluice, then the sluice CLI's start-up time
 * and idle memory.
 *
 *   bench [--records N] [--pages K] [--peers kstreams,spark,quix]
 *         [--rounds R]                    (raw consume and sluice R times, alternately; the
 *                                          table shows the round of the median ratio, and
 *                                          the peers are set against sluice's median rate)
 *         [--key-variants K1,K2,...]      (sluice again on N records over Ki pages each,
 *                                          R rounds with raw consume of its topic)
 *         [--latency-secs S [--rate R]]   (R records/s for S seconds, 1 s trigger)
 *         [--restart-keys K]              (restart after kill -9 with K keys of state)
 *   (KAFKA_BOOTSTRAP_SERVERS names the broker; BENCH_DEBUG=1 shows sluice's debug log,
 *   with each batch's merge, commit and publish times)
 */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

typedef struct result {
    const char *name;
    double secs, cpu;
    uint64_t records;
    long rss_kb;
    int checked; /* 1 output checked and right, 0 not applicable, -1 wrong */
    uint64_t rows, key_bytes, val_bytes; /* the output read back */
} result_t;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench: %s: %s\n", what, why);
    exit(1);
}

/* The peak resident memory of this process since the last reset_peak(). */
static long peak_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmHWM:", 6))
            kb = strtol(line + 6, NULL, 10);
    }
    if (f)
        fclose(f);
    return kb;
}

/* Starts a new peak at the current resident memory (Linux: clear_refs 5), after giving
 * the memory that earlier phases freed (the producer's queue) back to the system. */
static void reset_peak(void)
{
    malloc_trim(0);
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f || fputs("5", f) < 0 || fclose(f) != 0)
        die("/proc/self/clear_refs", "cannot reset the peak resident memory");
}

static void admin(const char *bs, const char *topic, int parts, int create)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!rk)
        die("admin", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    if (create) {
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, 1, err, sizeof(err));
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        rd_kafka_NewTopic_destroy(nt);
    } else {
        rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
        rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
        rd_kafka_DeleteTopic_destroy(dt);
    }
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev || rd_kafka_event_error(ev))
        die(create ? "create topic" : "delete topic",
            ev ? rd_kafka_event_error_string(ev) : "timeout");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    if (create)
        sleep(1); /* leaders elected */
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die(path, "cannot write");
}

/* A new scratch directory (@p dir is a mkdtemp template) holding the page-view schema as
 * pageview.avsc, which the jobs name. */
static void scratch_dir(char *dir)
{
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    char path[300];
    snprintf(path, sizeof(path), "%s/pageview.avsc", dir);
    write_text(path, sl_gen_pageview_schema());
}

static void remove_dir(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", dir);
}

/* A run's input ("<what>-in-<pid>", 6 partitions) and output ("<what>-out-<pid>", one
 * partition) topics: made, or with @p create 0 deleted. */
static void run_topics(const char *bs, const char *what, char *in, char *out, int create)
{
    snprintf(in, 64, "%s-in-%d", what, (int)getpid());
    snprintf(out, 64, "%s-out-%d", what, (int)getpid());
    admin(bs, in, 6, create);
    admin(bs, out, 1, create);
}

static result_t raw_consume(const char *bs, const char *topic, uint64_t n)
{
    char err[512], group[128];
    snprintf(group, sizeof(group), "bench-raw-%d", (int)getpid());
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(c, "group.id", group, NULL, 0);
    rd_kafka_conf_set(c, "auto.offset.reset", "earliest", NULL, 0);
    rd_kafka_conf_set(c, "enable.auto.commit", "false", NULL, 0);
    /* The prefetch and fetch sizes sluice's source uses (lib/source/source.c): they read 7 to
     * 10% faster than librdkafka's defaults here, so the limit is measured with them. */
    rd_kafka_conf_set(c, "queued.min.messages", "100000", NULL, 0);
    rd_kafka_conf_set(c, "max.partition.fetch.bytes", "262144", NULL, 0);
    rd_kafka_conf_set(c, "fetch.max.bytes", "4194304", NULL, 0);
    if (getenv("BENCH_RAW_EOF"))
        rd_kafka_conf_set(c, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk)
        die("raw consumer", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *msgs[1000];
    uint64_t got = 0, bytes = 0;
    reset_peak();
    double t0 = 0, c0 = cpu_s();
    while (got < n) {
        ssize_t k = rd_kafka_consume_batch_queue(q, 1000, msgs, 1000);
        for (ssize_t i = 0; i < k; i++) {
            if (!msgs[i]->err) {
                if (!got++)
                    t0 = now_s();
                bytes += msgs[i]->len;
            }
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    result_t r = {.name = "raw librdkafka consume",
                  .secs = now_s() - t0,
                  .cpu = cpu_s() - c0,
                  .records = got,
                  .rss_kb = peak_kb()};
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    (void)bytes;
    return r;
}

/* A handle of @p topic for producer @p p, with the topic's metadata fetched now: librdkafka
 * fetches it lazily, and the first records sent would wait for it in the queue. */
static rd_kafka_topic_t *known_topic(rd_kafka_t *p, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p, topic, NULL);
    const struct rd_kafka_metadata *md;
    if (rkt && rd_kafka_metadata(p, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    return rkt;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        *(int *)opaque = 1;
}

/* Seconds to produce @p n messages (keys of @p klen bytes, values of @p vlen) to
 * @p topic in one Kafka transaction, from the first send to the commit: the least time
 * any system takes to publish n result rows exactly once through librdkafka. */
static double raw_produce(const char *bs, const char *topic, uint64_t n, size_t klen, size_t vlen)
{
    char err[512], tid[128];
    snprintf(tid, sizeof(tid), "bench-raw-produce-%d", (int)getpid());
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int failed = 0;
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(c, "transactional.id", tid, NULL, 0);
    rd_kafka_conf_set(c, "queue.buffering.max.messages", "1000000", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, &failed);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!p)
        die("raw producer", err);
    rd_kafka_error_t *e = rd_kafka_init_transactions(p, 30000);
    if (!e)
        e = rd_kafka_begin_transaction(p);
    if (e)
        die("raw producer", rd_kafka_error_string(e));
    rd_kafka_topic_t *rkt = known_topic(p, topic); /* its leader known before the clock */
    char *key = malloc(klen), *val = malloc(vlen);
    memset(key, 'k', klen);
    memset(val, 'v', vlen);
    double t0 = now_s();
    for (uint64_t i = 0; i < n;) {
        if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, val, vlen, key, klen, NULL) == 0)
            i++;
        else
            rd_kafka_poll(p, 10); /* the queue is full: let deliveries drain it */
    }
    if ((e = rd_kafka_commit_transaction(p, 60000)))
        die("raw producer", rd_kafka_error_string(e));
    double secs = now_s() - t0;
    if (failed)
        die("raw producer", "a message was not delivered");
    free(key);
    free(val);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(p);
    return secs;
}

/* A read_committed consumer of @p topic[0] from @p from, with partition-end events and
 * short fetch waits, committing nothing. */
static rd_kafka_t *reader(const char *bs, const char *topic, int64_t from)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(c, "group.id", "bench-reader", NULL, 0);
    rd_kafka_conf_set(c, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(c, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_conf_set(c, "fetch.wait.max.ms", "5", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk)
        die("reader", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = from;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

static int check_output(const char *bs, const char *topic, const sl_gen_spec_t *spec, uint64_t n,
                        result_t *r)
{
    /* Expected totals per page, then the latest row per page in the topic. */
    int64_t *count = calloc(spec->pages, sizeof(int64_t)),
            *sum = calloc(spec->pages, sizeof(int64_t));
    for (uint64_t i = 0; i < n; i++) {
        sl_pageview_t pv;
        sl_gen_pageview(spec, i, &pv);
        uint32_t p = (uint32_t)(int)strtol(pv.page + 3, NULL, 10);
        count[p]++;
        sum[p] += pv.bytes;
    }
    rd_kafka_t *rk = reader(bs, topic, RD_KAFKA_OFFSET_BEGINNING);
    int64_t *seen = calloc(spec->pages, sizeof(int64_t)),
            *seen_sum = calloc(spec->pages, sizeof(int64_t));
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 5000);
        if (!m)
            break;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            break;
        }
        if (!m->err) {
            r->rows++;
            r->key_bytes += m->key_len;
            r->val_bytes += m->len;
            json_t *v = json_loadb(m->payload, m->len, 0, NULL);
            const char *page = json_string_value(json_object_get(v, "page"));
            if (page) {
                uint32_t p = (uint32_t)(int)strtol(page + 3, NULL, 10);
                seen[p] = json_integer_value(json_object_get(v, "views"));
                seen_sum[p] = json_integer_value(json_object_get(v, "sum_bytes"));
            }
            json_decref(v);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    int ok = 1;
    for (uint32_t p = 0; p < spec->pages; p++)
        ok &= seen[p] == count[p] && seen_sum[p] == sum[p];
    free(count);
    free(sum);
    free(seen);
    free(seen_sum);
    return ok ? 1 : -1;
}

static result_t run_sluice(const char *bs, const char *in, const char *out,
                           const sl_gen_spec_t *spec, uint64_t n)
{
    char dir[] = "/tmp/sluice-bench-XXXXXX";
    scratch_dir(dir);
    /* Each run is a job of its own: a job's consumer group remembers its last instance (a
     * static member) for session.timeout.ms, and refuses another state directory meanwhile. */
    static int runs;
    char json[2048], err[4096];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s-%d\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\", \"as\": "
             "\"views\"}, {\"fn\": \"sum\", \"field\": \"bytes\"}, {\"fn\": \"avg\", \"field\": "
             "\"latency_ms\"}]},"
             " \"trigger\": {\"interval\": \"2s\", \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, ++runs, bs, in, out);
    sl_job_t *job;
    if (sl_job_new_from_json(json, dir, "bench", &job, err, sizeof(err)))
        die("job", err);
    reset_peak();
    double t0 = now_s(), c0 = cpu_s();
    if (sl_job_run(job, err, sizeof(err)))
        die("sluice", err);
    result_t r = {.name = "sluice (count+sum+avg by page, exactly-once)",
                  .secs = now_s() - t0,
                  .cpu = cpu_s() - c0,
                  .rss_kb = peak_kb()};
    sl_job_stats_t st;
    sl_job_stats(job, &st, sizeof(st));
    r.records = st.records_in;
    /* From the first record read to the last batch published, as for the raw consumer. */
    r.secs = (double)(st.last_commit_ms - st.first_record_ms) / 1000.0;
    sl_job_destroy(job);
    r.checked = check_output(bs, out, spec, n, &r);
    remove_dir(dir);
    return r;
}

/* CPU time and memory of a process tree (a peer is a script that starts a JVM or Python,
 * which may start a JVM of its own), sampled from /proc while it runs. */
typedef struct tree_usage {
    int pid[512];
    double cpu[512]; /* the last seen of each, so processes that ended still count */
    int n;
    long peak_kb; /* the largest sum of resident memory over the tree */
} tree_usage_t;

static void sample_tree(pid_t root, tree_usage_t *u)
{
    static int pids[32768], ppids[32768];
    static double cpus[32768];
    static long rss[32768];
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    long tick = sysconf(_SC_CLK_TCK), page_kb = sysconf(_SC_PAGESIZE) / 1024;
    while (d && (de = readdir(d)) && n < 32768) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = 0;
        char *p = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
        unsigned long ut, st;
        long r;
        int ppid;
        if (!p || sscanf(p + 2,
                         "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d "
                         "%*d %*d %*d %*u %*u %ld",
                         &ppid, &ut, &st, &r) != 4)
            continue;
        pids[n] = (int)strtol(de->d_name, NULL, 10);
        ppids[n] = ppid;
        cpus[n] = (double)(ut + st) / (double)tick;
        rss[n++] = r * page_kb;
    }
    if (d)
        closedir(d);
    /* The tree: the root, then every process whose parent is in it, until none is added. */
    static char in[32768];
    memset(in, 0, (size_t)n);
    long total = 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            if (in[i])
                continue;
            int mine = pids[i] == root;
            for (int j = 0; j < n && !mine; j++)
                mine = in[j] && ppids[i] == pids[j];
            if (mine) {
                in[i] = 1;
                changed = 1;
                total += rss[i];
                int k = 0;
                while (k < u->n && u->pid[k] != pids[i])
                    k++;
                if (k == u->n && u->n < 512)
                    u->pid[u->n++] = pids[i];
                if (k < 512)
                    u->cpu[k] = cpus[i];
            }
        }
    }
    if (total > u->peak_kb)
        u->peak_kb = total;
}

/* Deletes the topics a peer made for itself (their names hold its application id). */
static void delete_internal_topics(const char *bs, const char *app)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    const struct rd_kafka_metadata *md;
    if (!rk || rd_kafka_metadata(rk, 1, NULL, &md, 10000)) {
        if (rk)
            rd_kafka_destroy(rk);
        return;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strstr(md->topics[i].topic, app))
            admin(bs, md->topics[i].topic, 0, 0);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
}

/* Runs a peer as a child process and reads its result line {"records": N, "secs": S}. */
static result_t run_peer(const char *peer, const char *bs, const char *in, const char *out,
                         const char *schema, const sl_gen_spec_t *spec, uint64_t n)
{
    static char names[3][80];
    static int used;
    char *name = names[used++ % 3];
    snprintf(name, sizeof(names[0]), "%s (the same)",
             !strcmp(peer, "kstreams") ? "Kafka Streams 3.9"
             : !strcmp(peer, "spark")  ? "Spark Structured Streaming 4.2"
                                       : "Quix Streams 3");
    result_t r = {.name = name, .checked = -1};
    char nbuf[32], app[96];
    snprintf(nbuf, sizeof(nbuf), "%" PRIu64, n);
    snprintf(app, sizeof(app), "bench-%s-%d", peer, (int)getpid());
    FILE *f = tmpfile(); /* the peer's standard output */
    if (!f)
        die("tmpfile", "failed");
    fprintf(stderr, "bench: running %s\n", peer);
    fflush(stdout); /* or the child writes out what this process has buffered */
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fileno(f), 1);
        execl(BENCH_PEERS "/run-peer", "run-peer", peer, bs, in, out, schema, nbuf, app,
              (char *)NULL);
        _exit(127);
    }
    static tree_usage_t u;
    memset(&u, 0, sizeof(u));
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        sample_tree(pid, &u);
        usleep(100000);
    }
    rewind(f);
    char line[1024], last[1024] = "";
    while (fgets(line, sizeof(line), f))
        snprintf(last, sizeof(last), "%s", line);
    fclose(f);
    json_t *res = json_loads(last, 0, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) || !res) {
        fprintf(stderr, "bench: peer %s failed (status %d): %s\n", peer, status, last);
        json_decref(res);
        return r;
    }
    r.records = (uint64_t)json_integer_value(json_object_get(res, "records"));
    r.secs = json_number_value(json_object_get(res, "secs"));
    json_decref(res);
    for (int i = 0; i < u.n; i++)
        r.cpu += u.cpu[i];
    r.rss_kb = u.peak_kb;
    r.checked = check_output(bs, out, spec, n, &r);
    delete_internal_topics(bs, app);
    return r;
}

/* ---- latency at a steady rate ---- */

typedef struct job_run {
    sl_job_t *job;
    char err[1024];
    sl_err_t rc;
} job_run_t;

static void *run_job_thread(void *opaque)
{
    job_run_t *r = opaque;
    r->rc = sl_job_run(r->job, r->err, sizeof(r->err));
    return NULL;
}

/* "2026-11-25T09:00:00.123Z", as the JSON output writes a timestamp, to epoch ms. */
static int parse_ts(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int frac;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &frac) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

typedef struct lat {
    const char *bs, *out;
    volatile int stop;
    int64_t *hist; /* records by latency in ms (the last bucket: that or more) */
    int64_t max_ms;
    uint64_t rows;
} lat_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the output (read_committed) as it comes: a row is a millisecond of produce time
 * (window_start) and how many of its records are counted so far; those added since the
 * row before arrived after (now - window_start) ms. */
static void *read_results(void *opaque)
{
    lat_t *l = opaque;
    rd_kafka_t *rk = reader(l->bs, l->out, RD_KAFKA_OFFSET_BEGINNING);
    json_t *seen = json_object(); /* window start -> count so far */
    while (!l->stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        int64_t now = wall_ms();
        json_t *v = m->err ? NULL : json_loadb(m->payload, m->len, 0, NULL);
        const char *ws = json_string_value(json_object_get(v, "window_start"));
        int64_t count = json_integer_value(json_object_get(v, "count")), start;
        if (ws && parse_ts(ws, &start) == 0) {
            int64_t before = json_integer_value(json_object_get(seen, ws));
            json_object_set_new(seen, ws, json_integer(count));
            int64_t ms = now - start;
            if (ms < 0)
                ms = 0;
            if (ms > l->max_ms)
                ms = l->max_ms;
            l->hist[ms] += count - before;
            l->rows++;
        }
        json_decref(v);
        rd_kafka_message_destroy(m);
    }
    json_decref(seen);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

static int64_t percentile(const lat_t *l, double q, int64_t total)
{
    int64_t want = (int64_t)(q * (double)total), acc = 0;
    for (int64_t ms = 0; ms <= l->max_ms; ms++) {
        acc += l->hist[ms];
        if (acc > want)
            return ms;
    }
    return l->max_ms;
}

/* sluice under a steady @p rate records/s for @p secs seconds, trigger 1 s, exactly-once:
 * the time from each record's production to its count being readable in the output. */
static void latency(const char *bs, int rate, int secs)
{
    char in[64], out[64], dir[] = "/tmp/sluice-bench-lat-XXXXXX", err[4096];
    run_topics(bs, "bench-lat", in, out, 1);
    scratch_dir(dir);
    /* One-millisecond windows of produce time: a row says when its records were made. */
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\","
             "              \"starting_offsets\": \"latest\"},"
             " \"query\": {\"window\": {\"time\": \"ts_ms\", \"size\": \"1ms\"},"
             "             \"watermark\": {\"field\": \"ts_ms\", \"delay\": \"10s\"},"
             "             \"group_by\": [], \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"interval\": \"1s\"},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, bs, in, out);
    sl_job_t *job;
    if (sl_job_new_from_json(json, dir, "latency", &job, err, sizeof(err)))
        die("latency job", err);
    lat_t l = {.bs = bs, .out = out, .max_ms = 60000};
    l.hist = calloc((size_t)l.max_ms + 1, sizeof(int64_t));
    pthread_t jt, rt;
    job_run_t run = {.job = job};
    pthread_create(&jt, NULL, run_job_thread, &run);
    pthread_create(&rt, NULL, read_results, &l);
    sleep(6); /* the consumer group forms */
    /* Produce at the rate, a millisecond's records at a time. */
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(pc, "linger.ms", "5", NULL, 0);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    /* Learn the topic's partitions before the clock starts: librdkafka fetches a new
     * producer's topic metadata lazily, and the first second of records would wait for
     * it in the producer's queue, their times already taken. */
    rd_kafka_topic_destroy(known_topic(p, in));
    sl_gen_spec_t spec = {.seed = 7, .pages = 1000, .users = 1000};
    uint64_t i = 0, total = (uint64_t)rate * (uint64_t)secs;
    double t0 = now_s();
    while (i < total) {
        uint64_t due = (uint64_t)((now_s() - t0) * rate);
        if (due > total)
            due = total;
        for (; i < due; i++) {
            sl_pageview_t pv;
            uint8_t buf[256];
            sl_gen_pageview(&spec, i, &pv);
            pv.ts_ms = wall_ms();
            size_t n = sl_gen_pageview_avro(&pv, buf, sizeof(buf));
            while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(in), RD_KAFKA_V_PARTITION((int)(i % 6)),
                                     RD_KAFKA_V_VALUE(buf, n),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 1);
        }
        rd_kafka_poll(p, 0);
        usleep(1000);
    }
    double produced_s = now_s() - t0;
    rd_kafka_flush(p, 30000);
    rd_kafka_destroy(p);
    sleep(4); /* the last batches */
    sl_job_stop(job);
    pthread_join(jt, NULL);
    l.stop = 1;
    pthread_join(rt, NULL);
    int64_t counted = 0;
    for (int64_t ms = 0; ms <= l.max_ms; ms++)
        counted += l.hist[ms];
    printf(
        "\nlatency, sluice at %.0f records/s for %d s (trigger 1 s, exactly-once, read_committed):"
        " p50 %" PRId64 " ms, p99 %" PRId64 " ms, max %" PRId64 " ms over %" PRId64 " of %" PRIu64
        " records%s\n",
        (double)total / produced_s, secs, percentile(&l, 0.50, counted),
        percentile(&l, 0.99, counted), percentile(&l, 1.0 - 1e-12, counted), counted, total,
        run.rc ? " (the job failed)" : "");
    if (run.rc)
        fprintf(stderr, "bench: latency job: %s\n", run.err);
    free(l.hist);
    sl_job_destroy(job);
    run_topics(bs, "bench-lat", in, out, 0);
    remove_dir(dir);
}

/* ---- the same run with other numbers of keys ---- */

/* The index of a median of @p v[0, n). */
static int median_of(const double *v, int n)
{
    int med = 0;
    for (int r = 0; r < n; r++) {
        int below = 0, above = 0;
        for (int q = 0; q < n; q++) {
            below += v[q] < v[r];
            above += v[q] > v[r];
        }
        if (below <= n / 2 && above <= n / 2)
            med = r;
    }
    return med;
}

/* Raw consume of @p in and sluice on it (count, sum, avg by page into @p out; from the
 * second round on into an output topic of its own), @p rounds times alternately, so that
 * a slow spell of this shared machine touches both; their ratios into @p ratios. The round
 * of the median ratio; *ok is cleared when a run's output was wrong or short. */
static int alternate(const char *bs, const char *in, const char *out, const sl_gen_spec_t *spec,
                     uint64_t n, int rounds, result_t *raws, result_t *mines, double *ratios,
                     int *ok)
{
    for (int r = 0; r < rounds; r++) {
        char rout[96];
        snprintf(rout, sizeof(rout), "%s-r%d", out, r);
        if (r)
            admin(bs, rout, 1, 1);
        raws[r] = raw_consume(bs, in, n);
        mines[r] = run_sluice(bs, in, r ? rout : out, spec, n);
        if (r)
            admin(bs, rout, 0, 0);
        ratios[r] =
            ((double)mines[r].records / mines[r].secs) / ((double)raws[r].records / raws[r].secs);
        *ok &= mines[r].checked == 1 && mines[r].records == n;
    }
    return median_of(ratios, rounds);
}

/* sluice on @p n records over each page count in @p list (a comma-separated list), in
 * @p rounds alternating with raw consume of its topic (the round of the median ratio
 * stands), each ratio to raw consume set beside @p base_ratio, sluice's with @p base_pages
 * pages: rates taken minutes apart on this machine compare only through their own raw
 * consume. */
static int key_variants(const char *bs, const char *list, uint64_t n, uint32_t base_pages,
                        double base_ratio, int rounds)
{
    int ok = 1;
    printf("\nsluice with other numbers of keys (%" PRIu64 " records each, %d round(s) with "
           "raw consume of the same topic; memory is the peak RSS of this process during the "
           "run; the bound is raw consume plus publishing one row a distinct key, of sluice's "
           "sizes, in one transaction with a bare producer):\n\n",
           n, rounds);
    printf("| pages (keys) | distinct keys | raw consume records/s | records/s | ratio to raw | "
           "that over %u pages' | peak RSS MiB | output | rows published | bound records/s | "
           "bound's ratio to raw |\n",
           base_pages);
    printf("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n");
    char *copy = strdup(list);
    for (char *save = NULL, *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        sl_gen_spec_t spec = {
            .seed = 2026, .pages = (uint32_t)strtoul(k, NULL, 10), .users = 100000};
        char in[64], out[64], err[512];
        run_topics(bs, "bench-keys", in, out, 1);
        if (sl_gen_produce(bs, NULL, in, 6, &spec, 0, n, err, sizeof(err)))
            die("produce", err);
        uint8_t *seen = calloc(spec.pages, 1);
        uint64_t distinct = 0;
        for (uint64_t i = 0; i < n; i++) {
            sl_pageview_t pv;
            sl_gen_pageview(&spec, i, &pv);
            uint32_t p = (uint32_t)(int)strtol(pv.page + 3, NULL, 10);
            distinct += !seen[p];
            seen[p] = 1;
        }
        free(seen);
        result_t raws[9], mines[9];
        double ratios[9];
        int med = alternate(bs, in, out, &spec, n, rounds, raws, mines, ratios, &ok);
        const result_t *r = &mines[med];
        double rate = (double)r->records / r->secs;
        double raw_rate = (double)raws[med].records / raws[med].secs;
        /* The bound: reading the records as raw consume did, then publishing one row a
         * distinct key (the least an update-mode query must publish) of sluice's sizes
         * in one transaction, with no work between. */
        double bound = 0;
        if (r->rows) {
            char fin[64], fout[64];
            run_topics(bs, "bench-bound", fin, fout, 1);
            double pub = raw_produce(bs, fout, distinct, (size_t)(r->key_bytes / r->rows),
                                     (size_t)(r->val_bytes / r->rows));
            run_topics(bs, "bench-bound", fin, fout, 0);
            bound = (double)n / ((double)n / raw_rate + pub);
        }
        printf("| %u | %" PRIu64 " | %.0f | %.0f | %.2f | %.2f | %.1f | %s | %" PRIu64
               " | %.0f | %.2f |\n",
               spec.pages, distinct, raw_rate, rate, ratios[med], ratios[med] / base_ratio,
               (double)r->rss_kb / 1024.0, r->checked == 1 ? "exact" : "WRONG", r->rows, bound,
               bound / raw_rate);
        fflush(stdout);
        run_topics(bs, "bench-keys", in, out, 0);
    }
    free(copy);
    return ok;
}

/* ---- restart ---- */

static pid_t spawn_cli(const char *job);

typedef struct watch {
    const char *bs, *topic;
    int64_t from;
    double at;
    volatile int ready;
} watch_t;

/* Notes when the first record past w->from of w->topic[0] is readable (read_committed). */
static void *first_new_output(void *opaque)
{
    watch_t *w = opaque;
    rd_kafka_t *rk = reader(w->bs, w->topic, w->from);
    w->ready = 1;
    w->at = -1;
    double deadline = now_s() + 600;
    while (w->at < 0 && now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m && !m->err)
            w->at = now_s();
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

/* A job with @p keys keys of state is killed with SIGKILL while it runs; how long from
 * the new process's start until its first batch is published (read_committed). */
static void restart_time(const char *bs, uint64_t keys)
{
    char in[64], out[64], dir[] = "/tmp/sluice-bench-restart-XXXXXX", err[512];
    char json[2048], job[400];
    run_topics(bs, "bench-rs", in, out, 1);
    scratch_dir(dir);
    /* The state: one key per record (as many pages as records). */
    sl_gen_spec_t spec = {.seed = 3, .pages = (uint32_t)keys, .users = 1000};
    double t0 = now_s();
    if (sl_gen_produce(bs, NULL, in, 6, &spec, 0, keys, err, sizeof(err)))
        die("produce", err);
    for (int streaming = 0; streaming < 2; streaming++) {
        snprintf(json, sizeof(json),
                 "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
                 " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
                 " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
                 " \"trigger\": {\"interval\": \"%s\"%s}, \"output\": {\"sink\": \"kafka\", "
                 "\"topic\": \"%s\"}, \"state\": {\"dir\": \"state\"}}",
                 out, bs, in, streaming ? "500ms" : "2s",
                 streaming ? "" : ", \"available_now\": true", out);
        snprintf(job, sizeof(job), "%s/job-%d.json", dir, streaming);
        write_text(job, json);
    }
    snprintf(job, sizeof(job), "%s/job-0.json", dir);
    int status;
    waitpid(spawn_cli(job), &status, 0);
    double build_s = now_s() - t0;
    /* Running on it, then killed. */
    snprintf(job, sizeof(job), "%s/job-1.json", dir);
    pid_t pid = spawn_cli(job);
    sleep(3);
    if (sl_gen_produce(bs, NULL, in, 6, &spec, keys, 1000, err, sizeof(err)))
        die("produce", err);
    sleep(2);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    /* New records wait; the restart must reconcile its outbox, rejoin, and publish. */
    if (sl_gen_produce(bs, NULL, in, 6, &spec, keys + 1000, 1000, err, sizeof(err)))
        die("produce", err);
    int64_t lo, hi;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(c, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_t *q = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    rd_kafka_query_watermark_offsets(q, out, 0, &lo, &hi, 10000);
    rd_kafka_destroy(q);
    watch_t w = {.bs = bs, .topic = out, .from = hi};
    pthread_t wt;
    pthread_create(&wt, NULL, first_new_output, &w);
    while (!w.ready)
        usleep(1000);
    sleep(1); /* the watcher has fetched once */
    double start = now_s();
    pid = spawn_cli(job);
    pthread_join(wt, NULL);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    printf("\nrestart, %" PRIu64 " keys of state (built in %.0f s), killed with SIGKILL while "
           "running: start to its first batch readable in the output %s%.2f s\n",
           keys, build_s, w.at < 0 ? "(none within 600 s) " : "", w.at < 0 ? 600.0 : w.at - start);
    run_topics(bs, "bench-rs", in, out, 0);
    remove_dir(dir);
}

/* Writes a job on @p topic for the sluice CLI into @p dir; returns its path (static). */
static const char *cli_job(const char *dir, const char *bs, const char *topic, int available_now)
{
    static char path[400];
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s-%d\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"available_now\": %s}, \"output\": {\"sink\": \"console\"},"
             " \"state\": {\"dir\": \"state-%d\"}}",
             topic, available_now, bs, topic, available_now ? "true" : "false", available_now);
    snprintf(path, sizeof(path), "%s/job-%d.json", dir, available_now);
    write_text(path, json);
    return path;
}

static pid_t spawn_cli(const char *job)
{
    fflush(stdout); /* or the child writes out what this process has buffered */
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(126);
        execl(BENCH_SLUICE, "sluice", "run", job, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The sluice CLI on a topic of one record: from exec to exit with an available-now
 * trigger (start-up, one batch, shut-down), and the resident memory of a job idle on it. */
static void cli_figures(const char *bs)
{
    char topic[64], dir[] = "/tmp/sluice-bench-cli-XXXXXX", err[512];
    snprintf(topic, sizeof(topic), "bench-cli-%d", (int)getpid());
    scratch_dir(dir);
    admin(bs, topic, 1, 1);
    sl_gen_spec_t spec = {.seed = 1, .pages = 10, .users = 10};
    if (sl_gen_produce(bs, NULL, topic, 1, &spec, 0, 1, err, sizeof(err)))
        die("produce", err);
    double t0 = now_s();
    int status;
    waitpid(spawn_cli(cli_job(dir, bs, topic, 1)), &status, 0);
    double startup = now_s() - t0;
    pid_t pid = spawn_cli(cli_job(dir, bs, topic, 0));
    sleep(5);
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    long idle_kb = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6))
            idle_kb = strtol(line + 6, NULL, 10);
    }
    if (f)
        fclose(f);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    admin(bs, topic, 0, 0);
    remove_dir(dir);
    printf("\nsluice CLI, a topic of one record: exec to exit with available-now (start-up, one "
           "batch, shut-down) %.2f s; resident memory of a job idle on it %.1f MiB\n",
           startup, (double)idle_kb / 1024.0);
}

int main(int argc, char **argv)
{
    uint64_t n = 5000000;
    uint32_t pages = 100000;
    const char *peers = "";
    int lat_secs = 0, lat_rate = 100000;
    uint64_t restart_keys = 0;
    const char *variants = NULL;
    int rounds = 1;
    const char *json_path = NULL;
    static const struct option opts[] = {{"records", required_argument, NULL, 'n'},
                                         {"json", required_argument, NULL, 'J'},
                                         {"key-variants", required_argument, NULL, 'V'},
                                         {"pages", required_argument, NULL, 'p'},
                                         {"peers", required_argument, NULL, 'P'},
                                         {"latency-secs", required_argument, NULL, 'L'},
                                         {"rate", required_argument, NULL, 'R'},
                                         {"restart-keys", required_argument, NULL, 'K'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:p:", opts, NULL)) != -1) {
        if (ch == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (ch == 'p')
            pages = (uint32_t)strtoul(optarg, NULL, 10);
        else if (ch == 'P')
            peers = optarg;
        else if (ch == 'L')
            lat_secs = (int)strtol(optarg, NULL, 10);
        else if (ch == 'R')
            lat_rate = (int)strtol(optarg, NULL, 10);
        else if (ch == 'K')
            restart_keys = strtoull(optarg, NULL, 10);
        else if (ch == 'V')
            variants = *optarg ? optarg : NULL;
        else if (ch == 'r')
            rounds = (int)strtol(optarg, NULL, 10);
        else if (ch == 'J')
            json_path = optarg;
        else
            return 2;
    }
    const char *bs = getenv("KAFKA_BOOTSTRAP_SERVERS");
    if (!bs)
        die("KAFKA_BOOTSTRAP_SERVERS", "not set (tests/bench/run starts a broker)");
    sl_log_configure(getenv("BENCH_DEBUG") ? SL_LOG_DEBUG : SL_LOG_WARN, 0, NULL);
    char in[64], out[64];
    run_topics(bs, "bench", in, out, 1);
    sl_gen_spec_t spec = {.seed = 2026, .pages = pages, .users = 100000};
    char err[512];
    double t0 = now_s();
    if (sl_gen_produce(bs, NULL, in, 6, &spec, 0, n, err, sizeof(err)))
        die("produce", err);
    fprintf(stderr, "bench: produced %" PRIu64 " records (%u pages) in %.1f s\n", n, pages,
            now_s() - t0);

    /* Raw consume and sluice take turns, so that a slow spell of this shared machine
     * touches both; the round of the median ratio stands for them in the table. */
    if (rounds < 1 || rounds > 9)
        die("--rounds", "must be 1 to 9");
    result_t raws[9], mines[9];
    double ratios[9];
    int ok = 1;
    int med = alternate(bs, in, out, &spec, n, rounds, raws, mines, ratios, &ok);
    result_t res[5];
    int nres = 0;
    res[nres++] = raws[med];
    res[nres++] = mines[med];
    char sdir[] = "/tmp/sluice-bench-peers-XXXXXX", schema[300];
    scratch_dir(sdir);
    snprintf(schema, sizeof(schema), "%s/pageview.avsc", sdir);
    char peer_outs[3][96];
    int npeer_outs = 0;
    char *list = strdup(peers);
    for (char *save = NULL, *peer = strtok_r(list, ",", &save); peer && nres < 5;
         peer = strtok_r(NULL, ",", &save)) {
        char *pout = peer_outs[npeer_outs++];
        snprintf(pout, sizeof(peer_outs[0]), "bench-out-%s-%d", peer, (int)getpid());
        admin(bs, pout, 1, 1);
        res[nres++] = run_peer(peer, bs, in, pout, schema, &spec, n);
    }
    free(list);
    remove_dir(sdir);

    printf("\n%" PRIu64 " Avro page views, 6 partitions, %u pages; librdkafka %s\n\n", n, pages,
           rd_kafka_version_str());
    printf("| run | records/s | ratio to raw | sluice's ratio to it | CPU s | peak RSS MiB | "
           "output |\n");
    printf("|---|---:|---:|---:|---:|---:|---|\n");
    double raw = (double)res[0].records / res[0].secs;
    double mine = (double)res[1].records / res[1].secs;
    /* The peers ran once each, at whatever speed the machine had then: they are set
     * against sluice's median rate over its rounds, not the rate of one round. */
    double mine_rates[9];
    for (int r = 0; r < rounds; r++)
        mine_rates[r] = (double)mines[r].records / mines[r].secs;
    double mine_med = mine_rates[median_of(mine_rates, rounds)];
    for (int i = 0; i < nres; i++) {
        double rate = res[i].secs > 0 ? (double)res[i].records / res[i].secs : 0;
        char vs[32] = "";
        if (i >= 2 && rate > 0)
            snprintf(vs, sizeof(vs), "%.1fx", mine_med / rate);
        printf("| %s | %.0f | %.2f | %s | %.2f | %.1f | %s |\n", res[i].name, rate, rate / raw, vs,
               res[i].cpu, (double)res[i].rss_kb / 1024.0,
               res[i].checked == 1  ? "exact"
               : res[i].checked < 0 ? "WRONG"
                                    : "n/a");
        ok &= res[i].checked >= 0 && res[i].records == n;
    }
    if (json_path) {
        /* The main table as data, for the chart (tests/bench/chart.py) and docs. */
        json_t *doc = json_pack("{s:I,s:i,s:i,s:s,s:f,s:[]}", "records", (json_int_t)n, "pages",
                                (int)pages, "rounds", rounds, "librdkafka",
                                rd_kafka_version_str(), "sluice_median", mine_med, "runs");
        json_t *runs = json_object_get(doc, "runs");
        for (int i = 0; i < nres; i++) {
            double rate = res[i].secs > 0 ? (double)res[i].records / res[i].secs : 0;
            json_array_append_new(
                runs, json_pack("{s:s,s:f,s:f,s:f,s:s}", "name", res[i].name, "records_per_s",
                                rate, "cpu_s", res[i].cpu, "peak_rss_mib",
                                (double)res[i].rss_kb / 1024.0, "output",
                                res[i].checked == 1  ? "exact"
                                : res[i].checked < 0 ? "wrong"
                                                     : "n/a"));
        }
        if (json_dump_file(doc, json_path, JSON_INDENT(2)))
            die("--json", "cannot write the file");
        json_decref(doc);
    }
    if (rounds > 1) {
        printf("\nrounds (raw consume, sluice records/s, ratio; the table shows round %d):",
               med + 1);
        for (int r = 0; r < rounds; r++)
            printf("%s %.0f, %.0f, %.2f", r ? ";" : "", (double)raws[r].records / raws[r].secs,
                   (double)mines[r].records / mines[r].secs, ratios[r]);
        printf("\nsluice's median over the rounds, which the peers' ratios use: %.0f records/s\n",
               mine_med);
    }
    run_topics(bs, "bench", in, out, 0);
    for (int i = 0; i < npeer_outs; i++)
        admin(bs, peer_outs[i], 0, 0);
    if (variants)
        ok &= key_variants(bs, variants, n, pages, mine / raw, rounds);
    cli_figures(bs);
    if (lat_secs > 0)
        latency(bs, lat_rate, lat_secs);
    if (restart_keys)
        restart_time(bs, restart_keys);
    if (!ok) {
        fprintf(stderr,
                "bench: a run's output was wrong or incomplete; the figures do not count\n");
        return 1;
    }
    return 0;
}
