/* run.h - runs, the worker thread that steps them, and the session that owns
 * both together with the libuv loop and the store. Implemented in run.c
 * (records, ownership, creation, stop requests), worker.c (stepping,
 * checkpoints, resume), host.c (the plugins' host services, instances) and
 * session.c (the loop, events, signals).
 *
 * Threads. The loop thread owns the session, Lua and all output; it never
 * computes. Worker threads (--workers, default 1) step the active runs in
 * bounded chunks (round robin, so lathe.spawn'd runs advance side by side; a
 * run is held by one worker at a time), write metrics in batched transactions
 * and checkpoints, and report events back through a mutex-protected queue plus
 * uv_async_send (a wake-up that carries no data).
 *
 * Ownership. The session owns every run it created (sess->runs) and frees
 * them in lathe_session_close. Fields marked [worker] are touched only by the
 * worker while the run is active; [loop] only by the loop thread; [any] under
 * sess->mu.
 */
#ifndef LATHE_RUN_H
#define LATHE_RUN_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "../storage/store.h"
#include "config.h"
#include "lathe.h"

typedef enum {
  RUN_PENDING,
  RUN_RUNNING,
  RUN_DONE,
  RUN_FAILED,
  RUN_INTERRUPTED,
  RUN_DIVERGED
} lathe_status_t;

const char *lathe_status_name(lathe_status_t s);

typedef struct lathe_session lathe_session_t;
#define LATHE_MAX_WORKERS 64   /* --workers, per process */
#define LATHE_MAX_THREADS 1024 /* worker threads of one session (rank 0's proxies) */

typedef struct lathe_point {
  char name[64];
  uint64_t step;
  double value, time;
} lathe_point_t;

struct lathe_ctx { /* what a plugin's host calls receive */
  struct lathe_run *run;
  lathe_cfg_t *cfg;
  struct lathe_child **kids; /* instances created through this context (freed with its owner) */
  int nkids, capkids;
};

typedef struct lathe_child { /* plugins created by a plugin (environments...) */
  const lathe_plugin_t *p;
  void *self;
  struct lathe_ctx ctx;
  lathe_cfg_t cfg;
} lathe_child_t;

typedef enum { EV_START, EV_METRIC, EV_LOG, EV_CKPT, EV_END } lathe_ev_type_t;

typedef struct lathe_event {
  lathe_ev_type_t type;
  uint32_t run;
  uint64_t step;
  double time, value;
  char name[64];
  char *text; /* owned: log line, or END summary JSON */
} lathe_event_t;

typedef struct lathe_run {
  lathe_session_t *sess;
  uint32_t id;
  const lathe_plugin_t *plugin;
  lathe_cfg_t cfg;
  struct lathe_ctx ctx;
  void *self;         /* [worker] plugin instance */
  int live, diverged; /* [worker] instance created; non-finite metric seen */
  int resume;         /* start from the latest checkpoint */
  int64_t from_ckpt;  /* resume from this checkpoint's step instead (-1: the latest) */
  uint64_t seed;
  int64_t step;          /* [worker] steps done */
  _Atomic int64_t total; /* [any] atomic: budget if known (the worker sets it) */
  int64_t perf_step;     /* [worker] step and time of the last perf/steps_per_sec */
  double perf_time;
  double dp_wait; /* [worker] seconds in host->allreduce since perf_time */
  int64_t ckpt_every, ckpt_keep;
  int keep_best;           /* ckpt_keep_best: a checkpoint at each new best, kept */
  int have_best;           /* [worker] the main metric's best so far (finite values) */
  double best;             /* [worker] */
  int64_t best_step;       /* [worker] */
  int64_t best_ckpt;       /* [worker] step of the kept best checkpoint, -1 if none */
  uint64_t last_ckpt_step; /* [worker] */
  int64_t ckpt_step;       /* [worker] step and time of the newest checkpoint (record) */
  double ckpt_time;
  double created, last_flush;
  _Atomic int status;             /* lathe_status_t */
  atomic_int stop_req;            /* a lathe_stop_t, set once by lathe_run_stop */
  char stop_why[256];             /* [any] LATHE_STOP_FAIL's reason, written before stop_req */
  atomic_int ckpt_req, pause_req; /* set by lathe_run_checkpoint_now, lathe_run_pause */
  int err;                        /* [worker] code when failed */
  char errmsg[512];               /* [worker] while active, then [loop] */
  int starting;                   /* [worker] in begin(): log events wait in prelog */
  int paused;                     /* [worker] holding at a pause request (said once) */
  lathe_event_t *prelog;          /* [worker] */
  int nprelog, capprelog;
  lathe_point_t *pending; /* [worker] metrics not yet in the store */
  int npending, cappending;
  lathe_point_t *last; /* [worker] last value of each metric (summary) */
  int nlast, caplast;
  char *record;        /* [any] the latest run record JSON */
  lathe_point_t *view; /* [loop] latest value of each metric, from events */
  int nview, capview;
  int64_t view_step; /* [loop] step of the latest event */
  double view_t0;    /* [loop] time and step the run (re)started at */
  int64_t view_step0;
  int lua_waiters;   /* [loop] coroutines waiting on this run */
  atomic_int active; /* [any] in the workers' list (written under sess->mu; read anywhere) */
  int busy;          /* [any] held by a worker right now */
  int slot;          /* on a worker rank: its slot (cluster.h); unused elsewhere */
  /* --data-parallel (cluster.h): this process's shard of the run and the
   * shard count (0 of 1 otherwise); [worker] on a shard: shard 0 ended the
   * run; on shard 0: a shard was lost (the run ends interrupted) */
  int shard, nshards, dp_ended, dp_lost;
} lathe_run_t;

