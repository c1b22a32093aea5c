/*
 * sink_local.c - the file, memory and foreach-batch sinks (see sink_local.h).
 */
#include "sink_local.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/codec_int.h"
#include "commit/outbox.h"
#include "layout.h"
#include "log.h"
#include "output.h"

sl_err_t sl__local_open(sl_local_t *l, const sl_plan_t *plan, const sl_conf_output_t *out,
                        sl_foreach_batch_fn fn, void *opaque, char *errstr, size_t errstr_size)
{
    memset(l, 0, sizeof(*l));
    l->plan = plan;
    l->out = out;
    l->fn = fn;
    l->opaque = opaque;
    pthread_mutex_init(&l->mu, NULL);
    sl__buf_init(&l->mem);
    const sl_conf_output_t *o = out;
    if (o->sink == SL_SINK_FOREACH && !fn) {
        snprintf(errstr, errstr_size,
                 "output.sink is \"foreach\" but no callback was set "
                 "(sl_job_set_foreach_batch); it is for programs that "
                 "embed libsluice");
        return SL_ERR_INVAL;
    }
    if (o->sink == SL_SINK_FILE) {
        if (mkdir(o->path, 0755) != 0 && errno != EEXIST) {
            snprintf(errstr, errstr_size, "output.path %s: cannot create it: %s", o->path,
                     strerror(errno));
            return SL_ERR_IO;
        }
        /* access() alone takes a writable regular file: the first batch would then fail
         * to write its file only after its state was committed. */
        struct stat st;
        int bad = stat(o->path, &st) != 0      ? errno
                  : !S_ISDIR(st.st_mode)       ? ENOTDIR
                  : access(o->path, W_OK) != 0 ? errno
                                               : 0;
        if (bad) {
            snprintf(errstr, errstr_size, "output.path %s: %s", o->path,
                     bad == ENOTDIR ? "not a directory" : strerror(bad));
            return SL_ERR_IO;
        }
    }
    return SL_OK;
}

void sl__local_close(sl_local_t *l)
{
    if (!l->plan)
        return;
    pthread_mutex_destroy(&l->mu);
    sl__buf_fini(&l->mem);
    memset(l, 0, sizeof(*l));
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the file of batch @p seq whole, or not at all. */
static sl_err_t write_file(sl_local_t *l, int64_t seq, const sl_out_row_t *json, size_t n,
                           char *errstr, size_t errstr_size)
{
    const char *dir = l->out->path;
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof(tmp), "%s/.batch-%012" PRId64 ".jsonl.tmp", dir, seq);
    snprintf(final, sizeof(final), "%s/batch-%012" PRId64 ".jsonl", dir, seq);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (write_all(fd, json[i].val, json[i].vlen) < 0 ||
            write_all(fd, (const uint8_t *)"\n", 1) < 0)
            goto fail_fd;
    }
    if (fsync(fd) != 0)
        goto fail_fd;
    close(fd);
    if (rename(tmp, final) != 0)
        goto fail;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself survives a power loss */
        close(dfd);
    }
    return SL_OK;
fail_fd:
    close(fd);
fail:
    snprintf(errstr, errstr_size, "output.path: cannot write %s: %s", final, strerror(errno));
    unlink(tmp);
    return SL_ERR_IO;
}

sl_err_t sl__local_deliver(sl_local_t *l, int64_t seq, const sl_val_t *rows, size_t n,
                           const sl_out_row_t *json, char *errstr, size_t errstr_size)
{
    const sl_plan_t *p = l->plan;
    const sl_conf_output_t *o = l->out;
    switch (o->sink) {
    case SL_SINK_FILE:
        return n ? write_file(l, seq, json, n, errstr, errstr_size) : SL_OK;
    case SL_SINK_FOREACH: {
        sl_batch_t b = {.plan = p, .rows = rows, .n = n};
        l->fn(l->opaque, seq, &b);
        return SL_OK;
    }
    case SL_SINK_MEMORY: {
        sl_err_t e = SL_OK;
        pthread_mutex_lock(&l->mu);
        if (p->mode == SL_MODE_COMPLETE)
            sl__buf_reset(&l->mem);
        for (size_t i = 0; i < n && !e; i++) {
            if (l->mem.len)
                e = sl__buf_append(&l->mem, ",", 1);
            if (!e)
                e = sl__out_json(p, &rows[i * (size_t)p->ncols], &l->mem);
        }
        pthread_mutex_unlock(&l->mu);
        if (e)
            snprintf(errstr, errstr_size, "memory sink: out of memory");
        return e;
    }
    default:
        return SL_OK;
    }
}

