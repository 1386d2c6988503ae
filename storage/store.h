/* store.h - the LMDB store: runs, metrics, checkpoints and datasets in one
 * environment (a directory, ./lathe.lmdb by default).
 *
 * Named databases and their keys (all integers big-endian, so cursors walk in order):
 *   meta      "format" -> u32 on-disk format version; "next_run" -> u32;
 *             "user/..." -> bytes its writer chose (recipe texts: "user/recipe/HASH")
 *   runs      u32 run id -> run record (JSON text)
 *   metrics   u32 run | name bytes | 0x00 | u64 step -> f64 value, f64 unix time
 *   ckpts     u32 run | u64 step -> checkpoint payload (see workbench/run.c)
 *   datasets  "m" name -> manifest (JSON); "r" name 0x00 u64 index -> record (JSON)
 *
 * The store knows bytes and keys, never algorithms. Every write happens inside
 * lathe_store_write(), which runs a callback in one write transaction, grows the
 * map and retries when LMDB reports MDB_MAP_FULL, and aborts (leaving the store
 * as it was) when the callback fails. Views (MDB_val) handed to callbacks are
 * valid only until their transaction ends.
 *
 * Threads: a store may be used from several threads of one process; writes are
 * serialised by LMDB, and a resize waits for every transaction of this process.
 */
#ifndef LATHE_STORE_H
#define LATHE_STORE_H

#include <lmdb.h>
#include <stdint.h>

#define LATHE_STORE_FORMAT 1u

typedef struct lathe_store {
  MDB_env *env;
  MDB_dbi meta, runs, metrics, ckpts, datasets;
  char path[4096];
  int readonly;
  int nolock; /* opened read-only without LMDB's lock file (not writable here) */
  size_t mapsize;
} lathe_store_t;

typedef int (*lathe_txn_fn)(lathe_store_t *s, MDB_txn *txn, void *arg);

/* Open (creating unless readonly) the store at path. Refuses a network
 * filesystem, a store of a newer format, and a data file shorter than its
 * meta page says (a truncated copy). Read-only, when the lock file is not
 * writable (another user's store, a read-only share), it opens without
 * LMDB's lock: readers then do not register, so a process writing the store
 * at the same time may reuse pages being read (read a finished store that
 * way, or copy it). On error returns a negative code with the message set
 * (lathe_lasterr) and *out NULL. */
int lathe_store_open(const char *path, int readonly, lathe_store_t **out);
void lathe_store_close(lathe_store_t *s);

/* Run fn inside one write transaction; commit if it returns 0, abort otherwise.
 * On MDB_MAP_FULL the map is doubled and fn is called again from scratch, so fn
 * must be repeatable. Returns fn's code or a store error. */
int lathe_store_write(lathe_store_t *s, lathe_txn_fn fn, void *arg);
/* Run fn inside a short read transaction. */
int lathe_store_read(lathe_store_t *s, lathe_txn_fn fn, void *arg);

/* 1 if a statfs f_type is a network filesystem LMDB cannot lock safely. */
int lathe_store_fs_is_network(long f_type);
/* Name of the filesystem type holding path ("ext4", "nfs", ...), for `lathe doctor`. */
const char *lathe_store_fs_name(const char *path);

/* ---- free-form entries in meta, under keys starting "user/" ---- */
int lathe_store_meta_put(lathe_store_t *s, MDB_txn *txn, const char *key, const void *data,
                         size_t n);
/* *val views LMDB memory; LATHE_ENOTFOUND if absent. */
int lathe_store_meta_get(lathe_store_t *s, MDB_txn *txn, const char *key, MDB_val *val);

/* ---- runs ---- */
int lathe_store_run_new(lathe_store_t *s, MDB_txn *txn, uint32_t *id);
int lathe_store_run_put(lathe_store_t *s, MDB_txn *txn, uint32_t id, const char *json);
/* *json is malloc'd; LATHE_ENOTFOUND if no such run. */
int lathe_store_run_get(lathe_store_t *s, MDB_txn *txn, uint32_t id, char **json);
typedef int (*lathe_run_cb)(uint32_t id, const char *json, size_t n, void *arg);
int lathe_store_run_each(lathe_store_t *s, MDB_txn *txn, lathe_run_cb cb, void *arg);
/* Delete a run with its metrics and checkpoints. */
int lathe_store_run_del(lathe_store_t *s, MDB_txn *txn, uint32_t id);

/* ---- metrics ---- */
int lathe_store_metric_put(lathe_store_t *s, MDB_txn *txn, uint32_t run, const char *name,
                           uint64_t step, double value, double time);
