/*
 * util.c - the generic helpers declared in util.h: buffers, arenas, clocks, strings.
 * The arena is what keeps the per-record path free of malloc: every record's key bytes
 * and strings live in the batch arena, which is rewound once per batch.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

void sl__buf_init(sl_buf_t *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
}

void sl__buf_fini(sl_buf_t *b)
{
    free(b->p);
    sl__buf_init(b);
}

sl_err_t sl__buf_reserve(sl_buf_t *b, size_t n)
{
    if (b->len + n <= b->cap)
        return SL_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return SL_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return SL_OK;
}

sl_err_t sl__buf_append(sl_buf_t *b, const void *p, size_t n)
{
    if (sl__buf_reserve(b, n) != SL_OK)
        return SL_ERR_NOMEM;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return SL_OK;
}

sl_err_t sl__buf_printf(sl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sl__buf_reserve(b, (size_t)n + 1) != SL_OK)
        return SL_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SL_OK;
}

sl_err_t sl__buf_json_string(sl_buf_t *b, const char *s, size_t n)
{
    /* Worst case every byte becomes \u00XX. */
    if (sl__buf_reserve(b, n * 6 + 2) != SL_OK)
        return SL_ERR_NOMEM;
    b->len = (size_t)(sl__json_string_put(b->p + b->len, s, n) - b->p);
    return SL_OK;
}

uint8_t *sl__json_string_put(uint8_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = c;
        } else if (c < 0x20) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = (uint8_t)hex[c >> 4];
            *o++ = (uint8_t)hex[c & 15];
        } else {
            *o++ = c;
        }
    }
    *o++ = '"';
    return o;
}

struct sl_arena_block {
    sl_arena_block_t *next;
    size_t size;
    size_t used;
    _Alignas(16) uint8_t data[];
};

#define ARENA_BLOCK (1u << 20)

void sl__arena_init(sl_arena_t *a)
{
    a->head = NULL;
    a->used_total = 0;
}

void sl__arena_reset(sl_arena_t *a)
{
    if (!a->head)
        return;
    /* Keep the oldest block (the tail) so the next batch starts without a malloc. */
    sl_arena_block_t *b = a->head;
    while (b->next) {
        sl_arena_block_t *n = b->next;
        free(b);
        b = n;
    }
    b->used = 0;
    a->head = b;
    a->used_total = 0;
}

void sl__arena_fini(sl_arena_t *a)
{
    sl_arena_block_t *b = a->head;
    while (b) {
        sl_arena_block_t *n = b->next;
        free(b);
        b = n;
    }
    sl__arena_init(a);
}

void *sl__arena_alloc(sl_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    sl_arena_block_t *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        sl_arena_block_t *nb = malloc(sizeof(*nb) + size);
        if (!nb)
            return NULL;
        nb->size = size;
        nb->used = 0;
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used_total += n;
    return p;
}

void *sl__arena_dup(sl_arena_t *a, const void *p, size_t n)
{
    void *d = sl__arena_alloc(a, n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

int64_t sl__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sl__strlcatf(char *buf, size_t size, const char *fmt, ...)
{
    if (!buf || !size)
        return;
    size_t len = strnlen(buf, size);
    if (len >= size - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

size_t sl__strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

sl_err_t sl__read_file(const char *path, size_t max, char **out, size_t *len, char *why,
                       size_t why_size)
{
    *out = NULL;
    /* Not blocking on open: a FIFO named by mistake is refused below instead of waiting
     * for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int en = errno;
        snprintf(why, why_size, "%s", en == ENOENT ? "no such file" : strerror(en));
        return en == ENOENT ? SL_ERR_NOTFOUND : SL_ERR_IO;
    }
    struct stat st;
    sl_err_t err = SL_OK;
    if (fstat(fd, &st) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        err = SL_ERR_IO;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "not a regular file");
        err = SL_ERR_INVAL;
    } else if ((uint64_t)st.st_size > max) {
        snprintf(why, why_size, "%lld bytes, more than the %zu allowed",
                 (long long)st.st_size, max);
        err = SL_ERR_INVAL;
    }
    sl_buf_t b;
    sl__buf_init(&b);
    /* The size is checked again while reading: a file may grow after fstat(). */
    while (!err) {
        if ((err = sl__buf_reserve(&b, 8192)) != SL_OK) {
            snprintf(why, why_size, "out of memory");
            break;
        }
        ssize_t n = read(fd, b.p + b.len, b.cap - b.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_size, "%s", strerror(errno));
            err = SL_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        if (b.len > max) {
            snprintf(why, why_size, "more than the %zu bytes allowed", max);
            err = SL_ERR_INVAL;
        }
    }
    close(fd);
    if (!err && (err = sl__buf_append(&b, "", 1)) != SL_OK)
        snprintf(why, why_size, "out of memory");
    if (err) {
        sl__buf_fini(&b);
        return err;
    }
    *out = (char *)b.p;
    if (len)
        *len = b.len - 1;
    return SL_OK;
}

uint64_t sl__hash(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

void sl__first_err_vset(sl_first_err_t *f, sl_err_t err, const char *fmt, va_list ap)
{
    if (f->err)
        return;
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    f->err = err;
}

void sl__first_err_set(sl_first_err_t *f, sl_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__first_err_vset(f, err, fmt, ap);
    va_end(ap);
}

sl_err_t sl__grow(size_t *cap, size_t need, size_t first, const sl_grow_t *arrays, int n)
{
    if (need <= *cap)
        return SL_OK;
    size_t nc = *cap ? *cap : first;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return SL_ERR_NOMEM;
        nc *= 2;
    }
    for (int i = 0; i < n; i++) {
        if (nc > SIZE_MAX / arrays[i].elem)
            return SL_ERR_NOMEM;
        void *old;
        memcpy(&old, arrays[i].arrp, sizeof(old));
        void *p = realloc(old, nc * arrays[i].elem);
        if (!p)
            return SL_ERR_NOMEM;
        memcpy(arrays[i].arrp, &p, sizeof(p));
    }
    *cap = nc;
    return SL_OK;
}

size_t sl__i64_format(int64_t v, char *buf)
{
    char tmp[20];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    return len;
}
