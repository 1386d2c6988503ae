/* worker.c - the worker threads that step runs, checkpoints and exact resume.
 *
 * A checkpoint is one value in the ckpts table, written in the same
 * transaction as the metrics up to its step and the run record:
 *   "LCKP" u32 version(2) u64 step
 *   u32 count, then per metric: u8 namelen, name, u64 step, f64 value (the summary)
 *   the plugin's own save() payload
 *   u64 checksum of every byte before it (version 2; version 1 had none)
 * A checkpoint whose checksum does not match is refused before any plugin
 * sees it; `lathe resume RUN --from-checkpoint STEP` continues from an older one.
 * Resuming loads the newest checkpoint, deletes metric points written after
 * its step (they will be produced again, identically), and continues.
 */
#include "runimpl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "error.h"
#include "nn/nn.h"
#include "registry.h"

/* A checkpoint's checksum: 64-bit multiply-xor over 8-byte words (fast on
 * large replay buffers; detects truncation and flipped bits, not tampering). */
uint64_t lathe_ckpt_sum(const void *data, size_t n) {
  const uint8_t *p = data;
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, w;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
  }
  for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h ^ (h >> 32);
}

/* ---- the worker ------------------------------------------------------------------ */

/* perf/ metrics measure wall-clock time: kept in the store, never in checkpoints */
static int is_perf(const char *name) {
  return !strncmp(name, "perf/", 5);
}

static int checkpoint(lathe_run_t *r, lathe_status_t st) {
  lathe_buf_t b = {0};
  uint32_t version = CKPT_VERSION, count = 0;
  uint64_t step = (uint64_t)r->step;
  for (int i = 0; i < r->nlast; i++) count += !is_perf(r->last[i].name);
  lathe_buf_put(&b, "LCKP", 4);
  LATHE_PUT(&b, version), LATHE_PUT(&b, step), LATHE_PUT(&b, count);
  for (int i = 0; i < r->nlast; i++) {
    if (is_perf(r->last[i].name)) continue;
    uint8_t len = (uint8_t)strlen(r->last[i].name);
    LATHE_PUT(&b, len), lathe_buf_put(&b, r->last[i].name, len);
    LATHE_PUT(&b, r->last[i].step), LATHE_PUT(&b, r->last[i].value);
  }
  int rc = 0;
  if (r->plugin->save) rc = r->plugin->save(r->self, &run_host, &r->ctx, &b);
  uint64_t sum = b.err ? 0 : lathe_ckpt_sum(b.p, b.n);
  LATHE_PUT(&b, sum);
  if (!rc && b.err) rc = lathe_seterr(b.err, "checkpoint of run %u: out of memory", r->id);
  double prev = r->ckpt_time;
  r->ckpt_time = lathe_now(), r->ckpt_step = r->step;
  if (!rc) rc = run_flush(r, st, &b, 0);
  if (rc) r->ckpt_time = prev;
  lathe_buf_free(&b);
  if (!rc) {
    r->last_ckpt_step = (uint64_t)r->step;
    run_event(r->sess, EV_CKPT, r, NULL, 0, NULL);
  }
  return rc;
}

/* Read a checkpoint's header: "LCKP", version, step, and the count of the
 * metric entries that follow; for version 2, check the trailing checksum and
 * leave it out of b. Returns 0 or LATHE_ECKPT (*damaged = 1 for a checksum
 * that does not match). */
int run_ckpt_header(lathe_buf_t *b, uint64_t *step, uint32_t *count, int *damaged) {
  char magic[4];
  uint32_t version;
  *damaged = 0, *step = 0, *count = 0;
  lathe_buf_get(b, magic, 4);
  LATHE_GET(b, version), LATHE_GET(b, *step), LATHE_GET(b, *count);
  if (b->err || memcmp(magic, "LCKP", 4) || (version != 1 && version != 2)) return LATHE_ECKPT;
  if (version == 2) {
    uint64_t sum;
    if (b->n < b->off + sizeof sum) return *damaged = 1, LATHE_ECKPT;
    memcpy(&sum, b->p + b->n - sizeof sum, sizeof sum);
    if (sum != lathe_ckpt_sum(b->p, b->n - sizeof sum)) return *damaged = 1, LATHE_ECKPT;
    b->n -= sizeof sum;
  }
  return 0;
}