typedef int (*lathe_point_cb)(uint64_t step, double value, double time, void *arg);
int lathe_store_metric_each(lathe_store_t *s, MDB_txn *txn, uint32_t run, const char *name,
                            lathe_point_cb cb, void *arg);
/* The same, for the points with step >= from only (a cursor seek). */
int lathe_store_metric_from(lathe_store_t *s, MDB_txn *txn, uint32_t run, const char *name,
                            uint64_t from, lathe_point_cb cb, void *arg);
typedef int (*lathe_name_cb)(const char *name, void *arg);
int lathe_store_metric_names(lathe_store_t *s, MDB_txn *txn, uint32_t run, lathe_name_cb cb,
                             void *arg);
/* Delete every point of run with step > after. */
int lathe_store_metric_trunc(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t after);

/* ---- checkpoints ---- */
/* Put a checkpoint, then delete all but the newest keep (keep >= 1) and the
 * one at step pin (UINT64_MAX: none), which is kept outside the count. */
int lathe_store_ckpt_put(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t step,
                         const void *data, size_t n, int keep, uint64_t pin);
/* Newest checkpoint: *val views LMDB memory (valid until txn ends). ENOTFOUND if none. */
int lathe_store_ckpt_latest(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t *step,
                            MDB_val *val);
/* The checkpoint at step: *val views LMDB memory. ENOTFOUND if none. */
int lathe_store_ckpt_get(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t step, MDB_val *val);
/* Delete run's checkpoints with step > after. */
int lathe_store_ckpt_trunc(lathe_store_t *s, MDB_txn *txn, uint32_t run, uint64_t after);
typedef int (*lathe_ckpt_cb)(uint64_t step, size_t bytes, void *arg);
int lathe_store_ckpt_each(lathe_store_t *s, MDB_txn *txn, uint32_t run, lathe_ckpt_cb cb,
                          void *arg);

/* ---- datasets ---- */
int lathe_store_ds_put_manifest(lathe_store_t *s, MDB_txn *txn, const char *name, const char *json);
int lathe_store_ds_get_manifest(lathe_store_t *s, MDB_txn *txn, const char *name, char **json);
int lathe_store_ds_put(lathe_store_t *s, MDB_txn *txn, const char *name, uint64_t i,
                       const char *json, size_t n);
/* *val views LMDB memory. */
int lathe_store_ds_get(lathe_store_t *s, MDB_txn *txn, const char *name, uint64_t i, MDB_val *val);
int lathe_store_ds_del(lathe_store_t *s, MDB_txn *txn, const char *name);
/* Calls cb(name, manifest) for each dataset. */
typedef int (*lathe_ds_cb)(const char *name, const char *manifest, void *arg);
int lathe_store_ds_each(lathe_store_t *s, MDB_txn *txn, lathe_ds_cb cb, void *arg);

/* ---- integrity ---- */
/* 1 if addr lies in the memory map of a store open in this process: a fault
 * there (SIGBUS past the end of a cut data file, SIGSEGV on a damaged page)
 * is the store's damage, not a bug. Safe to call from a signal handler. */
int lathe_store_fault_in_map(const void *addr);
/* The same, or a fault inside LMDB's own code (pc from the handler's third
 * argument, a ucontext_t): LMDB trusts its pages and follows a damaged one's
 * pointers anywhere. */
int lathe_store_fault_is_damage(const void *addr, const void *uctx);
/* Called when LMDB's own assertions fail on a damaged page (it would abort):
 * the program's answer (lathe: the "store damaged" message and exit 4). If it
 * returns, or is NULL, the process aborts as LMDB would. */
extern void (*lathe_store_on_damage)(const char *what);
typedef void (*lathe_damage_cb)(const char *what, void *arg);
/* Walk every table and report each damaged entry through cb (one line each):
 * keys and values not of the shapes above, run records and dataset records
 * that are not JSON objects, dataset records out of place, metrics and
 * checkpoints of runs with no record, checkpoints ckpt_ok refuses (NULL: not
 * judged), and LMDB's own errors. *ndamaged: how many. Returns a store error
 * only when the walk cannot start. */
int lathe_store_check(lathe_store_t *s, int (*ckpt_ok)(const void *, size_t), lathe_damage_cb cb,
                      void *arg, long *ndamaged);
/* A consistent, compacted copy of the store in the new folder dest (LMDB's
 * copy with compaction, from one read transaction, while others write). */
int lathe_store_backup(lathe_store_t *s, const char *dest);

#endif
