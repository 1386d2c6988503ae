/* run.c - run records, the worker thread, checkpoints and exact resume.
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
#include "run.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../storage/dataset.h"
#include "error.h"
#include "registry.h"
#include "nn/nn.h"

#define CKPT_VERSION 2u

/* Fault injection for the kill-and-resume tests, so that a run is killed
 * exactly as often as a test asks however fast the machine is:
 * LATHE_TEST_KILL=RUN:STEP makes the process SIGKILL itself right after run
 * RUN has computed step STEP (before that step's metrics or checkpoint are
 * written); LATHE_TEST_KILL=RUN:STEP:write, inside the first store write of
 * that run at or after STEP (a metrics flush or a checkpoint), before it
 * commits; RUN:STEP:term (or :int) sends SIGTERM (SIGINT) instead, once,
 * after the step. Unset in normal use; read once. */
static struct {
  int parsed, in_write, sig;
  uint32_t run;
  int64_t step;
} test_kill;

static void test_kill_parse(void) {
  const char *e = getenv("LATHE_TEST_KILL");
  unsigned run;
  long long step;
  char mode[8] = "";
  test_kill.parsed = 1;
  if (e && sscanf(e, "%u:%lld:%7s", &run, &step, mode) >= 2 && run > 0 && step > 0)
    test_kill.run = run, test_kill.step = step, test_kill.in_write = !strcmp(mode, "write"),
    test_kill.sig = !strcmp(mode, "term")  ? SIGTERM
                    : !strcmp(mode, "int") ? SIGINT
                                           : SIGKILL;
}

/* Die now if the test asks it at this point (in_write: inside a write); a
 * signal other than SIGKILL is sent once. */
static void test_kill_check(const lathe_run_t *r, int in_write) {
  if (test_kill.run == r->id && r->step >= test_kill.step && test_kill.in_write == in_write) {
    if (test_kill.sig != SIGKILL) test_kill.run = 0;
    kill(getpid(), test_kill.sig);
  }
}

/* Options every run has, whatever its plugin. */
static const lathe_opt_t host_opts[] = {
    {"seed", LATHE_INT, "0", 0, 9007199254740991.0, NULL,
     "random seed of the run (lathe run --seed N adds N)"},
    {"ckpt_every", LATHE_INT, "1000", 0, 1e15, NULL,
     "checkpoint every N steps (0: only when the run ends or is stopped)"},
    {"ckpt_keep", LATHE_INT, "2", 1, 1000, NULL, "checkpoints kept per run"},
    {"ckpt_keep_best", LATHE_BOOL, "false", 0, 0, NULL,
     "also checkpoint at each new best of the main metric and keep the best one"},
    {"max_steps", LATHE_INT, "0", 0, 1e15, NULL, "stop after N steps (0: the plugin decides)"},
    {NULL}};

const char *lathe_status_name(lathe_status_t s) {
  static const char *n[] = {"pending", "running", "done", "failed", "interrupted", "diverged"};
  return n[s];
}

int lathe_run_outcome(const lathe_run_t *r) {
  if (!r->err) return 0;
  if (r->err == LATHE_ENAN)
    return lathe_seterr(LATHE_ENAN, "run %u diverged: %s", r->id, r->errmsg);
  return lathe_seterr(r->err == LATHE_ESTORE ? LATHE_ESTORE : LATHE_ERUN, "run %u failed: %s",
                      r->id, r->errmsg);
}

double lathe_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

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

void lathe_hash_hex(const void *data, size_t n, char out[17]) {
  uint64_t h = 0xcbf29ce484222325ULL;
  const uint8_t *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  snprintf(out, 17, "%016llx", (unsigned long long)h);
}

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
static lathe_point_t *point_slot(lathe_point_t **list, int *n, int *cap, const char *name) {
  for (int i = 0; i < *n; i++)
    if (!strcmp((*list)[i].name, name)) return &(*list)[i];
  if (GROW(*list, *n, *cap)) return NULL;
  lathe_point_t *p = &(*list)[(*n)++];
  snprintf(p->name, sizeof p->name, "%s", name);
  return p;
}

/* ---- events to the loop ------------------------------------------------------ */