char *sl__local_memory_json(sl_local_t *l)
{
    pthread_mutex_lock(&l->mu);
    char *s = malloc(l->mem.len + 3);
    if (s) {
        s[0] = '[';
        if (l->mem.len)
            memcpy(s + 1, l->mem.p, l->mem.len);
        s[l->mem.len + 1] = ']';
        s[l->mem.len + 2] = 0;
    }
    pthread_mutex_unlock(&l->mu);
    return s;
}

/* ---- replay of the outbox ---- */

typedef struct replay {
    sl_local_t *l;
    int64_t seq;   /* the batch being gathered; -1 none */
    sl_buf_t json; /* its rows' JSON, back to back */
    size_t *spans;
    size_t n, cap;
    size_t batches, rows;
    sl_err_t err;
    char *errstr;
    size_t errstr_size;
} replay_t;

/* Rebuilds the values of JSON rows for the callback; strings point into @p docs. */
static sl_err_t parse_rows(const sl_plan_t *p, replay_t *r, json_t **docs, sl_val_t *rows)
{
    for (size_t i = 0; i < r->n; i++) {
        json_error_t je;
        docs[i] = json_loadb((const char *)r->json.p + r->spans[i], r->spans[i + 1] - r->spans[i],
                             JSON_ALLOW_NUL, &je);
        if (!json_is_object(docs[i]))
            return SL_ERR_STATE;
        for (int k = 0; k < p->ncols; k++) {
            json_t *v = json_object_get(docs[i], p->cols[k].name);
            sl_val_t *out = &rows[i * (size_t)p->ncols + (size_t)k];
            if (sl__codec_json_value(v, p->cols[k].type, out) < 0)
                return SL_ERR_STATE;
        }
    }
    return SL_OK;
}

static sl_err_t flush_replay(replay_t *r)
{
    sl_local_t *l = r->l;
    const sl_plan_t *p = l->plan;
    const sl_conf_output_t *o = l->out;
    sl_err_t e = SL_OK;
    if (r->seq < 0)
        return SL_OK;
    if (o->sink == SL_SINK_FILE) {
        sl_out_row_t *js = malloc((r->n ? r->n : 1) * sizeof(*js));
        for (size_t i = 0; js && i < r->n; i++)
            js[i] = (sl_out_row_t){.val = r->json.p + r->spans[i],
                                   .vlen = r->spans[i + 1] - r->spans[i]};
        e = js ? write_file(l, r->seq, js, r->n, r->errstr, r->errstr_size) : SL_ERR_NOMEM;
        free(js);
    } else if (o->sink == SL_SINK_FOREACH) {
        json_t **docs = calloc(r->n + 1, sizeof(*docs));
        sl_val_t *rows = calloc(r->n * (size_t)p->ncols + 1, sizeof(*rows));
        e = docs && rows ? parse_rows(p, r, docs, rows) : SL_ERR_NOMEM;
        if (!e) {
            sl_batch_t b = {.plan = p, .rows = rows, .n = r->n};
            l->fn(l->opaque, r->seq, &b);
        } else {
            snprintf(r->errstr, r->errstr_size, "outbox: batch %" PRId64 " cannot be read back",
                     r->seq);
        }
        for (size_t i = 0; docs && i < r->n; i++)
            json_decref(docs[i]);
        free(docs);
        free(rows);
    }
    r->batches++;
    r->rows += r->n;
    r->n = 0;
    sl__buf_reset(&r->json);
    return e;
}

