/* cluster.c - sweeps over Open MPI ranks: loading the transport module, rank
 * 0's proxies and the worker ranks' slots (cluster.h says who does what).
 * No MPI header here: every message goes through the module's send/recv. */
#include "cluster.h"

#include <dlfcn.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "nn/nn.h"
#include "registry.h"
#include "runimpl.h"

enum { /* message kinds, the first byte of every message */
       M_RUN = 1,
       M_QUIT,
       M_REPLY,
       M_FLUSH,
       M_EVENTS,
       M_END,
       M_LOAD,
       M_DSCOUNT,
       M_DSGET,
       M_STATE,
       M_DSCREATE,
       M_SYNC
};

enum {              /* data parallelism: messages on DP_TAG */
       D_PART = 64, /* a shard's part of an allreduce: n floats */
       D_SUM,       /* rank 0's sum back */
       D_STOP,      /* rank 0: the run ended */
       D_FIN,       /* a shard: its run ended first (i32 code, its message) */
       D_BYE        /* a shard: nothing more from it for this run */
};
#define DP_TAG   32000 /* MPI promises tags up to 32767; slots use 0..workers-1 */
#define DS_BATCH 4096  /* dataset records per reply to a slot */

static const lathe_mpi_t *mpi;
static int my_rank, n_ranks, per_rank = 1; /* worker slots per rank (--workers) */
static int dp_mode;                        /* --data-parallel */

/* ---- the module ------------------------------------------------------------------- */

static void *module_open(char *why, size_t n) {
  const char *where[] = {"%s/liblathe-mpi.so", "%s/../lib/lathe/liblathe-mpi.so"};
  char path[PATH_MAX];
  void *dl = NULL;
  for (int i = 0; i < 2 && !dl; i++) {
    snprintf(path, sizeof path, where[i], lathe_exe_dir());
    if (!access(path, R_OK)) {
      /* RTLD_GLOBAL: Open MPI's own components resolve libmpi's symbols */
      dl = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
      if (!dl) snprintf(why, n, "%s", dlerror());
    } else if (i == 0)
      snprintf(why, n,
               "lathe was built without Open MPI (no liblathe-mpi.so beside it); install "
               "openmpi-bin and libopenmpi-dev, then make");
  }
  return dl;
}

static const lathe_mpi_t *module_table(void *dl, char *why, size_t n) {
  lathe_mpi_entry_fn f = (lathe_mpi_entry_fn)dlsym(dl, "lathe_mpi_module");
  const lathe_mpi_t *t = f ? f() : NULL;
  if (!t || t->abi != LATHE_MPI_ABI) {
    snprintf(why, n, "liblathe-mpi.so is from another build of lathe (rebuild it)");
    return NULL;
  }
  return t;
}

const char *lathe_cluster_probe(char *why, size_t n) {
  void *dl = module_open(why, n);
  const lathe_mpi_t *t = dl ? module_table(dl, why, n) : NULL;
  return t ? t->version() : NULL; /* MPI_Get_library_version needs no MPI_Init */
}

int lathe_cluster_init(int *rank, int *size) {
  char why[512] = "";
  void *dl = module_open(why, sizeof why);
  if (dl) mpi = module_table(dl, why, sizeof why);
  if (!mpi) return lathe_seterr(LATHE_EUSAGE, "--mpi: %s", why);
  if (mpi->init(&my_rank, &n_ranks, why, sizeof why)) {
    mpi = NULL;
    return lathe_seterr(LATHE_EUSAGE, "--mpi: %s", why);
  }
  *rank = my_rank, *size = n_ranks;
  return 0;
}

int lathe_cluster_on(void) {
  return mpi && n_ranks > 1;
}

/* rank 0, per slot: told to quit; lost (slot k's proxy alone writes [k]) */
static unsigned char quit_sent[LATHE_MAX_THREADS], dead[LATHE_MAX_THREADS];

int lathe_cluster_dp(void) {
  return lathe_cluster_on() && my_rank == 0 && dp_mode;
}

int lathe_cluster_size(void) {
  return mpi ? n_ranks : 1;
}

void lathe_cluster_finalize(void) {
  if (!mpi) return;
  if (my_rank == 0) /* the slots not told yet */
    for (int k = 0; k < (n_ranks - 1) * per_rank; k++) cluster_quit_slot(k);
  mpi->finalize();
  mpi = NULL;
}

/* ---- messages --------------------------------------------------------------------- */

/* n bytes as a string: a uint32 length, then the bytes (a dataset record as
 * run_dataset_range passes it). Returns b->err, LATHE_EDATA from 4 GiB. */
static int put_bytes(const void *p, size_t n, void *arg) {
  lathe_buf_t *b = arg;
  uint32_t k = (uint32_t)n;
  if (n >= UINT32_MAX) return b->err = LATHE_EDATA;
  LATHE_PUT(b, k);
  lathe_buf_put(b, p, n);
  return b->err;
}

static void put_str(lathe_buf_t *b, const char *s) {
  uint32_t none = UINT32_MAX;
  if (s)
    put_bytes(s, strlen(s), b);
  else
    LATHE_PUT(b, none);
}

