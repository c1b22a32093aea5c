/*
 * test_source_local.c - the files and socket sources: each file of a directory read once,
 * oldest first, its lines the records with their byte offsets; how far each file was read
 * kept in the store and taken up again after a reopen; max_files; errors that name the
 * directory or file; and a socket's lines read until the peer closes the connection.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "source/source_local.h"
#include "store.h"
#include "tk.h"
#include "util.h"

static char *dir;
static char in[512];
static sl_conf_t *conf;
static sl_store_t *store;

static void setup(void)
{
    sl_log_configure(SL_LOG_ERROR, 0, NULL);
    dir = tk_tmpdir("sluice-lsrc");
    snprintf(in, sizeof(in), "%s/in", dir);
    cr_assert_eq(mkdir(in, 0755), 0);
}

static void teardown(void)
{
    sl__store_close(store);
    store = NULL;
    sl__conf_destroy(conf);
    conf = NULL;
    tk_rmrf(dir);
    free(dir);
}

TestSuite(source_local, .init = setup, .fini = teardown);

/* Parses a job whose source is @p source (a JSON object's text). */
static void parse_job(const char *source)
{
    char job[1024], err[2048] = "";
    snprintf(job, sizeof(job),
             "{\"name\": \"l\", \"source\": %s,"
             " \"query\": {\"group_by\": \"value\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"output\": {\"sink\": \"memory\"}, \"state\": {\"dir\": \"st\"}}",
             source);
    sl__conf_destroy(conf);
    cr_assert_eq(sl__conf_parse(job, dir, "job.json", &conf, err, sizeof(err)), SL_OK, "%s", err);
}

static void files_job(int max_files)
{
    char src[128];
    if (max_files)
        snprintf(src, sizeof(src), "{\"type\": \"files\", \"path\": \"in\", \"max_files\": %d}",
                 max_files);
    else
        snprintf(src, sizeof(src), "{\"type\": \"files\", \"path\": \"in\"}");
    parse_job(src);
}

static void open_store(void)
{
    char path[600], err[512] = "";
    snprintf(path, sizeof(path), "%s/st", dir);
    cr_assert_eq(sl__store_open(path, 1, 0, &store, err, sizeof(err)), SL_OK, "%s", err);
}

static sl_lsrc_t *open_src(void)
{
    sl_lsrc_t *s = NULL;
    char err[1024] = "";
    cr_assert_eq(sl__lsrc_open(&conf->source, store, &s, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_not_null(s);
    return s;
}

/* Writes @p text to in/@p name, modified at @p mtime_s seconds past the epoch. */
static void put_file(const char *name, const char *text, int64_t mtime_s)
{
    char path[1024];
    tk_write_file(in, name, text);
    snprintf(path, sizeof(path), "%s/%s", in, name);
    struct timespec t[2] = {{.tv_sec = (time_t)mtime_s}, {.tv_sec = (time_t)mtime_s}};
    cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0, "utimensat %s", path);
}

/* One poll: its records as "name@offset:line|..." in @p text; acknowledged with @p ack.
 * Returns the number of records. */
static int poll_text(sl_lsrc_t *s, int max, int available_now, int *done, int ack, char *text,
                     size_t size)
{
    sl_rec_t recs[64];
    char err[1024] = "";
    cr_assert(max <= 64);
    int n = sl__lsrc_poll(s, recs, max, 0, available_now, done, err, sizeof(err));
    cr_assert_geq(n, 0, "poll failed: %s", err);
    size_t at = 0;
    text[0] = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(text + at, size - at, "%s%s@%lld:%.*s", i ? "|" : "", recs[i].topic,
                         (long long)recs[i].offset, (int)recs[i].len,
                         (const char *)recs[i].payload);
        cr_assert(w > 0 && (size_t)w < size - at, "the records fit the test's buffer");
        at += (size_t)w;
        cr_assert_null(recs[i].km, "a file line is no Kafka message");
        if (ack)
            sl__lsrc_ack(s, &recs[i]);
    }
    return n;
}

/* Commits what moved, as a batch does: into a WriteBatch, written, then marked committed. */
static void commit(sl_lsrc_t *s)
{
    char err[512] = "";
    sl_store_batch_t *wb = sl__store_batch_new();
    sl__lsrc_put(s, store, wb);
    cr_assert_eq(sl__store_write(store, wb, 1, err, sizeof(err)), SL_OK, "%s", err);
    sl__lsrc_committed(s);
    sl__store_batch_destroy(wb);
}