int lathe_ckpt_ok(const void *data, size_t n) {
  lathe_buf_t b = {(uint8_t *)data, n, 0, 0, 0};
  uint64_t step;
  uint32_t count;
  int damaged;
  return !run_ckpt_header(&b, &step, &count, &damaged);
}

typedef struct {
  lathe_run_t *r;
  lathe_buf_t buf; /* copy of the checkpoint bytes */
  uint64_t step;
  int found;
  int64_t prev; /* the checkpoint before it, -1 if none (for messages) */
} load_args;

static int prev_ckpt(uint64_t step, size_t bytes, void *arg) {
  load_args *a = arg;
  if (step < a->step) a->prev = (int64_t)step;
  return 0;
}

static int best_point(uint64_t step, double value, double time, void *arg) {
  load_args *a = arg;
  if (step <= a->step && isfinite(value)) run_note_best(a->r, step, value);
  return 0;
}

static int load_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  load_args *a = arg;
  MDB_val v;
  int rc;
  if (a->r->from_ckpt >= 0) { /* lathe resume --from-checkpoint STEP */
    a->step = (uint64_t)a->r->from_ckpt;
    if ((rc = lathe_store_ckpt_get(st, txn, a->r->id, a->step, &v))) return rc;
  } else {
    rc = lathe_store_ckpt_latest(st, txn, a->r->id, &a->step, &v);
    if (rc == LATHE_ENOTFOUND) return 0;
    if (rc) return rc;
  }
  a->found = 1;
  if ((rc = lathe_store_ckpt_each(st, txn, a->r->id, prev_ckpt, a))) return rc;
  lathe_buf_put(&a->buf, v.mv_data, v.mv_size);
  if (a->buf.err) return a->buf.err;
  /* the main metric's best up to the checkpoint, from the stored curve */
  lathe_run_t *r = a->r;
  r->have_best = 0;
  if (lathe_main_metric(r->plugin))
    rc = lathe_store_metric_each(st, txn, r->id, lathe_main_metric(r->plugin), best_point, a);
  return rc == LATHE_ENOTFOUND ? 0 : rc;
}

int run_load(lathe_run_t *r, lathe_buf_t *buf, uint64_t *step, int *found, int64_t *prev) {
  load_args a = {r, {0}, 0, 0, -1};
  int rc = lathe_store_read(r->sess->store, load_txn, &a);
  *buf = a.buf, *step = a.step, *found = a.found, *prev = a.prev;
  return rc;
}

static int restore(lathe_run_t *r) {
  load_args a = {r, {0}, 0, 0, -1};
  int rc = r->sess->remote ? cluster_load(r, &a.buf, &a.step, &a.found, &a.prev)
                           : run_load(r, &a.buf, &a.step, &a.found, &a.prev);
  if (rc || !a.found) {
    lathe_buf_free(&a.buf);
    if (!rc) run_event(r->sess, EV_LOG, r, NULL, 0, strdup("no checkpoint: starting over"));
    r->step = 0, r->have_best = 0, r->best_ckpt = -1;
    return rc ? rc : run_flush(r, RUN_RUNNING, NULL, 1);
  }
  lathe_buf_t *b = &a.buf;
  uint32_t count;
  uint64_t step;
  int damaged;
  if (run_ckpt_header(b, &step, &count, &damaged) || step != a.step) {
    char how[160] = "no earlier checkpoint is kept; `lathe rm` it and start over";
    if (a.prev >= 0)
      snprintf(how, sizeof how,
               "`lathe resume %u --from-checkpoint %lld` continues from the one before", r->id,
               (long long)a.prev);
    lathe_buf_free(b);
    return lathe_seterr(
        LATHE_ECKPT, "run %u: the checkpoint at step %llu is %s; %s", r->id,
        (unsigned long long)a.step,
        damaged ? "damaged (its checksum does not match)" : "of an unknown format or damaged", how);
  }
  r->nlast = 0;
  for (uint32_t i = 0; i < count && !b->err; i++) {
    uint8_t len;
    char name[256];
    lathe_point_t pt = {""};
    LATHE_GET(b, len);
    lathe_buf_get(b, name, len);
    LATHE_GET(b, pt.step), LATHE_GET(b, pt.value);
    if (b->err || GROW(r->last, r->nlast, r->caplast)) break;
    snprintf(pt.name, sizeof pt.name, "%.*s", (int)(len < 63 ? len : 63), name);
    r->last[r->nlast++] = pt;
  }
  r->step = (int64_t)step;
  if (r->best_ckpt > r->step) r->best_ckpt = -1; /* later checkpoints go with --from-checkpoint */
  rc = b->err ? LATHE_ECKPT : 0;
  if (!rc && r->plugin->load) rc = r->plugin->load(r->self, &run_host, &r->ctx, b);
  lathe_buf_free(b);
  if (rc)
    return lathe_seterr(rc == LATHE_ECKPT || rc == LATHE_ESHAPE ? LATHE_ECKPT : rc,
                        "run %u: cannot restore checkpoint at step %llu: %s", r->id,
                        (unsigned long long)step, r->errmsg[0] ? r->errmsg : lathe_lasterr());
  r->last_ckpt_step = step;
  char msg[96];
  snprintf(msg, sizeof msg, "resumed from the checkpoint at step %llu", (unsigned long long)step);
  run_event(r->sess, EV_LOG, r, NULL, 0, strdup(msg));
  return run_flush(r, RUN_RUNNING, NULL, 1);
}

