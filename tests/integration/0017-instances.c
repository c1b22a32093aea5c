/*
 * 0017-instances.c - several instances of one job, its state kept in its changelog.
 *
 * Page views keyed by page, each page in one partition (co-partitioned input, by_page);
 * the job counts and sums bytes by page with source.co_partitioned, so it has a task per
 * partition and its instances split them through their consumer group. Each test runs
 * `sluice run` processes with state directories of their own, moves tasks between them
 * (a kill -9 and a replacement with an empty state directory, scaling out and in while
 * input flows, a paused instance whose tasks are taken over), and checks the output as
 * Kafka Streams' EOS test does (tk_eos.h): every row a prefix aggregate of its page's
 * input, counts strictly increasing, each page ending at its total, no row id twice, no
 * transaction left open. The consumer group's committed offsets reach the input's end:
 * Kafka's lag tools see the job's progress. Then a state directory lost between runs,
 * in update and in append mode, with the input deleted (DeleteRecords) before the
 * restart: the changelog holds everything, so nothing is lost or emitted twice.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"
#include "tk_eos.h"

#define PARTS 12

static const sl_gen_spec_t SPEC = {.seed = 1717, .pages = TK_EOS_PAGES, .users = 1000, .by_page = 1};

#define INSTANCES 8

typedef struct cluster {
    const char *bs;
    char in[128], out[128], name[160], group[200];
    char *dir;
    int pid[INSTANCES];
    char job[INSTANCES][600], log[INSTANCES][600];
} cluster_t;

/* What a test changes in the job: more of its query, its output mode, available-now. */
typedef struct variant {
    const char *query; /* more members of "query" (NULL: none) */
    const char *mode;  /* NULL: update */
    int available_now;
} variant_t;

/* The job of instance @p i: its own state directory; a session of 6 s, so that a dead
 * instance's tasks move soon. */
static void write_job(cluster_t *c, int i, const variant_t *v)
{
    char json[4096], file[64];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\","
             "   \"consumer\": {\"session.timeout.ms\": 6000, \"heartbeat.interval.ms\": 1000}},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\","
             "   \"co_partitioned\": true},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"},"
             "   {\"fn\": \"sum\", \"field\": \"bytes\"}]%s},"
             " \"trigger\": {\"interval\": \"400ms\", \"max_records\": 30000,"
             "   \"available_now\": %s},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\", \"mode\": \"%s\"},"
             " \"state\": {\"dir\": \"state-%d\"}}",
             c->name, c->bs, c->in, v && v->query ? v->query : "",
             v && v->available_now ? "true" : "false", c->out, v && v->mode ? v->mode : "update",
             i);
    snprintf(file, sizeof(file), "job-%d.json", i);
    tk_write_file(c->dir, file, json);
    snprintf(c->job[i], sizeof(c->job[i]), "%s/%s", c->dir, file);
    snprintf(c->log[i], sizeof(c->log[i]), "%s/sluice-%d.log", c->dir, i);
}

static void make_cluster(cluster_t *c, const char *tag)
{
    memset(c, 0, sizeof(*c));
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    c->bs = tk_bootstrap();
    tk_in_out_topics(c->bs, tag, PARTS, 3, c->in, c->out, sizeof(c->in));
    snprintf(c->name, sizeof(c->name), "%s", c->out);
    snprintf(c->group, sizeof(c->group), "sluice-%s", c->name);
    c->dir = tk_job_dir(tag);
    for (int i = 0; i < INSTANCES; i++)
        write_job(c, i, NULL);
}

static void start(cluster_t *c, int i)
{
    const char *argv[] = {"run", c->job[i], NULL};
    c->pid[i] = tk_spawn_cli(argv, NULL, c->log[i]);
    cr_log_info("instance %d started (pid %d)", i, c->pid[i]);
}