/* A string (malloc'd; NULL for a NULL one or a short message, b->err then set). */
static char *get_str(lathe_buf_t *b) {
  uint32_t n;
  LATHE_GET(b, n);
  if (b->err || n == UINT32_MAX) return NULL;
  char *s = n <= lathe_buf_left(b) ? malloc((size_t)n + 1) : NULL;
  if (!s) {
    b->err = LATHE_ECKPT;
    return NULL;
  }
  lathe_buf_get(b, s, n);
  s[n] = 0;
  return s;
}

static void get_str_into(lathe_buf_t *b, char *out, size_t cap) {
  char *s = get_str(b);
  snprintf(out, cap, "%s", s ? s : "");
  free(s);
}

static void put_points(lathe_buf_t *b, const lathe_point_t *p, int n) {
  uint32_t k = (uint32_t)n;
  LATHE_PUT(b, k);
  lathe_buf_put(b, p, (size_t)n * sizeof *p);
}

static int get_points(lathe_buf_t *b, lathe_point_t **p, int *n, int *cap) {
  uint32_t k;
  LATHE_GET(b, k);
  if (b->err || k > lathe_buf_left(b) / sizeof **p) return b->err = LATHE_ECKPT;
  if ((int)k > *cap) {
    lathe_point_t *q = realloc(*p, k * sizeof *q);
    if (!q) return b->err = LATHE_ENOMEM;
    *p = q, *cap = (int)k;
  }
  if (k) lathe_buf_get(b, *p, k * sizeof **p);
  for (uint32_t i = 0; i < k; i++) (*p)[i].name[sizeof(*p)->name - 1] = 0;
  *n = (int)k;
  return b->err;
}

static int send_buf(lathe_buf_t *b, int dest, int tag) {
  if (b->err) return lathe_seterr(LATHE_ENOMEM, "cluster: out of memory for a message");
  if (mpi->send(b->p, b->n, dest, tag))
    return lathe_seterr(LATHE_EIO, "cluster: sending %zu bytes to rank %d failed", b->n, dest);
  return 0;
}

/* The next message from src on tag into b (owned by b), waiting at most
 * timeout seconds (< 0: for ever); 1 on timeout. */
static int recv_wait(lathe_buf_t *b, int src, int tag, uint8_t *kind, double timeout) {
  void *p;
  size_t n;
  lathe_buf_free(b);
  int rc = mpi->recv(src, tag, &p, &n, timeout);
  if (rc == 1) return 1;
  if (rc) return lathe_seterr(LATHE_EIO, "cluster: receiving from rank %d failed", src);
  b->p = p, b->n = b->cap = n;
  LATHE_GET(b, *kind);
  return b->err ? lathe_seterr(LATHE_EIO, "cluster: an empty message from rank %d", src) : 0;
}

static int recv_buf(lathe_buf_t *b, int src, int tag, uint8_t *kind) {
  return recv_wait(b, src, tag, kind, -1);
}

/* How long a proxy waits for its slot's next message once this process is
 * being terminated: mpirun sends SIGTERM to every rank, then SIGKILL a
 * second later (odls_base_sigkill_timeout); a slot silent that long after
 * the stop went out is taken as dead, its run marked interrupted. */
#define LOST_AFTER 0.6

/* ---- rank 0: proxies ------------------------------------------------------------- */

int cluster_slots(void) {
  return lathe_cluster_on() && my_rank == 0 && !dp_mode ? (n_ranks - 1) * per_rank : 0;
}

static void slot_addr(int k, int *rank, int *tag) {
  *rank = 1 + k / per_rank, *tag = k % per_rank;
}

/* The run's requests, as every reply carries them (none to a shard: shard 0
 * acts on them). */
static void put_flags(lathe_buf_t *b, lathe_run_t *r, int shard) {
  if (shard) {
    int32_t zero = 0;
    LATHE_PUT(b, zero), LATHE_PUT(b, zero), LATHE_PUT(b, zero);
    put_str(b, "");
    return;
  }
  pthread_mutex_lock(&r->sess->mu);
  int32_t stop = atomic_load(&r->stop_req), ck = atomic_exchange(&r->ckpt_req, 0),
          pause = atomic_load(&r->pause_req);
  LATHE_PUT(b, stop), LATHE_PUT(b, ck), LATHE_PUT(b, pause);
  put_str(b, r->stop_why);
  pthread_mutex_unlock(&r->sess->mu);
}

static void get_flags(lathe_buf_t *b, lathe_run_t *r) {
  int32_t stop, ck, pause;
  char why[256];
  LATHE_GET(b, stop), LATHE_GET(b, ck), LATHE_GET(b, pause);
  get_str_into(b, why, sizeof why);
  if (b->err) return;
  if (stop && !atomic_load(&r->stop_req)) lathe_run_stop(r, (lathe_stop_t)stop, why);
  if (ck) atomic_store(&r->ckpt_req, 1);
  atomic_store(&r->pause_req, pause);
}

static void reply_start(lathe_buf_t *b, lathe_run_t *r, int rc, int shard) {
  uint8_t kind = M_REPLY;
  int32_t code = rc;
  LATHE_PUT(b, kind), LATHE_PUT(b, code);
  put_str(b, rc ? lathe_lasterr() : "");
  put_flags(b, r, shard);
}