static void push_event_at(lathe_session_t *s, lathe_ev_type_t type, lathe_run_t *r, uint64_t step,
                          const char *name, double value, char *text) {
  lathe_event_t ev = {type, r->id, step, lathe_now(), value, "", text};
  if (name) snprintf(ev.name, sizeof ev.name, "%s", name);
  if (r->starting && type == EV_LOG) { /* held until the run's start event */
    if (GROW(r->prelog, r->nprelog, r->capprelog))
      free(text);
    else
      r->prelog[r->nprelog++] = ev;
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
static void push_event(lathe_session_t *s, lathe_ev_type_t type, lathe_run_t *r, const char *name,
                       double value, char *text) {
  push_event_at(s, type, r, (uint64_t)r->step + (type == EV_LOG), name, value, text);
}

/* ---- the process that drives a run ----------------------------------------------- */

/* A run has one owner: the process stepping it. Its record names that process
 * (pid, host, boot id, the process's start time in clock ticks since boot, so
 * a reused pid is not mistaken for it); `lathe resume` claims a run in one
 * write transaction, refusing while the owner lives and taking over when it
 * is gone. */
typedef struct {
  long pid;
  char host[256], boot[64];
  unsigned long long pstart;
} owner_t;

/* The start time of process pid in clock ticks since boot (field 22 of
 * /proc/PID/stat); 0 if unknown, or if it has exited (a zombie not yet reaped
 * still answers kill(pid, 0)). */
static unsigned long long proc_start(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the name may hold spaces: fields count from its end */
  unsigned long long v = 0;
  if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') return 0;
  for (int field = 2; p && *p; p++)
    if (*p == ' ' && ++field == 22) {
      v = strtoull(p + 1, NULL, 10);
      break;
    }
  return v;
}

static owner_t self_o;
static void self_init(void) {
  self_o.pid = (long)getpid();
  gethostname(self_o.host, sizeof self_o.host - 1);
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (f) {
    if (fgets(self_o.boot, sizeof self_o.boot, f)) self_o.boot[strcspn(self_o.boot, "\n")] = 0;
    fclose(f);
  }
  self_o.pstart = proc_start(self_o.pid);
}
static const owner_t *self_owner(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, self_init);
  return &self_o;
}

static json_object *owner_json(const owner_t *o) {
  json_object *j = json_object_new_object();
  json_object_object_add(j, "pid", json_object_new_int64(o->pid));
  json_object_object_add(j, "host", json_object_new_string(o->host));
  json_object_object_add(j, "boot", json_object_new_string(o->boot));
  json_object_object_add(j, "pstart", json_object_new_int64((int64_t)o->pstart));
  return j;
}

/* 1 if the owner named in a run record is a live process other than this one.
 * On another host (a copied store) it cannot be asked: taken as gone. */
static int owner_alive(json_object *rec, long *pid) {
  json_object *o, *v;
  const owner_t *me = self_owner();
  if (!json_object_object_get_ex(rec, "owner", &o) || !json_object_is_type(o, json_type_object))
    return 0;
  *pid = json_object_object_get_ex(o, "pid", &v) ? (long)json_object_get_int64(v) : 0;
  const char *host = json_object_object_get_ex(o, "host", &v) ? json_object_get_string(v) : "";
  const char *boot = json_object_object_get_ex(o, "boot", &v) ? json_object_get_string(v) : "";
  unsigned long long st =
      json_object_object_get_ex(o, "pstart", &v) ? (unsigned long long)json_object_get_int64(v) : 0;
  if (*pid <= 0 || *pid > INT32_MAX || *pid == me->pid || strcmp(host, me->host) ||
      strcmp(boot, me->boot))
    return 0; /* (a pid from the store: never a negative pid_t, which names a process group) */
  if (kill((pid_t)*pid, 0) && errno != EPERM) return 0;
  unsigned long long now = proc_start(*pid); /* 0: exited, or no /proc to ask */
  if (!now && access("/proc/self/stat", R_OK) == 0) return 0;
  return !st || !now || now == st; /* a pid reused by another process is not the owner */
}

static char *make_record(lathe_run_t *r, lathe_status_t st) {
  json_object *o = json_object_new_object();
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  json_object_object_add(o, "id", json_object_new_int64(r->id));
  json_object_object_add(o, "plugin", json_object_new_string(r->plugin->name));
  json_object_object_add(o, "plugin_version",
                         json_object_new_string(r->plugin->version ? r->plugin->version : ""));
  json_object_object_add(o, "recipe", json_object_new_string(r->sess->recipe_path));
  json_object_object_add(o, "recipe_hash", json_object_new_string(r->sess->recipe_hash));
  json_object_object_add(o, "config", lathe_cfg_json(&r->cfg));
  json_object_object_add(o, "seed", json_object_new_int64((int64_t)r->seed));
  json_object_object_add(o, "threads", json_object_new_int(r->sess->threads));
  json_object_object_add(o, "status", json_object_new_string(lathe_status_name(st)));
  json_object_object_add(o, "step", json_object_new_int64(r->step));
  json_object_object_add(o, "total", json_object_new_int64(atomic_load(&r->total)));
  json_object_object_add(o, "created", json_object_new_double(r->created));
  json_object_object_add(o, "updated", json_object_new_double(lathe_now()));
  if (r->ckpt_time > 0) {
    json_object_object_add(o, "ckpt_step", json_object_new_int64(r->ckpt_step));
    json_object_object_add(o, "ckpt_time", json_object_new_double(r->ckpt_time));
  }
  json_object_object_add(o, "host", json_object_new_string(host));
  json_object_object_add(o, "owner", owner_json(self_owner()));
  if (lathe_main_metric(r->plugin))
    json_object_object_add(o, "main_metric", json_object_new_string(lathe_main_metric(r->plugin)));
  json_object *sum = json_object_new_object();
  for (int i = 0; i < r->nlast; i++)
    json_object_object_add(sum, r->last[i].name,
                           isfinite(r->last[i].value) ? json_object_new_double(r->last[i].value)
                                                      : NULL);
  json_object_object_add(o, "summary", sum);
  if (r->have_best) {
    json_object *b = json_object_new_object();
    json_object_object_add(b, "value", json_object_new_double(r->best));
    json_object_object_add(b, "step", json_object_new_int64(r->best_step));
    json_object_object_add(
        b, "goal", json_object_new_string(lathe_main_lower_better(r->plugin) ? "min" : "max"));
    json_object_object_add(o, "best", b);
  }
  if (r->best_ckpt >= 0)
    json_object_object_add(o, "best_ckpt", json_object_new_int64(r->best_ckpt));
  if (r->errmsg[0]) json_object_object_add(o, "error", json_object_new_string(r->errmsg));
  char *out = strdup(
      json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(o);
  return out;
}

static void set_record(lathe_run_t *r, char *rec) {
  pthread_mutex_lock(&r->sess->mu);
  free(r->record);
  r->record = rec;
  pthread_mutex_unlock(&r->sess->mu);
}

typedef struct {
  lathe_run_t *r;
  const char *rec;
  const lathe_buf_t *ckpt; /* NULL: no checkpoint */
  int truncate;            /* resume: drop metric points after r->step */
} write_args;

/* One transaction: pending metrics, optional checkpoint, run record. */
static int write_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  write_args *a = arg;
  lathe_run_t *r = a->r;
  int rc = 0;
  if (a->truncate && ((rc = lathe_store_metric_trunc(st, txn, r->id, (uint64_t)r->step)) ||
                      (rc = lathe_store_ckpt_trunc(st, txn, r->id, (uint64_t)r->step))))
    return rc;
  for (int i = 0; i < r->npending && !rc; i++) {
    lathe_point_t *p = &r->pending[i];
    rc = lathe_store_metric_put(st, txn, r->id, p->name, p->step, p->value, p->time);
  }
  if (!rc && a->ckpt)
    rc = lathe_store_ckpt_put(st, txn, r->id, (uint64_t)r->step, a->ckpt->p, a->ckpt->n,
                              (int)r->ckpt_keep,
                              r->best_ckpt >= 0 ? (uint64_t)r->best_ckpt : UINT64_MAX);
  if (!rc && a->rec) rc = lathe_store_run_put(st, txn, r->id, a->rec);
  if (!rc) test_kill_check(r, 1);
  return rc;
}

static int flush(lathe_run_t *r, lathe_status_t st, const lathe_buf_t *ckpt, int truncate) {
  char *rec = make_record(r, st);
  write_args a = {r, rec, ckpt, truncate};
  int rc = lathe_store_write(r->sess->store, write_txn, &a);
  if (rc) {
    free(rec);
    return rc;
  }
  r->npending = 0;
  r->last_flush = lathe_now();
  set_record(r, rec);
  return 0;
}

/* ---- host services --------------------------------------------------------------- */

static int64_t h_cfg_int(lathe_ctx_t *c, const char *k) {
  return lathe_cfg_int(c->cfg, k);
}
static double h_cfg_num(lathe_ctx_t *c, const char *k) {
  return lathe_cfg_num(c->cfg, k);
}
static const char *h_cfg_str(lathe_ctx_t *c, const char *k) {
  return lathe_cfg_str(c->cfg, k);
}
/* Standalone instances (lathe.env, tests) have no run: seed 0, metrics dropped. */
static uint64_t h_seed(lathe_ctx_t *c) {
  return c->run ? c->run->seed : 0;
}
static void h_set_total(lathe_ctx_t *c, int64_t total) {
  if (c->run) atomic_store(&c->run->total, total);
}

static void record_metric(lathe_run_t *r, uint64_t step, const char *name, double v);

/* A value of the main metric: the best so far? (ties keep the earlier step) */
static void note_best(lathe_run_t *r, uint64_t step, double v) {
  int better = !r->have_best || (lathe_main_lower_better(r->plugin) ? v < r->best : v > r->best);
  if (!better) return;
  r->have_best = 1, r->best = v, r->best_step = (int64_t)step;
}

static void h_metric(lathe_ctx_t *c, const char *name, double v) {
  /* the step being executed: metrics of step N belong to the checkpoint at N */
  if (c->run) record_metric(c->run, (uint64_t)c->run->step + 1, name, v);
}

static void record_metric(lathe_run_t *r, uint64_t step, const char *name, double v) {
  lathe_point_t pt = {"", step, v, lathe_now()}, *last;
  snprintf(pt.name, sizeof pt.name, "%s", name);
  if (GROW(r->pending, r->npending, r->cappending)) return;
  r->pending[r->npending++] = pt;
  if ((last = point_slot(&r->last, &r->nlast, &r->caplast, name))) *last = pt;
  if (!isfinite(v))
    r->diverged = 1;
  else if (lathe_main_metric(r->plugin) && !strcmp(name, lathe_main_metric(r->plugin)))
    note_best(r, step, v);
  push_event_at(r->sess, EV_METRIC, r, step, name, v, NULL);
}

static void h_log(lathe_ctx_t *c, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (c->run)
    push_event(c->run->sess, EV_LOG, c->run, NULL, 0, strdup(buf));
  else
    fprintf(stderr, "lathe: %s\n", buf);
}

static int h_fail(lathe_ctx_t *c, int code, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (c->run) snprintf(c->run->errmsg, sizeof c->run->errmsg, "%s", buf);
  return lathe_seterr(code, "%s", buf);
}

typedef struct {
  const char *name;
  int64_t i, count;
  char *out;
} ds_args;

static int ds_count_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  ds_args *a = arg;
  return lathe_dataset_count(st, txn, a->name, &a->count);
}

