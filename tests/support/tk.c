/*
 * tk.c - the test kit (see tk.h).
 */
#include "tk.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice_dev.h"

static char g_bootstrap[256];
static char g_broker_dir[512];
static pid_t g_owner;

char *tk_broker_start(const char *version, const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "KAFKA_VERSION='%s' '%s' start '%s'", version, TK_KAFKA_SH, dir);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "cannot run %s", TK_KAFKA_SH);
    char line[256] = "";
    char *got = fgets(line, sizeof(line), p);
    int rc = pclose(p);
    cr_assert(got && rc == 0, "tests/kafka/kafka.sh could not start Kafka %s (exit %d)", version,
              rc);
    line[strcspn(line, "\n")] = 0;
    return strdup(line);
}

void tk_broker_stop(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s' stop '%s' >/dev/null 2>&1", TK_KAFKA_SH, dir);
    if (system(cmd) != 0)
        fprintf(stderr, "tk: could not stop the broker in %s\n", dir);
}

static void stop_broker(void)
{
    if (!g_broker_dir[0] || getpid() != g_owner)
        return;
    tk_broker_stop(g_broker_dir);
    g_broker_dir[0] = 0;
}

const char *tk_bootstrap(void)
{
    if (g_bootstrap[0])
        return g_bootstrap;
    const char *env = getenv("KAFKA_BOOTSTRAP_SERVERS");
    if (env && *env) {
        snprintf(g_bootstrap, sizeof(g_bootstrap), "%s", env);
        return g_bootstrap;
    }
    snprintf(g_broker_dir, sizeof(g_broker_dir), "/tmp/sluice-test-kafka-%d", (int)getpid());
    const char *version = getenv("KAFKA_VERSION");
    char *bs = tk_broker_start(version && *version ? version : TK_KAFKA_DEFAULT, g_broker_dir);
    snprintf(g_bootstrap, sizeof(g_bootstrap), "%s", bs);
    free(bs);
    g_owner = getpid();
    atexit(stop_broker);
    return g_bootstrap;
}

void tk_unique(char *buf, size_t size, const char *prefix)
{
    static int n;
    snprintf(buf, size, "%s-%d-%ld-%d", prefix, (int)getpid(), (long)time(NULL), ++n);
}

static rd_kafka_t *admin_client(const char *bootstrap)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    cr_assert(rk, "admin client: %s", err);
    return rk;
}

static void admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *what, const char *topic)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    cr_assert(ev, "%s %s: no answer from the broker", what, topic);
    cr_assert(!rd_kafka_event_error(ev), "%s %s: %s", what, topic, rd_kafka_event_error_string(ev));
    const rd_kafka_topic_result_t **res;
    size_t n = 0;
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    } else if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_ALTERCONFIGS_RESULT) {
        const rd_kafka_ConfigResource_t **rs = rd_kafka_AlterConfigs_result_resources(
            rd_kafka_event_AlterConfigs_result(ev), &n);
        for (size_t i = 0; i < n; i++)
            cr_assert(!rd_kafka_ConfigResource_error(rs[i]), "%s %s: %s", what, topic,
                      rd_kafka_ConfigResource_error_string(rs[i]));
        n = 0;
        res = NULL;
    } else {
        res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    }
    for (size_t i = 0; i < n; i++)
        cr_assert(!rd_kafka_topic_result_error(res[i]), "%s %s: %s", what, topic,
                  rd_kafka_topic_result_error_string(res[i]));
    rd_kafka_event_destroy(ev);
    (void)rk;
}

void tk_create_topic(const char *bootstrap, const char *topic, int partitions)
{
    tk_create_topic_config(bootstrap, topic, partitions, NULL);
}

void tk_in_out_topics(const char *bootstrap, const char *name, int in_parts, int out_parts,
                      char *in, char *out, size_t size)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s-in", name);
    tk_unique(in, size, prefix);
    snprintf(prefix, sizeof(prefix), "%s-out", name);
    tk_unique(out, size, prefix);
    tk_create_topic(bootstrap, in, in_parts);
    tk_create_topic(bootstrap, out, out_parts);
}

