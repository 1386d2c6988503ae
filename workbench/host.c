/* host.c - the host services every plugin call receives (lathe.h
 * lathe_host_t): config, metrics, logs, failures, datasets, child instances,
 * other runs' checkpoints; and the instances and generator datasets built on
 * them. Called from the thread that drives the instance. */
#include "runimpl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/dataset.h"
#include "cluster.h"
#include "error.h"
#include "registry.h"

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

void run_record_metric(lathe_run_t *r, uint64_t step, const char *name, double v);

/* A value of the main metric: the best so far? (ties keep the earlier step) */
void run_note_best(lathe_run_t *r, uint64_t step, double v) {
  int better = !r->have_best || (lathe_main_lower_better(r->plugin) ? v < r->best : v > r->best);
  if (!better) return;
  r->have_best = 1, r->best = v, r->best_step = (int64_t)step;
}

static void h_metric(lathe_ctx_t *c, const char *name, double v) {
  /* the step being executed: metrics of step N belong to the checkpoint at N */
  if (c->run) run_record_metric(c->run, (uint64_t)c->run->step + 1, name, v);
}

void run_record_metric(lathe_run_t *r, uint64_t step, const char *name, double v) {
  if (r->shard) return; /* shard 0 records the run's metrics */
  lathe_point_t pt = {"", step, v, lathe_now()}, *last;
  snprintf(pt.name, sizeof pt.name, "%s", name);
  if (GROW(r->pending, r->npending, r->cappending)) return;
  r->pending[r->npending++] = pt;
  if ((last = run_point_slot(&r->last, &r->nlast, &r->caplast, name))) *last = pt;
  if (!isfinite(v))
    r->diverged = 1;
  else if (lathe_main_metric(r->plugin) && !strcmp(name, lathe_main_metric(r->plugin)))
    run_note_best(r, step, v);
  run_event_at(r->sess, EV_METRIC, r, step, name, v, NULL);
}

static void h_log(lathe_ctx_t *c, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (c->run)
    run_event(c->run->sess, EV_LOG, c->run, NULL, 0, strdup(buf));
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
  if (c->run->sess->remote) return cluster_ds_count(c->run, name);
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
  if (c->run->sess->remote) return cluster_ds_get(c->run, name, i);
  lathe_store_read(c->run->sess->store, ds_get_txn, &a);
  return a.out;
}

typedef struct {
  const char *name;
  int64_t i;
  uint32_t max, got;
  size_t max_bytes, bytes;
  int (*each)(const void *, size_t, void *);
  void *arg;
} range_args;

static int ds_range_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  range_args *a = arg;
  MDB_val v;
  a->got = 0, a->bytes = 0;
  while (a->got < a->max && a->bytes < a->max_bytes) {
    int rc = lathe_store_ds_get(st, txn, a->name, (uint64_t)(a->i + a->got), &v);
    if (rc == LATHE_ENOTFOUND && a->got) return 0; /* past the last record */
    if (rc || (rc = a->each(v.mv_data, v.mv_size, a->arg))) return rc;
    a->got++, a->bytes += v.mv_size;
  }
  return 0;
}

int run_dataset_range(lathe_run_t *r, const char *name, int64_t i, uint32_t max, size_t max_bytes,
                      int (*each)(const void *rec, size_t n, void *arg), void *arg, uint32_t *got) {
  range_args a = {name, i, max, 0, max_bytes, 0, each, arg};
  int rc = lathe_store_read(r->sess->store, ds_range_txn, &a);
  *got = rc ? 0 : a.got;
  return rc;
}

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
void run_free_kids(lathe_ctx_t *c) {
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
  if (!rc && p->validate) rc = p->validate(&run_host, &ch->ctx);
  if (!rc && (rc = p->create(&run_host, &ch->ctx, &ch->self)) && !lathe_lasterr()[0])
    lathe_seterr(rc, "%s: cannot create: %s", name, lathe_strerror(rc));
  if (!rc && p->kind == LATHE_ENVIRONMENT) rc = env_check(p, ch->self);
  if (rc) {
    if (ch->self) p->destroy(ch->self); /* a failed create may leave a partial instance */
    run_free_kids(&ch->ctx);
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
  run_free_kids(&ch->ctx);
  lathe_cfg_free(&ch->cfg);
  free(ch);
}

const lathe_host_t *lathe_host(void) {
  return &run_host;
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

typedef struct {
  uint32_t id;
  lathe_buf_t buf;
  char plugin[64];
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
  return g->ch->p->generator->next(g->ch->self, &run_host, &g->ch->ctx, out);
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
  other_args a = {id, {0}, ""};
  int rc = lathe_store_read(st, other_txn, &a);
  uint64_t step;
  uint32_t count = 0;
  int damaged = 0;
  if (!rc && run_ckpt_header(&a.buf, &step, &count, &damaged))
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
  if (c->run && c->run->sess->remote) return cluster_run_state(c->run, id, out, plugin);
  if (!c->run || !c->run->sess->store)
    return lathe_seterr(LATHE_EUSAGE, "checkpoints of other runs need a store");
  return lathe_run_state(c->run->sess->store, id, out, plugin);
}

static int h_dataset_create(lathe_ctx_t *c, const char *name, const char *schema,
                            const char *const *records, int64_t n) {
  if (c->run && c->run->shard) return 0; /* shard 0 writes it */
  if (c->run && c->run->sess->remote) {
    int rc = cluster_ds_create(c->run, name, schema, records, n);
    return rc ? h_fail(c, rc, "%s", lathe_lasterr()) : 0;
  }
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

static int h_shard(lathe_ctx_t *c, int *count) {
  *count = c->run ? c->run->nshards : 1;
  return c->run ? c->run->shard : 0;
}

static int h_allreduce(lathe_ctx_t *c, float *x, size_t n) {
  if (!c->run || c->run->nshards < 2) return 0;
  double t0 = lathe_now();
  int rc = cluster_allreduce(c->run, x, n);
  c->run->dp_wait += lathe_now() - t0; /* (waiting for the other shards included) */
  return rc ? h_fail(c, rc, "%s", lathe_lasterr()) : 0;
}

const lathe_host_t run_host = {
    LATHE_API_MAJOR, LATHE_API_MINOR,  h_cfg_int,        h_cfg_num,
    h_cfg_str,       h_seed,           h_metric,         h_set_total,
    h_log,           h_fail,           h_dataset_count,  h_dataset_get,
    h_plugin_create, h_plugin_destroy, h_run_checkpoint, h_dataset_create,
    h_run_id,        h_stopping,       h_shard,          h_allreduce};