static int64_t h_dataset_count(lathe_ctx_t *c, const char *name) {
  ds_args a = {name, 0, 0, NULL};
  if (!c->run) return lathe_seterr(LATHE_ENOTFOUND, "no store outside a run");
  int rc = lathe_store_read(c->run->sess->store, ds_count_txn, &a);
  return rc ? rc : a.count;
}

static int ds_get_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  ds_args *a = arg;
  MDB_val v;
  int rc = lathe_store_ds_get(st, txn, a->name, (uint64_t)a->i, &v);
  if (rc) return rc;
  if (!(a->out = malloc(v.mv_size + 1))) return LATHE_ENOMEM;
  memcpy(a->out, v.mv_data, v.mv_size);
  a->out[v.mv_size] = 0;
  return 0;
}

static char *h_dataset_get(lathe_ctx_t *c, const char *name, int64_t i) {
  ds_args a = {name, i, 0, NULL};
  if (!c->run) return NULL;
  lathe_store_read(c->run->sess->store, ds_get_txn, &a);
  return a.out;
}

static const lathe_host_t host;

/* An environment's spaces fit what callers may assume: obs.n floats and a box
 * action within LATHE_SPACE_MAX (a discrete action is one float). */
static int env_check(const lathe_plugin_t *p, void *self) {
  lathe_space_t sp[2];
  memset(sp, 0, sizeof sp);
  int rc = p->env->spaces(self, &sp[0], &sp[1]);
  if (rc) return lathe_lasterr()[0] ? rc : lathe_seterr(rc, "%s: spaces() failed", p->name);
  for (int i = 0; i < 2; i++)
    if (sp[i].n < 1 || ((i == 0 || !sp[i].discrete) && sp[i].n > LATHE_SPACE_MAX))
      return lathe_seterr(LATHE_EPLUGIN, "%s: %s space of %d %s (1 to %d)", p->name,
                          i ? "action" : "observation", sp[i].n,
                          sp[i].discrete ? "values" : "dimensions", LATHE_SPACE_MAX);
  return 0;
}

