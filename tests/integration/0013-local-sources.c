/*
 * 0013-local-sources.c - the sources beyond Kafka: a directory of files (each new file
 * read once; a restart, even after a crash in the middle of a file, neither skips nor
 * repeats a line) and a TCP socket of lines. No broker is needed.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "tk.h"

static char *dir;

static void setup(void)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    dir = tk_tmpdir("sluice-local");
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(local, .init = setup, .fini = teardown, .timeout = 300);

static json_t *run(const char *json, sl_job_stats_t *st)
{
    tk_job_result_t r = tk_run_job(json, dir);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    if (st)
        *st = r.st;
    return r.rows;
}

/* Writes @p n lines "w<i % 5> ..." (i from @p first) to @p dir/@p name, through a hidden
 * name and a rename, as a producer of such files should. */
static void write_lines(const char *name, int first, int n)
{
    char tmp[1024], final[1024];
    snprintf(tmp, sizeof(tmp), "%s/in/.%s.tmp", dir, name);
    snprintf(final, sizeof(final), "%s/in/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    cr_assert(f);
    for (int i = first; i < first + n; i++)
        fprintf(f, "w%d%s\n", i % 5, i % 2 ? " tail" : "");
    fclose(f);
    cr_assert_eq(rename(tmp, final), 0);
}

static int64_t total_count(json_t *rows)
{
    int64_t t = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) t += json_integer_value(json_object_get(r, "count"));
    return t;
}

static const char *FILES_JOB =
    "{\"name\": \"files\","
    " \"source\": {\"type\": \"files\", \"path\": \"in\"%s},"
    " \"query\": {\"group_by\": [{\"expr\": \"substring(value, 1, 2)\", \"as\": \"word\"}],"
    "             \"aggregates\": [{\"fn\": \"count\"}, {\"fn\": \"max\", \"field\": "
    "\"_offset\"}]},"
    " \"trigger\": {\"available_now\": true, \"max_records\": 70},"
    " \"output\": {\"sink\": \"%s\", \"mode\": \"complete\"},"
    " \"state\": {\"dir\": \"state\"}}";