/* The stored progress of file @p name: its offset, and *done. -1 when none is stored. */
static int64_t stored(const char *name, int *done)
{
    char key[300], err[512], *v = NULL;
    size_t vl;
    int kl = snprintf(key, sizeof(key), "t/0/file/%s", name);
    sl_err_t e = sl__store_get(store, SL_CF_META, key, (size_t)kl, &v, &vl, err, sizeof(err));
    if (e == SL_ERR_NOTFOUND)
        return -1;
    cr_assert_eq(e, SL_OK, "%s", err);
    cr_assert_eq(vl, 9, "8 bytes of offset and a done flag, got %zu bytes", vl);
    int64_t off = (int64_t)sl__be64_get((const uint8_t *)v);
    *done = v[8];
    free(v);
    return off;
}

Test(source_local, files_are_read_once_each_oldest_first_with_byte_offsets)
{
    /* b.txt is older than a.txt: modification time orders them, not the name. Hidden
     * names ('.', '_': files being written) and folders are not read. */
    put_file("b.txt", "one\ntwo\n", 1000);
    put_file("a.txt", "x\n\nlast", 2000);
    put_file(".partial", "no\n", 500);
    put_file("_tmp", "no\n", 500);
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/sub", in);
    cr_assert_eq(mkdir(sub, 0755), 0);
    tk_write_file(sub, "c.txt", "no\n");
    files_job(0);
    open_store();
    sl_lsrc_t *s = open_src();
    char want[600];
    snprintf(want, sizeof(want), "files in %s", in);
    cr_assert_str_eq(sl__lsrc_describe(s), want);

    char got[1024];
    int done = -1;
    sl_rec_t recs[8];
    char err[512];
    cr_assert_eq(sl__lsrc_poll(s, recs, 8, 0, 1, &done, err, sizeof(err)), 2, "%s", err);
    cr_assert_eq(recs[0].ts, 1000000, "a line's time is its file's: %lld", (long long)recs[0].ts);
    cr_assert_eq(recs[0].partition, 0);
    for (int i = 0; i < 2; i++)
        sl__lsrc_ack(s, &recs[i]);
    cr_assert_eq(done, 0);
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 3, "%s", got);
    cr_assert_str_eq(got, "a.txt@0:x|a.txt@2:|a.txt@3:last",
                     "an empty line is a record, and so is a last line without newline");
    cr_assert_eq(done, 0);
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 0, "%s", got);
    cr_assert_eq(done, 1, "every file present at start is read");
    sl__lsrc_close(s);
}

Test(source_local, a_poll_takes_at_most_max_records_and_goes_on_where_it_stopped)
{
    put_file("a.txt", "l1\nl2\nl3\n", 1000);
    files_job(0);
    open_store();
    sl_lsrc_t *s = open_src();
    char got[1024];
    int done;
    cr_assert_eq(poll_text(s, 2, 1, &done, 1, got, sizeof(got)), 2);
    cr_assert_str_eq(got, "a.txt@0:l1|a.txt@3:l2");
    cr_assert_eq(poll_text(s, 2, 1, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "a.txt@6:l3");
    cr_assert_eq(poll_text(s, 2, 1, &done, 1, got, sizeof(got)), 0);
    cr_assert_eq(done, 1);
    sl__lsrc_close(s);
}

Test(source_local, progress_is_stored_with_the_batch_and_taken_up_after_a_reopen)
{
    put_file("a.txt", "l1\nl2\nl3\nl4\n", 1000);
    files_job(0);
    open_store();
    sl_lsrc_t *s = open_src();
    char got[1024];
    int done, fdone = -1;
    cr_assert_eq(sl__lsrc_moved(s), 0, "nothing read yet");
    cr_assert_eq(poll_text(s, 2, 1, &done, 1, got, sizeof(got)), 2);
    cr_assert_str_eq(got, "a.txt@0:l1|a.txt@3:l2");
    cr_assert_eq(sl__lsrc_moved(s), 1);
    cr_assert_eq(stored("a.txt", &fdone), -1, "nothing is stored before the batch commits");
    commit(s);
    cr_assert_eq(sl__lsrc_moved(s), 0, "committed");
    cr_assert_eq(stored("a.txt", &fdone), 6, "the offset after l2's newline");
    cr_assert_eq(fdone, 0);
    /* Read on, but die before the commit: l3 is read again by the next run. */
    cr_assert_eq(poll_text(s, 1, 1, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "a.txt@6:l3");
    sl__lsrc_close(s);

    s = open_src();
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 2);
    cr_assert_str_eq(got, "a.txt@6:l3|a.txt@9:l4", "the stored position is where it goes on");
    commit(s);
    cr_assert_eq(stored("a.txt", &fdone), 12);
    cr_assert_eq(fdone, 1, "read to its end");
    sl__lsrc_close(s);

    /* Through a closed and reopened store: the file is done, nothing is read again. */
    sl__store_close(store);
    open_store();
    s = open_src();
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 0, "%s", got);
    cr_assert_eq(done, 1);
    cr_assert_eq(poll_text(s, 64, 0, &done, 1, got, sizeof(got)), 0, "%s", got);
    cr_assert_eq(done, 0, "without available-now the source waits for new files");
    sl__lsrc_close(s);
}

