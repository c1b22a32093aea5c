/*
 * store_dir.c - the state directory around RocksDB's files: is it whole, who has it open,
 * and how far did its batches get (SLUICE_STATE).
 *
 * RocksDB alone cannot tell a store that was never written from one whose write-ahead log
 * or MANIFEST was damaged: with a truncated log it recovers to an earlier point, with a
 * lost MANIFEST or CURRENT it opens empty (or, without CURRENT, fails with "wal_dir
 * contains existing log file"). A job on such a store would start over from offset 0 as
 * batch 1 and publish everything again. So the directory also holds SLUICE_STATE, a line
 * naming the last batch committed, rewritten in place after each commit, and a store that
 * opens behind it, or a directory holding data without the CURRENT file, is refused.
 */
#include "store_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER_NAME "SLUICE_STATE"
/* "sluice state 1 batch " and 20 digits and a newline: always the same length, so a
 * rewrite in place never leaves a longer old line's tail behind. */
#define MARKER_FMT "sluice state 1 batch %020" PRId64 "\n"
#define MARKER_LEN 42

/* Stores open in this process: fcntl locks are per process, so checking RocksDB's LOCK
 * from a process that holds it would say "free", and closing the descriptor used to check
 * would even release the lock. */
static pthread_mutex_t g_open_mu = PTHREAD_MUTEX_INITIALIZER;
static char **g_open;
static int g_nopen;

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int rocksdb_file(const char *name)
{
    return !strcmp(name, "IDENTITY") || !strncmp(name, "MANIFEST-", 9) ||
           !strncmp(name, "OPTIONS-", 8) || !strcmp(name, "LOG") || !strncmp(name, "LOG.old", 7) ||
           has_suffix(name, ".log") || has_suffix(name, ".sst") || has_suffix(name, ".blob");
}

static void damaged(const char *dir, const char *what, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size,
             "state %s is damaged: %s. Restore the directory from a backup; or, to start over, "
             "move it aside: the job then reads its input again from the start and publishes "
             "every row again",
             dir, what);
}

static int read_marker(const char *dir, int64_t *seq, char *errstr, size_t errstr_size)
{
    char path[PATH_MAX], buf[MARKER_LEN + 1];
    snprintf(path, sizeof(path), "%s/%s", dir, MARKER_NAME);
    *seq = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    ssize_t n = read(fd, buf, MARKER_LEN);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    long long v;
    char nl;
    if (n != MARKER_LEN || sscanf(buf, "sluice state 1 batch %lld%c", &v, &nl) != 2 ||
        nl != '\n' || v < 1) {
        damaged(dir, MARKER_NAME " is not the line sluice writes there", errstr, errstr_size);
        return -1;
    }
    *seq = v;
    return 0;
}

sl_err_t sl__store_dir_check(const char *dir, int read_only, int64_t *marked, char *errstr,
                             size_t errstr_size)
{
    *marked = -1;
    DIR *d = opendir(dir);
    if (!d)
        return SL_OK; /* not made yet: the open reports what stops it from being made */
    int current = 0, data = 0, marker = 0, others = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (!strcmp(e->d_name, "CURRENT"))
            current = 1;
        else if (!strcmp(e->d_name, MARKER_NAME))
            marker = 1;
        else if (has_suffix(e->d_name, ".sst") ||
                 (has_suffix(e->d_name, ".log") && !stat(path, &st) && st.st_size > 0))
            data = 1;
        else if (rocksdb_file(e->d_name))
            others = 1;
    }
    closedir(d);
    if (marker && read_marker(dir, marked, errstr, errstr_size) < 0)
        return SL_ERR_STATE;
    if (current)
        return SL_OK;
    if (marker || data) {
        damaged(dir,
                marker ? "its CURRENT file is missing (RocksDB's pointer to the MANIFEST that "
                         "lists its files), though batches were committed there"
                       : "its CURRENT file is missing (RocksDB's pointer to the MANIFEST that "
                         "lists its files), though it holds data",
                errstr, errstr_size);
        return SL_ERR_STATE;
    }
    if (read_only) {
        snprintf(errstr, errstr_size, "state %s: no state here (no batch was committed with it)",
                 dir);
        return SL_ERR_NOTFOUND;
    }
    if (!others)
        return SL_OK;
    /* A store whose creation was cut short (no CURRENT yet, nothing written): RocksDB
     * would refuse to make one over its empty log, so its files are removed. */
    d = opendir(dir);
    while (d && (e = readdir(d))) {
        if (!rocksdb_file(e->d_name))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    return SL_OK;
}

