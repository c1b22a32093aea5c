/*
 * upgrade.h - a state store of an earlier layout brought to this sluice's (layout.h).
 *
 * Layout 1 (sluice before tasks) kept one job's state for all its input under families
 * without a task prefix. It is the state of one task, task 0: copied into layout 2's
 * families with the prefix, its meta renamed under "t/0/", its outbox's rows kept as
 * task 0's result rows, and then the old families dropped. The copy is redone from the
 * start after a crash: the old families stay until "layout" is written, synced, with the
 * last of it. A job split into tasks by partition cannot take layout 1's state, which
 * does not say which partition a key came from: it is refused, saying what to do.
 */
#ifndef SL_UPGRADE_H
#define SL_UPGRADE_H

#include "store.h"

/**
 * Checks the layout of @p st (in directory @p dir) and upgrades a layout 1 store; a new
 * store gets layout 2 written. @p ntasks is the job's number of tasks (a store of layout
 * 1 with state can only become a job of one). SL_ERR_STATE naming what is wrong for a
 * store of a later layout.
 */
sl_err_t sl__upgrade_store(sl_store_t *st, const char *dir, int ntasks, char *errstr,
                           size_t errstr_size);

#endif