static void finish(lathe_run_t *r, lathe_status_t st, int err) {
  int rc = 0;
  if (st == RUN_DONE || st == RUN_INTERRUPTED) {
    if (r->live)
      rc = checkpoint(r, st);
    else
      rc = run_flush(r, st, NULL, 0);
  } else {
    if (err && !r->errmsg[0]) snprintf(r->errmsg, sizeof r->errmsg, "%s", lathe_lasterr());
    rc = run_flush(r, st, NULL, 0);
  }
  if (rc) { /* the store refused the final write: report the run failed */
    st = RUN_FAILED, err = rc;
    snprintf(r->errmsg, sizeof r->errmsg, "%s", lathe_lasterr());
  }
  run_free_kids(&r->ctx);
  if (r->self) r->plugin->destroy(r->self); /* a failed create may leave a partial one */
  r->self = NULL, r->live = 0;
  run_end(r, st, err);
}

void run_end(lathe_run_t *r, lathe_status_t st, int err) {
  r->err = err;
  atomic_store(&r->status, st);
  lathe_session_t *s = r->sess;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->nactive; i++)
    if (s->active[i] == r) {
      memmove(s->active + i, s->active + i + 1, (s->nactive - i - 1) * sizeof *s->active);
      s->nactive--;
      break;
    }
  r->active = 0;
  pthread_mutex_unlock(&s->mu);
  run_event(s, EV_END, r, lathe_status_name(st), err, r->errmsg[0] ? strdup(r->errmsg) : NULL);
}

/* A data-parallel run whose shard was lost mid-step (its state half
 * updated): interrupted where its last checkpoint left it, as a killed
 * process leaves a run. */
static void finish_lost(lathe_run_t *r) {
  r->npending = 0; /* points past the last checkpoint: resume makes them again */
  run_flush(r, RUN_INTERRUPTED, NULL, 0);
  run_free_kids(&r->ctx);
  if (r->self) r->plugin->destroy(r->self);
  r->self = NULL, r->live = 0;
  run_end(r, RUN_INTERRUPTED, LATHE_EIO);
}

/* The log lines a run wrote while it started, after its start event. */
static void release_prelog(lathe_run_t *r) {
  r->starting = 0;
  for (int i = 0; i < r->nprelog; i++) {
    lathe_event_t *e = &r->prelog[i];
    run_event_at(r->sess, e->type, r, e->step, NULL, 0, e->text);
  }
  free(r->prelog);
  r->prelog = NULL, r->nprelog = r->capprelog = 0;
}

static void run_begin(lathe_run_t *r) {
  r->diverged = 0, r->starting = 1;
  int rc = r->plugin->create(&run_host, &r->ctx, &r->self);
  if (!rc) {
    r->live = 1;
    rc = r->resume ? restore(r) : run_flush(r, RUN_RUNNING, NULL, 0);
  }
  if (rc) {
    release_prelog(r);
    finish(r, RUN_FAILED, rc);
    return;
  }
  atomic_store(&r->status, RUN_RUNNING);
  run_event(r->sess, EV_START, r, NULL, 0, NULL);
  release_prelog(r);
}