/* A FLUSH: the slot's copy of what run_flush writes, applied to rank 0's run. */
static int apply_flush(lathe_run_t *r, lathe_buf_t *m) {
  int32_t st, truncate, has_ckpt, have_best;
  int64_t step, total, ckpt_step, best_step, best_ckpt;
  double ckpt_time, best;
  LATHE_GET(m, st), LATHE_GET(m, truncate), LATHE_GET(m, step), LATHE_GET(m, total);
  LATHE_GET(m, ckpt_step), LATHE_GET(m, ckpt_time), LATHE_GET(m, have_best);
  LATHE_GET(m, best), LATHE_GET(m, best_step), LATHE_GET(m, best_ckpt);
  get_str_into(m, r->errmsg, sizeof r->errmsg);
  get_points(m, &r->last, &r->nlast, &r->caplast);
  get_points(m, &r->pending, &r->npending, &r->cappending);
  LATHE_GET(m, has_ckpt);
  if (m->err || st < RUN_PENDING || st > RUN_DIVERGED || step < 0 || ckpt_step < 0)
    return lathe_seterr(LATHE_EIO, "cluster: run %u: a malformed store write", r->id);
  r->step = step, r->ckpt_step = ckpt_step, r->ckpt_time = ckpt_time;
  atomic_store(&r->total, total);
  r->have_best = have_best, r->best = best, r->best_step = best_step, r->best_ckpt = best_ckpt;
  lathe_buf_t ck = {m->p + m->off, m->n - m->off, 0, 0, 0};
  return run_flush(r, (lathe_status_t)st, has_ckpt ? &ck : NULL, truncate);
}

/* A batch of events from the slot, to rank 0's loop. */
static void apply_events(lathe_session_t *s, lathe_run_t *r, lathe_buf_t *m) {
  while (lathe_buf_left(m) && !m->err) {
    uint8_t type;
    uint64_t step;
    double value;
    char name[64];
    LATHE_GET(m, type), LATHE_GET(m, step), LATHE_GET(m, value);
    get_str_into(m, name, sizeof name);
    char *text = get_str(m);
    if (m->err || type > EV_CKPT) {
      free(text);
      break;
    }
    run_event_at(s, (lathe_ev_type_t)type, r, step, name[0] ? name : NULL, value, text);
  }
}

/* The run ended on its slot, its last state already written. */
static void apply_end(lathe_run_t *r, lathe_buf_t *m) {
  int32_t st, err;
  uint64_t step;
  LATHE_GET(m, st), LATHE_GET(m, err), LATHE_GET(m, step);
  char *text = get_str(m);
  if (m->err || st < RUN_PENDING || st > RUN_DIVERGED) st = RUN_FAILED, err = LATHE_EIO;
  snprintf(r->errmsg, sizeof r->errmsg, "%s", text ? text : "");
  free(text);
  r->step = (int64_t)step;
  run_end(r, (lathe_status_t)st, err);
}

/* The proxy lost its slot (the transport failed, or its rank is gone): the
 * run is interrupted at its last checkpoint, as a killed process leaves it. */
static void lost(lathe_run_t *r, int k) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s", lathe_lasterr());
  snprintf(r->errmsg, sizeof r->errmsg, "worker slot %d lost: %.400s", k, msg);
  r->npending = 0; /* points past the last checkpoint: resume makes them again */
  run_flush(r, RUN_INTERRUPTED, NULL, 0);
  run_end(r, RUN_INTERRUPTED, LATHE_EIO);
}

/* A run's message to (rank, tag): the run, its resume point and requests;
 * for a shard also its index, the count and shard 0's state. */