/* SIGTERM: the instance commits its batch, leaves the group and exits 0. */
static void stop(cluster_t *c, int i)
{
    kill(c->pid[i], SIGTERM);
    int rc = tk_wait(c->pid[i], 120);
    cr_assert_eq(rc, 0, "instance %d exited with %d (log %s):\n%s", i, rc, c->log[i],
                 tk_slurp(c->log[i]));
    c->pid[i] = 0;
}

static void kill9(cluster_t *c, int i)
{
    kill(c->pid[i], SIGKILL);
    tk_wait(c->pid[i], 30);
    c->pid[i] = 0;
    cr_log_info("instance %d killed", i);
}

/* Every running instance is still running (none stopped on an error). */
static void all_alive(cluster_t *c)
{
    for (int i = 0; i < INSTANCES; i++) {
        if (c->pid[i])
            cr_assert_eq(tk_wait_ms(c->pid[i], 0), -1, "instance %d died (log %s):\n%s", i,
                         c->log[i], tk_slurp(c->log[i]));
    }
}

/* Waits until the job's consumer group has committed @p want offsets of the input: the
 * records are in the output, and lag tools see it. */
static void wait_committed(cluster_t *c, uint64_t want, int timeout_s)
{
    uint64_t got = 0;
    for (int i = 0; i < timeout_s * 4; i++) {
        all_alive(c);
        got = tk_group_committed(c->bs, c->group, c->in, PARTS);
        if (got >= want)
            return;
        usleep(250000);
    }
    cr_assert_fail("the group committed %llu of %llu offsets in %d s", (unsigned long long)got,
                   (unsigned long long)want, timeout_s);
}

static void produce(cluster_t *c, uint64_t first, uint64_t n)
{
    char err[512];
    cr_assert_eq(sl_gen_produce(c->bs, NULL, c->in, PARTS, &SPEC, first, n, err, sizeof(err)),
                 SL_OK, "%s", err);
}

static void drop_cluster(cluster_t *c)
{
    for (int i = 0; i < INSTANCES; i++) {
        if (c->pid[i])
            kill9(c, i);
    }
    char clog[300];
    snprintf(clog, sizeof(clog), "%s-changelog", c->name);
    tk_delete_topic(c->bs, c->in);
    tk_delete_topic(c->bs, c->out);
    tk_delete_topic(c->bs, clog);
    tk_rmrf(c->dir);
    free(c->dir);
}

/* Counts the lines of an instance's log that hold @p what. */
static int log_count(const cluster_t *c, int i, const char *what)
{
    const char *text = tk_slurp(c->log[i]);
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++)
        n++;
    return n;
}

Test(instances, three_share_the_tasks_one_killed_and_replaced_by_an_empty_one, .timeout = 900)
{
    cluster_t c;
    make_cluster(&c, "inst");
    const uint64_t n = 2000000;
    produce(&c, 0, n / 2);
    for (int i = 0; i < 3; i++)
        start(&c, i);
    wait_committed(&c, n / 8, 240);
    /* Every instance has tasks of its own. */
    for (int i = 0; i < 3; i++) {
        for (int t = 0; t < 100 && log_count(&c, i, "open at batch") == 0; t++)
            usleep(100000);
        cr_assert_gt(log_count(&c, i, "open at batch"), 0, "instance %d opened no task:\n%s", i,
                     tk_slurp(c.log[i]));
    }
    kill9(&c, 1);
    start(&c, 3); /* an empty state directory: its tasks come from the changelog */
    produce(&c, n / 2, n / 2);
    wait_committed(&c, n, 600);
    cr_assert_eq(tk_end_offsets(c.bs, c.in, PARTS), n);
    for (int i = 0; i < 4; i++) {
        if (c.pid[i])
            stop(&c, i);
    }
    cr_assert_gt(log_count(&c, 3, "restored"), 0, "the replacement restored no task:\n%s",
                 tk_slurp(c.log[3]));
    tk_eos_verify(c.bs, c.out, &SPEC, n, "three instances, one killed and replaced");
    drop_cluster(&c);
}

