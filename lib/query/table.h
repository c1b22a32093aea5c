/*
 * table.h - group keys and the batch-local aggregation table.
 *
 * A group key is the group-by values encoded into bytes (a type tag, then the value;
 * integers and timestamps big-endian with the sign bit flipped so byte order is numeric
 * order; strings length-first, so no key is a prefix of another group's). A windowed
 * query's key ends with the window's start, a timestamp value. The
 * table maps key bytes to one entry of accumulators; entries and their keys live in the
 * batch arena, so a record that hits an existing key allocates nothing.
 */
#ifndef SL_TABLE_H
#define SL_TABLE_H

#include "agg.h"
#include "codec/row.h"
#include "util.h"

/** Appends the key of @p row's values at @p slots to @p out. */
sl_err_t sl__key_encode(const sl_val_t *row, const int *slots, int n, sl_buf_t *out);
/**
 * Writes that key into @p buf when it surely fits in @p cap bytes: its length, or 0
 * (then sl__key_encode() takes it).
 */
size_t sl__key_put(const sl_val_t *row, const int *slots, int n, uint8_t *buf, size_t cap);

/* The most bytes sl__key_head() writes. */
#define SL_KEY_HEAD_MAX 16
/**
 * Writes the encoding of one value into @p b (SL_KEY_HEAD_MAX bytes) and returns its
 * length; a string's bytes follow it in a key and are not written.
 */
size_t sl__key_head(const sl_val_t *v, uint8_t *b);
/**
 * Decodes a key of @p n values into @p vals; strings point into @p p.
 * SL_ERR_STATE when the bytes are not such a key.
 */
sl_err_t sl__key_decode(const uint8_t *p, size_t len, int n, sl_val_t *vals);

typedef struct sl_entry {
    uint64_t hash;
    uint32_t klen;
    uint8_t *key;   /* right after the accumulators, in the same allocation */
    int64_t wend;   /* windowed queries: the end of the entry's window */
    sl_acc_t acc[]; /* one per aggregate */
} sl_entry_t;

/* A slot holds its entry's hash, so a probe reads the entry only when the hashes match:
 * one cache miss per record instead of one per slot probed. */
typedef struct sl_table_slot {
    uint64_t hash;
    sl_entry_t *e; /* NULL: empty */
} sl_table_slot_t;

typedef struct sl_table {
    sl_table_slot_t *slots; /* open addressing, linear probing */
    size_t cap;             /* a power of two */
    size_t n;
    sl_entry_t **order; /* entries in the order they were created */
    size_t order_cap;
    int naccs;
    sl_arena_t arena;
} sl_table_t;

sl_err_t sl__table_init(sl_table_t *t, int naccs);
void sl__table_fini(sl_table_t *t);
/** Empties the table and its arena, keeping their memory for the next batch. */
void sl__table_clear(sl_table_t *t);
/** The entry of @p key, or NULL. */
sl_entry_t *sl__table_find(const sl_table_t *t, const uint8_t *key, uint32_t klen);
/** Finds the entry of @p key, creating it (zeroed accumulators) when absent. NULL: no memory. */
sl_entry_t *sl__table_upsert(sl_table_t *t, const uint8_t *key, uint32_t klen);
/** The same with the key's hash (sl__hash) already known. */
sl_entry_t *sl__table_upsert_hashed(sl_table_t *t, const uint8_t *key, uint32_t klen, uint64_t h);
/**
 * Sorts @p n entries by key in the state's byte order (shorter first on a common prefix).
 * Each comparison reads a copy of the keys' first 16 bytes instead of the entries, which
 * with many keys are each a cache miss (200,000 keys: 58 to 15 ms).
 */
void sl__entries_sort(sl_entry_t **v, size_t n);
/* The prefetches are inline (the fold asks for two a record), through sl__prefetch(),
 * which the compiler cannot drop. */

/** Asks the CPU for the slot where the key of hash @p h starts its probe. */
static inline void sl__table_prefetch(const sl_table_t *t, uint64_t h)
{
    sl__prefetch(&t->slots[h & (t->cap - 1)]);
}

/** Starts fetching @p e (its accumulators and key too, up to 256 bytes) into the cache:
 *  for passes over entries in key order, which is random in memory. */
static inline void sl__entry_prefetch(const sl_table_t *t, const sl_entry_t *e)
{
    /* The key's length is not read here (that would wait for the miss): its first 64
     * bytes are taken. */
    size_t size = sizeof(sl_entry_t) + (size_t)t->naccs * sizeof(sl_acc_t) + 64;
    for (size_t off = 0; off < size && off < 256; off += 64)
        sl__prefetch((const char *)e + off);
}

/** Asks the CPU for the entry of hash @p h when its slot is near its home (it reads the
 *  slots: best after sl__table_prefetch() had time to bring them). */
static inline void sl__table_prefetch_entry(const sl_table_t *t, uint64_t h)
{
    size_t m = t->cap - 1;
    for (size_t j = h & m, k = 0; t->slots[j].e && k < 4; j = (j + 1) & m, k++) {
        if (t->slots[j].hash == h) {
            sl__entry_prefetch(t, t->slots[j].e);
            return;
        }
    }
}

#endif
