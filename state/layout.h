/*
 * layout.h - the keys of a state store (layout 2): state kept per task.
 *
 * A job's work is cut into tasks (one per input partition number, or one for all of them),
 * and everything a task keeps is under keys of its own, so that one task can be restored,
 * handed over or dropped without touching the others:
 *
 *   task_agg     task (2 bytes, big-endian) + group key [+ window start]
 *   task_expiry  task + window end (8 bytes, sign bit flipped) + the task_agg key
 *   task_outbox  stream (2 bytes: a task, or SL_STREAM_LOCAL) + batch (8) + first row (4)
 *                + 'c'
 *   meta         "t/<task>/<name>" for what a task commits with its state (its batch
 *                sequence and nonce, positions "pos/<topic>/<partition>", files read
 *                "file/<name>", watermarks, changelog offset); and for the store as a
 *                whole "layout", "seq" (the last batch committed here, as SLUICE_STATE
 *                names it), "job" and "query" (the fingerprint and the query layout).
 *
 * Layout 1 (sluice before tasks) kept the same under families "agg", "expiry", "outbox"
 * without the task prefix and its task's meta without "t/0/"; it is upgraded in place
 * (commit/upgrade.c).
 */
#ifndef SL_LAYOUT_H
#define SL_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* The layout this sluice writes, stored under meta "layout". */
#define SL_LAYOUT 2
/* Bytes of the task prefix of task_agg and task_expiry keys. */
#define SL_TASK_PREFIX 2
/* The most tasks a job has (partitions of an input topic it can split by). */
#define SL_TASKS_MAX 65535
/* The outbox stream of the local sinks' rows (files, foreach), outside any task. */
#define SL_STREAM_LOCAL 0xffff
/* An outbox key: stream, batch, first row, 'c'. */
#define SL_OUTBOX_KEY 15

static inline void sl__task_put(uint8_t *p, int task)
{
    p[0] = (uint8_t)(task >> 8);
    p[1] = (uint8_t)task;
}

static inline int sl__task_get(const uint8_t *p)
{
    return (int)p[0] << 8 | p[1];
}

/**
 * The meta key of @p name (printf-style) for @p task ("t/<task>/<name>"); its length, or
 * -1 when @p size cannot hold it (the buffer then holds a cut, terminated key).
 */
int sl__meta_key(char *buf, size_t size, int task, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** The prefix of @p task's meta keys ("t/<task>/"); its length. */
int sl__meta_prefix(char *buf, size_t size, int task);

/** The expiry index key of state key @p key (task prefix first) whose window ends at
 *  @p end, into @p b (emptied). */
sl_err_t sl__expiry_key(sl_buf_t *b, int64_t end, const uint8_t *key, size_t klen);

#endif