sl_err_t sl__store_dir_mark(int *fd, const char *dir, int64_t seq, char *errstr,
                            size_t errstr_size)
{
    if (*fd < 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, MARKER_NAME);
        *fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (*fd < 0) {
            snprintf(errstr, errstr_size, "state %s: cannot write %s: %s", dir, MARKER_NAME,
                     strerror(errno));
            return SL_ERR_IO;
        }
    }
    char line[MARKER_LEN + 1];
    snprintf(line, sizeof(line), MARKER_FMT, seq);
    if (pwrite(*fd, line, MARKER_LEN, 0) != MARKER_LEN) {
        snprintf(errstr, errstr_size, "state %s: cannot write %s: %s", dir, MARKER_NAME,
                 strerror(errno));
        return SL_ERR_IO;
    }
    return SL_OK;
}

sl_err_t sl__store_dir_claim(const char *dir, char *errstr, size_t errstr_size)
{
    char real[PATH_MAX];
    if (!realpath(dir, real))
        snprintf(real, sizeof(real), "%s", dir);
    pthread_mutex_lock(&g_open_mu);
    sl_err_t e = SL_OK;
    for (int i = 0; i < g_nopen && !e; i++) {
        if (!strcmp(g_open[i], real)) {
            snprintf(errstr, errstr_size,
                     "state %s is in use by another job of this process; two jobs cannot share "
                     "a state directory",
                     dir);
            e = SL_ERR_STATE;
        }
    }
    if (!e) {
        char **n = realloc(g_open, (size_t)(g_nopen + 1) * sizeof(*n));
        char *copy = strdup(real);
        if (n)
            g_open = n;
        if (!n || !copy) {
            free(copy);
            snprintf(errstr, errstr_size, "out of memory");
            e = SL_ERR_NOMEM;
        } else {
            g_open[g_nopen++] = copy;
        }
    }
    pthread_mutex_unlock(&g_open_mu);
    return e;
}

void sl__store_dir_release(const char *dir)
{
    char real[PATH_MAX];
    if (!realpath(dir, real))
        snprintf(real, sizeof(real), "%s", dir);
    pthread_mutex_lock(&g_open_mu);
    for (int i = 0; i < g_nopen; i++) {
        if (!strcmp(g_open[i], real)) {
            free(g_open[i]);
            g_open[i] = g_open[--g_nopen];
            break;
        }
    }
    if (!g_nopen) {
        free(g_open);
        g_open = NULL;
    }
    pthread_mutex_unlock(&g_open_mu);
}

sl_err_t sl__store_check_free(const char *dir, char *errstr, size_t errstr_size)
{
    char real[PATH_MAX], path[PATH_MAX + 8];
    if (!realpath(dir, real))
        return SL_OK; /* no directory yet: nobody has it */
    pthread_mutex_lock(&g_open_mu);
    int mine = 0;
    for (int i = 0; i < g_nopen; i++)
        mine |= !strcmp(g_open[i], real);
    pthread_mutex_unlock(&g_open_mu);
    if (mine) {
        snprintf(errstr, errstr_size,
                 "state %s is in use by another job of this process; two jobs cannot share a "
                 "state directory",
                 dir);
        return SL_ERR_STATE;
    }
    /* RocksDB holds a write lock (fcntl) on LOCK while the store is open. */
    snprintf(path, sizeof(path), "%s/LOCK", real);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SL_OK;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int rc = fcntl(fd, F_GETLK, &fl);
    close(fd);
    if (rc == 0 && fl.l_type != F_UNLCK) {
        snprintf(errstr, errstr_size,
                 "state %s is in use by process %ld: is this job already running? Two runs of "
                 "one job on one state directory would fight over its output",
                 dir, (long)fl.l_pid);
        return SL_ERR_STATE;
    }
    return SL_OK;
}
