/*
 * tk_state.h - what the unit tests of the state's users share: records put into a real
 * store's outbox, as a batch committed and not yet published leaves them.
 */
#ifndef SL_TK_STATE_H
#define SL_TK_STATE_H

#include <criterion/criterion.h>
#include <string.h>

#include "commit/outbox.h"
#include "store.h"

/** Commits @p n records of batch @p seq of @p stream to the outbox of @p store, each of
 *  destination @p dest with key @p key (may be NULL) and the value @p vals[i]. */
static inline void tk_outbox_put(sl_store_t *store, int stream, int64_t seq, sl_dest_t dest,
                                 const char *key, const char *const *vals, size_t n)
{
    char err[512] = "";
    sl_store_batch_t *wb = sl__store_batch_new();
    sl_buf_t out;
    sl__buf_init(&out);
    sl_outbox_writer_t w;
    sl__outbox_begin(&w, store, wb, stream, seq, &out);
    for (size_t i = 0; i < n; i++) {
        size_t off, len;
        cr_assert_eq(sl__outbox_add(&w, dest, key, key ? strlen(key) : 0, vals[i],
                                    strlen(vals[i]), &off, &len),
                     SL_OK);
    }
    sl__outbox_end(&w);
    cr_assert_eq(sl__store_write(store, wb, 1, err, sizeof(err)), SL_OK, "%s", err);
    sl__buf_fini(&out);
    sl__store_batch_destroy(wb);
}

#endif