static int gather(void *opaque, int stream, int64_t seq, uint32_t idx, const uint8_t *p,
                  size_t len)
{
    replay_t *r = opaque;
    sl_out_row_t row;
    (void)stream;
    (void)idx;
    if (sl__outbox_row(p, len, &row) < 0) {
        r->err = SL_ERR_STATE;
        snprintf(r->errstr, r->errstr_size, "outbox: a corrupt entry");
        return 1;
    }
    if (seq != r->seq) {
        if ((r->err = flush_replay(r)))
            return 1;
        r->seq = seq;
    }
    if ((r->err = SL_GROW(r->spans, r->cap, r->n + 2, 256)))
        return 1;
    r->spans[r->n] = r->json.len;
    if (sl__buf_append(&r->json, row.val, row.vlen)) {
        r->err = SL_ERR_NOMEM;
        return 1;
    }
    r->spans[++r->n] = r->json.len;
    return 0;
}

sl_err_t sl__local_replay(sl_local_t *l, sl_store_t *st, sl_store_batch_t *wb, char *errstr,
                          size_t errstr_size)
{
    replay_t r = {.l = l, .seq = -1, .errstr = errstr, .errstr_size = errstr_size};
    sl__buf_init(&r.json);
    sl_err_t e = sl__outbox_scan(st, SL_STREAM_LOCAL, gather, &r, errstr, errstr_size);
    if (!e)
        e = r.err;
    if (!e)
        e = flush_replay(&r);
    if (!e && r.batches) {
        sl_log(SL_LOG_WARN, "sink",
               "%zu batch(es), %zu row(s) left in the outbox by an "
               "interrupted run delivered again",
               r.batches, r.rows);
        e = sl__outbox_delete(st, wb, SL_STREAM_LOCAL, 0, INT64_MAX, errstr, errstr_size);
    }
    sl__buf_fini(&r.json);
    free(r.spans);
    return e;
}

/* ---- the public accessors of a batch ---- */

static const sl_val_t *at(const sl_batch_t *b, size_t row, int col)
{
    if (!b || row >= b->n || col < 0 || col >= b->plan->ncols)
        return NULL;
    return &b->rows[row * (size_t)b->plan->ncols + (size_t)col];
}

SL_API size_t sl_batch_rows(const sl_batch_t *b)
{
    return b ? b->n : 0;
}

SL_API int sl_batch_columns(const sl_batch_t *b)
{
    return b ? b->plan->ncols : 0;
}

SL_API const char *sl_batch_column_name(const sl_batch_t *b, int col)
{
    return b && col >= 0 && col < b->plan->ncols ? b->plan->cols[col].name : NULL;
}

SL_API const char *sl_batch_column_type(const sl_batch_t *b, int col)
{
    return b && col >= 0 && col < b->plan->ncols ? sl__type_name(b->plan->cols[col].type) : NULL;
}

SL_API int sl_batch_is_null(const sl_batch_t *b, size_t row, int col)
{
    const sl_val_t *v = at(b, row, col);
    return !v || v->t == SL_T_NULL;
}

SL_API int64_t sl_batch_long(const sl_batch_t *b, size_t row, int col)
{
    const sl_val_t *v = at(b, row, col);
    return v && (v->t == SL_T_LONG || v->t == SL_T_BOOL || v->t == SL_T_TIMESTAMP) ? v->u.i : 0;
}

SL_API double sl_batch_double(const sl_batch_t *b, size_t row, int col)
{
    const sl_val_t *v = at(b, row, col);
    return v && (v->t == SL_T_DOUBLE || sl__type_integral((sl_type_t)v->t)) ? sl__val_num(v) : 0;
}

SL_API const char *sl_batch_string(const sl_batch_t *b, size_t row, int col, size_t *len)
{
    const sl_val_t *v = at(b, row, col);
    if (!v || v->t != SL_T_STRING)
        return NULL;
    if (len)
        *len = v->n;
    return v->u.s;
}

SL_API char *sl_batch_row_json(const sl_batch_t *b, size_t row)
{
    if (!b || row >= b->n)
        return NULL;
    sl_buf_t out;
    sl__buf_init(&out);
    if (sl__out_json(b->plan, &b->rows[row * (size_t)b->plan->ncols], &out) ||
        sl__buf_append(&out, "", 1)) {
        sl__buf_fini(&out);
        return NULL;
    }
    return (char *)out.p;
}
