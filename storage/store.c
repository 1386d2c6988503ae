/* store.c - one LMDB environment holding runs, metrics, checkpoints and
 * datasets (key layout in store.h).
 *
 * Growth: the map starts at LATHE_STORE_MAPSIZE bytes (default 256 MiB, sparse)
 * and doubles on MDB_MAP_FULL. LMDB allows mdb_env_set_mapsize only while this
 * process has no transaction open, so every transaction holds `gate` for reading
 * and a resize takes it for writing. Another process growing the map shows up
 * as MDB_MAP_RESIZED, answered by adopting the new size.
 */
#define _GNU_SOURCE /* dladdr, REG_RIP: the fault handler's helpers */
#include "store.h"

#include <dlfcn.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../workbench/error.h"

static pthread_rwlock_t gate = PTHREAD_RWLOCK_INITIALIZER;

/* The environments open in this process, for lathe_store_fault_in_map. */
#define MAX_OPEN 16
static MDB_env *open_envs[MAX_OPEN];
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;

static void track(MDB_env *env, int add) {
  pthread_mutex_lock(&open_mu);
  for (int i = 0; i < MAX_OPEN; i++)
    if (add ? !open_envs[i] : open_envs[i] == env) {
      open_envs[i] = add ? env : NULL;
      break;
    }
  pthread_mutex_unlock(&open_mu);
}

/* The program counter a fault happened at, from the handler's context. */
static const void *fault_pc(const void *uctx) {
  const ucontext_t *uc = uctx;
#if defined(__x86_64__)
  return uc ? (const void *)uc->uc_mcontext.gregs[REG_RIP] : NULL;
#elif defined(__aarch64__)
  return uc ? (const void *)uc->uc_mcontext.pc : NULL;
#else
  (void)uc;
  return NULL;
#endif
}

/* LMDB's internal assertions fail on some damaged pages; it would abort(). */
void (*lathe_store_on_damage)(const char *what);

static void on_lmdb_assert(MDB_env *env, const char *msg) {
  (void)env;
  if (lathe_store_on_damage) lathe_store_on_damage(msg);
  fprintf(stderr, "lathe: store damaged: LMDB: %s\n", msg);
  abort(); /* what LMDB would have done */
}

int lathe_store_fault_is_damage(const void *addr, const void *uctx) {
  if (lathe_store_fault_in_map(addr)) return 1;
  Dl_info dl; /* or inside LMDB itself, which follows a damaged page's pointers */
  const void *pc = fault_pc(uctx);
  return pc && dladdr(pc, &dl) && dl.dli_fname && strstr(dl.dli_fname, "liblmdb");
}

int lathe_store_fault_in_map(const void *addr) {
  for (int i = 0; i < MAX_OPEN; i++) { /* no lock: called from a signal handler */
    MDB_env *env = open_envs[i];
    MDB_envinfo info;
    if (!env || mdb_env_info(env, &info)) continue;
    const char *a = addr, *m = info.me_mapaddr;
    if (m && a >= m && a < m + info.me_mapsize) return 1;
  }
  return 0;
}

static void be32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/* LMDB codes and positive errno values all become LATHE_ESTORE, with the detail. */
static int mdb_fail(int rc, const char *what, const lathe_store_t *s) {
  lathe_seterr(LATHE_ESTORE, "store %s: %s: %s", s->path, what, mdb_strerror(rc));
  return LATHE_ESTORE;
}

/* ---- filesystem checks ---------------------------------------------------- */

static const struct {
  long magic;
  const char *name;
  int network;
} fstypes[] = {
    {0xEF53, "ext4", 0},      {0x58465342, "xfs", 0},     {0x9123683E, "btrfs", 0},
    {0x01021994, "tmpfs", 0}, {0x794C7630, "overlay", 0}, {0x2FC12FC1, "zfs", 0},
    {0x6969, "nfs", 1},       {0x517B, "smb", 1},         {0xFF534D42, "cifs", 1},
    {0xFE534D42, "smb2", 1},  {0x65735546, "fuse", 1},    {0x6B414653, "afs", 1},
    {0x47504653, "gpfs", 1},  {0x0BD00BD0, "lustre", 1},  {0x00C36400, "ceph", 1},
};

int lathe_store_fs_is_network(long f_type) {
  for (size_t i = 0; i < sizeof fstypes / sizeof *fstypes; i++)
    if (fstypes[i].magic == f_type) return fstypes[i].network;
  return 0;
}

const char *lathe_store_fs_name(const char *path) {
  struct statfs sf;
  if (statfs(path, &sf)) return "unknown";
  for (size_t i = 0; i < sizeof fstypes / sizeof *fstypes; i++)
    if (fstypes[i].magic == (long)sf.f_type) return fstypes[i].name;
  return "other";
}

/* ---- open / close ---------------------------------------------------------- */