/* Step r for about `budget` seconds. Returns 1 if it made progress. */
static int chunk(lathe_run_t *r, double budget) {
  double t_end = lathe_now() + budget;
  int64_t max_steps = lathe_cfg_int(&r->cfg, "max_steps");
  int progressed = 0;
  do {
    int stop = atomic_load(&r->stop_req);
    if (stop) { /* checkpoint and stop, or fail with the reason given */
      if (stop == LATHE_STOP_FAIL) snprintf(r->errmsg, sizeof r->errmsg, "%s", r->stop_why);
      finish(r, stop == LATHE_STOP_FAIL ? RUN_FAILED : RUN_INTERRUPTED,
             stop == LATHE_STOP_FAIL ? LATHE_ERECIPE : 0);
      return 1;
    }
    if (atomic_exchange(&r->ckpt_req, 0) && checkpoint(r, RUN_RUNNING)) {
      finish(r, RUN_FAILED, lathe_lasterr_code());
      return 1;
    }
    if (atomic_load(&r->pause_req)) {
      if (!r->paused) { /* say the exact step it holds at, with its metrics stored */
        char msg[64];
        r->paused = 1;
        snprintf(msg, sizeof msg, "paused at step %lld", (long long)r->step);
        run_event_at(r->sess, EV_LOG, r, (uint64_t)r->step, NULL, 0, strdup(msg));
        if (r->npending && run_flush(r, RUN_RUNNING, NULL, 0)) {
          finish(r, RUN_FAILED, lathe_lasterr_code());
          return 1;
        }
      }
      return progressed;
    }
    r->paused = 0;
    lathe_clearerr();
    int rc = r->plugin->algorithm->step(r->self, &run_host, &r->ctx);
    progressed = 1;
    if (rc == LATHE_ENAN) r->diverged = 1, rc = 0; /* the plugin saw a non-finite value */
    if (rc < 0 && r->dp_lost) { /* a shard is gone mid-step: back to the last checkpoint */
      finish_lost(r);
      return 1;
    }
    if (rc < 0) {
      if (!r->errmsg[0])
        snprintf(r->errmsg, sizeof r->errmsg, "%s: step %lld: %s", r->plugin->name,
                 (long long)r->step, lathe_lasterr()[0] ? lathe_lasterr() : lathe_strerror(rc));
      finish(r, RUN_FAILED, rc);
      return 1;
    }
    r->step++;
    run_test_kill(r, 0);
    if (r->diverged) {
      snprintf(r->errmsg, sizeof r->errmsg,
               "non-finite metric at step %lld; the last finite checkpoint is at step %llu",
               (long long)r->step, (unsigned long long)r->last_ckpt_step);
      finish(r, RUN_DIVERGED, LATHE_ENAN);
      return 1;
    }
    /* a new best of the main metric: checkpointed now (or by finish) and kept */
    int best_now = r->keep_best && r->have_best && r->best_step == r->step;
    if (best_now) r->best_ckpt = r->step;
    if (rc == LATHE_DONE || (max_steps > 0 && r->step >= max_steps)) {
      finish(r, RUN_DONE, 0);
      return 1;
    }
    if (((r->ckpt_every > 0 && r->step % r->ckpt_every == 0) || best_now) &&
        checkpoint(r, RUN_RUNNING)) {
      finish(r, RUN_FAILED, lathe_lasterr_code());
      return 1;
    }
  } while (lathe_now() < t_end);
  double now = lathe_now();
  if (now - r->perf_time >= 1.0) { /* wall-clock throughput: the host's, never checkpointed */
    if (r->perf_time > 0 && r->step > r->perf_step) {
      run_record_metric(r, (uint64_t)r->step, "perf/steps_per_sec",
                        (r->step - r->perf_step) / (now - r->perf_time));
      if (r->nshards > 1) /* data-parallel: the share of the time spent summing */
        run_record_metric(r, (uint64_t)r->step, "perf/allreduce_share",
                          r->dp_wait / (now - r->perf_time));
    }
    r->perf_time = now, r->perf_step = r->step, r->dp_wait = 0;
  }
  if (now - r->last_flush > 0.5 && r->npending && run_flush(r, RUN_RUNNING, NULL, 0))
    finish(r, RUN_FAILED, lathe_lasterr_code());
  return progressed;
}

static int data_parallel(const lathe_plugin_t *p) {
  return p->minor >= 3 && p->algorithm->data_parallel;
}

/* Rank 0 under --data-parallel: r created (or restored) here, then its state
 * sent to every other rank's shard, stepped to its end, the shards ended. */
