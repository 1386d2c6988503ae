/* cluster.h - lathe over Open MPI: the transport module's interface and the
 * sweep protocol between rank 0 and the worker ranks. Implemented in
 * cluster.c (protocol, no MPI headers) and mpi/transport.c (the module,
 * liblathe-mpi.so, the only code that calls MPI; loaded with dlopen when a
 * command is given --mpi, so lathe builds and runs without Open MPI).
 *
 * Roles. Rank 0 runs the recipe (or `lathe resume`) and owns the store; it
 * starts one proxy thread per worker slot of the other ranks (--workers
 * slots per rank) in place of its own workers. A proxy takes a run exactly
 * as a local worker does, sends it (id, plugin, config, resume point) to its
 * slot, and serves that slot until the run ends: the slot's store writes
 * (run_flush's fields, metric points, checkpoint bytes) are applied with
 * run_flush on rank 0, its events go to rank 0's loop, its reads (its own
 * checkpoint, datasets, other runs' checkpoints) are answered from the store,
 * and each reply carries the run's stop, pause and checkpoint requests.
 * A worker slot steps its run with the same code as a local worker, so a run
 * gives the same bytes on any rank, with or without MPI.
 *
 * Messages are byte strings between rank 0 and (rank, slot), tag = slot; each
 * side has one thread per (peer, tag), and every request waits for its reply
 * before the next, so order is MPI's per-pair order.
 *
 * Data parallelism (--data-parallel). Every rank has one slot; rank 0 has one
 * worker, which steps one run at a time to its end as shard 0. When the
 * run's plugin is data-parallel, rank 0 creates (or restores) it, then sends
 * its state (the plugin's save()) to every other rank: rank k creates the
 * same plugin, loads that state and steps in lock-step as shard k, its store
 * reads answered by a proxy thread on rank 0; it writes nothing. The shards
 * meet in host->allreduce on tag DP_TAG: each sends its part to rank 0, which
 * sums them in rank order and sends the sum back. When shard 0's run ends
 * (done, stopped, failed), rank 0 sends STOP to every shard and reads its
 * messages until BYE; a shard whose own run ends first says FIN (with why)
 * and waits for the STOP, so no message outlives its run. */
#ifndef LATHE_CLUSTER_H
#define LATHE_CLUSTER_H

#include <stddef.h>

#define LATHE_MPI_ABI 1

/* The transport: liblathe-mpi.so's one exported symbol, lathe_mpi_module(),
 * returns this table. All calls are thread-safe (MPI_THREAD_MULTIPLE). */
typedef struct lathe_mpi {
  int abi; /* LATHE_MPI_ABI */
  /* MPI_Init_thread with MPI_THREAD_MULTIPLE; rank and size of COMM_WORLD.
   * Returns 0, or -1 with err set (the library, or the thread level refused). */
  int (*init)(int *rank, int *size, char *err, size_t errlen);
  /* The MPI library's version line. */
  const char *(*version)(void);
  /* Send n bytes to dest with tag (blocking until the buffer is reusable).
   * Returns 0 or -1 (n over INT_MAX, or MPI failed). */
  int (*send)(const void *p, size_t n, int dest, int tag);
  /* Receive the next message from src with tag into *p (malloc'd, the
   * caller frees) and *n, waiting at most timeout seconds (< 0: for ever)
   * by polling with a short sleep, never spinning a core. Returns 0, 1 on
   * timeout, or -1. */
  int (*recv)(int src, int tag, void **p, size_t *n, double timeout);
  void (*finalize)(void);
  void (*abort)(int code); /* MPI_Abort(COMM_WORLD): ends every rank */
} lathe_mpi_t;

typedef const lathe_mpi_t *(*lathe_mpi_entry_fn)(void);

#ifndef LATHE_MPI_MODULE /* the core's side */
#include "run.h"

/* Load liblathe-mpi.so (beside the binary, or in ../lib/lathe) and start MPI.
 * Returns 0 with *rank and *size set, or LATHE_EUSAGE with a message saying
 * what is missing. */
int lathe_cluster_init(int *rank, int *size);
/* 1 after lathe_cluster_init succeeded with more than one rank. */
int lathe_cluster_on(void);
/* "Open MPI v4.1.4 ..." when the module loads (without starting MPI), else
 * NULL with the reason in why (for lathe doctor). */
const char *lathe_cluster_probe(char *why, size_t n);
/* End MPI (every rank, after its work). */
void lathe_cluster_finalize(void);
/* A worker rank's life: --workers slots stepping the runs rank 0 sends until
 * rank 0 says quit. threads: numeric threads. Returns 0 or a code. */
int lathe_cluster_serve(int threads, int workers);

/* Slots per rank (every rank is given the same --workers) and whether the
 * job is data-parallel (--data-parallel: one slot per rank). Call before
 * anything else on every rank. */
void lathe_cluster_set_mode(int workers, int data_parallel);
/* 1 on rank 0 of a data-parallel job with more than one rank; the number of
 * ranks (the shards of a data-parallel run). */
int lathe_cluster_dp(void);
int lathe_cluster_size(void);
/* Rank 0: the number of remote worker slots (proxy threads to start). */
int cluster_slots(void);
/* Rank 0, proxy thread for slot k: run r (held, busy) on it until it ends. */
void cluster_proxy(lathe_session_t *s, lathe_run_t *r, int k);
/* Rank 0: tell slot k there is no more work (after the proxy's last run). */
void cluster_quit_slot(int k);

/* A worker rank's forwards for the core's store and event calls (s->remote set). */
int cluster_flush(lathe_run_t *r, lathe_status_t st, const lathe_buf_t *ckpt, int truncate);
void cluster_event(lathe_run_t *r, const lathe_event_t *ev);
int cluster_load(lathe_run_t *r, lathe_buf_t *buf, uint64_t *step, int *found, int64_t *prev);
int64_t cluster_ds_count(lathe_run_t *r, const char *name);
char *cluster_ds_get(lathe_run_t *r, const char *name, int64_t i);
int cluster_run_state(lathe_run_t *r, uint32_t id, lathe_buf_t *out, char plugin[64]);
int cluster_ds_create(lathe_run_t *r, const char *name, const char *schema,
                      const char *const *records, int64_t n);
/* Between chunks: the run's stop, pause and checkpoint requests from rank 0. */
int cluster_sync(lathe_run_t *r);

/* Data parallelism. Rank 0, shard 0 of r (created or restored, live, with
 * r->nshards set): r's state sent to every other rank, which starts shard k,
 * and a proxy thread started for each. Returns 0 or a code (the shards
 * already started are still ended by cluster_dp_end). */
int cluster_dp_begin(lathe_run_t *r);
/* Rank 0, after r ended: STOP to every shard started, their messages read to
 * BYE, their proxies joined. */
void cluster_dp_end(lathe_run_t *r);
/* host->allreduce of a run with r->nshards > 1 (either side). Returns 0 or a
 * code with the message set: LATHE_EINTR on a shard when shard 0 ended the
 * run; on shard 0 a shard's FIN or a malformed part (LATHE_ERUN), or a lost
 * shard (LATHE_EIO, r->dp_lost set). */
int cluster_allreduce(lathe_run_t *r, float *x, size_t n);
/* A worker rank's shard after its run ended with code rc (0: done): FIN
 * unless shard 0 already ended it, STOP awaited, BYE, then its proxy told. */
void cluster_dp_finish(lathe_run_t *r, int rc);
#endif

#endif
