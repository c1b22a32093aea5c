/*
 * util.h - the one home of sluice's generic helpers: a growable byte buffer, a bump
 * arena for per-batch memory, Avro's zigzag varints, big-endian integers, a clock, and
 * bounded string formatting. Nothing here knows about Kafka, Avro schemas or RocksDB.
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dtoa.h"
#include "err.h"

#define SL_INTERNAL __attribute__((visibility("hidden")))
#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- growable buffer: owned bytes that grow on append ---- */
typedef struct sl_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} sl_buf_t;

void sl__buf_init(sl_buf_t *b);
void sl__buf_fini(sl_buf_t *b);
/** Makes room for @p n more bytes; SL_ERR_NOMEM on failure. */
sl_err_t sl__buf_reserve(sl_buf_t *b, size_t n);
sl_err_t sl__buf_append(sl_buf_t *b, const void *p, size_t n);
sl_err_t sl__buf_printf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends @p n bytes as a JSON string literal, quotes included. */
sl_err_t sl__buf_json_string(sl_buf_t *b, const char *s, size_t n);
/** Writes s[0, n) as a quoted, escaped JSON string at @p o, which has room for 6n + 2
 *  bytes; returns the end. */
uint8_t *sl__json_string_put(uint8_t *o, const char *s, size_t n);
static inline void sl__buf_reset(sl_buf_t *b)
{
    b->len = 0;
}

/* ---- arena: bump allocation, freed all at once at the end of a batch ---- */
typedef struct sl_arena_block sl_arena_block_t;
typedef struct sl_arena {
    sl_arena_block_t *head;
    size_t used_total;
} sl_arena_t;

void sl__arena_init(sl_arena_t *a);
/** Frees every block but the first, and rewinds. */
void sl__arena_reset(sl_arena_t *a);
void sl__arena_fini(sl_arena_t *a);
/** 16-byte aligned memory valid until the next reset; NULL when out of memory. */
void *sl__arena_alloc(sl_arena_t *a, size_t n);
void *sl__arena_dup(sl_arena_t *a, const void *p, size_t n);

/* ---- the first error of many places ---- */

/* Why something cannot go on, set from places that cannot return an error (callbacks,
 * threads, the per-record path): the first reason set wins, later ones are dropped. */
typedef struct sl_first_err {
    sl_err_t err; /* SL_OK while none */
    char msg[1024];
} sl_first_err_t;

/** Records @p err and its message unless an error is recorded already. */
void sl__first_err_set(sl_first_err_t *f, sl_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** The same with the arguments in @p ap. */
void sl__first_err_vset(sl_first_err_t *f, sl_err_t err, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/** Forgets the recorded error. */
static inline void sl__first_err_clear(sl_first_err_t *f)
{
    f->err = SL_OK;
    f->msg[0] = 0;
}

/* ---- growing arrays ---- */

/* One array that sl__grow() resizes: the address of its pointer, and its element size. */
typedef struct sl_grow {
    void *arrp;
    size_t elem;
} sl_grow_t;

/**
 * Makes room for @p need elements in each of @p n arrays that share the capacity *cap
 * (parallel arrays, one index into all), doubling it from @p first; each array keeps its
 * contents. SL_ERR_NOMEM when one cannot grow: *cap stays, and the arrays that did grow are
 * only larger.
 */
sl_err_t sl__grow(size_t *cap, size_t need, size_t first, const sl_grow_t *arrays, int n);
/** sl__grow() for one array @p p (a pointer variable) of capacity @p cap (a size_t). */
#define SL_GROW(p, cap, need, first)                                                           \
    sl__grow(&(cap), (need), (first), &(const sl_grow_t){&(p), sizeof(*(p))}, 1)

/** Writes @p v in decimal to @p buf (at least 21 bytes, not terminated); its length. */
size_t sl__i64_format(int64_t v, char *buf);

/* ---- Avro varints (zigzag) ---- */
/** Encodes @p v into @p out (at least 10 bytes); returns the bytes written. */
static inline size_t sl__zz_encode(int64_t v, uint8_t *out)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (u & ~0x7fULL) {
        out[n++] = (uint8_t)((u & 0x7f) | 0x80);
        u >>= 7;
    }
    out[n++] = (uint8_t)u;
    return n;
}

/** The value a zigzag varint's 64 bits stand for. */
static inline int64_t sl__zz_value(uint64_t u)
{
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

/** Decodes a zigzag varint at *pp (not past @p end); advances *pp. -1 when malformed. */
static inline int sl__zz_decode(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t u = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end)
            return -1;
        uint8_t c = *p++;
        if (shift == 63 && (c & 0x7e))
            return -1; /* more than 64 bits */
        u |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *pp = p;
            *out = sl__zz_value(u);
            return 0;
        }
    }
    return -1;
}

/* ---- prefetching ---- */

/* Asks the CPU for the cache line at @p p, in a way the compiler keeps: GCC 12 treats
 * __builtin_prefetch as free of effects and deleted a loop of them once it was inlined
 * into its caller (the fold's entry prefetch: 40% more CPU on the consuming thread). */
static inline void sl__prefetch(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#elif defined(__aarch64__)
    __asm__ volatile("prfm pldl1keep, %0" : : "Q"(*(const char *)p));
#else
    __builtin_prefetch(p);
#endif
}

/* ---- big-endian integers ---- */
static inline void sl__be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint64_t sl__be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void sl__be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t sl__be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- time ---- */
/** Monotonic milliseconds. */
int64_t sl__now_ms(void);

/* ---- strings ---- */
/** snprintf that appends to what @p buf already holds, never overflowing @p size. */
void sl__strlcatf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Copies with truncation and a terminating NUL (like BSD strlcpy). */
size_t sl__strlcpy(char *dst, const char *src, size_t size);
/** Job files and schemas are read whole, up to this size. */
#define SL_FILE_MAX (16u << 20)
/**
 * Reads a whole regular file of at most @p max bytes into a NUL-terminated heap string
 * that the caller frees. SL_ERR_NOTFOUND, SL_ERR_IO, or SL_ERR_INVAL for a file that is
 * not a regular one (a device, a FIFO, a directory) or is larger than @p max; @p why
 * says which.
 */
sl_err_t sl__read_file(const char *path, size_t max, char **out, size_t *len, char *why,
                       size_t why_size);
/** 64-bit hash of @p n bytes (xxHash3). */
uint64_t sl__hash(const void *p, size_t n);

#endif