/* Free every child of c, newest first. */
static void free_kids(lathe_ctx_t *c) {
  for (int i = c->nkids - 1; i >= 0; i--) lathe_instance_free(c->kids[i]);
  free(c->kids);
  c->kids = NULL, c->nkids = c->capkids = 0;
}

int lathe_instance_new(const char *name, const char *const *kv, int nkv, lathe_run_t *run,
                       lathe_child_t **out) {
  *out = NULL;
  const lathe_plugin_t *p;
  int rc = lathe_registry_get(name, &p);
  if (rc) return rc;
  lathe_child_t *ch = calloc(1, sizeof *ch);
  if (!ch) return lathe_seterr(LATHE_ENOMEM, "out of memory");
  if ((rc = lathe_cfg_init(&ch->cfg, p->name, p->opts, NULL))) {
    free(ch);
    return rc;
  }
  for (int i = 0; i < nkv && !rc; i++) {
    char key[128];
    const char *eq = strchr(kv[i], '=');
    if (!eq || eq - kv[i] >= (long)sizeof key) {
      rc = lathe_seterr(LATHE_ECONFIG, "%s: bad option '%s' (want key=value)", name, kv[i]);
      break;
    }
    memcpy(key, kv[i], eq - kv[i]);
    key[eq - kv[i]] = 0;
    rc = lathe_cfg_set(&ch->cfg, key, eq + 1);
  }
  ch->ctx.run = run, ch->ctx.cfg = &ch->cfg, ch->p = p;
  if (!rc && p->validate) rc = p->validate(&host, &ch->ctx);
  if (!rc && (rc = p->create(&host, &ch->ctx, &ch->self)) && !lathe_lasterr()[0])
    lathe_seterr(rc, "%s: cannot create: %s", name, lathe_strerror(rc));
  if (!rc && p->kind == LATHE_ENVIRONMENT) rc = env_check(p, ch->self);
  if (rc) {
    if (ch->self) p->destroy(ch->self); /* a failed create may leave a partial instance */
    free_kids(&ch->ctx);
    lathe_cfg_free(&ch->cfg);
    free(ch);
    return rc;
  }
  *out = ch;
  return 0;
}

void lathe_instance_free(lathe_child_t *ch) {
  if (!ch) return;
  ch->p->destroy(ch->self);
  free_kids(&ch->ctx);
  lathe_cfg_free(&ch->cfg);
  free(ch);
}

const lathe_host_t *lathe_host(void) {
  return &host;
}

/* Children belong to the context that created them: a run's (freed with the
 * run) or an instance's (freed with it: lathe.env, tests, fuzzing). */
static int h_plugin_create(lathe_ctx_t *c, const char *name, const char *const *kv, int nkv,
                           const lathe_plugin_t **plugin, void **self) {
  lathe_child_t *ch;
  if (GROW(c->kids, c->nkids, c->capkids)) return LATHE_ENOMEM;
  int rc = lathe_instance_new(name, kv, nkv, c->run, &ch);
  if (rc) return h_fail(c, rc, "%s", lathe_lasterr());
  c->kids[c->nkids++] = ch;
  *plugin = ch->p, *self = ch->self;
  return 0;
}

static void h_plugin_destroy(lathe_ctx_t *c, const lathe_plugin_t *p, void *self) {
  for (int i = 0; i < c->nkids; i++)
    if (c->kids[i]->self == self) {
      lathe_instance_free(c->kids[i]);
      c->kids[i] = c->kids[--c->nkids];
      return;
    }
}

static int ckpt_header(lathe_buf_t *b, uint64_t *step, uint32_t *count, int *damaged);

typedef struct {
  uint32_t id;
  lathe_buf_t buf;
  char plugin[64];
  int found;
} other_args;

static int other_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  other_args *a = arg;
  char *rec;
  int rc = lathe_store_run_get(st, txn, a->id, &rec);
  if (rc) return rc == LATHE_ENOTFOUND ? lathe_seterr(rc, "no run %u in the store", a->id) : rc;
  json_object *o = json_tokener_parse(rec), *v;
  free(rec);
  if (o && json_object_object_get_ex(o, "plugin", &v))
    snprintf(a->plugin, sizeof a->plugin, "%s", json_object_get_string(v));
  json_object_put(o);
  uint64_t step;
  MDB_val val;
  if ((rc = lathe_store_ckpt_latest(st, txn, a->id, &step, &val)))
    return rc == LATHE_ENOTFOUND ? lathe_seterr(rc, "run %u has no checkpoint", a->id) : rc;
  lathe_buf_put(&a->buf, val.mv_data, val.mv_size);
  return a->buf.err;
}

/* ---- datasets from generator plugins ---------------------------------------------- */

typedef struct {
  const char *plugin;
  const char *const *kv;
  int nkv;
  lathe_child_t *ch;
} gen_state;

/* lathe_record_fn over a generator instance; out NULL: a fresh instance. */
static int gen_next(void *arg, lathe_buf_t *out) {
  gen_state *g = arg;
  if (!out) {
    if (g->ch) lathe_instance_free(g->ch), g->ch = NULL;
    return lathe_instance_new(g->plugin, g->kv, g->nkv, NULL, &g->ch);
  }
  return g->ch->p->generator->next(g->ch->self, &host, &g->ch->ctx, out);
}