static int open_dbs(lathe_store_t *s, MDB_txn *txn, void *arg) {
  unsigned flags = s->readonly ? 0 : MDB_CREATE;
  int rc;
  if ((rc = mdb_dbi_open(txn, "meta", flags, &s->meta)) ||
      (rc = mdb_dbi_open(txn, "runs", flags | MDB_INTEGERKEY, &s->runs)) ||
      (rc = mdb_dbi_open(txn, "metrics", flags, &s->metrics)) ||
      (rc = mdb_dbi_open(txn, "ckpts", flags, &s->ckpts)) ||
      (rc = mdb_dbi_open(txn, "datasets", flags, &s->datasets))) {
    if (rc == MDB_NOTFOUND)
      return lathe_seterr(LATHE_ESTORE, "store %s: not a lathe store (missing tables)", s->path);
    return mdb_fail(rc, "opening tables", s);
  }
  MDB_val k = {6, "format"}, v;
  rc = mdb_get(txn, s->meta, &k, &v);
  if (rc == MDB_NOTFOUND) {
    if (s->readonly)
      return lathe_seterr(LATHE_ESTORE, "store %s: not a lathe store (no format record)", s->path);
    uint32_t f = LATHE_STORE_FORMAT;
    v.mv_size = 4, v.mv_data = &f;
    if ((rc = mdb_put(txn, s->meta, &k, &v, 0))) return mdb_fail(rc, "writing format", s);
    return 0;
  }
  if (rc) return mdb_fail(rc, "reading format", s);
  uint32_t f;
  if (v.mv_size != 4) return lathe_seterr(LATHE_ESTORE, "store %s: corrupt format record", s->path);
  memcpy(&f, v.mv_data, 4);
  if (f > LATHE_STORE_FORMAT)
    return lathe_seterr(LATHE_ESTORE,
                        "store %s: written by a newer lathe (format %u, this lathe reads up to "
                        "%u); upgrade lathe or use another --store",
                        s->path, f, LATHE_STORE_FORMAT);
  return 0;
}

int lathe_store_open(const char *path, int readonly, lathe_store_t **out) {
  *out = NULL;
  lathe_store_t *s = calloc(1, sizeof *s);
  if (!s) return lathe_seterr(LATHE_ENOMEM, "out of memory opening store");
  snprintf(s->path, sizeof s->path, "%s", path);
  s->readonly = readonly;
  struct stat st;
  if (stat(path, &st)) {
    if (readonly || errno != ENOENT) {
      int e = errno;
      free(s);
      if (e == ENOENT)
        return lathe_seterr(LATHE_ESTORE,
                            "no store at %s (run a recipe first, or pass --store PATH)", path);
      return lathe_seterr(LATHE_ESTORE, "store %s: %s", path, strerror(e));
    }
    if (mkdir(path, 0755) && errno != EEXIST) { /* EEXIST: another process just made it */
      int e = errno;
      free(s);
      return lathe_seterr(LATHE_ESTORE, "cannot create store %s: %s", path, strerror(e));
    }
  } else if (!S_ISDIR(st.st_mode)) {
    free(s);
    return lathe_seterr(LATHE_ESTORE, "store %s: not a directory (a store is a folder)", path);
  }
  struct statfs sf;
  if (!statfs(path, &sf) && lathe_store_fs_is_network((long)sf.f_type)) {
    free(s);
    return lathe_seterr(LATHE_ESTORE,
                        "store %s is on a network filesystem (%s); LMDB needs a local one: pass "
                        "--store /local/path",
                        path, lathe_store_fs_name(path));
  }
  /* read-only without a writable lock file (another user's store, a read-only
   * share): open without LMDB's lock; see store.h for what that gives up */
  char lockf[4200];
  snprintf(lockf, sizeof lockf, "%s/lock.mdb", path);
  int nolock = readonly && access(lockf, W_OK) && (errno != ENOENT || access(path, W_OK));
  s->nolock = nolock;
  /* LMDB reads its two meta pages through the map: a data file shorter than
   * that (but not empty: a new store) would fault before anything is checked */
  char dataf[4200];
  snprintf(dataf, sizeof dataf, "%s/data.mdb", path);
  struct stat dst;
  long pg = sysconf(_SC_PAGESIZE);
  if (!stat(dataf, &dst) && (dst.st_size > 0 || readonly) &&
      dst.st_size < 2 * (pg > 0 ? pg : 4096)) {
    free(s);
    return lathe_seterr(LATHE_ESTORE,
                        "store damaged: %s is %lld bytes, shorter than LMDB's two meta pages; run "
                        "`lathe store check --store %s` on a backup, or restore one",
                        dataf, (long long)dst.st_size, path);
  }
  const char *ms = getenv("LATHE_STORE_MAPSIZE");
  s->mapsize = ms ? strtoull(ms, NULL, 10) : (size_t)256 << 20;
  if (s->mapsize < (1 << 16)) s->mapsize = 1 << 16;
  int rc;
  if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_assert(s->env, on_lmdb_assert)) ||
      (rc = mdb_env_set_maxdbs(s->env, 8)) || (rc = mdb_env_set_maxreaders(s->env, 126)) ||
      (rc = mdb_env_set_mapsize(s->env, s->mapsize)) ||
      (rc = mdb_env_open(s->env, path,
                         MDB_NOTLS | (readonly ? MDB_RDONLY : 0) | (nolock ? MDB_NOLOCK : 0),
                         0644))) {
    if (rc == EACCES || rc == EROFS)
      lathe_seterr(LATHE_ESTORE, "cannot open store %s: %s%s", path, strerror(rc),
                   readonly ? "" : " (read-only location? pass --store to a writable folder)");
    else
      lathe_seterr(LATHE_ESTORE, "cannot open store %s: %s", path, mdb_strerror(rc));
    if (s->env) mdb_env_close(s->env);
    free(s);
    return LATHE_ESTORE;
  }
  track(s->env, 1); /* from here a fault in the map is the store's damage */
  MDB_envinfo info;
  mdb_env_info(s->env, &info);
  if (info.me_mapsize > s->mapsize) s->mapsize = info.me_mapsize;
  /* a data file shorter than its meta page says would fault (SIGBUS) on the
   * first read past its end: refuse it here */
  MDB_stat est;
  if (!mdb_env_stat(s->env, &est) && !stat(dataf, &st) &&
      (uint64_t)st.st_size < ((uint64_t)info.me_last_pgno + 1) * est.ms_psize) {
    lathe_seterr(LATHE_ESTORE,
                 "store damaged: %s is %lld bytes, its meta page says %llu; run `lathe store "
                 "check --store %s`",
                 dataf, (long long)st.st_size,
                 (unsigned long long)(info.me_last_pgno + 1) * est.ms_psize, path);
    track(s->env, 0);
    mdb_env_close(s->env);
    free(s);
    return LATHE_ESTORE;
  }
  rc = readonly ? lathe_store_read(s, open_dbs, NULL) : lathe_store_write(s, open_dbs, NULL);
  if (rc) {
    track(s->env, 0);
    mdb_env_close(s->env);
    free(s);
    return LATHE_ESTORE; /* the message names the cause */
  }
  *out = s;
  return 0;
}

