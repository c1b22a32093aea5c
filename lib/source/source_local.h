/*
 * source_local.h - the sources that are not Kafka, as Spark has them: a directory of
 * files and a TCP socket, each line of either a record.
 *
 * Files: each file that appears in the directory is read once, in the order of its
 * modification time (then name). How far each file has been read lives in the state
 * ("file/<name>" in the meta family: the byte offset reached, and whether the file is
 * done), written in the batch's WriteBatch like Kafka positions, so a restart neither
 * skips nor repeats a line. Files must appear whole (written elsewhere, then renamed into
 * the directory); names starting with '.' or '_' are ignored, as Spark's file source does.
 *
 * Socket: the job connects to host:port and reads lines. Nothing can be read again, so
 * lines received but not yet committed when the job dies are lost; the job says so when
 * it starts. With an available-now trigger it reads until the peer closes the connection.
 */
#ifndef SL_SOURCE_LOCAL_H
#define SL_SOURCE_LOCAL_H

#include "conf/conf.h"
#include "source.h"
#include "store.h"

typedef struct sl_lsrc sl_lsrc_t;

/** Opens the source @p c describes (files or socket), borrowing it until closed; the
 *  files source reads its progress from @p store. */
sl_err_t sl__lsrc_open(const sl_conf_source_t *c, sl_store_t *store, sl_lsrc_t **out, char *errstr,
                       size_t errstr_size);
void sl__lsrc_close(sl_lsrc_t *s);

/**
 * Fills up to @p max records, waiting at most @p timeout_ms for the first. Records stay
 * valid until the next call. *done becomes 1 when an available-now run has read
 * everything (the files present at start; the socket until its peer closed it).
 * Returns the number of records, or -1 with @p errstr.
 */
int sl__lsrc_poll(sl_lsrc_t *s, sl_rec_t *recs, int max, int timeout_ms, int available_now,
                  int *done, char *errstr, size_t errstr_size);

/** Marks @p rec as consumed: its position may be committed. */
void sl__lsrc_ack(sl_lsrc_t *s, const sl_rec_t *rec);

/** 1 when positions moved since the last commit. */
int sl__lsrc_moved(const sl_lsrc_t *s);

/** Adds the positions that moved to @p wb; sl__lsrc_committed() once it is written. */
void sl__lsrc_put(sl_lsrc_t *s, sl_store_t *st, sl_store_batch_t *wb);
/** Calls @p fn with every file's progress as its task meta entry ("file/<name>" and its 9
 *  bytes), for the changelog's marker, until it fails. */
sl_err_t sl__lsrc_marks(const sl_lsrc_t *s,
                        sl_err_t (*fn)(void *opaque, const char *name, const void *v, size_t vlen),
                        void *opaque);
void sl__lsrc_committed(sl_lsrc_t *s);

/** What the source is, for the job's start-up line ("files in DIR", "socket HOST:PORT"). */
const char *sl__lsrc_describe(const sl_lsrc_t *s);

#endif