int lathe_dataset_generate(lathe_store_t *st, const char *plugin, const char *const *kv, int nkv,
                           const char *name, int64_t *count) {
  *count = 0;
  gen_state g = {plugin, kv, nkv, NULL};
  int rc = gen_next(&g, NULL);
  if (rc) return rc;
  const lathe_plugin_t *p = g.ch->p;
  if (p->kind != LATHE_GENERATOR) {
    const char *kind = lathe_kind_name(p->kind);
    rc = lathe_seterr(LATHE_EUSAGE, "plugin '%s' is a%s %s, not a generator", plugin,
                      kind[0] == 'a' || kind[0] == 'e' ? "n" : "", kind);
    lathe_instance_free(g.ch);
    return rc;
  }
  char source[1024], who[128];
  size_t off = (size_t)snprintf(source, sizeof source, "%s", plugin);
  for (int i = 0; i < nkv && off < sizeof source; i++)
    off += (size_t)snprintf(source + off, sizeof source - off, " %s", kv[i]);
  snprintf(who, sizeof who, "generator %s", plugin);
  rc = lathe_dataset_stream(st, name, p->generator->schema, source, who, gen_next, &g, count);
  if (g.ch) lathe_instance_free(g.ch);
  return rc;
}

int lathe_run_state(lathe_store_t *st, uint32_t id, lathe_buf_t *out, char plugin[64]) {
  other_args a = {id, {0}, "", 0};
  int rc = lathe_store_read(st, other_txn, &a);
  uint64_t step;
  uint32_t count = 0;
  int damaged = 0;
  if (!rc && ckpt_header(&a.buf, &step, &count, &damaged))
    rc = lathe_seterr(
        LATHE_ECKPT, "run %u: checkpoint at step %llu %s", id, (unsigned long long)step,
        damaged ? "is damaged (its checksum does not match)" : "of an unknown format");
  for (uint32_t i = 0; i < count && !rc; i++) { /* skip the metric entries */
    uint8_t len;
    uint64_t s;
    double v;
    char name[256];
    LATHE_GET(&a.buf, len), lathe_buf_get(&a.buf, name, len), LATHE_GET(&a.buf, s);
    LATHE_GET(&a.buf, v);
    if (a.buf.err) rc = lathe_seterr(LATHE_ECKPT, "run %u: truncated checkpoint", id);
  }
  if (!rc) {
    lathe_buf_put(out, a.buf.p + a.buf.off, a.buf.n - a.buf.off);
    snprintf(plugin, 64, "%s", a.plugin);
    rc = out->err;
  }
  lathe_buf_free(&a.buf);
  return rc;
}

static int h_run_checkpoint(lathe_ctx_t *c, uint32_t id, lathe_buf_t *out, char plugin[64]) {
  if (!c->run || !c->run->sess->store)
    return lathe_seterr(LATHE_EUSAGE, "checkpoints of other runs need a store");
  return lathe_run_state(c->run->sess->store, id, out, plugin);
}

static int h_dataset_create(lathe_ctx_t *c, const char *name, const char *schema,
                            const char *const *records, int64_t n) {
  if (!c->run || !c->run->sess->store)
    return h_fail(c, LATHE_EUSAGE, "writing dataset '%s' needs a store", name);
  json_object *all = json_object_new_array();
  int rc = all ? 0 : LATHE_ENOMEM;
  for (int64_t i = 0; i < n && !rc; i++) {
    json_object *o = json_tokener_parse(records[i]);
    if (!o)
      rc = lathe_seterr(LATHE_EDATA, "%s: record %lld is not JSON", name, (long long)i + 1);
    else
      json_object_array_add(all, o);
  }
  char source[32];
  snprintf(source, sizeof source, "run %u", c->run->id);
  if (!rc) rc = lathe_dataset_create(c->run->sess->store, name, schema, all, source);
  json_object_put(all);
  return rc ? h_fail(c, rc, "%s", lathe_lasterr()) : 0;
}

static uint32_t h_run_id(lathe_ctx_t *c) {
  return c->run ? c->run->id : 0;
}

static int h_stopping(lathe_ctx_t *c) {
  return c->run && atomic_load(&c->run->stop_req) != 0;
}

static const lathe_host_t host = {LATHE_API_MAJOR,  LATHE_API_MINOR,  h_cfg_int,
                                  h_cfg_num,        h_cfg_str,        h_seed,
                                  h_metric,         h_set_total,      h_log,
                                  h_fail,           h_dataset_count,  h_dataset_get,
                                  h_plugin_create,  h_plugin_destroy, h_run_checkpoint,
                                  h_dataset_create, h_run_id,         h_stopping};

/* ---- creating runs -------------------------------------------------------------- */

static int apply_sets(lathe_session_t *s, lathe_run_t *r) {
  const char *pname = r->plugin->name;
  size_t plen = strlen(pname);
  for (int i = 0; i < s->nsets; i++) {
    if (s->set_used[i] == 2) continue; /* consumed by lathe.opt */
    const char *kv = s->sets[i], *eq = strchr(kv, '=');
    char key[128];
    size_t klen = (size_t)(eq - kv);
    if (klen >= sizeof key) klen = sizeof key - 1;
    memcpy(key, kv, klen);
    key[klen] = 0;
    const char *k = key;
    if (!strncmp(key, pname, plen) && key[plen] == '.')
      k = key + plen + 1;
    else if (strchr(key, '.'))
      continue; /* addressed to another plugin */
    int rc = lathe_cfg_set(&r->cfg, k, eq + 1);
    if (rc) return lathe_seterr(rc, "--set %s: %s", kv, lathe_lasterr());
    s->set_used[i] = 1;
  }
  return 0;
}

static int new_record_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  lathe_run_t *r = arg;
  int rc = lathe_store_run_new(st, txn, &r->id);
  if (rc) return rc;
  if (r->sess->recipe_text && !r->sess->recipe_stored) { /* `lathe show RUN --recipe` */
    char key[64];
    snprintf(key, sizeof key, "user/recipe/%s", r->sess->recipe_hash);
    if ((rc = lathe_store_meta_put(st, txn, key, r->sess->recipe_text, r->sess->recipe_len)))
      return rc;
  }
  char *rec = make_record(r, RUN_PENDING);
  rc = lathe_store_run_put(st, txn, r->id, rec);
  if (rc)
    free(rec);
  else
    set_record(r, rec);
  return rc;
}