void lathe_store_close(lathe_store_t *s) {
  if (!s) return;
  track(s->env, 0);
  mdb_env_close(s->env);
  free(s);
}

/* ---- transactions --------------------------------------------------------- */

static int grow(lathe_store_t *s) {
  pthread_rwlock_wrlock(&gate);
  MDB_envinfo info;
  mdb_env_info(s->env, &info);
  size_t want = info.me_mapsize * 2;
  int rc = mdb_env_set_mapsize(s->env, want);
  if (!rc) s->mapsize = want;
  pthread_rwlock_unlock(&gate);
  return rc;
}

static int adopt_size(lathe_store_t *s) {
  pthread_rwlock_wrlock(&gate);
  int rc = mdb_env_set_mapsize(s->env, 0);
  pthread_rwlock_unlock(&gate);
  return rc;
}

int lathe_store_write(lathe_store_t *s, lathe_txn_fn fn, void *arg) {
  if (s->readonly) return lathe_seterr(LATHE_ESTORE, "store %s is open read-only", s->path);
  for (int attempt = 0; attempt < 40; attempt++) {
    MDB_txn *txn;
    pthread_rwlock_rdlock(&gate);
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      pthread_rwlock_unlock(&gate);
      if ((rc = adopt_size(s))) return mdb_fail(rc, "adopting new map size", s);
      continue;
    }
    if (rc) {
      pthread_rwlock_unlock(&gate);
      return mdb_fail(rc, "beginning write", s);
    }
    lathe_clearerr();
    rc = fn(s, txn, arg);
    if (rc) {
      mdb_txn_abort(txn);
      pthread_rwlock_unlock(&gate);
      if (rc == MDB_MAP_FULL) {
        if ((rc = grow(s))) return mdb_fail(rc, "growing map", s);
        continue;
      }
      return rc;
    }
    rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&gate);
    if (rc == MDB_MAP_FULL) {
      if ((rc = grow(s))) return mdb_fail(rc, "growing map", s);
      continue;
    }
    if (rc == ENOSPC || rc == EFBIG || rc == EDQUOT || rc == EIO)
      return lathe_seterr(LATHE_ESTORE,
                          "store %s: cannot write (disk full? %s); the last transaction was not "
                          "applied",
                          s->path, strerror(rc));
    if (rc) return mdb_fail(rc, "commit", s);
    return 0;
  }
  return lathe_seterr(LATHE_ESTORE, "store %s: map keeps filling", s->path);
}

