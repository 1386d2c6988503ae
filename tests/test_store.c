/* test_store.c - the LMDB store and config validation: key order, checkpoint
 * retention, truncation on resume, map growth, format-version refusal, and
 * the config checks every recipe passes through. */
#include <stdlib.h>
#include <string.h>

#include "../storage/dataset.h"
#include "../storage/store.h"
#include "../workbench/config.h"
#include "../workbench/error.h"
#include "test.h"

static lathe_store_t *open_tmp(const char *name) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", test_tmpdir, name);
  lathe_store_t *s;
  ASSERT_EQ(lathe_store_open(path, 0, &s), 0);
  return s;
}

typedef struct {
  uint64_t steps[64];
  double vals[64];
  int n;
} pts;
static int collect(uint64_t step, double v, double t, void *arg) {
  pts *p = arg;
  if (p->n < 64) p->steps[p->n] = step, p->vals[p->n++] = v;
  return 0;
}
typedef struct {
  const char *name;
  uint32_t run;
  pts p;
} read_args;
static int read_txn(lathe_store_t *s, MDB_txn *txn, void *arg) {
  read_args *a = arg;
  return lathe_store_metric_each(s, txn, a->run, a->name, collect, &a->p);
}

static int put_metrics(lathe_store_t *s, MDB_txn *txn, void *arg) {
  /* out of order on purpose: the cursor must return step order */
  uint64_t steps[] = {300, 2, 70000, 1, 256};
  for (int i = 0; i < 5; i++) {
    int rc = lathe_store_metric_put(s, txn, 1, "loss", steps[i], (double)steps[i], 0);
    if (rc) return rc;
  }
  lathe_store_metric_put(s, txn, 1, "loss2", 5, 5, 0); /* a name that extends "loss" */
  lathe_store_metric_put(s, txn, 2, "loss", 9, 9, 0);  /* another run */
  return 0;
}

TEST(store_metrics_in_step_order) {
  lathe_store_t *s = open_tmp("a.lmdb");
  ASSERT_EQ(lathe_store_write(s, put_metrics, NULL), 0);
  read_args a = {"loss", 1};
  ASSERT_EQ(lathe_store_read(s, read_txn, &a), 0);
  ASSERT_EQ(a.p.n, 5);
  uint64_t want[] = {1, 2, 256, 300, 70000};
  for (int i = 0; i < 5; i++) ASSERT_EQ(a.p.steps[i], want[i]);
  lathe_store_close(s);
}

static int trunc_txn(lathe_store_t *s, MDB_txn *txn, void *arg) {
  return lathe_store_metric_trunc(s, txn, 1, 256);
}

TEST(store_truncate_after_step) {
  lathe_store_t *s = open_tmp("b.lmdb");
  ASSERT_EQ(lathe_store_write(s, put_metrics, NULL), 0);
  ASSERT_EQ(lathe_store_write(s, trunc_txn, NULL), 0);
  read_args a = {"loss", 1}, b = {"loss2", 1}, c = {"loss", 2};
  lathe_store_read(s, read_txn, &a);
  lathe_store_read(s, read_txn, &b);
  lathe_store_read(s, read_txn, &c);
  ASSERT_EQ(a.p.n, 3); /* 1, 2, 256 stay */
  ASSERT_EQ(a.p.steps[2], 256);
  ASSERT_EQ(b.p.n, 1); /* step 5 <= 256 stays */
  ASSERT_EQ(c.p.n, 1); /* other runs untouched */
  lathe_store_close(s);
}

typedef struct {
  uint64_t steps[8];
  int n;
} ck;
static int ck_cb(uint64_t step, size_t bytes, void *arg) {
  ck *c = arg;
  c->steps[c->n++] = step;
  return 0;
}
static int ck_put(lathe_store_t *s, MDB_txn *txn, void *arg) {
  int *step = arg;
  char data[100];
  memset(data, *step & 0xff, sizeof data);
  int rc = lathe_store_ckpt_put(s, txn, 7, (uint64_t)*step, data, sizeof data, 2, UINT64_MAX);
  if (!rc) rc = lathe_store_ckpt_put(s, txn, 8, 1, data, 10, 2, UINT64_MAX); /* a neighbour run */
  return rc;
}
static int ck_list(lathe_store_t *s, MDB_txn *txn, void *arg) {
  uint64_t step;
  MDB_val v;
  int rc = lathe_store_ckpt_latest(s, txn, 7, &step, &v);
  if (rc) return rc;
  ((ck *)arg)->steps[7] = step;
  return lathe_store_ckpt_each(s, txn, 7, ck_cb, arg);
}

