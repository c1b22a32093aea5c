/*
 * store_dir.h - the state directory around RocksDB's files (store_dir.c): whether it is
 * whole, whether another process has it, and SLUICE_STATE, the last batch committed.
 */
#ifndef SL_STORE_DIR_H
#define SL_STORE_DIR_H

#include <stdint.h>

#include "store.h"

/**
 * Before RocksDB opens @p dir: refuses (SL_ERR_STATE) a directory whose CURRENT file is
 * missing while it holds data or SLUICE_STATE, or whose SLUICE_STATE is not sluice's;
 * removes the files of a store whose creation was cut short (nothing written, no
 * CURRENT) unless @p read_only. *marked receives the batch SLUICE_STATE names, or -1.
 */
sl_err_t sl__store_dir_check(const char *dir, int read_only, int64_t *marked, char *errstr,
                             size_t errstr_size);
/** Rewrites SLUICE_STATE in place (opening it into *fd, -1 at first) to name @p seq. */
sl_err_t sl__store_dir_mark(int *fd, const char *dir, int64_t seq, char *errstr,
                            size_t errstr_size);
/** Notes that this process opens @p dir; SL_ERR_STATE when it has it open already. */
sl_err_t sl__store_dir_claim(const char *dir, char *errstr, size_t errstr_size);
/** Forgets what sl__store_dir_claim() noted. */
void sl__store_dir_release(const char *dir);

#endif
