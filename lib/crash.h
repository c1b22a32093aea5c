/*
 * crash.h - named crash points for the exactly-once tests. SLUICE_CRASH_AT=NAME:N (or a
 * comma-separated list of them) makes the process die by SIGKILL, as `kill -9` would, the
 * Nth time it passes the point NAME. SLUICE_STALL_AT=NAME:N:MS makes it sleep MS
 * milliseconds there instead (a stalled process, e.g. to let a transaction time out), and
 * SLUICE_FENCE_AT=NAME:N makes sl__crash_point() return 1 there, where the caller fences
 * its producer as a broker would (mid-publish and mid-reconcile). Without the variables a
 * crash point costs one branch.
 *
 *   before-commit (the batch's state about to be written), mid-publish (half of a batch's
 *   rows queued: with transactions, in a transaction open while the state is written),
 *   after-commit (the state written, its transaction not committed),
 *   after-publish-before-outbox-delete, mid-reconcile
 */
#ifndef SL_CRASH_H
#define SL_CRASH_H

int sl__crash_point(const char *name);

#endif
