/*
 * source_local.c - the files and socket sources (see source_local.h).
 */
#include "source_local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

typedef struct file_ent {
    char *name;
    int64_t mtime_ms;
    int64_t off;     /* bytes consumed (acknowledged) */
    int done;        /* read to its end */
    int dirty;       /* changed since the last commit */
    int in_snapshot; /* present when an available-now run started */
    int present;     /* seen in the directory (one known from the state may be gone) */
} file_ent_t;

struct sl_lsrc {
    const sl_conf_source_t *c;
    char desc[600];
    /* files */
    file_ent_t *files;
    size_t nfiles, cap;
    int snapshot_taken;
    file_ent_t *cur; /* the file being read; its bytes are mapped */
    size_t cur_idx;
    const char *map;
    size_t map_len;
    size_t next;     /* where the next line starts in the mapping */
    int64_t started; /* files started since the last commit (max_files) */
    /* socket */
    int fd;
    char *buf;
    size_t blen, bcap, bstart; /* bytes held; where unreturned bytes start */
    int closed;
    int64_t line;
};

/* ---- files ---- */

static file_ent_t *find_file(sl_lsrc_t *s, const char *name)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        if (!strcmp(s->files[i].name, name))
            return &s->files[i];
    }
    return NULL;
}

static file_ent_t *add_file(sl_lsrc_t *s, const char *name)
{
    if (s->nfiles == s->cap) {
        if (SL_GROW(s->files, s->cap, s->nfiles + 1, 64))
            return NULL;
        s->cur = NULL; /* its pointer moved; found again by cur_idx */
    }
    file_ent_t *f = &s->files[s->nfiles];
    *f = (file_ent_t){.name = strdup(name)};
    if (!f->name)
        return NULL;
    s->nfiles++;
    return f;
}

/* A file's progress is task 0's meta "file/<name>": the byte offset read to, and whether
 * it is read to its end (layout.h). */
#define FILE_PREFIX "t/0/file/"
#define FILE_PREFIX_LEN (sizeof(FILE_PREFIX) - 1)

static int load_file_pos(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    sl_lsrc_t *s = opaque;
    char name[1024];
    if (klen <= FILE_PREFIX_LEN || klen - FILE_PREFIX_LEN >= sizeof(name) || vlen != 9)
        return 0;
    memcpy(name, k + FILE_PREFIX_LEN, klen - FILE_PREFIX_LEN);
    name[klen - FILE_PREFIX_LEN] = 0;
    file_ent_t *f = add_file(s, name);
    if (f) {
        f->off = (int64_t)sl__be64_get((const uint8_t *)v);
        f->done = v[8] != 0;
    }
    return 0;
}