typedef struct feeder {
    cluster_t *c;
    uint64_t n, chunk;
    int ms; /* between chunks */
} feeder_t;

static void *feed(void *opaque)
{
    feeder_t *f = opaque;
    for (uint64_t at = 0; at < f->n; at += f->chunk) {
        produce(f->c, at, f->chunk);
        usleep((useconds_t)f->ms * 1000);
    }
    return NULL;
}

Test(instances, scaled_from_one_to_three_and_back_while_input_flows, .timeout = 900)
{
    cluster_t c;
    make_cluster(&c, "scale");
    feeder_t f = {.c = &c, .n = 400000, .chunk = 20000, .ms = 400};
    pthread_t th;
    pthread_create(&th, NULL, feed, &f);
    start(&c, 0);
    wait_committed(&c, 40000, 240);
    start(&c, 1);
    start(&c, 2);
    wait_committed(&c, 160000, 240);
    /* Scaled in: the two leave their group as they stop, and the first takes their tasks
     * over without waiting for their sessions to expire. */
    stop(&c, 1);
    stop(&c, 2);
    pthread_join(th, NULL);
    wait_committed(&c, f.n, 300);
    stop(&c, 0);
    cr_assert_gt(log_count(&c, 0, "closed: its partitions went to another instance"), 0,
                 "the first instance gave no task away:\n%s", tk_slurp(c.log[0]));
    tk_eos_verify(c.bs, c.out, &SPEC, f.n, "scaled 1 -> 3 -> 1 while input flowed");
    drop_cluster(&c);
}

Test(instances, a_paused_instance_whose_tasks_moved_cannot_publish, .timeout = 900)
{
    cluster_t c;
    make_cluster(&c, "pause");
    const uint64_t n = 300000;
    produce(&c, 0, n / 3);
    start(&c, 0);
    start(&c, 1);
    wait_committed(&c, n / 6, 240);
    /* Instance 0 stops dead (SIGSTOP) with tasks: after its session expires, instance 1
     * takes them and fences their producers. */
    int opened = log_count(&c, 1, "open at batch");
    kill(c.pid[0], SIGSTOP);
    sleep(10);
    produce(&c, n / 3, n / 3);
    wait_committed(&c, 2 * n / 3, 300);
    cr_assert_gt(log_count(&c, 1, "open at batch"), opened,
                 "instance 1 took over no task of the paused one:\n%s", tk_slurp(c.log[1]));
    /* It wakes up: whatever it had read or queued must not reach the output. */
    kill(c.pid[0], SIGCONT);
    produce(&c, 2 * n / 3, n / 3);
    wait_committed(&c, n, 300);
    stop(&c, 0);
    stop(&c, 1);
    cr_log_info("the paused instance's log:\n%s", tk_slurp(c.log[0]));
    tk_eos_verify(c.bs, c.out, &SPEC, n, "a paused instance woke up after its tasks moved");
    drop_cluster(&c);
}

/* ---- a state directory lost between runs ---- */

/* One available-now run of instance 0's job, to its end. */
static void run_once(cluster_t *c)
{
    char err[4096];
    const char *argv[] = {"run", "--quiet", c->job[0], NULL};
    int rc = tk_run_cli(argv, err, sizeof(err), 300);
    cr_assert_eq(rc, 0, "run: exit %d: %s", rc, err);
}

static void lose_state(cluster_t *c)
{
    char state[700];
    snprintf(state, sizeof(state), "%s/state-0", c->dir);
    tk_rmrf(state);
}

Test(instances, a_lost_state_directory_is_restored_with_its_input_deleted, .timeout = 600)
{
    cluster_t c;
    make_cluster(&c, "lost");
    const variant_t v = {.available_now = 1};
    write_job(&c, 0, &v);
    const uint64_t n = 200000;
    produce(&c, 0, n / 2);
    run_once(&c);
    /* The directory is lost and the input it read is gone too (retention): the changelog
     * has the state and the positions. */
    lose_state(&c);
    tk_delete_records(c.bs, c.in, PARTS);
    produce(&c, n / 2, n / 2);
    run_once(&c);
    tk_eos_verify(c.bs, c.out, &SPEC, n, "state directory lost, input deleted, restored");
    drop_cluster(&c);
}