int lathe_store_read(lathe_store_t *s, lathe_txn_fn fn, void *arg) {
  for (int attempt = 0; attempt < 4; attempt++) {
    MDB_txn *txn;
    pthread_rwlock_rdlock(&gate);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
      pthread_rwlock_unlock(&gate);
      adopt_size(s);
      continue;
    }
    if (rc) {
      pthread_rwlock_unlock(&gate);
      return mdb_fail(rc, "beginning read", s);
    }
    rc = fn(s, txn, arg);
    /* commit, not abort: table handles opened in a read transaction survive only a commit */
    if (rc)
      mdb_txn_abort(txn);
    else
      mdb_txn_commit(txn);
    pthread_rwlock_unlock(&gate);
    return rc;
  }
  return lathe_seterr(LATHE_ESTORE, "store %s: map keeps resizing", s->path);
}

/* A put that maps MDB_MAP_FULL through unchanged (lathe_store_write retries). */
static int put(lathe_store_t *s, MDB_txn *txn, MDB_dbi db, MDB_val *k, MDB_val *v, unsigned flags) {
  int rc = mdb_put(txn, db, k, v, flags);
  if (rc && rc != MDB_MAP_FULL) return mdb_fail(rc, "put", s);
  return rc;
}

/* ---- runs ------------------------------------------------------------------ */

int lathe_store_run_new(lathe_store_t *s, MDB_txn *txn, uint32_t *id) {
  MDB_val k = {8, "next_run"}, v;
  uint32_t next = 1;
  int rc = mdb_get(txn, s->meta, &k, &v);
  if (!rc && v.mv_size == 4) memcpy(&next, v.mv_data, 4);
  *id = next++;
  v.mv_size = 4, v.mv_data = &next;
  return put(s, txn, s->meta, &k, &v, 0);
}

int lathe_store_meta_put(lathe_store_t *s, MDB_txn *txn, const char *key, const void *data,
                         size_t n) {
  if (strncmp(key, "user/", 5) || strlen(key) > 400)
    return lathe_seterr(LATHE_EUSAGE, "store: meta key '%.40s' must start with user/", key);
  MDB_val k = {strlen(key), (void *)key}, v = {n, (void *)data};
  return put(s, txn, s->meta, &k, &v, 0);
}

int lathe_store_meta_get(lathe_store_t *s, MDB_txn *txn, const char *key, MDB_val *val) {
  MDB_val k = {strlen(key), (void *)key};
  int rc = mdb_get(txn, s->meta, &k, val);
  if (rc == MDB_NOTFOUND) return LATHE_ENOTFOUND;
  return rc ? mdb_fail(rc, "get", s) : 0;
}

int lathe_store_run_put(lathe_store_t *s, MDB_txn *txn, uint32_t id, const char *json) {
  MDB_val k = {4, &id}, v = {strlen(json), (void *)json};
  return put(s, txn, s->runs, &k, &v, 0);
}

int lathe_store_run_get(lathe_store_t *s, MDB_txn *txn, uint32_t id, char **json) {
  MDB_val k = {4, &id}, v;
  int rc = mdb_get(txn, s->runs, &k, &v);
  if (rc == MDB_NOTFOUND) return lathe_seterr(LATHE_ENOTFOUND, "no run %u in %s", id, s->path);
  if (rc) return mdb_fail(rc, "reading run", s);
  *json = malloc(v.mv_size + 1);
  if (!*json) return LATHE_ENOMEM;
  memcpy(*json, v.mv_data, v.mv_size);
  (*json)[v.mv_size] = 0;
  return 0;
}

int lathe_store_run_each(lathe_store_t *s, MDB_txn *txn, lathe_run_cb cb, void *arg) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->runs, &c);
  if (rc) return mdb_fail(rc, "cursor", s);
  MDB_val k, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    uint32_t id;
    if (k.mv_size != 4) continue; /* a damaged key: `lathe store check` reports it */
    memcpy(&id, k.mv_data, 4);
    if ((rc = cb(id, v.mv_data, v.mv_size, arg))) break;
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Delete every key of db that starts with prefix (len bytes). */
static int del_prefix(lathe_store_t *s, MDB_txn *txn, MDB_dbi db, const uint8_t *prefix,
                      size_t len) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, db, &c);
  if (rc) return mdb_fail(rc, "cursor", s);
  MDB_val k = {len, (void *)prefix}, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size < len || memcmp(k.mv_data, prefix, len)) break;
    if ((rc = mdb_cursor_del(c, 0))) break;
  }
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND || rc == 0) return 0;
  return rc == MDB_MAP_FULL ? rc : mdb_fail(rc, "delete", s);
}

int lathe_store_run_del(lathe_store_t *s, MDB_txn *txn, uint32_t id) {
  MDB_val k = {4, &id};
  int rc = mdb_del(txn, s->runs, &k, NULL);
  if (rc == MDB_NOTFOUND) return lathe_seterr(LATHE_ENOTFOUND, "no run %u in %s", id, s->path);
  if (rc) return mdb_fail(rc, "delete run", s);
  uint8_t p[4];
  be32(p, id);
  if ((rc = del_prefix(s, txn, s->metrics, p, 4))) return rc;
  return del_prefix(s, txn, s->ckpts, p, 4);
}