static int add_run(lathe_session_t *s, lathe_run_t *r) {
  if (GROW(s->runs, s->nruns, s->capruns)) return LATHE_ENOMEM;
  s->runs[s->nruns++] = r;
  return 0;
}

static void run_free(lathe_run_t *r) {
  lathe_cfg_free(&r->cfg);
  free(r->pending), free(r->last), free(r->ctx.kids), free(r->record), free(r->view);
  free(r);
}

static lathe_run_t *run_alloc(lathe_session_t *s, const lathe_plugin_t *p) {
  lathe_run_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->sess = s, r->plugin = p;
  r->ctx.run = r, r->ctx.cfg = &r->cfg;
  r->created = lathe_now();
  r->best_ckpt = -1, r->from_ckpt = -1;
  atomic_init(&r->status, RUN_PENDING);
  return r;
}

static void read_host_opts(lathe_run_t *r) {
  r->seed = (uint64_t)lathe_cfg_int(&r->cfg, "seed");
  r->ckpt_every = lathe_cfg_int(&r->cfg, "ckpt_every");
  r->ckpt_keep = lathe_cfg_int(&r->cfg, "ckpt_keep");
  r->keep_best = (int)lathe_cfg_int(&r->cfg, "ckpt_keep_best");
}

int lathe_run_new(lathe_session_t *s, const char *plugin, const char *const *keys,
                  const char *const *vals, int n, const char *where, lathe_run_t **out) {
  *out = NULL;
  const lathe_plugin_t *p;
  int rc = lathe_registry_get(plugin, &p);
  if (rc) return lathe_seterr(rc, "%s: %s", where, lathe_lasterr());
  if (p->kind != LATHE_ALGORITHM)
    return lathe_seterr(LATHE_EUSAGE, "%s: '%s' is a%s %s; only an algorithm runs (%s)", where,
                        p->name, p->kind == LATHE_ENVIRONMENT ? "n" : "", lathe_kind_name(p->kind),
                        p->kind == LATHE_ENVIRONMENT ? "use it from one, or lathe.env()"
                        : p->kind == LATHE_TASK      ? "give it to the pref plugin"
                                                     : "use lathe data generate");
  lathe_run_t *r = run_alloc(s, p);
  if (!r) return LATHE_ENOMEM;
  if ((rc = lathe_cfg_init(&r->cfg, p->name, p->opts, host_opts))) {
    free(r);
    return lathe_seterr(rc, "%s: %s", where, lathe_lasterr());
  }
  for (int i = 0; i < n && !rc; i++) rc = lathe_cfg_set(&r->cfg, keys[i], vals[i]);
  if (rc) rc = lathe_seterr(rc, "%s: %s", where, lathe_lasterr());
  if (!rc) rc = apply_sets(s, r);
  if (!rc && s->seed_offset) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu",
             (unsigned long long)(lathe_cfg_int(&r->cfg, "seed") + s->seed_offset));
    rc = lathe_cfg_set(&r->cfg, "seed", buf);
  }
  if (!rc && p->validate && (rc = p->validate(&host, &r->ctx)))
    rc = lathe_seterr(LATHE_ECONFIG, "%s: %s", where, lathe_lasterr());
  if (rc) {
    run_free(r);
    return rc;
  }
  read_host_opts(r);
  if (s->check_only) r->id = (uint32_t)s->nruns + 1; /* stand-in ids, so runs can name runs */
  if (!s->check_only && (rc = lathe_store_write(s->store, new_record_txn, r))) {
    run_free(r);
    return rc;
  }
  s->recipe_stored = !s->check_only; /* its text went in with this first run */
  if ((rc = add_run(s, r))) {
    run_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

typedef struct {
  uint32_t id;
  char *rec;
} get_args;

/* Claim run a->id for this process: refused (LATHE_ERUN) while another live
 * process owns it; otherwise the record names this process, in the same
 * transaction, so two resumes of one run cannot both win. */
static int claim_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  get_args *a = arg;
  free(a->rec), a->rec = NULL;
  int rc = lathe_store_run_get(st, txn, a->id, &a->rec);
  if (rc) return rc;
  json_object *o = json_tokener_parse(a->rec), *v;
  if (!o || !json_object_is_type(o, json_type_object)) {
    json_object_put(o);
    return lathe_seterr(LATHE_ESTORE, "run %u: corrupt run record", a->id);
  }
  long pid = 0;
  if (owner_alive(o, &pid)) {
    char st_[32];
    snprintf(st_, sizeof st_, "%s",
             json_object_object_get_ex(o, "status", &v) ? json_object_get_string(v) : "?");
    json_object_put(o);
    return lathe_seterr(LATHE_ERUN,
                        "run %u is %s in process %ld on this machine; stop that process first "
                        "(a run has one driver)",
                        a->id, st_, pid);
  }
  json_object_object_add(o, "owner", owner_json(self_owner()));
  rc = lathe_store_run_put(st, txn, a->id,
                           json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
  return rc;
}

int lathe_run_reopen(lathe_session_t *s, uint32_t id, lathe_run_t **out) {
  *out = NULL;
  get_args a = {id, NULL};
  int rc = lathe_store_write(s->store, claim_txn, &a);
  if (rc) {
    free(a.rec);
    return rc;
  }
  json_object *o = json_tokener_parse(a.rec), *v;
  free(a.rec);
  if (!o || !json_object_object_get_ex(o, "plugin", &v)) {
    json_object_put(o);
    return lathe_seterr(LATHE_ESTORE, "run %u: corrupt run record", id);
  }
  const lathe_plugin_t *p;
  if ((rc = lathe_registry_get(json_object_get_string(v), &p))) {
    json_object_put(o);
    return lathe_seterr(rc, "resume run %u: %s", id, lathe_lasterr());
  }
  if (p->kind != LATHE_ALGORITHM) {
    json_object_put(o);
    return lathe_seterr(LATHE_ESTORE, "run %u: its record names '%s', not an algorithm", id,
                        p->name);
  }
  lathe_run_t *r = run_alloc(s, p);
  json_object *cfg, *t;
  rc = r ? lathe_cfg_init(&r->cfg, p->name, p->opts, host_opts) : LATHE_ENOMEM;
  if (!rc && json_object_object_get_ex(o, "config", &cfg)) rc = lathe_cfg_from_json(&r->cfg, cfg);
  if (!rc && json_object_object_get_ex(o, "status", &v) &&
      !strcmp(json_object_get_string(v), "done"))
    rc = lathe_seterr(LATHE_EUSAGE, "run %u is already done", id);
  if (!rc) {
    if (json_object_object_get_ex(o, "recipe", &v))
      snprintf(s->recipe_path, sizeof s->recipe_path, "%s", json_object_get_string(v));
    if (json_object_object_get_ex(o, "recipe_hash", &v))
      snprintf(s->recipe_hash, sizeof s->recipe_hash, "%s", json_object_get_string(v));
    if (json_object_object_get_ex(o, "created", &t)) r->created = json_object_get_double(t);
    if (json_object_object_get_ex(o, "best_ckpt", &t) && json_object_get_int64(t) >= 0)
      r->best_ckpt = json_object_get_int64(t);
    if (json_object_object_get_ex(o, "threads", &t) && s->threads != json_object_get_int(t))
      fprintf(stderr,
              "lathe: warning: run %u used %d threads, resuming with %d; results may differ in "
              "the last bits\n",
              id, json_object_get_int(t), s->threads);
  }
  json_object_put(o);
  if (!rc) rc = add_run(s, r);
  if (rc) {
    if (r) run_free(r);
    return rc;
  }
  r->id = id, r->resume = 1;
  read_host_opts(r);
  *out = r;
  return 0;
}

/* lathe_run_stop with sess->mu held */
static void stop_locked(lathe_run_t *r, lathe_stop_t how, const char *why) {
  if (!atomic_load(&r->stop_req)) {
    snprintf(r->stop_why, sizeof r->stop_why, "%s", why ? why : "stopped");
    atomic_store(&r->stop_req, (int)how);
  }
}

void lathe_run_stop(lathe_run_t *r, lathe_stop_t how, const char *why) {
  pthread_mutex_lock(&r->sess->mu);
  stop_locked(r, how, why);
  pthread_mutex_unlock(&r->sess->mu);
}

int lathe_run_pause(lathe_run_t *r) {
  return !atomic_fetch_xor(&r->pause_req, 1);
}

void lathe_run_checkpoint_now(lathe_run_t *r) {
  atomic_store(&r->ckpt_req, 1);
}

int lathe_run_active(const lathe_run_t *r) {
  return atomic_load(&r->active);
}

int64_t lathe_run_total(const lathe_run_t *r) {
  return atomic_load(&r->total);
}

int lathe_run_start(lathe_run_t *r) {
  lathe_session_t *s = r->sess;
  if (s->check_only) return 0;
  pthread_mutex_lock(&s->mu);
  if (GROW(s->active, s->nactive, s->capactive)) {
    pthread_mutex_unlock(&s->mu);
    return LATHE_ENOMEM;
  }
  s->active[s->nactive++] = r;
  r->active = 1;
  if (s->signal) stop_locked(r, LATHE_STOP_INTERRUPT, NULL);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return 0;
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
  if (r->plugin->save) rc = r->plugin->save(r->self, &host, &r->ctx, &b);
  uint64_t sum = b.err ? 0 : lathe_ckpt_sum(b.p, b.n);
  LATHE_PUT(&b, sum);
  if (!rc && b.err) rc = lathe_seterr(b.err, "checkpoint of run %u: out of memory", r->id);
  double prev = r->ckpt_time;
  r->ckpt_time = lathe_now(), r->ckpt_step = r->step;
  if (!rc) rc = flush(r, st, &b, 0);
  if (rc) r->ckpt_time = prev;
  lathe_buf_free(&b);
  if (!rc) {
    r->last_ckpt_step = (uint64_t)r->step;
    push_event(r->sess, EV_CKPT, r, NULL, 0, NULL);
  }
  return rc;
}

/* Read a checkpoint's header: "LCKP", version, step, and the count of the
 * metric entries that follow; for version 2, check the trailing checksum and
 * leave it out of b. Returns 0 or LATHE_ECKPT (*damaged = 1 for a checksum
 * that does not match). */
static int ckpt_header(lathe_buf_t *b, uint64_t *step, uint32_t *count, int *damaged) {
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
  return !ckpt_header(&b, &step, &count, &damaged);
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
  if (step <= a->step && isfinite(value)) note_best(a->r, step, value);
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

static int restore(lathe_run_t *r) {
  load_args a = {r, {0}, 0, 0, -1};
  int rc = lathe_store_read(r->sess->store, load_txn, &a);
  if (rc || !a.found) {
    lathe_buf_free(&a.buf);
    if (!rc) push_event(r->sess, EV_LOG, r, NULL, 0, strdup("no checkpoint: starting over"));
    r->step = 0, r->have_best = 0, r->best_ckpt = -1;
    return rc ? rc : flush(r, RUN_RUNNING, NULL, 1);
  }
  lathe_buf_t *b = &a.buf;
  uint32_t count;
  uint64_t step;
  int damaged;
  if (ckpt_header(b, &step, &count, &damaged) || step != a.step) {
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
  if (!rc && r->plugin->load) rc = r->plugin->load(r->self, &host, &r->ctx, b);
  lathe_buf_free(b);
  if (rc)
    return lathe_seterr(rc == LATHE_ECKPT || rc == LATHE_ESHAPE ? LATHE_ECKPT : rc,
                        "run %u: cannot restore checkpoint at step %llu: %s", r->id,
                        (unsigned long long)step, r->errmsg[0] ? r->errmsg : lathe_lasterr());
  r->last_ckpt_step = step;
  char msg[96];
  snprintf(msg, sizeof msg, "resumed from the checkpoint at step %llu", (unsigned long long)step);
  push_event(r->sess, EV_LOG, r, NULL, 0, strdup(msg));
  return flush(r, RUN_RUNNING, NULL, 1);
}

static void finish(lathe_run_t *r, lathe_status_t st, int err) {
  int rc = 0;
  if (st == RUN_DONE || st == RUN_INTERRUPTED) {
    if (r->live)
      rc = checkpoint(r, st);
    else
      rc = flush(r, st, NULL, 0);
  } else {
    if (err && !r->errmsg[0]) snprintf(r->errmsg, sizeof r->errmsg, "%s", lathe_lasterr());
    rc = flush(r, st, NULL, 0);
  }
  if (rc) { /* the store refused the final write: report the run failed */
    st = RUN_FAILED, err = rc;
    snprintf(r->errmsg, sizeof r->errmsg, "%s", lathe_lasterr());
  }
  free_kids(&r->ctx);
  if (r->self) r->plugin->destroy(r->self); /* a failed create may leave a partial one */
  r->self = NULL, r->live = 0;
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
  push_event(s, EV_END, r, lathe_status_name(st), err, r->errmsg[0] ? strdup(r->errmsg) : NULL);
}

/* The log lines a run wrote while it started, after its start event. */
static void release_prelog(lathe_run_t *r) {
  r->starting = 0;
  for (int i = 0; i < r->nprelog; i++) {
    lathe_event_t *e = &r->prelog[i];
    push_event_at(r->sess, e->type, r, e->step, NULL, 0, e->text);
  }
  free(r->prelog);
  r->prelog = NULL, r->nprelog = r->capprelog = 0;
}

static void begin(lathe_run_t *r) {
  r->diverged = 0, r->starting = 1;
  int rc = r->plugin->create(&host, &r->ctx, &r->self);
  if (!rc) {
    r->live = 1;
    rc = r->resume ? restore(r) : flush(r, RUN_RUNNING, NULL, 0);
  }
  if (rc) {
    release_prelog(r);
    finish(r, RUN_FAILED, rc);
    return;
  }
  atomic_store(&r->status, RUN_RUNNING);
  push_event(r->sess, EV_START, r, NULL, 0, NULL);
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
        push_event_at(r->sess, EV_LOG, r, (uint64_t)r->step, NULL, 0, strdup(msg));
        if (r->npending && flush(r, RUN_RUNNING, NULL, 0)) {
          finish(r, RUN_FAILED, lathe_lasterr_code());
          return 1;
        }
      }
      return progressed;
    }
    r->paused = 0;
    lathe_clearerr();
    int rc = r->plugin->algorithm->step(r->self, &host, &r->ctx);
    progressed = 1;
    if (rc == LATHE_ENAN) r->diverged = 1, rc = 0; /* the plugin saw a non-finite value */
    if (rc < 0) {
      if (!r->errmsg[0])
        snprintf(r->errmsg, sizeof r->errmsg, "%s: step %lld: %s", r->plugin->name,
                 (long long)r->step, lathe_lasterr()[0] ? lathe_lasterr() : lathe_strerror(rc));
      finish(r, RUN_FAILED, rc);
      return 1;
    }
    r->step++;
    test_kill_check(r, 0);
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
    if (r->perf_time > 0 && r->step > r->perf_step)
      record_metric(r, (uint64_t)r->step, "perf/steps_per_sec",
                    (r->step - r->perf_step) / (now - r->perf_time));
    r->perf_time = now, r->perf_step = r->step;
  }
  if (now - r->last_flush > 0.5 && r->npending && flush(r, RUN_RUNNING, NULL, 0))
    finish(r, RUN_FAILED, lathe_lasterr_code());
  return progressed;
}