/* Picks up new files of the directory. */
static int scan_dir(sl_lsrc_t *s, char *errstr, size_t errstr_size)
{
    DIR *d = opendir(s->c->path);
    if (!d) {
        snprintf(errstr, errstr_size, "source.path %s: %s", s->c->path, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || de->d_name[0] == '_')
            continue;
        char full[4096];
        struct stat st;
        snprintf(full, sizeof(full), "%s/%s", s->c->path, de->d_name);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        file_ent_t *f = find_file(s, de->d_name);
        if (!f && !(f = add_file(s, de->d_name))) {
            closedir(d);
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        f->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        f->present = 1;
        if (!s->snapshot_taken)
            f->in_snapshot = 1;
    }
    closedir(d);
    s->snapshot_taken = 1;
    return 0;
}

static void unmap_cur(sl_lsrc_t *s)
{
    if (s->map && s->map_len)
        munmap((void *)s->map, s->map_len);
    s->map = NULL;
    s->map_len = 0;
    s->cur = NULL;
}

/* Opens the next file to read: the oldest not done (in the snapshot when available-now).
 * 0 none, 1 opened, -1 error. */
static int next_file(sl_lsrc_t *s, int available_now, char *errstr, size_t errstr_size)
{
    file_ent_t *best = NULL;
    for (size_t i = 0; i < s->nfiles; i++) {
        file_ent_t *f = &s->files[i];
        if (f->done || (available_now && !f->in_snapshot) || !f->present)
            continue;
        if (!best || f->mtime_ms < best->mtime_ms ||
            (f->mtime_ms == best->mtime_ms && strcmp(f->name, best->name) < 0))
            best = f;
    }
    if (!best)
        return 0;
    if (s->c->max_files && s->started >= s->c->max_files && best->off == 0)
        return 0; /* the batch has its files; this one waits for the next */
    char full[4096];
    snprintf(full, sizeof(full), "%s/%s", s->c->path, best->name);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(errstr, errstr_size, "source.path: cannot read %s: %s", full, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->map_len = (size_t)st.st_size;
    s->map = s->map_len ? mmap(NULL, s->map_len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        s->map_len = 0;
        snprintf(errstr, errstr_size, "source.path: cannot map %s: %s", full, strerror(errno));
        return -1;
    }
    if ((size_t)best->off > s->map_len) {
        snprintf(errstr, errstr_size,
                 "source.path: %s is shorter (%zu bytes) than what was read of it before "
                 "(%" PRId64 "): files must not change once they are in the directory",
                 full, s->map_len, best->off);
        unmap_cur(s);
        return -1;
    }
    if (best->off == 0)
        s->started++;
    s->cur = best;
    s->cur_idx = (size_t)(best - s->files);
    s->next = (size_t)best->off;
    if (s->next == s->map_len) { /* empty, or read to its end before a crash */
        best->done = 1;
        best->dirty = 1;
        unmap_cur(s);
    }
    return 1;
}

static int poll_files(sl_lsrc_t *s, sl_rec_t *recs, int max, int timeout_ms, int available_now,
                      int *done, char *errstr, size_t errstr_size)
{
    int64_t deadline = sl__now_ms() + timeout_ms;
    if (s->cur == NULL && s->map)
        s->cur = &s->files[s->cur_idx];
    for (;;) {
        if (s->cur && s->next >= s->map_len)
            unmap_cur(s); /* every line returned; done once acknowledged */
        if (!s->cur) {
            if (scan_dir(s, errstr, errstr_size) < 0)
                return -1;
            int r;
            while ((r = next_file(s, available_now, errstr, errstr_size)) == 1 && !s->cur)
                ;
            if (r < 0)
                return -1;
        }
        if (s->cur)
            break;
        int pending = 0;
        for (size_t i = 0; i < s->nfiles; i++)
            pending |= !s->files[i].done && (!available_now || s->files[i].in_snapshot);
        if (available_now && !pending) {
            *done = 1;
            return 0;
        }
        if (sl__now_ms() >= deadline)
            return 0;
        usleep(20000);
    }
    int n = 0;
    while (n < max && s->next < s->map_len) {
        const char *p = s->map + s->next;
        const char *nl = memchr(p, '\n', s->map_len - s->next);
        size_t len = nl ? (size_t)(nl - p) : s->map_len - s->next;
        recs[n++] = (sl_rec_t){.payload = p,
                               .len = len,
                               .topic = s->cur->name,
                               .offset = (int64_t)s->next,
                               .ts = s->cur->mtime_ms};
        s->next += len + (nl ? 1 : 0);
    }
    return n;
}

/* ---- socket ---- */

static int connect_to(const char *host, int port, char *errstr, size_t errstr_size)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) {
        snprintf(errstr, errstr_size, "source: cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(errstr, errstr_size, "source: cannot connect to %s:%d: %s", host, port,
                 strerror(err));
    return fd;
}

static int poll_socket(sl_lsrc_t *s, sl_rec_t *recs, int max, int timeout_ms, int *done,
                       char *errstr, size_t errstr_size)
{
    /* The lines returned last time are consumed: drop their bytes. */
    if (s->bstart) {
        memmove(s->buf, s->buf + s->bstart, s->blen - s->bstart);
        s->blen -= s->bstart;
        s->bstart = 0;
    }
    int have_line = s->blen && memchr(s->buf, '\n', s->blen) != NULL;
    if (!have_line && !s->closed) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno != EINTR) {
            snprintf(errstr, errstr_size, "source: %s", strerror(errno));
            return -1;
        }
        if (r > 0) {
            if (SL_GROW(s->buf, s->bcap, s->blen + 65536, 1 << 20)) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
            }
            ssize_t got = recv(s->fd, s->buf + s->blen, s->bcap - s->blen, 0);
            if (got < 0 && errno != EINTR && errno != EAGAIN) {
                snprintf(errstr, errstr_size, "source: reading %s: %s", s->desc, strerror(errno));
                return -1;
            }
            if (got == 0) {
                s->closed = 1;
                sl_log(SL_LOG_INFO, "source", "%s closed the connection", s->desc);
            }
            if (got > 0)
                s->blen += (size_t)got;
        }
    }
    int n = 0;
    size_t at = 0;
    while (n < max && at < s->blen) {
        const char *p = s->buf + at;
        const char *nl = memchr(p, '\n', s->blen - at);
        if (!nl && !s->closed)
            break; /* a line still arriving */
        size_t len = nl ? (size_t)(nl - p) : s->blen - at;
        recs[n++] =
            (sl_rec_t){.payload = p, .len = len, .topic = s->desc, .offset = s->line++, .ts = -1};
        at += len + (nl ? 1 : 0);
    }
    s->bstart = at;
    if (s->closed && at == s->blen)
        *done = 1;
    return n;
}