struct lathe_session {
  uv_loop_t loop;
  uv_async_t wake;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t tick;
  lathe_store_t *store;
  int json_out; /* JSON lines on stdout */
  int progress; /* human progress on stderr */
  int threads;
  uint64_t seed_offset;
  int check_only; /* lathe check: validate, start nothing */
  char **sets;    /* --set key=value, in order */
  int *set_used, nsets;
  char recipe_path[4096];
  char recipe_hash[17];
  char *recipe_text; /* owned: the recipe's bytes, stored once with its first run */
  size_t recipe_len;
  int recipe_stored;  /* the text is in the store (written with the session's first run) */
  lathe_run_t **runs; /* [loop] every run created by this session */
  int nruns, capruns;
  /* workers */
  int workers; /* how many (set before init; default 1) */
  pthread_t worker[LATHE_MAX_THREADS];
  int worker_started;
  atomic_int worker_next; /* each worker thread's index, taken as it starts */
  int proxy;              /* rank 0 under --mpi: the workers are proxies of remote slots */
  int remote;             /* a worker rank's session: no loop, no store (cluster.c) */
  int dp;                 /* rank 0 under --data-parallel: one worker, shards on every rank */
  int rr;                 /* [any] round-robin position in active */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  lathe_run_t **active; /* [any] runs the worker steps */
  int nactive, capactive;
  int quit;
  lathe_event_t *events; /* [any] queue to the loop */
  int nevents, capevents;
  /* signals */
  int signal;       /* first stop signal seen (SIGINT/SIGTERM), 0 if none */
  int signal_early; /* a signal acted on before libuv's callback for it (then -1) */
  void (*on_end)(lathe_session_t *, lathe_run_t *); /* [loop] run finished */
  void (*on_event)(lathe_session_t *, const lathe_event_t *);
  void (*on_print)(lathe_session_t *, const char *text); /* [loop] a recipe's print() */
  void (*on_hangup)(lathe_session_t *);                  /* [loop] SIGHUP: the terminal is gone */
  void (*on_abort)(lathe_session_t *); /* about to _exit (second Ctrl-C): restore the terminal */
  void *ui;                            /* the dashboard, when one shows the session */
  void *lua;                           /* the recipe's state (lua/l_lathe.c) */
  double t0;
};

/* Set up the loop, signals, and (unless store is NULL) the worker. */
int lathe_session_init(lathe_session_t *s, lathe_store_t *store);
/* Stop the worker (runs still active are interrupted with a checkpoint),
 * close the loop, free every run. The store is not closed. */
void lathe_session_close(lathe_session_t *s);

/* Create a run of plugin with config given as key/text pairs (the session's
 * --set overrides and seed offset apply). Validates everything and writes the
 * run record; does not start it. where names the caller for messages. */
int lathe_run_new(lathe_session_t *s, const char *plugin, const char *const *keys,
                  const char *const *vals, int n, const char *where, lathe_run_t **out);