/* A worker takes the next active run no other worker holds (round robin),
 * steps it for a bounded chunk, and puts it back. Runs never interact, so
 * results do not depend on how many workers there are or who stepped what. */
static void *worker_main(void *arg) {
  lathe_session_t *s = arg;
  sigset_t set; /* signals are the loop's */
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
    if (s->quit) stop_locked(r, LATHE_STOP_INTERRUPT, NULL);
    r->busy = 1;
    double budget = s->nactive > s->workers ? 0.02 : 0.1;
    pthread_mutex_unlock(&s->mu);
    int progressed = 1;
    if (!r->live)
      begin(r);
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
  return NULL;
}

/* ---- the session and its loop ------------------------------------------------------ */

/* Keep the loop's own copy of the latest values (the worker's is not ours). */
static void view_update(lathe_run_t *r, const lathe_event_t *ev) {
  r->view_step = (int64_t)ev->step;
  if (ev->type == EV_START) r->view_t0 = ev->time, r->view_step0 = (int64_t)ev->step;
  lathe_point_t *p;
  if (ev->type == EV_METRIC && (p = point_slot(&r->view, &r->nview, &r->capview, ev->name)))
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
static volatile sig_atomic_t pending_signal;
static struct sigaction uv_handler[2]; /* libuv's, for SIGINT and SIGTERM */

static void chain_signal(int sig, siginfo_t *info, void *ctx) {
  pending_signal = sig;
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
  return pending_signal;
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
  if (!test_kill.parsed) test_kill_parse();
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
  if (store && !s->check_only)
    for (int i = 0; i < s->workers; i++) {
      if (pthread_create(&s->worker[i], NULL, worker_main, s))
        return lathe_seterr(LATHE_EIO, "cannot start a worker thread");
      s->worker_started = i + 1;
    }
  return 0;
}

void lathe_session_stop_all(lathe_session_t *s) {
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->nactive; i++) stop_locked(s->active[i], LATHE_STOP_INTERRUPT, NULL);
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