/* ---- metrics --------------------------------------------------------------- */

static size_t metric_key(uint8_t *key, uint32_t run, const char *name, uint64_t step) {
  size_t n = strlen(name);
  if (n > 200) n = 200;
  be32(key, run);
  memcpy(key + 4, name, n);
  key[4 + n] = 0;
  be64(key + 5 + n, step);
  return 13 + n;
}

int lathe_store_metric_put(lathe_store_t *s, MDB_txn *txn, uint32_t run, const char *name,
                           uint64_t step, double value, double time) {
  uint8_t key[220];
  double val[2] = {value, time};
  MDB_val k = {metric_key(key, run, name, step), key}, v = {sizeof val, val};
  return put(s, txn, s->metrics, &k, &v, 0);
}

int lathe_store_metric_each(lathe_store_t *s, MDB_txn *txn, uint32_t run, const char *name,
                            lathe_point_cb cb, void *arg) {
  return lathe_store_metric_from(s, txn, run, name, 0, cb, arg);
}

int lathe_store_metric_from(lathe_store_t *s, MDB_txn *txn, uint32_t run, const char *name,
                            uint64_t from, lathe_point_cb cb, void *arg) {
  uint8_t key[220];
  size_t len = metric_key(key, run, name, from) - 8; /* prefix: run | name | 0 */
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->metrics, &c);
  if (rc) return mdb_fail(rc, "cursor", s);
  MDB_val k = {len + 8, key}, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size != len + 8 || memcmp(k.mv_data, key, len)) break;
    double val[2];
    if (v.mv_size != sizeof val) continue; /* a damaged value: skipped, as store check says */
    memcpy(val, v.mv_data, sizeof val);
    if ((rc = cb(rd64((uint8_t *)k.mv_data + len), val[0], val[1], arg))) break;
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

int lathe_store_metric_names(lathe_store_t *s, MDB_txn *txn, uint32_t run, lathe_name_cb cb,
                             void *arg) {
  uint8_t key[220];
  be32(key, run);
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->metrics, &c);
  if (rc) return mdb_fail(rc, "cursor", s);
  MDB_val k = {4, key}, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (!rc) {
    const uint8_t *p = k.mv_data;
    if (k.mv_size < 4 || rd32(p) != run) break;
    size_t n = k.mv_size - 13;
    /* a damaged key (too short or long, no 0 after the name, a 0 inside it) is
     * stepped over one key at a time, so every walk ends */
    if (k.mv_size < 13 || k.mv_size > 13 + 200 || p[4 + n] != 0 || memchr(p + 4, 0, n)) {
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
      continue;
    }
    char name[210];
    memcpy(name, p + 4, n);
    name[n] = 0;
    if ((rc = cb(name, arg))) break;
    /* skip to the next name: run | name | 0x01 sorts after every step of name */
    size_t len = 4 + n;
    memcpy(key, p, len);
    key[len] = 1;
    k.mv_size = len + 1, k.mv_data = key;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

typedef struct {
  char (*names)[210];
  int n, cap;
} name_list;
static int collect_name(const char *name, void *arg) {
  name_list *l = arg;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    void *p = realloc(l->names, cap * sizeof *l->names);
    if (!p) return LATHE_ENOMEM;
    l->names = p, l->cap = cap;
  }
  snprintf(l->names[l->n++], 210, "%s", name);
  return 0;
}

int lathe_store_metric_trunc(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t after) {
  name_list l = {0};
  int rc = lathe_store_metric_names(s, txn, run, collect_name, &l);
  for (int i = 0; !rc && i < l.n; i++) {
    uint8_t key[220];
    size_t len = metric_key(key, run, l.names[i], after + 1);
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, s->metrics, &c))) break;
    MDB_val k = {len, key}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      if (k.mv_size != len || memcmp(k.mv_data, key, len - 8)) break;
      if ((rc = mdb_cursor_del(c, 0))) break;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) rc = 0;
  }
  free(l.names);
  return rc;
}

/* ---- checkpoints ----------------------------------------------------------- */

int lathe_store_ckpt_put(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t step,
                         const void *data, size_t n, int keep, uint64_t pin) {
  uint8_t key[12];
  be32(key, run), be64(key + 4, step);
  MDB_val k = {12, key}, v = {n, NULL};
  int rc = put(s, txn, s->ckpts, &k, &v, MDB_RESERVE);
  if (rc) return rc;
  memcpy(v.mv_data, data, n);
  /* keep the newest `keep`: walk backwards from this run's last key */
  MDB_cursor *c;
  if ((rc = mdb_cursor_open(txn, s->ckpts, &c))) return mdb_fail(rc, "cursor", s);
  uint8_t end[12];
  be32(end, run + 1), memset(end + 4, 0, 8);
  MDB_val ek = {12, end}, ev;
  rc = mdb_cursor_get(c, &ek, &ev, MDB_SET_RANGE);
  rc = rc == MDB_NOTFOUND ? mdb_cursor_get(c, &ek, &ev, MDB_LAST)
                          : mdb_cursor_get(c, &ek, &ev, MDB_PREV);
  int seen = 0;
  while (!rc && ek.mv_size == 12 && rd32(ek.mv_data) == run) {
    if (rd64((uint8_t *)ek.mv_data + 4) == pin) {
      /* the pinned checkpoint stays, outside the count */
    } else if (++seen > (keep < 1 ? 1 : keep)) {
      if ((rc = mdb_cursor_del(c, 0))) break;
    }
    rc = mdb_cursor_get(c, &ek, &ev, MDB_PREV);
  }
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND || rc == 0) return 0;
  return rc == MDB_MAP_FULL ? rc : mdb_fail(rc, "pruning checkpoints", s);
}