TEST(store_checkpoints_keep_newest) {
  lathe_store_t *s = open_tmp("c.lmdb");
  for (int step = 10; step <= 50; step += 10) ASSERT_EQ(lathe_store_write(s, ck_put, &step), 0);
  ck c = {{0}, 0};
  ASSERT_EQ(lathe_store_read(s, ck_list, &c), 0);
  ASSERT_EQ(c.n, 2);
  ASSERT_EQ(c.steps[0], 40);
  ASSERT_EQ(c.steps[1], 50);
  ASSERT_EQ(c.steps[7], 50);
  lathe_store_close(s);
}

static int big_put(lathe_store_t *s, MDB_txn *txn, void *arg) {
  int *i = arg;
  static char blob[1 << 20];
  memset(blob, *i, sizeof blob);
  return lathe_store_ckpt_put(s, txn, (uint32_t)*i + 1, 1, blob, sizeof blob, 1, UINT64_MAX);
}

TEST(store_map_grows) {
  setenv("LATHE_STORE_MAPSIZE", "65536", 1);
  lathe_store_t *s = open_tmp("d.lmdb");
  unsetenv("LATHE_STORE_MAPSIZE");
  size_t before = s->mapsize;
  for (int i = 0; i < 6; i++) ASSERT_EQ(lathe_store_write(s, big_put, &i), 0);
  ASSERT(s->mapsize > before);
  ASSERT(s->mapsize >= (size_t)6 << 20);
  lathe_store_close(s);
}

static int bump_format(lathe_store_t *s, MDB_txn *txn, void *arg) {
  uint32_t f = LATHE_STORE_FORMAT + 1;
  MDB_val k = {6, "format"}, v = {4, &f};
  return mdb_put(txn, s->meta, &k, &v, 0);
}

TEST(store_refuses_newer_format) {
  lathe_store_t *s = open_tmp("e.lmdb");
  ASSERT_EQ(lathe_store_write(s, bump_format, NULL), 0);
  lathe_store_close(s);
  char path[700];
  snprintf(path, sizeof path, "%s/e.lmdb", test_tmpdir);
  ASSERT_EQ(lathe_store_open(path, 1, &s), LATHE_ESTORE);
  ASSERT(strstr(lathe_lasterr(), "written by a newer lathe (format 2"));
  ASSERT(s == NULL);
}

TEST(store_network_filesystems) {
  ASSERT(lathe_store_fs_is_network(0x6969));      /* NFS */
  ASSERT(lathe_store_fs_is_network(0xFF534D42));  /* CIFS */
  ASSERT(!lathe_store_fs_is_network(0xEF53));     /* ext4 */
  ASSERT(!lathe_store_fs_is_network(0x01021994)); /* tmpfs */
}

TEST(store_readonly_refuses_writes) {
  lathe_store_t *s = open_tmp("f.lmdb");
  lathe_store_close(s);
  char path[700];
  snprintf(path, sizeof path, "%s/f.lmdb", test_tmpdir);
  ASSERT_EQ(lathe_store_open(path, 1, &s), 0);
  ASSERT_EQ(lathe_store_write(s, put_metrics, NULL), LATHE_ESTORE);
  lathe_store_close(s);
}

/* ---- config ---- */

static const lathe_opt_t opts[] = {
    {"lr", LATHE_NUM, "1e-3", 0, 1, NULL, "learning rate"},
    {"steps", LATHE_INT, "100", 1, 1000, NULL, "steps"},
    {"double_q", LATHE_BOOL, "true", 0, -1, NULL, "double Q"},
    {"head", LATHE_STR, "mse", 0, -1, "mse|two_hot|hl_gauss", "head"},
    {NULL}};
static const lathe_opt_t host[] = {{"seed", LATHE_INT, "0", 0, 1e15, NULL, "seed"},
                                   {"steps", LATHE_INT, "7", 0, 10, NULL, "shadowed"},
                                   {NULL}};