static void dp_drive(lathe_run_t *r) {
  r->shard = 0, r->nshards = data_parallel(r->plugin) ? lathe_cluster_size() : 1;
  run_begin(r);
  if (r->nshards < 2) {
    if (atomic_load(&r->active))
      run_event(r->sess, EV_LOG, r, NULL, 0,
                strdup("not data-parallel: its steps run on rank 0 alone"));
  } else if (atomic_load(&r->active) && cluster_dp_begin(r)) {
    snprintf(r->errmsg, sizeof r->errmsg, "%s", lathe_lasterr());
    finish(r, RUN_FAILED, lathe_lasterr_code());
  }
  while (atomic_load(&r->active))
    if (!chunk(r, 0.1)) nanosleep(&(struct timespec){0, 50000000}, NULL); /* paused */
  if (r->nshards > 1) cluster_dp_end(r);
}

/* A worker takes the next active run no other worker holds (round robin),
 * steps it for a bounded chunk, and puts it back. Runs never interact, so
 * results do not depend on how many workers there are or who stepped what. */
void *run_worker_main(void *arg) {
  lathe_session_t *s = arg;
  int me = atomic_fetch_add(&s->worker_next, 1); /* this worker's index (a proxy's slot) */
  sigset_t set;                                  /* signals are the loop's */
  sigfillset(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  nn_thread_init();
  pthread_mutex_lock(&s->mu);
  for (;;) {
    lathe_run_t *r = NULL;
    for (int k = 0; k < s->nactive && !r; k++) {
      lathe_run_t *c = s->active[(s->rr + k) % s->nactive];
      if (!c->busy) r = c, s->rr = (s->rr + k + 1) % s->nactive;
    }
    if (!r) {
      if (s->quit && s->nactive == 0) break;
      pthread_cond_wait(&s->cv, &s->mu); /* a run was added or released, or quit */
      continue;
    }
    if (s->quit) run_stop_locked(r, LATHE_STOP_INTERRUPT, NULL);
    r->busy = 1;
    double budget = s->nactive > s->workers ? 0.02 : 0.1;
    pthread_mutex_unlock(&s->mu);
    int progressed = 1;
    if (s->proxy) /* rank 0 under --mpi: the run steps on remote slot k, to its end */
      cluster_proxy(s, r, me);
    else if (s->dp) /* --data-parallel: here as shard 0, to its end */
      dp_drive(r);
    else if (!r->live)
      run_begin(r);
    else
      progressed = chunk(r, budget);
    pthread_mutex_lock(&s->mu);
    r->busy = 0;
    pthread_cond_broadcast(&s->cv);
    if (!progressed) { /* paused: wait a little */
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 50000000;
      if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
      pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
  }
  pthread_mutex_unlock(&s->mu);
  if (s->proxy) cluster_quit_slot(me);
  return NULL;
}

/* A worker rank's slot: r from its start to its end on this thread, the
 * run's requests from rank 0 read between chunks. */
void run_drive(lathe_run_t *r) {
  run_begin(r);
  while (atomic_load(&r->active)) {
    int progressed = chunk(r, 0.1);
    if (!atomic_load(&r->active)) break;
    if (cluster_sync(r)) { /* rank 0 is gone: nothing can be written; stop here */
      fprintf(stderr, "lathe: run %u: %s\n", r->id, lathe_lasterr());
      break;
    }
    if (!progressed) nanosleep(&(struct timespec){0, 50000000}, NULL);
  }
  run_free_kids(&r->ctx);
  if (r->self) r->plugin->destroy(r->self), r->self = NULL;
}

void run_shard_drive(lathe_run_t *r, lathe_buf_t *state) {
  lathe_clearerr();
  int rc = r->plugin->create(&run_host, &r->ctx, &r->self);
  if (!rc) rc = r->plugin->load(r->self, &run_host, &r->ctx, state);
  while (!rc) {
    rc = r->plugin->algorithm->step(r->self, &run_host, &r->ctx);
    if (rc == LATHE_ENAN) rc = 0; /* shard 0 sees it too and ends the run */
    if (rc == LATHE_DONE) rc = 1;
    r->step++;
    run_test_kill(r, 0);
  }
  if (rc < 0 && !r->errmsg[0])
    snprintf(r->errmsg, sizeof r->errmsg, "%s", lathe_lasterr()[0] ? lathe_lasterr() : "failed");
  cluster_dp_finish(r, rc < 0 ? rc : 0);
  run_free_kids(&r->ctx);
  if (r->self) r->plugin->destroy(r->self), r->self = NULL;
}