/* Append mode: each window is emitted once, when the watermark passes it. */
typedef struct windows {
    json_t *seen; /* "page@start" -> count */
    uint64_t rows, twice;
} windows_t;

static void on_window(void *opaque, const rd_kafka_message_t *m)
{
    windows_t *w = opaque;
    json_t *row = json_loadb(m->payload, m->len, 0, NULL);
    cr_assert(row, "a row that is not JSON");
    char key[200];
    snprintf(key, sizeof(key), "%s@%s", json_string_value(json_object_get(row, "page")),
             json_string_value(json_object_get(row, "window_start")));
    if (json_object_get(w->seen, key))
        w->twice++;
    json_object_set_new(w->seen, key, json_integer(json_integer_value(json_object_get(row, "count"))));
    w->rows++;
    json_decref(row);
}

Test(instances, append_mode_windows_are_emitted_once_across_a_lost_state_directory,
     .timeout = 600)
{
    cluster_t c;
    make_cluster(&c, "lostw");
    /* Windows of 5 s of event time (5,000 records: the generator's ts_ms go up by 1 ms a
     * record), closed 1 s after their end. */
    const variant_t v = {.query = ", \"window\": {\"time\": \"ts_ms\", \"size\": \"5s\"},"
                                  " \"watermark\": {\"field\": \"ts_ms\", \"delay\": \"1s\"}",
                         .mode = "append",
                         .available_now = 1};
    write_job(&c, 0, &v);
    const uint64_t n = 120000;
    produce(&c, 0, n / 2);
    run_once(&c);
    lose_state(&c);
    tk_delete_records(c.bs, c.in, PARTS);
    produce(&c, n / 2, n / 2);
    run_once(&c);
    windows_t w = {.seen = json_object()};
    tk_consume_all(c.bs, c.out, on_window, &w);
    /* What each window must hold: the page's records of its 5 s. */
    json_t *want = json_object();
    sl_pageview_t pv;
    int64_t last = 0;
    for (uint64_t i = 0; i < n; i++) {
        sl_gen_pageview(&SPEC, i, &pv);
        last = pv.ts_ms;
    }
    int64_t wm = last - 1000; /* the watermark at the end: windows ending by then closed */
    for (uint64_t i = 0; i < n; i++) {
        sl_gen_pageview(&SPEC, i, &pv);
        int64_t start = pv.ts_ms - pv.ts_ms % 5000;
        if (start + 5000 > wm)
            continue;
        char ts[40], key[200];
        time_t secs = (time_t)(start / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(key, sizeof(key), "%s@%s.000Z", pv.page, ts);
        json_t *had = json_object_get(want, key);
        json_object_set_new(want, key, json_integer(had ? json_integer_value(had) + 1 : 1));
    }
    size_t wrong = 0;
    const char *k;
    json_t *count;
    json_object_foreach(want, k, count)
    {
        json_t *got = json_object_get(w.seen, k);
        if (!got || json_integer_value(got) != json_integer_value(count)) {
            if (wrong++ < 5)
                cr_log_error("window %s: want %lld, got %lld", k,
                             (long long)json_integer_value(count),
                             got ? (long long)json_integer_value(got) : -1LL);
        }
    }
    cr_log_info("append: %llu rows, %zu windows expected, %zu wrong, %llu emitted twice",
                (unsigned long long)w.rows, json_object_size(want), wrong,
                (unsigned long long)w.twice);
    cr_assert_eq(w.twice, 0, "windows emitted twice");
    cr_assert_eq(wrong, 0, "windows missing or wrong");
    cr_assert_eq(json_object_size(w.seen), json_object_size(want), "windows emitted too early");
    json_decref(want);
    json_decref(w.seen);
    drop_cluster(&c);
}