Test(source_local, new_files_are_read_while_running_but_not_by_available_now)
{
    put_file("a.txt", "a\n", 1000);
    files_job(0);
    open_store();
    sl_lsrc_t *s = open_src();
    char got[1024];
    int done;
    cr_assert_eq(poll_text(s, 64, 0, &done, 1, got, sizeof(got)), 1);
    put_file("b.txt", "b\n", 2000);
    cr_assert_eq(poll_text(s, 64, 0, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "b.txt@0:b", "a file that appeared since is read");
    sl__lsrc_close(s);

    put_file("c.txt", "c\n", 500);
    s = open_src(); /* nothing committed: a and b are read again, c is in the snapshot */
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "c.txt@0:c", "the oldest first");
    put_file("d.txt", "d\n", 100);
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "a.txt@0:a");
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "b.txt@0:b");
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 0, "%s", got);
    cr_assert_eq(done, 1, "available-now reads the files present at its start, not d.txt");
    sl__lsrc_close(s);
}

Test(source_local, max_files_limits_the_new_files_of_a_batch)
{
    put_file("f1", "1\n", 1000);
    put_file("f2", "2\n", 2000);
    put_file("f3", "3\n", 3000);
    files_job(2);
    cr_assert_eq(conf->source.max_files, 2);
    open_store();
    sl_lsrc_t *s = open_src();
    char got[1024];
    int done;
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "f1@0:1");
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "f2@0:2");
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 0, "the batch has its 2 files");
    cr_assert_eq(done, 0, "f3 is still to be read");
    commit(s);
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "f3@0:3", "the next batch takes the next file");
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 0);
    cr_assert_eq(done, 1);
    sl__lsrc_close(s);
}

Test(source_local, a_file_dated_at_the_epoch_is_read)
{
    /* A modification time of 0 (archives and reproducible builds make such files) is a
     * time like any other: the file is read, and an available-now run ends. */
    put_file("old.txt", "x\ny\n", 0);
    files_job(0);
    open_store();
    sl_lsrc_t *s = open_src();
    char got[1024];
    int done;
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 2, "got '%s', done %d", got,
                 done);
    cr_assert_str_eq(got, "old.txt@0:x|old.txt@2:y");
    cr_assert_eq(poll_text(s, 64, 1, &done, 1, got, sizeof(got)), 0);
    cr_assert_eq(done, 1);
    sl__lsrc_close(s);
}

Test(source_local, a_missing_directory_is_named_in_the_error)
{
    parse_job("{\"type\": \"files\", \"path\": \"nope\"}");
    open_store();
    sl_lsrc_t *s = (sl_lsrc_t *)1;
    char err[1024] = "", want[600];
    cr_assert_eq(sl__lsrc_open(&conf->source, store, &s, err, sizeof(err)), SL_ERR_IO);
    cr_assert_null(s);
    snprintf(want, sizeof(want), "source.path %s/nope: No such file or directory", dir);
    cr_assert_str_eq(err, want);
}

Test(source_local, a_file_shorter_than_what_was_read_is_an_error)
{
    put_file("a.txt", "l1\nl2\nl3\n", 1000);
    files_job(0);
    open_store();
    sl_lsrc_t *s = open_src();
    char got[1024], err[1024] = "";
    int done;
    cr_assert_eq(poll_text(s, 2, 1, &done, 1, got, sizeof(got)), 2);
    commit(s);
    sl__lsrc_close(s);
    put_file("a.txt", "l\n", 1000); /* replaced: 2 bytes, 6 were read */
    s = open_src();
    sl_rec_t recs[4];
    cr_assert_eq(sl__lsrc_poll(s, recs, 4, 0, 1, &done, err, sizeof(err)), -1);
    cr_assert(strstr(err, "/in/a.txt is shorter (2 bytes) than what was read of it before (6)"),
              "got: %s", err);
    sl__lsrc_close(s);
}