Test(local, files_are_read_once)
{
    char path[1024], job[2048];
    snprintf(path, sizeof(path), "%s/in", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    write_lines("a.txt", 0, 100);
    write_lines("b.txt", 100, 250);
    /* A file being written (hidden name) and an empty file. */
    snprintf(path, sizeof(path), "%s/in/.partial", dir);
    FILE *f = fopen(path, "w");
    fputs("w9\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/in/empty.txt", dir);
    fclose(fopen(path, "w"));
    snprintf(job, sizeof(job), FILES_JOB, ", \"max_files\": 1", "memory");
    sl_job_stats_t st;
    json_t *rows = run(job, &st);
    cr_assert_eq(total_count(rows), 350);
    cr_assert_eq(json_array_size(rows), 5, "w0 .. w4");
    cr_assert_geq(st.batches, 5, "batches of at most 70 lines");
    json_decref(rows);
    /* Again: nothing new. Then a new file: only it is read. */
    rows = run(job, &st);
    cr_assert_eq(st.records_in, 0, "files already read are not read again");
    json_decref(rows);
    write_lines("c.txt", 350, 40);
    rows = run(job, &st);
    cr_assert_eq(st.records_in, 40);
    cr_assert_eq(total_count(rows), 390, "complete mode: the whole table");
    json_decref(rows);
}

Test(local, a_crash_in_the_middle_of_a_file)
{
    char path[1024], job[2048];
    snprintf(path, sizeof(path), "%s/in", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    write_lines("a.txt", 0, 500);
    snprintf(job, sizeof(job), FILES_JOB, "", "console");
    tk_write_file(dir, "job.json", job);
    snprintf(path, sizeof(path), "%s/job.json", dir);
    char log[1024];
    snprintf(log, sizeof(log), "%s/log", dir);
    /* Killed after the third batch's commit: 210 of 500 lines are in the state. */
    const char *argv[] = {"run", path, NULL};
    int pid = tk_spawn_cli(argv, "after-commit:3", log);
    cr_assert_eq(tk_wait(pid, 60), 128 + 9, "killed at the crash point");
    char state[1024], text[65536];
    snprintf(state, sizeof(state), "%s/state", dir);
    tk_state_totals_t t = tk_state_totals(state, "", text, sizeof(text));
    cr_assert(t.ok, "%s", text);
    cr_assert_eq(t.counts, 210, "three batches of 70:\n%s", text);
    /* The restart goes on from the line after the last committed one. */
    pid = tk_spawn_cli(argv, NULL, log);
    cr_assert_eq(tk_wait(pid, 60), 0);
    t = tk_state_totals(state, "", text, sizeof(text));
    cr_assert_eq(t.counts, 500, "every line once:\n%s", text);
}

/* A server that sends its lines to the first client, then closes. */
typedef struct server {
    int fd;
    int port;
    int lines;
} server_t;

static void *serve(void *opaque)
{
    server_t *s = opaque;
    int c = accept(s->fd, NULL, NULL);
    cr_assert_geq(c, 0);
    char buf[64];
    for (int i = 0; i < s->lines; i++) {
        int n = snprintf(buf, sizeof(buf), "{\"user\": \"u%d\", \"n\": %d}\n", i % 3, i);
        /* Lines cut at odd places: the source must join them. */
        int cut = i % 7;
        cr_assert_eq(send(c, buf, (size_t)cut, 0), cut);
        if (i % 50 == 0)
            usleep(20000);
        cr_assert_eq(send(c, buf + cut, (size_t)(n - cut), 0), n - cut);
    }
    send(c, "{\"user\": \"last\", \"n\": 0}", 24, 0); /* no newline at the end */
    close(c);
    return NULL;
}

Test(local, socket_lines)
{
    server_t s = {.lines = 3000};
    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(s.fd, (struct sockaddr *)&a, &al);
    s.port = ntohs(a.sin_port);
    cr_assert_eq(listen(s.fd, 1), 0);
    pthread_t th;
    pthread_create(&th, NULL, serve, &s);
    char job[2048];
    snprintf(
        job, sizeof(job),
        "{\"name\": \"sock\","
        " \"source\": {\"type\": \"socket\", \"host\": \"127.0.0.1\", \"port\": %d,"
        "              \"format\": \"json\", \"fields\": {\"user\": \"string\", \"n\": \"long\"}},"
        " \"query\": {\"group_by\": \"user\", \"aggregates\": [{\"fn\": \"count\"},"
        "             {\"fn\": \"sum\", \"field\": \"n\"}]},"
        " \"trigger\": {\"available_now\": true, \"interval\": \"100ms\"},"
        " \"output\": {\"sink\": \"memory\", \"mode\": \"complete\"},"
        " \"state\": {\"dir\": \"sstate\"}}",
        s.port);
    json_t *rows = run(job, NULL);
    pthread_join(th, NULL);
    close(s.fd);
    cr_assert_eq(json_array_size(rows), 4, "u0, u1, u2 and last");
    int64_t sums[3] = {0}, counts[3] = {0};
    for (int i = 0; i < s.lines; i++) {
        sums[i % 3] += i;
        counts[i % 3]++;
    }
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *u = json_string_value(json_object_get(r, "user"));
        if (!strcmp(u, "last"))
            continue;
        int k = u[1] - '0';
        cr_assert_eq(json_integer_value(json_object_get(r, "count")), counts[k], "%s", u);
        cr_assert_eq(json_integer_value(json_object_get(r, "sum_n")), sums[k], "%s", u);
    }
    json_decref(rows);
}

Test(local, bad_configurations)
{
    const char *cases[][2] = {
        {"\"type\": \"files\"", "source.path: missing"},
        {"\"type\": \"socket\"", "source.port: missing: a TCP port"},
        {"\"type\": \"files\", \"path\": \"in\", \"topics\": \"t\"",
         "'topics' is an option of the Kafka source, not of files"},
        {"\"type\": \"ftp\"", "unknown source 'ftp' (kafka, files or socket)"},
        {"\"topics\": \"t\", \"path\": \"in\"", "'path' is an option of the files or socket"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char job[2048], err[4096];
        snprintf(job, sizeof(job),
                 "{\"name\": \"bad\", \"kafka\": {\"bootstrap.servers\": \"127.0.0.1:1\"},"
                 " \"source\": {%s}, \"query\": {\"group_by\": \"value\", \"aggregates\": "
                 "[{\"fn\": \"count\"}]}, \"output\": {\"sink\": \"console\"},"
                 " \"state\": {\"dir\": \"s\"}}",
                 cases[k][0]);
        sl_job_t *j = NULL;
        cr_assert_neq(sl_job_new_from_json(job, dir, "job.json", &j, err, sizeof(err)), SL_OK,
                      "%s accepted", cases[k][0]);
        cr_assert(strstr(err, cases[k][1]), "%s: got %s", cases[k][0], err);
    }
    /* A socket nobody listens on: one clear line. */
    char job[2048], err[4096];
    snprintf(job, sizeof(job),
             "{\"name\": \"nobody\", \"source\": {\"type\": \"socket\", \"port\": 1},"
             " \"query\": {\"group_by\": \"value\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"output\": {\"sink\": \"console\"}, \"state\": {\"dir\": \"s2\"}}");
    sl_job_t *j;
    cr_assert_eq(sl_job_new_from_json(job, dir, "job.json", &j, err, sizeof(err)), SL_OK, "%s",
                 err);
    cr_assert_neq(sl_job_run(j, err, sizeof(err)), SL_OK);
    cr_assert(strstr(err, "cannot connect to 127.0.0.1:1: Connection refused"), "%s", err);
    sl_job_destroy(j);
}
