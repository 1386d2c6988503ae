/* runimpl.h - what run.c, host.c, worker.c and session.c share; not a public
 * header (run.h is). The thread rules of run.h's fields apply throughout. */
#ifndef LATHE_RUNIMPL_H
#define LATHE_RUNIMPL_H

#include "run.h"

#define CKPT_VERSION 2u

/* Make room for one more element in arr (n used, cap allocated), doubling;
 * evaluates to 0 or LATHE_ENOMEM (arr unchanged then). */
#define GROW(arr, n, cap)                                                                          \
  __extension__({                                                                                  \
    int grow_rc_ = 0;                                                                              \
    if ((n) >= (cap)) {                                                                            \
      int grow_cap_ = (cap) ? 2 * (cap) : 16;                                                      \
      __typeof__(arr) grow_p_ = realloc((arr), grow_cap_ * sizeof *(arr));                         \
      if (grow_p_)                                                                                 \
        (arr) = grow_p_, (cap) = grow_cap_;                                                        \
      else                                                                                         \
        grow_rc_ = LATHE_ENOMEM;                                                                   \
    }                                                                                              \
    grow_rc_;                                                                                      \
  })

/* The slot for metric name in a latest-value list, appended if new (NULL if
 * out of memory). */
lathe_point_t *run_point_slot(lathe_point_t **list, int *n, int *cap, const char *name);

/* The host service table (host.c) and the options every run has (run.c). */
extern const lathe_host_t run_host;
extern const lathe_opt_t run_host_opts[];

/* session.c: an event to the loop at step (run_event: the run's current step,
 * the step in progress for logs); text is owned by the event. */
void run_event_at(lathe_session_t *s, lathe_ev_type_t type, lathe_run_t *r, uint64_t step,
                  const char *name, double value, char *text);
void run_event(lathe_session_t *s, lathe_ev_type_t type, lathe_run_t *r, const char *name,
               double value, char *text);

/* run.c: LATHE_TEST_KILL read (once), and its kill if this is its run and step; the record and
 * pending metrics (and ckpt, if given) written in one transaction with status
 * st; a run's stop request with sess->mu held; freeing a run. */
void run_test_kill_init(void);
void run_test_kill(const lathe_run_t *r, int in_write);
int run_flush(lathe_run_t *r, lathe_status_t st, const lathe_buf_t *ckpt, int truncate);
void run_stop_locked(lathe_run_t *r, lathe_stop_t how, const char *why);
void run_free(lathe_run_t *r);

/* host.c: a metric point at step (and the best so far); a context's children freed. */
void run_record_metric(lathe_run_t *r, uint64_t step, const char *name, double v);
void run_note_best(lathe_run_t *r, uint64_t step, double v);
void run_free_kids(lathe_ctx_t *c);
/* host.c: records i, i+1, ... of dataset name (rank 0's store) passed to each
 * (bytes, not NUL-terminated), at most max of them and about max_bytes, in one
 * read transaction; *got how many (LATHE_ENOTFOUND when there is none at i). */
int run_dataset_range(lathe_run_t *r, const char *name, int64_t i, uint32_t max, size_t max_bytes,
                      int (*each)(const void *rec, size_t n, void *arg), void *arg, uint32_t *got);

/* worker.c: a checkpoint's header read from b; the worker thread; run r's
 * newest checkpoint (or r->from_ckpt's) read from the store into buf, with
 * the main metric's best up to it set on r (*found 0: none; *prev: the
 * checkpoint before it, -1 if none); r stepped to its end on this thread (a
 * worker rank's slot); a run's end. */
int run_ckpt_header(lathe_buf_t *b, uint64_t *step, uint32_t *count, int *damaged);
void *run_worker_main(void *arg);
int run_load(lathe_run_t *r, lathe_buf_t *buf, uint64_t *step, int *found, int64_t *prev);
void run_drive(lathe_run_t *r);
/* A worker rank's data-parallel shard (r->shard > 0): r created, shard 0's
 * state loaded from state, stepped until shard 0 ends it (cluster.h). */
void run_shard_drive(lathe_run_t *r, lathe_buf_t *state);
/* The end of a run whose last state is written: status st and code err
 * recorded, r out of the workers' list, its END event (with r->errmsg) sent. */
void run_end(lathe_run_t *r, lathe_status_t st, int err);

/* run.c: run id made on a worker rank from what rank 0 sent (plugin name,
 * config JSON); owned by the caller (run_free), not the session's. */
int lathe_run_adopt(lathe_session_t *s, uint32_t id, const char *plugin, const char *cfg_json,
                    lathe_run_t **out);

#endif