TEST(config_defaults_and_checks) {
  lathe_cfg_t c;
  ASSERT_EQ(lathe_cfg_init(&c, "dqn", opts, host), 0);
  ASSERT_EQ(c.n, 5); /* the plugin's steps shadows the host's */
  ASSERT_NEAR(lathe_cfg_num(&c, "lr"), 1e-3, 1e-12);
  ASSERT_EQ(lathe_cfg_int(&c, "steps"), 100);
  ASSERT_STR(lathe_cfg_str(&c, "head"), "mse");
  ASSERT_EQ(lathe_cfg_set(&c, "lr", "0.5"), 0);
  ASSERT_EQ(lathe_cfg_set(&c, "head", "hl_gauss"), 0);
  ASSERT_EQ(lathe_cfg_set(&c, "double_q", "false"), 0);
  ASSERT_EQ(lathe_cfg_int(&c, "double_q"), 0);
  ASSERT_EQ(lathe_cfg_set(&c, "lerning_rate", "1"), LATHE_ECONFIG);
  ASSERT_EQ(lathe_cfg_set(&c, "stesp", "1"), LATHE_ECONFIG);
  ASSERT(strstr(lathe_lasterr(), "did you mean 'steps'"));
  ASSERT_EQ(lathe_cfg_set(&c, "steps", "2.5"), LATHE_ECONFIG);
  ASSERT(strstr(lathe_lasterr(), "not an integer"));
  ASSERT_EQ(lathe_cfg_set(&c, "steps", "5000"), LATHE_ECONFIG);
  ASSERT(strstr(lathe_lasterr(), "out of range [1, 1000]"));
  ASSERT_EQ(lathe_cfg_set(&c, "lr", "fast"), LATHE_ECONFIG);
  ASSERT_EQ(lathe_cfg_set(&c, "lr", "nan"), LATHE_ECONFIG);
  ASSERT_EQ(lathe_cfg_set(&c, "double_q", "maybe"), LATHE_ECONFIG);
  ASSERT_EQ(lathe_cfg_set(&c, "head", "c52"), LATHE_ECONFIG);
  ASSERT(strstr(lathe_lasterr(), "not one of mse|two_hot|hl_gauss"));
  /* JSON round trip */
  json_object *j = lathe_cfg_json(&c);
  lathe_cfg_t d;
  ASSERT_EQ(lathe_cfg_init(&d, "dqn", opts, host), 0);
  ASSERT_EQ(lathe_cfg_from_json(&d, j), 0);
  ASSERT_NEAR(lathe_cfg_num(&d, "lr"), 0.5, 0);
  ASSERT_STR(lathe_cfg_str(&d, "head"), "hl_gauss");
  ASSERT_EQ(lathe_cfg_int(&d, "double_q"), 0);
  json_object_put(j);
  lathe_cfg_free(&c), lathe_cfg_free(&d);
}

TEST(config_bad_default_is_plugin_error) {
  static const lathe_opt_t broken[] = {{"n", LATHE_INT, "ten", 0, 100, NULL, "n"}, {NULL}};
  lathe_cfg_t c;
  ASSERT_EQ(lathe_cfg_init(&c, "broken", broken, NULL), LATHE_EPLUGIN);
  ASSERT(strstr(lathe_lasterr(), "default of n = 'ten'"));
}

TEST(nearest_word) {
  const char *w[] = {"run", "runs", "resume", "rm", "plugins"};
  ASSERT_STR(lathe_nearest("rnu", w, 5), "run");
  ASSERT_STR(lathe_nearest("plugin", w, 5), "plugins");
  ASSERT(lathe_nearest("zzzzzzz", w, 5) == NULL);
}

TEST(schema_checks) {
  json_object *o =
      json_tokener_parse("{\"obs\":[1,2],\"action\":1,\"reward\":0.5,"
                         "\"next_obs\":[1,3],\"terminated\":false,\"truncated\":true}");
  if (lathe_schema_check("transitions", o)) test_fail(__FILE__, __LINE__, "%s", lathe_lasterr());
  json_object_object_add(o, "action", json_object_new_string("left"));
  ASSERT_EQ(lathe_schema_check("transitions", o), LATHE_EDATA);
  ASSERT(strstr(lathe_lasterr(), "field 'action' is a string, want a number or an array"));
  json_object_put(o);
  ASSERT(lathe_schema_known("prefs") && !lathe_schema_known("pref"));
}