/* Re-create run id from its record, to continue from its latest checkpoint. */
int lathe_run_reopen(lathe_session_t *s, uint32_t id, lathe_run_t **out);
/* Hand a run to the worker. */
int lathe_run_start(lathe_run_t *r);
typedef enum {
  LATHE_STOP_INTERRUPT = 1, /* checkpoint and stop: status interrupted, resumable */
  LATHE_STOP_FAIL = 2       /* stop without a checkpoint: status failed, with a reason */
} lathe_stop_t;

/* Ask run r to stop at its next step boundary (any thread; the first request
 * wins, later ones do nothing). why is the error LATHE_STOP_FAIL records
 * ("stopped: the recipe failed"); ignored for LATHE_STOP_INTERRUPT. This,
 * lathe_run_pause and lathe_run_checkpoint_now are the only ways anything but
 * the worker changes a run. */
void lathe_run_stop(lathe_run_t *r, lathe_stop_t how, const char *why);
/* Toggle a hold at the next step boundary; returns 1 if the run now holds. */
int lathe_run_pause(lathe_run_t *r);
/* Ask for a checkpoint at the next step boundary. */
void lathe_run_checkpoint_now(lathe_run_t *r);
/* 1 while the workers still hold r (any thread). */
int lathe_run_active(const lathe_run_t *r);
/* The run's step budget when known, else 0 (any thread). */
int64_t lathe_run_total(const lathe_run_t *r);
/* How an ended run turns out for its command: 0, LATHE_ENAN (diverged),
 * LATHE_ESTORE (the store refused a write) or LATHE_ERUN (any other failure),
 * with a message "run N failed: ..." set. */
int lathe_run_outcome(const lathe_run_t *r);
/* What SIGINT/SIGTERM do: the first asks every run to checkpoint and stop
 * (the command then exits 130/143); a second SIGINT exits at once. */
void lathe_session_interrupt(lathe_session_t *s, int signum);
/* SIGINT or SIGTERM received by this process (0: none yet), seen before the
 * loop runs its callback: for code that runs long on the loop thread (a
 * recipe in a pure-Lua loop) to stop itself. */
int lathe_signal_pending(void);
/* Act on signal signum now (as its callback will, which then does nothing). */
void lathe_session_signal_seen(lathe_session_t *s, int signum);
/* Ask every active run to checkpoint and stop. */
void lathe_session_stop_all(lathe_session_t *s);
/* Number of runs the worker still holds. */
int lathe_session_active(lathe_session_t *s);

/* A plugin instance outside the worker's control: an environment created by
 * a plugin (run set: freed with the run) or by lathe.env / tests (run NULL:
 * seed 0, metrics dropped). kv are "key=value" options. Free with
 * lathe_instance_free. */
int lathe_instance_new(const char *name, const char *const *kv, int nkv, lathe_run_t *run,
                       lathe_child_t **out);
void lathe_instance_free(lathe_child_t *ch);
/* The plugin state in run id's newest checkpoint (its header skipped),
 * appended to out; plugin gets the run's plugin name. LATHE_ENOTFOUND (with
 * the message set) for a missing run or checkpoint. */
int lathe_run_state(lathe_store_t *st, uint32_t id, lathe_buf_t *out, char plugin[64]);
/* Create dataset name in st (NULL: only run and check) from generator plugin
 * with config "key=value" strings, in one transaction (storage/dataset.h's
 * lathe_dataset_stream); *count receives the number of records. */
int lathe_dataset_generate(lathe_store_t *st, const char *plugin, const char *const *kv, int nkv,
                           const char *name, int64_t *count);
/* The host service table handed to plugins. */
const lathe_host_t *lathe_host(void);

double lathe_now(void);
/* A checkpoint's checksum (the trailing u64 of format 2): 64-bit multiply-xor
 * over 8-byte words; detects truncation and flipped bits, not tampering. */
uint64_t lathe_ckpt_sum(const void *data, size_t n);
/* 1 if n bytes read as a checkpoint: its header, and its checksum (format 2). */
int lathe_ckpt_ok(const void *data, size_t n);
/* 64-bit FNV-1a as 16 hex digits into out[17]. */
void lathe_hash_hex(const void *data, size_t n, char out[17]);

#endif
