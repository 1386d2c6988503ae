/* session.c - the session: its libuv loop, the event queue from the workers,
 * signals (SIGINT/SIGTERM checkpoint and stop; a second SIGINT exits), and
 * the worker threads' start and stop. */
#include "runimpl.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "error.h"
#include "nn/nn.h"

/* ---- events to the loop ------------------------------------------------------ */

void run_event_at(lathe_session_t *s, lathe_ev_type_t type, lathe_run_t *r, uint64_t step,
                  const char *name, double value, char *text) {
  lathe_event_t ev = {type, r->id, step, lathe_now(), value, "", text};
  if (name) snprintf(ev.name, sizeof ev.name, "%s", name);
  if (r->shard) { /* a data-parallel shard: shard 0 speaks for the run */
    free(text);
    return;
  }
  if (r->starting && type == EV_LOG) { /* held until the run's start event */
    if (GROW(r->prelog, r->nprelog, r->capprelog))
      free(text);
    else
      r->prelog[r->nprelog++] = ev;
    return;
  }
  if (s->remote) { /* a worker rank: to rank 0's loop */
    cluster_event(r, &ev);
    return;
  }
  pthread_mutex_lock(&s->mu);
  if (GROW(s->events, s->nevents, s->capevents)) {
    pthread_mutex_unlock(&s->mu);
    free(text);
    return;
  }
  s->events[s->nevents++] = ev;
  pthread_mutex_unlock(&s->mu);
  uv_async_send(&s->wake);
}

/* An event at the run's current step (the step in progress for logs). */
void run_event(lathe_session_t *s, lathe_ev_type_t type, lathe_run_t *r, const char *name,
               double value, char *text) {
  run_event_at(s, type, r, (uint64_t)r->step + (type == EV_LOG), name, value, text);
}

/* ---- the session and its loop ------------------------------------------------------ */

/* Keep the loop's own copy of the latest values (the worker's is not ours). */
static void view_update(lathe_run_t *r, const lathe_event_t *ev) {
  r->view_step = (int64_t)ev->step;
  if (ev->type == EV_START) r->view_t0 = ev->time, r->view_step0 = (int64_t)ev->step;
  lathe_point_t *p;
  if (ev->type == EV_METRIC && (p = run_point_slot(&r->view, &r->nview, &r->capview, ev->name)))
    p->step = ev->step, p->value = ev->value, p->time = ev->time;
}

static void on_wake(uv_async_t *h) {
  lathe_session_t *s = h->data;
  pthread_mutex_lock(&s->mu);
  lathe_event_t *ev = s->events;
  int n = s->nevents;
  s->events = NULL, s->nevents = s->capevents = 0;
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < s->nruns; k++)
      if (s->runs[k]->id == ev[i].run) view_update(s->runs[k], &ev[i]);
    if (s->on_event) s->on_event(s, &ev[i]);
    if (ev[i].type == EV_END && s->on_end)
      for (int k = 0; k < s->nruns; k++)
        if (s->runs[k]->id == ev[i].run && !lathe_run_active(s->runs[k])) s->on_end(s, s->runs[k]);
    free(ev[i].text);
  }
  free(ev);
}

void lathe_session_interrupt(lathe_session_t *s, int signum) {
  if (s->signal && signum == SIGINT) {
    if (s->on_abort) s->on_abort(s);
    fprintf(stderr, "lathe: second interrupt: exiting now (the store stays consistent)\n");
    _exit(130);
  }
  if (!s->signal) {
    s->signal = signum;
    fprintf(stderr, "lathe: %s: checkpointing and stopping (Ctrl-C again to quit at once)\n",
            signum == SIGINT ? "interrupt" : "terminated");
    lathe_session_stop_all(s);
  }
}

/* SIGINT and SIGTERM also land here before libuv's own handler, so a recipe
 * stuck in pure Lua (which keeps the loop from running libuv's callback) can
 * see them from its count hook (lua/l_lathe.c). */
static atomic_int pending_signal;      /* lock-free: safe in a handler, and read by any thread */
static struct sigaction uv_handler[2]; /* libuv's, for SIGINT and SIGTERM */

static void chain_signal(int sig, siginfo_t *info, void *ctx) {
  atomic_store(&pending_signal, sig);
  struct sigaction *o = &uv_handler[sig == SIGTERM];
  if (o->sa_flags & SA_SIGINFO) {
    if (o->sa_sigaction) o->sa_sigaction(sig, info, ctx);
  } else if (o->sa_handler != SIG_DFL && o->sa_handler != SIG_IGN && o->sa_handler)
    o->sa_handler(sig);
}

