/* run.c - runs: their options and records, the process that owns each,
 * creating and reopening them, and the one way anything but the worker
 * changes one (lathe_run_stop, lathe_run_pause, lathe_run_checkpoint_now).
 * The worker that steps runs is worker.c, the plugins' host services host.c,
 * the session and its loop session.c. */
#include "runimpl.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "error.h"
#include "registry.h"

/* Fault injection for the kill-and-resume tests, so that a run is killed
 * exactly as often as a test asks however fast the machine is:
 * LATHE_TEST_KILL=RUN:STEP makes the process SIGKILL itself right after run
 * RUN has computed step STEP (before that step's metrics or checkpoint are
 * written); LATHE_TEST_KILL=RUN:STEP:write, inside the first store write of
 * that run at or after STEP (a metrics flush or a checkpoint), before it
 * commits; RUN:STEP:term (or :int) sends SIGTERM (SIGINT) instead, once,
 * after the step; RUN:STEP:shard, SIGKILL in a data-parallel shard other
 * than shard 0 only. Unset in normal use; read once. */
static struct {
  int parsed, in_write, sig, shard;
  uint32_t run;
  int64_t step;
} test_kill;

void run_test_kill_init(void) {
  if (test_kill.parsed) return;
  const char *e = getenv("LATHE_TEST_KILL");
  unsigned run;
  long long step;
  char mode[8] = "";
  test_kill.parsed = 1;
  if (e && sscanf(e, "%u:%lld:%7s", &run, &step, mode) >= 2 && run > 0 && step > 0)
    test_kill.run = run, test_kill.step = step, test_kill.in_write = !strcmp(mode, "write"),
    test_kill.shard = !strcmp(mode, "shard"),
    test_kill.sig = !strcmp(mode, "term")  ? SIGTERM
                    : !strcmp(mode, "int") ? SIGINT
                                           : SIGKILL;
}

/* Die now if the test asks it at this point (in_write: inside a write); a
 * signal other than SIGKILL is sent once. */
void run_test_kill(const lathe_run_t *r, int in_write) {
  if (test_kill.run == r->id && r->step >= test_kill.step && test_kill.in_write == in_write &&
      (!test_kill.shard || r->shard)) {
    if (test_kill.sig != SIGKILL) test_kill.run = 0;
    kill(getpid(), test_kill.sig);
  }
}

/* Options every run has, whatever its plugin. */
const lathe_opt_t run_host_opts[] = {
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

void lathe_hash_hex(const void *data, size_t n, char out[17]) {
  uint64_t h = 0xcbf29ce484222325ULL;
  const uint8_t *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The slot for metric name in a latest-value list, appended if new (NULL if
 * out of memory). */
lathe_point_t *run_point_slot(lathe_point_t **list, int *n, int *cap, const char *name) {
  for (int i = 0; i < *n; i++)
    if (!strcmp((*list)[i].name, name)) return &(*list)[i];
  if (GROW(*list, *n, *cap)) return NULL;
  lathe_point_t *p = &(*list)[(*n)++];
  snprintf(p->name, sizeof p->name, "%s", name);
  return p;
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
  if (!rc) run_test_kill(r, 1);
  return rc;
}

int run_flush(lathe_run_t *r, lathe_status_t st, const lathe_buf_t *ckpt, int truncate) {
  if (r->sess->remote) { /* a worker rank: rank 0 writes it */
    int rc = cluster_flush(r, st, ckpt, truncate);
    if (!rc) r->npending = 0, r->last_flush = lathe_now();
    return rc;
  }
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

void run_free(lathe_run_t *r) {
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
  r->best_ckpt = -1, r->from_ckpt = -1, r->nshards = 1;
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
                        p->kind == LATHE_ENVIRONMENT || p->kind == LATHE_TEXTENV
                            ? "use it from one, or lathe.env()"
                        : p->kind == LATHE_TASK ? "give it to the pref plugin"
                                                : "use lathe data generate");
  lathe_run_t *r = run_alloc(s, p);
  if (!r) return LATHE_ENOMEM;
  if ((rc = lathe_cfg_init(&r->cfg, p->name, p->opts, run_host_opts))) {
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
  if (!rc && p->validate && (rc = p->validate(&run_host, &r->ctx)))
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

int lathe_run_adopt(lathe_session_t *s, uint32_t id, const char *plugin, const char *cfg_json,
                    lathe_run_t **out) {
  *out = NULL;
  const lathe_plugin_t *p;
  int rc = lathe_registry_get(plugin, &p);
  if (rc) return rc;
  if (p->kind != LATHE_ALGORITHM)
    return lathe_seterr(LATHE_EUSAGE, "run %u: '%s' is not an algorithm", id, plugin);
  lathe_run_t *r = run_alloc(s, p);
  json_object *cfg = json_tokener_parse(cfg_json);
  rc = !r     ? LATHE_ENOMEM
       : !cfg ? lathe_seterr(LATHE_EIO, "run %u: its config from rank 0 is not JSON", id)
              : lathe_cfg_init(&r->cfg, p->name, p->opts, run_host_opts);
  if (!rc) rc = lathe_cfg_from_json(&r->cfg, cfg);
  json_object_put(cfg);
  if (rc) {
    if (r) run_free(r);
    return rc;
  }
  r->id = id;
  read_host_opts(r);
  atomic_store(&r->active, 1);
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
  rc = r ? lathe_cfg_init(&r->cfg, p->name, p->opts, run_host_opts) : LATHE_ENOMEM;
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
void run_stop_locked(lathe_run_t *r, lathe_stop_t how, const char *why) {
  if (!atomic_load(&r->stop_req)) {
    snprintf(r->stop_why, sizeof r->stop_why, "%s", why ? why : "stopped");
    atomic_store(&r->stop_req, (int)how);
  }
}

void lathe_run_stop(lathe_run_t *r, lathe_stop_t how, const char *why) {
  pthread_mutex_lock(&r->sess->mu);
  run_stop_locked(r, how, why);
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
  if (s->signal) run_stop_locked(r, LATHE_STOP_INTERRUPT, NULL);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return 0;
}