void tk_alter_topic(const char *bootstrap, const char *topic, const char *const *config)
{
    rd_kafka_t *rk = admin_client(bootstrap);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    for (const char *const *c = config; c && *c; c += 2)
        rd_kafka_ConfigResource_set_config(res, c[0], c[1]);
    rd_kafka_AlterConfigs(rk, &res, 1, NULL, q);
    admin_wait(rk, q, "alter topic", topic);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void tk_create_topic_config(const char *bootstrap, const char *topic, int partitions,
                            const char *const *config)
{
    rd_kafka_t *rk = admin_client(bootstrap);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
    cr_assert(nt, "NewTopic: %s", err);
    for (const char *const *c = config; c && *c; c += 2)
        cr_assert_eq(rd_kafka_NewTopic_set_config(nt, c[0], c[1]), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    admin_wait(rk, q, "create topic", topic);
    rd_kafka_NewTopic_destroy(nt);
    /* Wait until every partition has a leader, so producers do not race the creation. */
    for (int i = 0; i < 100; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md;
        int ready = 0;
        if (!rd_kafka_metadata(rk, 0, rkt, &md, 5000)) {
            ready = md->topic_cnt == 1 && !md->topics[0].err &&
                    md->topics[0].partition_cnt == partitions;
            for (int p = 0; ready && p < md->topics[0].partition_cnt; p++)
                ready = md->topics[0].partitions[p].leader >= 0 && !md->topics[0].partitions[p].err;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
        if (ready)
            break;
        usleep(100000);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void tk_delete_topic(const char *bootstrap, const char *topic)
{
    rd_kafka_t *rk = admin_client(bootstrap);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    admin_wait(rk, q, "delete topic", topic);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

/* A client of @p bootstrap with the properties @p props (name, value, ..., NULL). */
static rd_kafka_t *client(const char *bootstrap, rd_kafka_type_t type, const char *const *props)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    for (const char *const *p = props; *p; p += 2)
        cr_assert(!rd_kafka_conf_set(conf, p[0], p[1], err, sizeof(err)), "%s", err);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    cr_assert(rk, "client: %s", err);
    return rk;
}

rd_kafka_t *tk_producer(const char *bootstrap)
{
    static const char *const props[] = {"acks", "all", "linger.ms", "5", NULL};
    return client(bootstrap, RD_KAFKA_PRODUCER, props);
}

void tk_produce(rd_kafka_t *p, const char *topic, int partition, const char *key, const char *value)
{
    tk_produce_at(p, topic, partition, key, value, 0);
}

void tk_produce_at(rd_kafka_t *p, const char *topic, int partition, const char *key,
                   const char *value, int64_t ts_ms)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_TIMESTAMP(ts_ms),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            cr_assert(!e, "produce to %s: %s", topic, rd_kafka_err2str(e));
            return;
        }
        rd_kafka_poll(p, 100);
    }
}

rd_kafka_t *tk_reader(const char *bootstrap)
{
    static const char *const props[] = {"group.id",
                                        "tk-reader",
                                        "enable.partition.eof",
                                        "true",
                                        "isolation.level",
                                        "read_committed",
                                        "enable.auto.commit",
                                        "false",
                                        NULL};
    return client(bootstrap, RD_KAFKA_CONSUMER, props);
}

uint64_t tk_consume_all(const char *bootstrap, const char *topic,
                        void (*fn)(void *opaque, const rd_kafka_message_t *m), void *opaque)
{
    rd_kafka_t *rk = tk_reader(bootstrap);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    cr_assert(!rd_kafka_metadata(rk, 0, rkt, &md, 10000), "metadata of %s", topic);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert(!rd_kafka_assign(rk, l));
    rd_kafka_topic_partition_list_destroy(l);
    uint64_t n = 0;
    int eofs = 0;
    char *seen = calloc((size_t)parts, 1);
    time_t deadline = time(NULL) + 120;
    while (eofs < parts && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!seen[m->partition]) {
                seen[m->partition] = 1;
                eofs++;
            }
        } else if (m->err) {
            /* Not cr_log_warn: Criterion 2.4 exits 1 after a warning, even when every test
             * passed. */
            cr_log_info("reading %s: %s", topic, rd_kafka_message_errstr(m));
        } else {
            fn(opaque, m);
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    free(seen);
    cr_assert(eofs == parts, "reading %s: did not reach the end of every partition in 120 s",
              topic);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

char *tk_tmpdir(const char *prefix)
{
    char *dir = malloc(256);
    snprintf(dir, 256, "/tmp/%s-XXXXXX", prefix);
    cr_assert(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    return dir;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tk_rmrf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *tk_job_dir(const char *name)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "sluice-it-%s", name);
    char *dir = tk_tmpdir(prefix);
    tk_write_file(dir, "pageview.avsc", sl_gen_pageview_schema());
    return dir;
}

void tk_write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

const char *tk_sluice_bin(void)
{
    return TK_SLUICE_BIN;
}

/* In a forked child: stdout to /dev/null, then the sluice binary with @p argv. */
static void exec_sluice(const char *const *argv)
{
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    const char *args[32];
    int n = 0;
    args[n++] = TK_SLUICE_BIN;
    for (int i = 0; argv[i] && n < 31; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    execv(TK_SLUICE_BIN, (char *const *)args);
    _exit(127);
}

int tk_run_cli(const char *const *argv, char *err, size_t err_size, int timeout_s)
{
    int pipefd[2];
    cr_assert(pipe(pipefd) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        exec_sluice(argv);
    }
    close(pipefd[1]);
    size_t len = 0;
    time_t deadline = time(NULL) + timeout_s;
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    int status = -1;
    for (;;) {
        ssize_t r = read(pipefd[0], err + len, err_size - 1 - len);
        if (r > 0) {
            len += (size_t)r;
            if (len >= err_size - 1)
                len = err_size - 1;
            continue;
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            err[len] = 0;
            cr_assert_fail("sluice %s did not finish in %d s; it said:\n%s", argv[0], timeout_s,
                           err);
        }
        usleep(20000);
    }
    for (ssize_t r; (r = read(pipefd[0], err + len, err_size - 1 - len)) > 0;)
        len += (size_t)r;
    err[len] = 0;
    close(pipefd[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int tk_spawn_cli(const char *const *argv, const char *crash_at, const char *log)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        if (crash_at)
            setenv("SLUICE_CRASH_AT", crash_at, 1);
        else
            unsetenv("SLUICE_CRASH_AT");
        exec_sluice(argv);
    }
    return (int)pid;
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int tk_wait(int pid, int timeout_s)
{
    int status;
    time_t deadline = time(NULL) + timeout_s;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(20000);
    }
    return exit_code(status);
}

int tk_wait_ms(int pid, int64_t timeout_ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return exit_code(status);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= timeout_ms)
            return -1;
        usleep(2000);
    }
}

static void *runner_main(void *arg)
{
    tk_runner_t *r = arg;
    r->rc = sl_job_run(r->job, r->err, sizeof(r->err));
    return NULL;
}

void tk_runner_start(tk_runner_t *r, sl_job_t *job)
{
    r->job = job;
    r->rc = SL_OK;
    r->err[0] = 0;
    cr_assert_eq(pthread_create(&r->thread, NULL, runner_main, r), 0);
}

void tk_runner_join(tk_runner_t *r)
{
    pthread_join(r->thread, NULL);
}

tk_state_totals_t tk_state_totals(const char *state, const char *topic, char *text,
                                  size_t text_size)
{
    char cmd[1200], line[4096], prefix[300];
    snprintf(cmd, sizeof(cmd), "'%s' inspect '%s' 2>&1", TK_SLUICE_BIN, state);
    int plen = snprintf(prefix, sizeof(prefix), "  %s/", topic);
    tk_state_totals_t t = {0, 0, 0};
    size_t len = 0;
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    while (fgets(line, sizeof(line), p)) {
        if (text && len + strlen(line) < text_size) {
            memcpy(text + len, line, strlen(line) + 1);
            len += strlen(line);
        }
        char *eq = strstr(line, " = ");
        if (!strncmp(line, prefix, (size_t)plen) && eq)
            t.positions += strtoull(eq + 3, NULL, 10);
        char *c = strstr(line, " count=");
        if (c)
            t.counts += strtoull(c + 7, NULL, 10);
    }
    t.ok = pclose(p) == 0;
    return t;
}

typedef struct latest_ctx {
    json_t *rows;
    const char *key;
} latest_ctx_t;

static void keep_latest(void *opaque, const rd_kafka_message_t *m)
{
    latest_ctx_t *l = opaque;
    json_t *v = json_loadb(m->payload, m->len, 0, NULL);
    const char *k = json_string_value(json_object_get(v, l->key));
    cr_assert(k, "an output row without '%s': %.*s", l->key, (int)m->len, (const char *)m->payload);
    json_object_set_new(l->rows, k, v);
}

json_t *tk_latest_rows(const char *bootstrap, const char *topic, const char *key)
{
    latest_ctx_t l = {json_object(), key};
    tk_consume_all(bootstrap, topic, keep_latest, &l);
    return l.rows;
}

uint64_t tk_sum_column(json_t *rows, const char *column)
{
    uint64_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach(rows, k, v)
    {
        total += (uint64_t)json_integer_value(json_object_get(v, column));
    }
    return total;
}

json_t *tk_memory_rows(const sl_job_t *job)
{
    char *text = sl_job_memory_rows(job);
    json_t *rows = text ? json_loads(text, JSON_ALLOW_NUL, NULL) : NULL;
    cr_assert(json_is_array(rows), "memory rows: %s", text ? text : "(none)");
    free(text);
    return rows;
}

tk_job_result_t tk_run_job(const char *json, const char *dir)
{
    tk_job_result_t r = {0};
    sl_job_t *job;
    cr_assert_eq(sl_job_new_from_json(json, dir, "job.json", &job, r.err, sizeof(r.err)), SL_OK,
                 "%s", r.err);
    r.rc = sl_job_run(job, r.err, sizeof(r.err));
    r.rows = tk_memory_rows(job);
    sl_job_stats(job, &r.st, sizeof(r.st));
    sl_job_destroy(job);
    return r;
}

sl_job_t *tk_start_job(const char *json, const char *dir, tk_runner_t *r)
{
    sl_job_t *job;
    char err[4096];
    cr_assert_eq(sl_job_new_from_json(json, dir, "job.json", &job, err, sizeof(err)), SL_OK, "%s",
                 err);
    tk_runner_start(r, job);
    return job;
}

const char *tk_slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    return buf;
}

int tk_row_id(const rd_kafka_message_t *m, char *job, size_t job_size, int *task, int64_t *seq,
              int64_t *idx)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t n;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, "sluice-id", &v, &n) || !v)
        return -1;
    char buf[512];
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, v, n);
    buf[n] = 0;
    /* The job's name may not hold '/': the last three parts are numbers. */
    char *p3 = strrchr(buf, '/');
    if (!p3)
        return -1;
    *p3 = 0;
    char *p2 = strrchr(buf, '/');
    if (!p2)
        return -1;
    *p2 = 0;
    char *p1 = strrchr(buf, '/');
    if (!p1)
        return -1;
    *p1 = 0;
    snprintf(job, job_size, "%s", buf);
    *task = (int)strtol(p1 + 1, NULL, 10);
    *seq = strtoll(p2 + 1, NULL, 10);
    *idx = strtoll(p3 + 1, NULL, 10);
    return 0;
}