static void chain_install(void) {
  int sigs[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; i++) {
    struct sigaction cur, sa;
    if (sigaction(sigs[i], NULL, &cur)) continue;
    /* already ours (a second session in one process): saving it as libuv's
     * would make chain_signal call itself */
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == chain_signal) continue;
    uv_handler[i] = sa = cur;
    sa.sa_flags |= SA_SIGINFO;
    sa.sa_sigaction = chain_signal;
    sigaction(sigs[i], &sa, NULL);
  }
}

int lathe_signal_pending(void) {
  return atomic_load(&pending_signal);
}

void lathe_session_signal_seen(lathe_session_t *s, int signum) {
  if (s->signal_early == signum) return;
  s->signal_early = signum;
  lathe_session_interrupt(s, signum);
}

static void on_signal(uv_signal_t *h, int signum) {
  lathe_session_t *s = h->data;
  if (s->signal_early == signum) { /* already acted on from the recipe's hook */
    s->signal_early = -1;
    return;
  }
  if (signum == SIGHUP) { /* the terminal went away: keep training, without a view */
    if (s->on_hangup) s->on_hangup(s);
    return;
  }
  lathe_session_interrupt(s, signum);
}

int lathe_session_init(lathe_session_t *s, lathe_store_t *store) {
  /* caller may have set options before; keep them */
  s->store = store;
  s->t0 = lathe_now();
  run_test_kill_init();
  if (s->threads < 1) s->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (s->threads < 1) s->threads = 1;
  nn_set_threads(s->threads);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (uv_loop_init(&s->loop)) return lathe_seterr(LATHE_EIO, "cannot start the event loop");
  uv_async_init(&s->loop, &s->wake, on_wake);
  s->wake.data = s;
  uv_signal_init(&s->loop, &s->sigint);
  uv_signal_init(&s->loop, &s->sigterm);
  uv_signal_init(&s->loop, &s->sighup);
  s->sigint.data = s->sigterm.data = s->sighup.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sighup, on_signal, SIGHUP);
  uv_unref((uv_handle_t *)&s->sigint);
  uv_unref((uv_handle_t *)&s->sigterm);
  uv_unref((uv_handle_t *)&s->sighup);
  chain_install();
  uv_timer_init(&s->loop, &s->tick);
  s->tick.data = s;
  if (s->workers < 1) s->workers = 1;
  if (s->workers > LATHE_MAX_WORKERS) s->workers = LATHE_MAX_WORKERS;
  if (lathe_cluster_dp()) /* --data-parallel: one run at a time, sharded over every rank */
    s->dp = 1, s->workers = 1;
  if (cluster_slots() > 0) { /* rank 0 under --mpi: one proxy per remote slot */
    s->proxy = 1;
    s->workers = cluster_slots() < LATHE_MAX_THREADS ? cluster_slots() : LATHE_MAX_THREADS;
  }
  if (store && !s->check_only)
    for (int i = 0; i < s->workers; i++) {
      if (pthread_create(&s->worker[i], NULL, run_worker_main, s))
        return lathe_seterr(LATHE_EIO, "cannot start a worker thread");
      s->worker_started = i + 1;
    }
  return 0;
}

void lathe_session_stop_all(lathe_session_t *s) {
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->nactive; i++) run_stop_locked(s->active[i], LATHE_STOP_INTERRUPT, NULL);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

int lathe_session_active(lathe_session_t *s) {
  pthread_mutex_lock(&s->mu);
  int n = s->nactive;
  pthread_mutex_unlock(&s->mu);
  return n;
}

static void close_cb(uv_handle_t *h) {
  (void)h;
}

void lathe_session_close(lathe_session_t *s) {
  if (s->worker_started) {
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->worker_started; i++) pthread_join(s->worker[i], NULL);
    s->worker_started = 0;
    on_wake(&s->wake); /* deliver the last events */
  }
  uv_close((uv_handle_t *)&s->wake, close_cb);
  uv_close((uv_handle_t *)&s->sigint, close_cb);
  uv_close((uv_handle_t *)&s->sigterm, close_cb);
  uv_close((uv_handle_t *)&s->sighup, close_cb);
  uv_close((uv_handle_t *)&s->tick, close_cb);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
  for (int i = 0; i < s->nruns; i++) run_free(s->runs[i]);
  free(s->runs), free(s->active), free(s->events), free(s->recipe_text);
  s->recipe_text = NULL;
  s->runs = NULL, s->nruns = 0;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
}