int lathe_store_ckpt_latest(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t *step,
                            MDB_val *val) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->ckpts, &c);
  if (rc) return mdb_fail(rc, "cursor", s);
  uint8_t end[12];
  be32(end, run + 1), memset(end + 4, 0, 8);
  MDB_val k = {12, end};
  rc = mdb_cursor_get(c, &k, val, MDB_SET_RANGE);
  rc = rc == MDB_NOTFOUND ? mdb_cursor_get(c, &k, val, MDB_LAST)
                          : mdb_cursor_get(c, &k, val, MDB_PREV);
  mdb_cursor_close(c);
  if (rc || k.mv_size != 12 || rd32(k.mv_data) != run)
    return lathe_seterr(LATHE_ENOTFOUND, "run %u has no checkpoint", run);
  *step = rd64((uint8_t *)k.mv_data + 4);
  return 0;
}

int lathe_store_ckpt_get(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t step,
                         MDB_val *val) {
  uint8_t key[12];
  be32(key, run), be64(key + 4, step);
  MDB_val k = {12, key};
  int rc = mdb_get(txn, s->ckpts, &k, val);
  if (rc == MDB_NOTFOUND)
    return lathe_seterr(LATHE_ENOTFOUND, "run %u has no checkpoint at step %llu", run,
                        (unsigned long long)step);
  return rc ? mdb_fail(rc, "get", s) : 0;
}

int lathe_store_ckpt_trunc(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t after) {
  if (after == UINT64_MAX) return 0;
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->ckpts, &c);
  if (rc) return mdb_fail(rc, "cursor", s);
  uint8_t key[12];
  be32(key, run), be64(key + 4, after + 1);
  MDB_val k = {12, key}, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 12 || rd32(k.mv_data) != run) break;
    if ((rc = mdb_cursor_del(c, 0))) break;
  }
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND || rc == 0) return 0;
  return rc == MDB_MAP_FULL ? rc : mdb_fail(rc, "deleting checkpoints", s);
}

int lathe_store_ckpt_each(lathe_store_t *s, MDB_txn *txn, uint32_t run, lathe_ckpt_cb cb,
                          void *arg) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->ckpts, &c);
  if (rc) return mdb_fail(rc, "cursor", s);
  uint8_t key[12];
  be32(key, run), memset(key + 4, 0, 8);
  MDB_val k = {12, key}, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 12 || rd32(k.mv_data) != run) break;
    if ((rc = cb(rd64((uint8_t *)k.mv_data + 4), v.mv_size, arg))) break;
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- datasets -------------------------------------------------------------- */

static size_t ds_key(uint8_t *key, char kind, const char *name, int with_index, uint64_t i) {
  size_t n = strlen(name);
  if (n > 200) n = 200;
  key[0] = (uint8_t)kind;
  memcpy(key + 1, name, n);
  if (!with_index) return 1 + n;
  key[1 + n] = 0;
  be64(key + 2 + n, i);
  return 10 + n;
}

int lathe_store_ds_put_manifest(lathe_store_t *s, MDB_txn *txn, const char *name,
                                const char *json) {
  uint8_t key[220];
  MDB_val k = {ds_key(key, 'm', name, 0, 0), key}, v = {strlen(json), (void *)json};
  return put(s, txn, s->datasets, &k, &v, 0);
}

int lathe_store_ds_get_manifest(lathe_store_t *s, MDB_txn *txn, const char *name, char **json) {
  uint8_t key[220];
  MDB_val k = {ds_key(key, 'm', name, 0, 0), key}, v;
  int rc = mdb_get(txn, s->datasets, &k, &v);
  if (rc == MDB_NOTFOUND)
    return lathe_seterr(LATHE_ENOTFOUND, "no dataset '%s' in %s", name, s->path);
  if (rc) return mdb_fail(rc, "reading dataset manifest", s);
  *json = malloc(v.mv_size + 1);
  if (!*json) return LATHE_ENOMEM;
  memcpy(*json, v.mv_data, v.mv_size);
  (*json)[v.mv_size] = 0;
  return 0;
}