/* ---- the interface ---- */

sl_err_t sl__lsrc_open(const sl_conf_source_t *c, sl_store_t *store, sl_lsrc_t **out, char *errstr,
                       size_t errstr_size)
{
    sl_lsrc_t *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s) {
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    s->c = c;
    s->fd = -1;
    if (c->kind == SL_SRC_FILES) {
        snprintf(s->desc, sizeof(s->desc), "files in %s", c->path);
        sl_err_t e =
            sl__store_scan(store, SL_CF_META, FILE_PREFIX, FILE_PREFIX_LEN, load_file_pos, s,
                           errstr, errstr_size);
        if (!e && scan_dir(s, errstr, errstr_size) < 0)
            e = SL_ERR_IO;
        if (e) {
            sl__lsrc_close(s);
            return e;
        }
    } else {
        snprintf(s->desc, sizeof(s->desc), "%s:%d", c->host, c->port);
        if ((s->fd = connect_to(c->host, c->port, errstr, errstr_size)) < 0) {
            sl__lsrc_close(s);
            return SL_ERR_IO;
        }
        sl_log(SL_LOG_WARN, "source",
               "socket source %s: lines cannot be read again, so those received but not yet "
               "committed when the job dies are lost (for demos and tests)",
               s->desc);
    }
    *out = s;
    return SL_OK;
}

void sl__lsrc_close(sl_lsrc_t *s)
{
    if (!s)
        return;
    unmap_cur(s);
    for (size_t i = 0; i < s->nfiles; i++)
        free(s->files[i].name);
    free(s->files);
    if (s->fd >= 0)
        close(s->fd);
    free(s->buf);
    free(s);
}

int sl__lsrc_poll(sl_lsrc_t *s, sl_rec_t *recs, int max, int timeout_ms, int available_now,
                  int *done, char *errstr, size_t errstr_size)
{
    *done = 0;
    if (s->c->kind == SL_SRC_FILES)
        return poll_files(s, recs, max, timeout_ms, available_now, done, errstr, errstr_size);
    return poll_socket(s, recs, max, timeout_ms, done, errstr, errstr_size);
}

void sl__lsrc_ack(sl_lsrc_t *s, const sl_rec_t *rec)
{
    /* Records come from the mapped file, and are acknowledged before the next poll. */
    if (s->c->kind != SL_SRC_FILES || !s->map)
        return;
    file_ent_t *f = &s->files[s->cur_idx];
    if (strcmp(f->name, rec->topic) != 0)
        return;
    int64_t end = rec->offset + (int64_t)rec->len;
    if ((size_t)end < s->map_len && s->map[end] == '\n')
        end++; /* the line's newline is consumed with it */
    f->off = end;
    f->dirty = 1;
    if ((size_t)end >= s->map_len)
        f->done = 1;
}

int sl__lsrc_moved(const sl_lsrc_t *s)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        if (s->files[i].dirty)
            return 1;
    }
    return 0;
}

void sl__lsrc_put(sl_lsrc_t *s, sl_store_t *st, sl_store_batch_t *wb)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        file_ent_t *f = &s->files[i];
        if (!f->dirty)
            continue;
        char key[1100];
        uint8_t v[9];
        int kl = snprintf(key, sizeof(key), FILE_PREFIX "%s", f->name);
        sl__be64_put(v, (uint64_t)f->off);
        v[8] = (uint8_t)f->done;
        sl__store_batch_put(wb, st, SL_CF_META, key, (size_t)kl, v, 9);
    }
}

sl_err_t sl__lsrc_marks(const sl_lsrc_t *s,
                        sl_err_t (*fn)(void *opaque, const char *name, const void *v, size_t vlen),
                        void *opaque)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        const file_ent_t *f = &s->files[i];
        if (f->off == 0 && !f->done)
            continue; /* not read yet */
        char name[1100];
        uint8_t v[9];
        snprintf(name, sizeof(name), "file/%s", f->name);
        sl__be64_put(v, (uint64_t)f->off);
        v[8] = (uint8_t)f->done;
        sl_err_t e = fn(opaque, name, v, 9);
        if (e)
            return e;
    }
    return SL_OK;
}

void sl__lsrc_committed(sl_lsrc_t *s)
{
    for (size_t i = 0; i < s->nfiles; i++)
        s->files[i].dirty = 0;
    s->started = 0;
}

const char *sl__lsrc_describe(const sl_lsrc_t *s)
{
    return s->desc;
}
