/*
 * agg.h - aggregate functions and their running state (accumulators): how a record
 * updates one, how two merge (the batch's delta into the stored state), how they are
 * encoded for RocksDB, and what result value each yields.
 */
#ifndef SL_AGG_H
#define SL_AGG_H

#include "codec/row.h"
#include "util.h"

typedef enum sl_agg_fn {
    SL_AGG_COUNT,
    SL_AGG_SUM,
    SL_AGG_MIN,
    SL_AGG_MAX,
    SL_AGG_AVG,
    SL_AGG_COUNT_DISTINCT,        /* exact: the set of values is kept */
    SL_AGG_APPROX_COUNT_DISTINCT, /* HyperLogLog, 2^p one-byte registers */
    SL_AGG_FIRST,                 /* the value at the earliest event time */
    SL_AGG_LAST,                  /* the value at the latest event time */
} sl_agg_fn_t;

typedef struct sl_agg_spec {
    sl_agg_fn_t fn;
    int slot;          /* input field; -1 for count(*) */
    sl_type_t in_type; /* the input field's type */
    int time_slot;     /* first/last: the event-time field */
    int hll_p;         /* approx_count_distinct: log2 of the register count */
    char *as;          /* output column name */
} sl_agg_spec_t;

/* The values an exact count_distinct has seen: an open-addressing set of their key
 * encodings (table.h), all in an arena or a decoded state value. */
typedef struct sl_dset {
    uint32_t n, cap;
    struct sl_dset_slot {
        uint64_t h;
        uint32_t len;
        const uint8_t *p; /* NULL: empty slot */
    } * slots;
} sl_dset_t;

/* One accumulator: n values seen (non-null ones for a field), their sum, the min/max or
 * first/last value (with its event time in sum.i), the distinct set or HLL registers.
 * The sum of integers is 128 bits, sum.i its low 64 and hi its high 64: it cannot
 * overflow, so a sum or an average is exact whatever the order and batches of its
 * records, and a sum whose result does not fit a long is an error (sl__acc_result). */
typedef struct sl_acc {
    int64_t n;
    union {
        int64_t i;
        double d;
    } sum;
    int64_t hi;
    sl_val_t v; /* a string points into an arena or a decoded state value */
    void *ext;  /* count_distinct: sl_dset_t; approx_count_distinct: 2^p registers */
} sl_acc_t;

/** Adds @p x to the 128-bit integer sum of @p a. */
static inline void sl__acc_add(sl_acc_t *a, int64_t x)
{
    uint64_t lo = (uint64_t)a->sum.i, nlo = lo + (uint64_t)x;
    a->hi = (int64_t)((uint64_t)a->hi + (x < 0 ? UINT64_MAX : 0) + (nlo < lo));
    a->sum.i = (int64_t)nlo;
}

/** 1 when the integer sum of @p a fits a long. */
static inline int sl__acc_sum_fits(const sl_acc_t *a)
{
    return a->hi == (a->sum.i < 0 ? -1 : 0);
}

/** Writes the integer sum of @p a in decimal (at least 41 bytes); its length. */
size_t sl__acc_sum_format(const sl_acc_t *a, char *buf);

/** The register count exponent Spark derives from a relative standard deviation. */
int sl__hll_p_for_rsd(double rsd);

const char *sl__agg_fn_name(sl_agg_fn_t fn);
/** Parses "count", "sum", ...; -1 when unknown. */
int sl__agg_fn_parse(const char *name);
/** The result column's type. */
sl_type_t sl__agg_result_type(const sl_agg_spec_t *spec);

/**
 * Folds one input value (NULL for count(*)) into @p acc; strings are copied to @p arena.
 * @param time the record's event time (first/last; NULL for the others).
 */
sl_err_t sl__acc_update(const sl_agg_spec_t *spec, sl_acc_t *acc, const sl_val_t *v,
                        const sl_val_t *time, sl_arena_t *arena);
/** Folds @p from into @p into (both of @p spec); what @p into keeps of @p from (strings,
 *  sets, registers) is copied to @p arena. */
sl_err_t sl__acc_merge(const sl_agg_spec_t *spec, sl_acc_t *into, const sl_acc_t *from,
                       sl_arena_t *arena);
/**
 * Folds @p older, the accumulator of records that came before those of @p into, into
 * @p into: the same result as folding @p into into @p older (first and last break ties
 * by arrival, which this keeps), without a copy of either.
 */
sl_err_t sl__acc_merge_older(const sl_agg_spec_t *spec, sl_acc_t *into, const sl_acc_t *older,
                             sl_arena_t *arena);
/** The result value of @p acc; null when no value was seen (sum, min, max, avg).
 *  SL_ERR_OVERFLOW (and null) for a sum of integers that does not fit a long. */
sl_err_t sl__acc_result(const sl_agg_spec_t *spec, const sl_acc_t *acc, sl_val_t *out);

/** Appends the encoding of @p n accumulators to @p out. */
sl_err_t sl__accs_encode(const sl_agg_spec_t *specs, int n, const sl_acc_t *accs, sl_buf_t *out);
/**
 * Decodes what sl__accs_encode() wrote. Strings point into @p p; sets and registers are
 * built in @p arena. SL_ERR_STATE when the bytes do not hold @p n accumulators of these
 * specs, SL_ERR_NOMEM when the arena cannot grow.
 */
sl_err_t sl__accs_decode(const sl_agg_spec_t *specs, int n, const uint8_t *p, size_t len,
                         sl_acc_t *accs, sl_arena_t *arena);

#endif