int lathe_store_ds_put(lathe_store_t *s, MDB_txn *txn, const char *name, uint64_t i,
                       const char *json, size_t n) {
  uint8_t key[220];
  MDB_val k = {ds_key(key, 'r', name, 1, i), key}, v = {n, (void *)json};
  return put(s, txn, s->datasets, &k, &v, 0);
}

int lathe_store_ds_get(lathe_store_t *s, MDB_txn *txn, const char *name, uint64_t i, MDB_val *val) {
  uint8_t key[220];
  MDB_val k = {ds_key(key, 'r', name, 1, i), key};
  int rc = mdb_get(txn, s->datasets, &k, val);
  if (rc == MDB_NOTFOUND)
    return lathe_seterr(LATHE_ENOTFOUND, "dataset '%s' has no record %llu", name,
                        (unsigned long long)i);
  return rc ? mdb_fail(rc, "reading dataset record", s) : 0;
}

int lathe_store_ds_del(lathe_store_t *s, MDB_txn *txn, const char *name) {
  uint8_t key[220];
  MDB_val k = {ds_key(key, 'm', name, 0, 0), key};
  int rc = mdb_del(txn, s->datasets, &k, NULL);
  if (rc == MDB_NOTFOUND) return lathe_seterr(LATHE_ENOTFOUND, "no dataset '%s'", name);
  if (rc) return mdb_fail(rc, "deleting dataset", s);
  size_t len = ds_key(key, 'r', name, 1, 0) - 8;
  return del_prefix(s, txn, s->datasets, key, len);
}

int lathe_store_ds_each(lathe_store_t *s, MDB_txn *txn, lathe_ds_cb cb, void *arg) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, s->datasets, &c);
  if (rc) return mdb_fail(rc, "cursor", s);
  MDB_val k = {1, "m"}, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); !rc;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    const char *p = k.mv_data;
    if (k.mv_size < 1 || p[0] != 'm') break;
    char name[210], *man = malloc(v.mv_size + 1);
    if (!man) {
      rc = LATHE_ENOMEM;
      break;
    }
    size_t n = k.mv_size - 1 < 209 ? k.mv_size - 1 : 209;
    memcpy(name, p + 1, n);
    name[n] = 0;
    memcpy(man, v.mv_data, v.mv_size);
    man[v.mv_size] = 0;
    rc = cb(name, man, arg);
    free(man);
    if (rc) break;
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- check and backup -------------------------------------------------------- */

typedef struct {
  int (*ckpt_ok)(const void *, size_t);
  lathe_damage_cb cb;
  void *arg;
  long n;
} check_args;