static int send_run(lathe_run_t *r, int rank, int tag, int32_t resume, int64_t from, int shard,
                    const lathe_buf_t *state) {
  lathe_buf_t b = {0};
  uint8_t kind = M_RUN;
  int32_t sh = shard, nsh = shard ? r->nshards : 1;
  json_object *cfg = lathe_cfg_json(&r->cfg);
  LATHE_PUT(&b, kind), LATHE_PUT(&b, r->id), LATHE_PUT(&b, resume), LATHE_PUT(&b, from);
  put_str(&b, r->plugin->name);
  put_str(&b, json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
  json_object_put(cfg);
  put_flags(&b, r, shard);
  LATHE_PUT(&b, sh), LATHE_PUT(&b, nsh);
  if (state) lathe_buf_put(&b, state->p, state->n);
  int rc = send_buf(&b, rank, tag);
  lathe_buf_free(&b);
  return rc;
}

/* Serve slot k's requests for run r until its END (0) or a failure (a code,
 * the message set). A shard (quit not NULL) only reads: its store writes and
 * END are not the run's; and it may rightly say nothing for as long as it
 * computes, so its proxy is given up only when *quit is set. */
static int serve(lathe_session_t *s, lathe_run_t *r, int k, atomic_int *quit) {
  int shard = quit != NULL;
  int rank, tag, rc = 0;
  slot_addr(k, &rank, &tag);
  lathe_buf_t b = {0}, m = {0};
  uint8_t kind;
  double silent_since = 0;
  while (!rc) {
    int w = recv_wait(&m, rank, tag, &kind, 0.2);
    if (w == 1 && shard) {
      if (!atomic_load(quit)) continue;
      rc = lathe_seterr(LATHE_EIO, "rank %d: its shard is lost", rank);
      break;
    }
    if (w == 1) {                            /* nothing yet: a dead slot while terminating? */
      if (!lathe_signal_pending()) continue; /* (s->signal is the loop thread's) */
      if (!silent_since) silent_since = lathe_now();
      if (lathe_now() - silent_since < LOST_AFTER) continue;
      rc = lathe_seterr(LATHE_EIO, "rank %d sent nothing for %.1f s after the stop", rank,
                        LOST_AFTER);
      break;
    }
    if ((rc = w)) break;
    silent_since = 0;
    lathe_buf_free(&b);
    lathe_clearerr();
    int code = 0;
    if (shard && kind != M_END && kind != M_EVENTS && kind != M_DSCOUNT && kind != M_DSGET &&
        kind != M_STATE)
      kind = 0; /* a shard writes nothing */
    switch (kind) {
    case M_EVENTS:
      if (!shard) apply_events(s, r, &m);
      continue;
    case M_END:
      if (!shard) apply_end(r, &m);
      lathe_buf_free(&m);
      return 0;
    case M_FLUSH:
      code = apply_flush(r, &m);
      reply_start(&b, r, code, 0);
      break;
    case M_SYNC:
      reply_start(&b, r, 0, 0);
      break;
    case M_LOAD: {
      lathe_buf_t ck = {0};
      uint64_t step = 0;
      int found = 0;
      int64_t prev = -1;
      code = run_load(r, &ck, &step, &found, &prev);
      int32_t f = found, hb = r->have_best;
      reply_start(&b, r, code, 0);
      LATHE_PUT(&b, f), LATHE_PUT(&b, step), LATHE_PUT(&b, prev), LATHE_PUT(&b, hb);
      LATHE_PUT(&b, r->best), LATHE_PUT(&b, r->best_step);
      lathe_buf_put(&b, ck.p, ck.n);
      lathe_buf_free(&ck);
      break;
    }
    case M_DSCOUNT: {
      char *name = get_str(&m);
      int64_t n = name ? run_host.dataset_count(&r->ctx, name) : LATHE_EIO;
      reply_start(&b, r, n < 0 ? (int)n : 0, shard);
      LATHE_PUT(&b, n);
      free(name);
      break;
    }
    case M_DSGET: { /* records i, i+1, ... up to DS_BATCH of them or ~1 MiB, one read */
      int64_t i;
      char *name = get_str(&m);
      LATHE_GET(&m, i);
      lathe_buf_t recs = {0};
      uint32_t got = 0;
      /* i comes from the slot: a record index, with room for the batch after it */
      code = !name || m.err || i < 0 || i > INT64_MAX - DS_BATCH
                 ? LATHE_EIO
                 : run_dataset_range(r, name, i, DS_BATCH, 1 << 20, put_bytes, &recs, &got);
      reply_start(&b, r, got ? 0 : code ? code : LATHE_ENOTFOUND, shard);
      LATHE_PUT(&b, got);
      lathe_buf_put(&b, recs.p, recs.n);
      lathe_buf_free(&recs);
      free(name);
      break;
    }
    case M_STATE: {
      uint32_t id;
      char plugin[64] = "";
      lathe_buf_t out = {0};
      LATHE_GET(&m, id);
      code = m.err ? LATHE_EIO : run_host.run_checkpoint(&r->ctx, id, &out, plugin);
      reply_start(&b, r, code, shard);
      put_str(&b, plugin);
      lathe_buf_put(&b, out.p, out.n);
      lathe_buf_free(&out);
      break;
    }
    case M_DSCREATE: {
      char *name = get_str(&m), *schema = get_str(&m);
      int64_t n = 0;
      LATHE_GET(&m, n);
      char **recs = !m.err && n >= 0 && (uint64_t)n <= lathe_buf_left(&m) / 4
                        ? calloc((size_t)n + 1, sizeof *recs)
                        : NULL;
      for (int64_t i = 0; recs && i < n; i++) recs[i] = get_str(&m);
      code = !recs || m.err || !name
                 ? lathe_seterr(LATHE_EIO, "cluster: a malformed dataset")
                 : run_host.dataset_create(&r->ctx, name, schema, (const char *const *)recs, n);
      reply_start(&b, r, code, 0);
      for (int64_t i = 0; recs && i < n; i++) free(recs[i]);
      free(recs), free(name), free(schema);
      break;
    }
    default:
      rc = lathe_seterr(LATHE_EIO, "cluster: run %u: unknown message %d from rank %d", r->id, kind,
                        rank);
      continue;
    }
    rc = send_buf(&b, rank, tag);
  }
  lathe_buf_free(&b), lathe_buf_free(&m);
  return rc;
}

void cluster_proxy(lathe_session_t *s, lathe_run_t *r, int k) {
  int rank, tag;
  slot_addr(k, &rank, &tag);
  if (dead[k]) { /* its rank is gone: the run ends where its last checkpoint left it */
    lathe_seterr(LATHE_EIO, "rank %d is gone", rank);
    lost(r, k);
    return;
  }
  if (send_run(r, rank, tag, r->resume, r->from_ckpt, 0, NULL) || serve(s, r, k, NULL)) {
    dead[k] = 1;
    lost(r, k);
  }
}

void cluster_quit_slot(int k) {
  if (k < LATHE_MAX_THREADS && (quit_sent[k]++ || dead[k]))
    return; /* (slots past the proxies: once, from finalize) */
  int rank, tag;
  slot_addr(k, &rank, &tag);
  uint8_t kind = M_QUIT;
  mpi->send(&kind, 1, rank, tag);
}

/* ---- worker ranks: slots ---------------------------------------------------------- */

/* One slot: its tag, the lock that keeps each request next to its reply (a
 * plugin's threads may call the host at once) and the events not yet sent. */
typedef struct {
  int tag;
  pthread_mutex_t mu;
  lathe_buf_t events;
  int nevents;
  lathe_session_t *s;
  /* the records of the run's last dataset read: [first, first + n) of name */
  char *ds_name, **ds_recs;
  int64_t ds_first;
  int ds_n;
} slot_t;

static void ds_cache_clear(slot_t *sl) {
  for (int i = 0; i < sl->ds_n; i++) free(sl->ds_recs[i]);
  free(sl->ds_recs), free(sl->ds_name);
  sl->ds_recs = NULL, sl->ds_name = NULL, sl->ds_n = 0;
}

static slot_t *slots;

static slot_t *slot_of(lathe_run_t *r) {
  return &slots[r->slot];
}

/* with the slot's lock held */
static int send_events(slot_t *sl) {
  if (!sl->nevents) return 0;
  int rc = send_buf(&sl->events, 0, sl->tag);
  lathe_buf_free(&sl->events);
  sl->nevents = 0;
  return rc;
}

static void msg_start(lathe_buf_t *b, uint8_t kind) {
  LATHE_PUT(b, kind);
}

/* Send request b (freed) and wait for its reply into m (the caller frees
 * it): rc from rank 0 with its message, the run's requests applied. The
 * events not yet sent go first, in the same hold of the slot's lock. */
static int request(lathe_run_t *r, lathe_buf_t *b, lathe_buf_t *m) {
  slot_t *sl = slot_of(r);
  pthread_mutex_lock(&sl->mu);
  int rc = send_events(sl);
  if (!rc) rc = send_buf(b, 0, sl->tag);
  lathe_buf_free(b);
  uint8_t kind = 0;
  if (!rc) rc = recv_buf(m, 0, sl->tag, &kind);
  pthread_mutex_unlock(&sl->mu);
  if (rc) return rc;
  int32_t code;
  char msg[512];
  LATHE_GET(m, code);
  get_str_into(m, msg, sizeof msg);
  get_flags(m, r);
  if (m->err || kind != M_REPLY)
    return lathe_seterr(LATHE_EIO, "cluster: run %u: a malformed reply from rank 0", r->id);
  return code ? lathe_seterr(code, "%s", msg) : 0;
}

int cluster_flush(lathe_run_t *r, lathe_status_t st, const lathe_buf_t *ckpt, int truncate) {
  lathe_buf_t b = {0}, m = {0};
  int32_t s32 = st, tr = truncate, has = ckpt != NULL, hb = r->have_best;
  int64_t total = atomic_load(&r->total);
  msg_start(&b, M_FLUSH);
  LATHE_PUT(&b, s32), LATHE_PUT(&b, tr), LATHE_PUT(&b, r->step), LATHE_PUT(&b, total);
  LATHE_PUT(&b, r->ckpt_step), LATHE_PUT(&b, r->ckpt_time), LATHE_PUT(&b, hb);
  LATHE_PUT(&b, r->best), LATHE_PUT(&b, r->best_step), LATHE_PUT(&b, r->best_ckpt);
  put_str(&b, r->errmsg);
  put_points(&b, r->last, r->nlast);
  put_points(&b, r->pending, r->npending);
  LATHE_PUT(&b, has);
  if (ckpt) lathe_buf_put(&b, ckpt->p, ckpt->n);
  int rc = request(r, &b, &m);
  lathe_buf_free(&m);
  return rc;
}

void cluster_event(lathe_run_t *r, const lathe_event_t *ev) {
  slot_t *sl = slot_of(r);
  pthread_mutex_lock(&sl->mu);
  if (ev->type == EV_END) { /* after every event before it, and the final write */
    lathe_buf_t b = {0};
    int32_t st = atomic_load(&r->status), err = (int32_t)ev->value;
    send_events(sl);
    msg_start(&b, M_END);
    LATHE_PUT(&b, st), LATHE_PUT(&b, err), LATHE_PUT(&b, ev->step);
    put_str(&b, ev->text);
    send_buf(&b, 0, sl->tag);
    lathe_buf_free(&b);
  } else {
    lathe_buf_t *b = &sl->events;
    uint8_t type = (uint8_t)ev->type;
    if (!sl->nevents) msg_start(b, M_EVENTS);
    LATHE_PUT(b, type), LATHE_PUT(b, ev->step), LATHE_PUT(b, ev->value);
    put_str(b, ev->name), put_str(b, ev->text);
    if (++sl->nevents >= 4096 || b->n > (1 << 20)) send_events(sl);
  }
  pthread_mutex_unlock(&sl->mu);
  free(ev->text);
}

int cluster_sync(lathe_run_t *r) {
  lathe_buf_t b = {0}, m = {0};
  msg_start(&b, M_SYNC);
  int rc = request(r, &b, &m);
  lathe_buf_free(&m);
  return rc;
}

int cluster_load(lathe_run_t *r, lathe_buf_t *buf, uint64_t *step, int *found, int64_t *prev) {
  lathe_buf_t b = {0}, m = {0};
  msg_start(&b, M_LOAD);
  int rc = request(r, &b, &m);
  int32_t f = 0, hb = 0;
  LATHE_GET(&m, f), LATHE_GET(&m, *step), LATHE_GET(&m, *prev), LATHE_GET(&m, hb);
  LATHE_GET(&m, r->best), LATHE_GET(&m, r->best_step);
  if (!rc && m.err) rc = lathe_seterr(LATHE_EIO, "cluster: run %u: a malformed checkpoint", r->id);
  if (!rc) {
    *found = f, r->have_best = hb;
    lathe_buf_put(buf, m.p + m.off, m.n - m.off);
    rc = buf->err;
  }
  lathe_buf_free(&m);
  return rc;
}

int64_t cluster_ds_count(lathe_run_t *r, const char *name) {
  lathe_buf_t b = {0}, m = {0};
  msg_start(&b, M_DSCOUNT);
  put_str(&b, name);
  int rc = request(r, &b, &m);
  int64_t n = 0;
  LATHE_GET(&m, n);
  lathe_buf_free(&m);
  return rc ? rc : n;
}

/* From the slot's cache of the records after the last one asked for (a
 * plugin reads a dataset in order: one round trip per DS_BATCH records). */
static char *ds_cached(slot_t *sl, const char *name, int64_t i) {
  pthread_mutex_lock(&sl->mu);
  char *rec =
      sl->ds_name && !strcmp(sl->ds_name, name) && i >= sl->ds_first && i - sl->ds_first < sl->ds_n
          ? strdup(sl->ds_recs[i - sl->ds_first])
          : NULL;
  pthread_mutex_unlock(&sl->mu);
  return rec;
}

char *cluster_ds_get(lathe_run_t *r, const char *name, int64_t i) {
  slot_t *sl = slot_of(r);
  char *rec = ds_cached(sl, name, i);
  if (rec) return rec;
  lathe_buf_t b = {0}, m = {0};
  msg_start(&b, M_DSGET);
  put_str(&b, name);
  LATHE_PUT(&b, i);
  int rc = request(r, &b, &m);
  uint32_t k = 0;
  LATHE_GET(&m, k);
  char **recs = !rc && !m.err && k && k <= DS_BATCH ? calloc(k, sizeof *recs) : NULL;
  uint32_t got = 0;
  while (recs && got < k && (recs[got] = get_str(&m))) got++;
  if (recs && got == k && (rec = strdup(recs[0]))) {
    pthread_mutex_lock(&sl->mu);
    ds_cache_clear(sl);
    sl->ds_name = strdup(name), sl->ds_recs = recs, sl->ds_first = i, sl->ds_n = (int)k;
    if (!sl->ds_name) ds_cache_clear(sl);
    pthread_mutex_unlock(&sl->mu);
  } else {
    for (uint32_t j = 0; j < got; j++) free(recs[j]);
    free(recs);
  }
  lathe_buf_free(&m);
  return rec;
}

int cluster_run_state(lathe_run_t *r, uint32_t id, lathe_buf_t *out, char plugin[64]) {
  lathe_buf_t b = {0}, m = {0};
  msg_start(&b, M_STATE);
  LATHE_PUT(&b, id);
  int rc = request(r, &b, &m);
  if (!rc) {
    get_str_into(&m, plugin, 64);
    lathe_buf_put(out, m.p + m.off, m.n - m.off);
    rc = m.err ? LATHE_EIO : out->err;
  }
  lathe_buf_free(&m);
  return rc;
}

int cluster_ds_create(lathe_run_t *r, const char *name, const char *schema,
                      const char *const *records, int64_t n) {
  lathe_buf_t b = {0}, m = {0};
  msg_start(&b, M_DSCREATE);
  put_str(&b, name), put_str(&b, schema);
  LATHE_PUT(&b, n);
  for (int64_t i = 0; i < n; i++) put_str(&b, records[i]);
  int rc = request(r, &b, &m);
  lathe_buf_free(&m);
  return rc;
}

/* A slot's life: runs from rank 0, one at a time, until quit. */
static void *slot_main(void *arg) {
  slot_t *sl = arg;
  sigset_t set; /* signals are the main thread's */
  sigfillset(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  nn_thread_init();
  lathe_buf_t m = {0};
  uint8_t kind;
  while (!recv_buf(&m, 0, sl->tag, &kind) && kind == M_RUN) {
    uint32_t id;
    int32_t resume;
    int64_t from;
    LATHE_GET(&m, id), LATHE_GET(&m, resume), LATHE_GET(&m, from);
    char *plugin = get_str(&m), *cfg = get_str(&m);
    lathe_run_t *r = NULL;
    int rc = m.err || !plugin || !cfg
                 ? lathe_seterr(LATHE_EIO, "cluster: a malformed run from rank 0")
                 : lathe_run_adopt(sl->s, id, plugin, cfg, &r);
    free(plugin), free(cfg);
    if (rc) { /* rank 0 made this run from the same plugins: say why, and end */
      fprintf(stderr, "lathe: rank %d: %s\n", my_rank, lathe_lasterr());
      mpi->abort(lathe_exit_code(rc));
    }
    r->slot = (int)(sl - slots), r->resume = resume, r->from_ckpt = from;
    get_flags(&m, r);
    int32_t shard = 0, nshards = 1;
    LATHE_GET(&m, shard), LATHE_GET(&m, nshards);
    if (m.err || shard < 0 || nshards < 1 || shard >= nshards || nshards > n_ranks) {
      fprintf(stderr, "lathe: rank %d: a malformed run from rank 0\n", my_rank);
      mpi->abort(lathe_exit_code(LATHE_EIO));
    }
    r->shard = shard, r->nshards = nshards;
    if (shard) { /* a data-parallel shard: shard 0's state is the rest */
      lathe_buf_t state = {m.p + m.off, m.n - m.off, 0, 0, 0};
      run_shard_drive(r, &state);
    } else
      run_drive(r);
    ds_cache_clear(sl); /* (a later run may find the store changed) */
    run_free(r);
  }
  lathe_buf_free(&m);
  return NULL;
}

int lathe_cluster_serve(int threads, int workers) {
  lathe_session_t *s = calloc(1, sizeof *s);
  slots = calloc((size_t)workers, sizeof *slots);
  pthread_t *th = calloc((size_t)workers, sizeof *th);
  if (!s || !slots || !th) {
    free(s), free(slots), free(th);
    return lathe_seterr(LATHE_ENOMEM, "cluster: out of memory");
  }
  if (threads < 1) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (threads < 1) threads = 1;
  s->remote = 1, s->threads = threads, s->workers = workers;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  run_test_kill_init();
  nn_set_threads(threads);
  /* A worker rank's runs stop when rank 0 says so: mpirun's SIGTERM (and a
   * forwarded SIGINT) reach rank 0 too, which stops every run at a
   * checkpoint; SIGKILL follows if that takes too long. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT), sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  int started = 0, rc = 0;
  for (int i = 0; i < workers; i++) {
    slots[i].tag = i, slots[i].s = s;
    pthread_mutex_init(&slots[i].mu, NULL);
    if (pthread_create(&th[i], NULL, slot_main, &slots[i])) {
      rc = lathe_seterr(LATHE_EIO, "cannot start a worker thread");
      break;
    }
    started++;
  }
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < workers; i++) pthread_mutex_destroy(&slots[i].mu);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(th), free(slots), free(s);
  slots = NULL;
  return rc;
}

void lathe_cluster_set_mode(int workers, int data_parallel) {
  dp_mode = data_parallel;
  per_rank = workers < 1 || data_parallel ? 1 : workers;
}

/* ---- data parallelism --------------------------------------------------------------- */

/* rank 0: the proxies of the current data-parallel run's shards (one run at
 * a time: the one worker's); shard k is slot k - 1 (one slot per rank) */
typedef struct {
  lathe_session_t *s;
  lathe_run_t *r;
  int k, started;
  atomic_int quit; /* the shard is lost: stop waiting for it */
  pthread_t th;
} shard_proxy_t;

static shard_proxy_t shard_proxies[LATHE_MAX_THREADS];
static unsigned char dp_gone[LATHE_MAX_THREADS]; /* [k]: shard k lost (the worker's) */

static void *shard_proxy_main(void *arg) {
  shard_proxy_t *sp = arg;
  sigset_t set; /* signals are the loop's */
  sigfillset(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  if (serve(sp->s, sp->r, sp->k - 1, &sp->quit)) dead[sp->k - 1] = 1;
  return NULL;
}

/* Rank 0: the next message of shard k on DP_TAG, waiting for ever unless
 * this process is being terminated (then LOST_AFTER of silence: lost). */
static int recv_dp(lathe_buf_t *m, int k, uint8_t *kind) {
  double silent_since = 0;
  for (;;) {
    int w = recv_wait(m, k, DP_TAG, kind, 0.2);
    if (w != 1) return w;
    if (!lathe_signal_pending()) continue;
    if (!silent_since) silent_since = lathe_now();
    if (lathe_now() - silent_since >= LOST_AFTER) {
      dp_gone[k] = 1;
      return lathe_seterr(LATHE_EIO, "rank %d (shard %d) sent nothing for %.1f s after the stop", k,
                          k, LOST_AFTER);
    }
  }
}

int cluster_dp_begin(lathe_run_t *r) {
  if (r->nshards > LATHE_MAX_THREADS)
    return lathe_seterr(LATHE_EUSAGE, "--data-parallel: %d ranks, more than %d", r->nshards,
                        LATHE_MAX_THREADS);
  lathe_buf_t state = {0};
  int rc = r->plugin->save(r->self, &run_host, &r->ctx, &state);
  if (!rc && state.err) rc = lathe_seterr(LATHE_ENOMEM, "run %u: out of memory", r->id);
  for (int k = 1; k < r->nshards && !rc; k++) {
    shard_proxy_t *sp = &shard_proxies[k];
    sp->s = r->sess, sp->r = r, sp->k = k, sp->started = 0;
    atomic_store(&sp->quit, 0);
    dp_gone[k] = 0;
    if (dead[k - 1])
      rc = lathe_seterr(LATHE_EIO, "rank %d is gone", k);
    else if (!(rc = send_run(r, k, 0, 0, -1, k, &state))) {
      if (pthread_create(&sp->th, NULL, shard_proxy_main, sp))
        rc = lathe_seterr(LATHE_EIO, "cannot start a thread for shard %d", k);
      else
        sp->started = 1;
    }
  }
  lathe_buf_free(&state);
  return rc;
}

void cluster_dp_end(lathe_run_t *r) {
  uint8_t stop = D_STOP, kind = 0;
  lathe_buf_t m = {0};
  for (int k = 1; k < r->nshards && k < LATHE_MAX_THREADS; k++) {
    shard_proxy_t *sp = &shard_proxies[k];
    if (!sp->started) continue;
    int rc = dp_gone[k] ? -1 : mpi->send(&stop, 1, k, DP_TAG);
    while (!rc && !(rc = recv_dp(&m, k, &kind)) && kind != D_BYE) continue; /* parts, FIN */
    if (rc) atomic_store(&sp->quit, 1); /* lost: its proxy would wait for ever */
    pthread_join(sp->th, NULL);
    if (dp_gone[k]) dead[k - 1] = 1; /* (its proxy gave up as soon) */
    sp->started = 0;
  }
  lathe_buf_free(&m);
}

int cluster_allreduce(lathe_run_t *r, float *x, size_t n) {
  lathe_buf_t b = {0}, m = {0};
  uint8_t kind = 0;
  int rc = 0;
  if (n > (INT_MAX - 16) / sizeof *x)
    return lathe_seterr(LATHE_EUSAGE, "allreduce of %zu values: more than one message holds", n);
  if (r->shard) { /* a worker rank's shard: the part out, the sum back */
    if (r->dp_ended) return lathe_seterr(LATHE_EINTR, "shard 0 ended the run");
    msg_start(&b, D_PART);
    lathe_buf_put(&b, x, n * sizeof *x);
    rc = send_buf(&b, 0, DP_TAG);
    if (!rc) rc = recv_buf(&m, 0, DP_TAG, &kind);
    if (!rc && kind == D_STOP)
      r->dp_ended = 1, rc = lathe_seterr(LATHE_EINTR, "shard 0 ended the run");
    else if (!rc && (kind != D_SUM || lathe_buf_left(&m) != n * sizeof *x))
      rc = lathe_seterr(LATHE_EIO, "cluster: run %u: a malformed sum from rank 0", r->id);
    else if (!rc)
      lathe_buf_get(&m, x, n * sizeof *x);
    lathe_buf_free(&b), lathe_buf_free(&m);
    return rc;
  }
  /* shard 0: ((x0 + x1) + x2) ..., in rank order whatever order they come in */
  for (int k = 1; k < r->nshards && !rc; k++) {
    if ((rc = recv_dp(&m, k, &kind))) {
      r->dp_lost = 1;
      break;
    }
    if (kind == D_FIN) {
      int32_t code = 0;
      LATHE_GET(&m, code);
      char *why = get_str(&m);
      rc = lathe_seterr(LATHE_ERUN, "shard %d ended first: %s", k,
                        why && *why ? why
                        : code      ? lathe_strerror(code)
                                    : "done (out of step)");
      free(why);
      break;
    }
    if (kind != D_PART || lathe_buf_left(&m) != n * sizeof *x) {
      rc = lathe_seterr(LATHE_ERUN,
                        "shard %d summed %zu values where shard 0 sums %zu: the shards are out of "
                        "step",
                        k, lathe_buf_left(&m) / sizeof *x, n);
      break;
    }
    const uint8_t *p = m.p + m.off;
    for (size_t i = 0; i < n; i++) {
      float v;
      memcpy(&v, p + i * sizeof v, sizeof v);
      x[i] += v;
    }
  }
  if (!rc) {
    msg_start(&b, D_SUM);
    lathe_buf_put(&b, x, n * sizeof *x);
    for (int k = 1; k < r->nshards && !rc; k++) rc = send_buf(&b, k, DP_TAG);
    if (rc) r->dp_lost = 1;
  }
  lathe_buf_free(&b), lathe_buf_free(&m);
  return rc;
}

void cluster_dp_finish(lathe_run_t *r, int rc) {
  lathe_buf_t b = {0}, m = {0};
  uint8_t kind = 0;
  if (!r->dp_ended) { /* ended first: say why, then wait for shard 0's end */
    int32_t code = rc;
    msg_start(&b, D_FIN);
    LATHE_PUT(&b, code);
    put_str(&b, rc ? r->errmsg : "");
    int sent = !send_buf(&b, 0, DP_TAG);
    while (sent && !recv_buf(&m, 0, DP_TAG, &kind) && kind != D_STOP) continue;
  }
  uint8_t bye = D_BYE, end = M_END;
  mpi->send(&bye, 1, 0, DP_TAG);
  mpi->send(&end, 1, 0, slot_of(r)->tag); /* its proxy on rank 0 returns */
  lathe_buf_free(&b), lathe_buf_free(&m);
}
