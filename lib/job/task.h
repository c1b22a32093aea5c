/*
 * task.h - a job's tasks: the units its state, positions, batches and output are kept in,
 * and that move between instances.
 *
 * A job that reads co-partitioned input has a task per partition number (task p reads
 * partition p of every input topic); any other job has one task for everything it reads.
 * A task is opened on the instance the consumer group gives its partitions to: its
 * producer fences whoever had it before, its changelog partition is read from where the
 * local state knows it to where it ends (restoring what is missing or newer, or all of it
 * into an empty state directory), what a crash left unpublished in its outbox is
 * published, and only then are its partitions read. A task is closed when its partitions
 * go: the batch under way is committed first.
 */
#ifndef SL_TASK_H
#define SL_TASK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "util.h"

/* A task's life on an instance. The consuming thread moves it, but for OPENING to READY
 * (or FAILED), which the opener thread makes. */
typedef enum {
    SL_TASK_IDLE = 0, /* not open here */
    SL_TASK_OPENING,  /* assigned; the opener restores it, its partitions are held */
    SL_TASK_READY,    /* opened; its partitions are about to be released */
    SL_TASK_ACTIVE,   /* open: its records are read and committed */
    SL_TASK_PARKED,   /* revoked by an eager rebalance, kept open until the next assignment */
    SL_TASK_FENCED,   /* its producer was fenced: held until the group says whose it is */
    SL_TASK_FAILED    /* the opener could not open it (the job stops) */
} sl_task_state_t;

/* One task, as the consuming thread knows it (the commit thread reads what a hand-over
 * gave it, and sets fenced; the opener thread owns an OPENING task). */
typedef struct sl_task {
    int id;
    atomic_int state; /* sl_task_state_t */
    int64_t fenced_check_ms; /* FENCED: when the group was last asked */
    int64_t seq;        /* its last batch committed to the store (0: none) */
    uint64_t nonce;     /* that batch's nonce */
    /* Spark's two watermarks (see job_int.h) and the largest event time, per task */
    int64_t wm, wm_late, maxev;
    int64_t last_input_ms; /* when its input last arrived (idle_timeout) */
    uint64_t batch_records; /* records of it in the batch under way */
    int64_t clog;        /* the changelog offset after its last published batch; -1 unknown */
    int64_t clog_stored; /* what the store says of it */
    atomic_int fenced;   /* its producer was fenced by another instance: close it */
} sl_task_t;

struct sl_job;
struct sl_marker;

/** The task of input partition @p partition. */
int sl__task_of(const struct sl_job *job, int partition);
/** Allocates the job's @p n tasks, all idle; SL_ERR_NOMEM. */
sl_err_t sl__tasks_init(struct sl_job *job, int n);
void sl__tasks_fini(struct sl_job *job);
/**
 * Opens the tasks @p ids (@p n of them): loads each one's local state, opens its producer,
 * brings its state up to what the changelog has and publishes what its outbox holds.
 * Fills @p errstr and returns the error of the first that cannot be opened; the others
 * stay open.
 */
sl_err_t sl__task_open(struct sl_job *job, const int *ids, int n, char *errstr,
                       size_t errstr_size);
/** Closes a task (its producer; its state stays in the store for when it comes back). */
void sl__task_close(struct sl_job *job, int id);

/* The opener: a thread that opens tasks beside the reading and committing of the others
 * (a restore may take long; the consumer must go on polling its group). */
typedef struct sl_opener {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int *queue; /* tasks to open */
    size_t n, cap;
    int busy, started;
    atomic_int stop;
    sl_first_err_t fatal; /* why a task could not be opened (the consuming thread reports it) */
} sl_opener_t;

/** Starts the job's opener thread; SL_ERR_NOMEM or the thread's error. */
sl_err_t sl__opener_start(struct sl_job *job);
/** Stops it (an open under way stops reading at once) and joins it. */
void sl__opener_stop(struct sl_job *job);
/** Has the opener open task @p id (it becomes OPENING, then READY). */
void sl__opener_request(struct sl_job *job, int id);
/** Waits until the opener has nothing queued and nothing under way. */
void sl__opener_wait(struct sl_job *job);
/**
 * On the consuming thread, between consume calls: releases the partitions of tasks the
 * opener made READY, takes up a fenced task again when the group says it is still this
 * instance's, and reports a task that could not be opened. An error stops the job.
 */
sl_err_t sl__tasks_poll(struct sl_job *job, char *errstr, size_t errstr_size);
/**
 * After task @p id's producer was fenced or failed while this instance still has the
 * task: a new producer (fencing the old one), and what of the outbox Kafka lacks
 * published. SL_ERR_BUSY when another instance of the job published past it.
 */
sl_err_t sl__task_recover(struct sl_job *job, int id, char *errstr, size_t errstr_size);
/** A random nonce for a task's batch. */
uint64_t sl__task_nonce(void);
/** Adds task @p id's complete meta (positions, watermarks, batch) to @p m, the marker of
 *  its batch about to commit. */
sl_err_t sl__task_snapshot(struct sl_job *job, int id, struct sl_marker *m);

#endif