static void damage(check_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void damage(check_args *a, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  a->n++;
  if (a->n <= 1000) a->cb(buf, a->arg); /* past a thousand, only counted */
}

/* The JSON value in n bytes (NULL unless they hold exactly one value). */
static json_object *parse_n(const void *p, size_t n) {
  json_tokener *tok = json_tokener_new();
  json_object *o = tok && n < (1u << 30) ? json_tokener_parse_ex(tok, p, (int)n) : NULL;
  if (o &&
      (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != n))
    json_object_put(o), o = NULL;
  json_tokener_free(tok);
  return o;
}

static int run_exists(lathe_store_t *s, MDB_txn *txn, uint32_t id) {
  MDB_val k = {4, &id}, v;
  return !mdb_get(txn, s->runs, &k, &v);
}

/* Walk every table of the store: keys and values of the shapes store.h
 * gives, JSON where JSON is kept, checkpoints accepted by ckpt_ok, dataset
 * record counts as their manifests say. LMDB's own errors end the walk of a
 * table and are reported as damage too. */
static int check_txn(lathe_store_t *s, MDB_txn *txn, void *arg) {
  check_args *a = arg;
  MDB_cursor *c;
  MDB_val k, v;
  int rc;
  const char *tables[] = {"meta", "runs", "metrics", "ckpts", "datasets"};
  MDB_dbi dbi[] = {s->meta, s->runs, s->metrics, s->ckpts, s->datasets};
  for (int t = 0; t < 5; t++) {
    if ((rc = mdb_cursor_open(txn, dbi[t], &c))) return mdb_fail(rc, "cursor", s);
    char cur_ds[210] = "";
    uint64_t ds_records = 0, ds_count = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      const uint8_t *p = k.mv_data;
      if (t == 0) { /* meta */
        if ((k.mv_size == 6 && !memcmp(p, "format", 6)) ||
            (k.mv_size == 8 && !memcmp(p, "next_run", 8))) {
          if (v.mv_size != 4)
            damage(a, "meta: '%.*s' holds %zu bytes, not 4", (int)k.mv_size, p, v.mv_size);
        } else if (k.mv_size < 5 || memcmp(p, "user/", 5))
          damage(a, "meta: unknown key of %zu bytes", k.mv_size);
      } else if (t == 1) { /* runs */
        uint32_t id;
        if (k.mv_size != 4) {
          damage(a, "runs: a key of %zu bytes (want 4)", k.mv_size);
          continue;
        }
        memcpy(&id, p, 4);
        json_object *o = parse_n(v.mv_data, v.mv_size);
        if (!o || !json_object_is_type(o, json_type_object))
          damage(a, "run %u: its record is not a JSON object", id);
        json_object_put(o);
      } else if (t == 2) { /* metrics: run | name | 0 | step */
        if (k.mv_size < 13 || k.mv_size > 213 || p[k.mv_size - 9] != 0 ||
            memchr(p + 4, 0, k.mv_size - 13))
          damage(a, "metrics: a malformed key of %zu bytes", k.mv_size);
        else if (v.mv_size != 16)
          damage(a, "run %u: metric '%.*s' at step %llu: value of %zu bytes (want 16)", rd32(p),
                 (int)(k.mv_size - 13), p + 4, (unsigned long long)rd64(p + k.mv_size - 8),
                 v.mv_size);
        else if (!run_exists(s, txn, rd32(p)))
          damage(a, "metrics: points of run %u, which has no record", rd32(p));
      } else if (t == 3) { /* ckpts: run | step */
        if (k.mv_size != 12)
          damage(a, "ckpts: a malformed key of %zu bytes", k.mv_size);
        else if (a->ckpt_ok && !a->ckpt_ok(v.mv_data, v.mv_size))
          damage(a, "run %u: the checkpoint at step %llu is damaged (%zu bytes)", rd32(p),
                 (unsigned long long)rd64(p + 4), v.mv_size);
        else if (!run_exists(s, txn, rd32(p)))
          damage(a, "ckpts: a checkpoint of run %u, which has no record", rd32(p));
      } else { /* datasets: "m" name -> manifest; "r" name 0 index -> record */
        if (k.mv_size >= 1 && p[0] == 'm' && k.mv_size <= 201) {
          json_object *o = parse_n(v.mv_data, v.mv_size), *cnt;
          if (!o || !json_object_object_get_ex(o, "count", &cnt))
            damage(a, "dataset '%.*s': its manifest is not JSON with a count", (int)k.mv_size - 1,
                   p + 1);
          json_object_put(o);
        } else if (k.mv_size >= 10 && p[0] == 'r' && k.mv_size <= 210 && p[k.mv_size - 9] == 0) {
          size_t n = k.mv_size - 10;
          if (strlen(cur_ds) != n || memcmp(cur_ds, p + 1, n)) { /* the next dataset's records */
            memcpy(cur_ds, p + 1, n), cur_ds[n] = 0, ds_records = 0;
            char *man = NULL;
            ds_count = 0;
            if (!lathe_store_ds_get_manifest(s, txn, cur_ds, &man)) {
              json_object *o = json_tokener_parse(man), *cnt;
              if (o && json_object_object_get_ex(o, "count", &cnt))
                ds_count = (uint64_t)json_object_get_int64(cnt);
              json_object_put(o);
            } else
              damage(a, "dataset '%s': records without a manifest", cur_ds);
            free(man);
          }
          uint64_t i = rd64(p + k.mv_size - 8);
          if (i != ds_records || i >= ds_count)
            damage(a, "dataset '%s': record %llu is out of place (manifest count %llu)", cur_ds,
                   (unsigned long long)i, (unsigned long long)ds_count);
          ds_records = i + 1;
          json_object *o = parse_n(v.mv_data, v.mv_size);
          if (!o || !json_object_is_type(o, json_type_object))
            damage(a, "dataset '%s': record %llu is not a JSON object", cur_ds,
                   (unsigned long long)i);
          json_object_put(o);
        } else
          damage(a, "datasets: a malformed key of %zu bytes", k.mv_size);
      }
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) damage(a, "%s: LMDB stopped the walk: %s", tables[t], mdb_strerror(rc));
  }
  return 0;
}

int lathe_store_check(lathe_store_t *s, int (*ckpt_ok)(const void *, size_t), lathe_damage_cb cb,
                      void *arg, long *ndamaged) {
  check_args a = {ckpt_ok, cb, arg, 0};
  int rc = lathe_store_read(s, check_txn, &a);
  *ndamaged = a.n;
  return rc;
}

int lathe_store_backup(lathe_store_t *s, const char *dest) {
  struct stat st;
  if (!stat(dest, &st))
    return lathe_seterr(LATHE_EUSAGE, "backup: %s exists; name a new folder", dest);
  if (mkdir(dest, 0755))
    return lathe_seterr(LATHE_ESTORE, "backup: cannot create %s: %s", dest, strerror(errno));
  pthread_rwlock_rdlock(&gate);
  int rc = mdb_env_copy2(s->env, dest, MDB_CP_COMPACT);
  pthread_rwlock_unlock(&gate);
  if (rc) {
    char f[4200];
    snprintf(f, sizeof f, "%s/data.mdb", dest), unlink(f);
    rmdir(dest);
    return lathe_seterr(LATHE_ESTORE, "backup to %s failed: %s", dest, mdb_strerror(rc));
  }
  return 0;
}