/* ---- socket ---- */

static char logged[2048];

static void log_cb(void *opaque, sl_log_level_t level, const char *facility, const char *msg)
{
    (void)opaque;
    if (level <= SL_LOG_WARN && !strcmp(facility, "source"))
        snprintf(logged, sizeof(logged), "%s", msg);
}

/* A TCP socket on 127.0.0.1 bound to a free port; listening with @p listen_too. */
static int loopback_socket(int listen_too, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    if (listen_too)
        cr_assert_eq(listen(fd, 1), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void socket_job(int port)
{
    char src[128];
    snprintf(src, sizeof(src), "{\"type\": \"socket\", \"host\": \"127.0.0.1\", \"port\": %d}",
             port);
    parse_job(src);
}

/* Polls until @p want records came or the source is done (at most ~5 s), appending them
 * as "line@number|..." to @p text. */
static int socket_read(sl_lsrc_t *s, int want, int *done, char *text, size_t size)
{
    int got = 0;
    for (int tries = 0; tries < 50 && got < want && !*done; tries++) {
        sl_rec_t recs[8];
        char err[512] = "";
        int n = sl__lsrc_poll(s, recs, 8, 100, 1, done, err, sizeof(err));
        cr_assert_geq(n, 0, "%s", err);
        for (int i = 0; i < n; i++) {
            size_t at = strlen(text);
            snprintf(text + at, size - at, "%s%.*s@%lld", at ? "|" : "", (int)recs[i].len,
                     (const char *)recs[i].payload, (long long)recs[i].offset);
            cr_assert_eq(recs[i].ts, -1, "a socket's lines have no time");
            cr_assert_str_eq(recs[i].topic, sl__lsrc_describe(s));
        }
        got += n;
    }
    return got;
}

Test(source_local, socket_lines_are_read_until_the_peer_closes)
{
    int port, lfd = loopback_socket(1, &port);
    socket_job(port);
    logged[0] = 0;
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    sl_log_set_callback(log_cb, NULL);
    sl_lsrc_t *s = open_src();
    sl_log_set_callback(NULL, NULL);
    sl_log_configure(SL_LOG_ERROR, 0, NULL);
    cr_assert(strstr(logged, "cannot be read again"), "the job says lines can be lost: '%s'",
              logged);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    cr_assert_str_eq(sl__lsrc_describe(s), want);
    int peer = accept(lfd, NULL, NULL);
    cr_assert_geq(peer, 0);

    const char *first = "one\ntwo\nthr";
    cr_assert_eq(write(peer, first, strlen(first)), (ssize_t)strlen(first));
    char got[512] = "";
    int done = 0;
    cr_assert_eq(socket_read(s, 2, &done, got, sizeof(got)), 2, "%s", got);
    cr_assert_str_eq(got, "one@0|two@1", "lines are numbered");
    sl_rec_t recs[4];
    char err[256];
    cr_assert_eq(sl__lsrc_poll(s, recs, 4, 0, 1, &done, err, sizeof(err)), 0,
                 "a line still arriving is held back");
    cr_assert_eq(done, 0);

    const char *rest = "ee\nlast";
    cr_assert_eq(write(peer, rest, strlen(rest)), (ssize_t)strlen(rest));
    close(peer);
    got[0] = 0;
    cr_assert_eq(socket_read(s, 3, &done, got, sizeof(got)), 2, "%s", got);
    cr_assert_str_eq(got, "three@2|last@3", "the last line needs no newline once closed");
    cr_assert_eq(done, 1, "done once the peer closed and every line was returned");
    cr_assert_eq(sl__lsrc_moved(s), 0, "a socket has no position to commit");
    sl__lsrc_close(s);
    close(lfd);
}

Test(source_local, a_refused_socket_connection_names_the_address)
{
    int port, fd = loopback_socket(0, &port); /* bound, not listening: refused */
    socket_job(port);
    sl_lsrc_t *s = (sl_lsrc_t *)1;
    char err[512] = "", want[128];
    cr_assert_eq(sl__lsrc_open(&conf->source, NULL, &s, err, sizeof(err)), SL_ERR_IO);
    cr_assert_null(s);
    snprintf(want, sizeof(want), "source: cannot connect to 127.0.0.1:%d: Connection refused",
             port);
    cr_assert_str_eq(err, want);
    close(fd);
}