uint64_t tk_group_committed(const char *bootstrap, const char *group, const char *topic,
                            int partitions)
{
    const char *props[] = {"group.id", group, NULL};
    rd_kafka_t *rk = client(bootstrap, RD_KAFKA_CONSUMER, props);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    uint64_t sum = 0;
    /* Offsets a transaction is committing are not stable yet: asked again. */
    for (int attempt = 0; attempt < 20; attempt++) {
        rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        usleep(200000);
    }
    for (int p = 0; p < l->cnt; p++)
        sum += l->elems[p].offset > 0 ? (uint64_t)l->elems[p].offset : 0;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return sum;
}

uint64_t tk_end_offsets(const char *bootstrap, const char *topic, int partitions)
{
    static const char *const props[] = {NULL};
    rd_kafka_t *rk = client(bootstrap, RD_KAFKA_PRODUCER, props);
    uint64_t sum = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t lo, hi;
        cr_assert(!rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000),
                  "the offsets of %s[%d]", topic, p);
        sum += (uint64_t)hi;
    }
    rd_kafka_destroy(rk);
    return sum;
}

void tk_delete_records(const char *bootstrap, const char *topic, int partitions)
{
    rd_kafka_t *rk = admin_client(bootstrap);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_DeleteRecords_t *dr = rd_kafka_DeleteRecords_new(l);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteRecords(rk, &dr, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    cr_assert(ev && !rd_kafka_event_error(ev), "DeleteRecords of %s: %s", topic,
              ev ? rd_kafka_event_error_string(ev) : "no answer");
    const rd_kafka_topic_partition_list_t *r =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    for (int i = 0; r && i < r->cnt; i++)
        cr_assert(!r->elems[i].err, "DeleteRecords of %s[%d]: %s", topic, r->elems[i].partition,
                  rd_kafka_err2str(r->elems[i].err));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteRecords_destroy(dr);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}
