/* tamper.c - damage the newest checkpoint of a run, as a dying disk or a
 * hostile user would, for the corrupted-checkpoint tests (tests/e2e.sh).
 *
 *   lathe-tamper STORE RUN truncate BYTES   keep the first BYTES bytes
 *   lathe-tamper STORE RUN flip BIT         flip one bit (BIT mod the size)
 *   lathe-tamper STORE RUN forge SEED K     overwrite K random bytes after the
 *                                           header and fix the checksum, so
 *                                           the plugin's load() must judge them
 *   lathe-tamper STORE RUN dump             write the plugin's part of the newest
 *                                           checkpoint to stdout (fuzzing seeds)
 *   lathe-tamper STORE RUN badkey           add a metric key of run RUN whose
 *                                           separator byte is not 0 (a flipped
 *                                           bit), as a damaged store holds
 * Exit 0 when the store was changed, 2 on bad arguments, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/store.h"
#include "../../workbench/error.h"
#include "../../workbench/run.h"

typedef struct {
  uint32_t run;
  const char *mode;
  unsigned long long a, b;
} args_t;

static int badkey_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  args_t *a = arg;
  uint8_t key[32] = {0};
  for (int i = 0; i < 4; i++) key[i] = (uint8_t)(a->run >> (24 - 8 * i));
  memcpy(key + 4, "loss", 4);
  key[8] = 0x02; /* was 0: the name's end */
  key[16] = 7;   /* a step */
  double val[2] = {1, 2};
  MDB_val k = {17, key}, v = {sizeof val, val};
  int rc = mdb_put(txn, st->metrics, &k, &v, 0);
  return rc ? lathe_seterr(LATHE_ESTORE, "put: %s", mdb_strerror(rc)) : 0;
}

static int tamper_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  args_t *a = arg;
  uint64_t step;
  MDB_val v;
  int rc = lathe_store_ckpt_latest(st, txn, a->run, &step, &v);
  if (rc) return rc;
  size_t n = v.mv_size;
  uint8_t *p = malloc(n ? n : 1);
  if (!p) return LATHE_ENOMEM;
  memcpy(p, v.mv_data, n);
  if (!strcmp(a->mode, "truncate")) {
    if (a->a < n) n = (size_t)a->a;
  } else if (!strcmp(a->mode, "flip")) {
    size_t bit = (size_t)(a->a % (n * 8));
    p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  } else { /* forge: random bytes after the 20-byte header, checksum made to match */
    uint64_t s = a->a * 6364136223846793005ULL + 1442695040888963407ULL;
    for (unsigned long long k = 0; k < a->b && n > 28; k++) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      size_t at = 20 + (size_t)((s >> 33) % (n - 28));
      p[at] = (uint8_t)(s >> 17);
    }
    if (n >= 8) {
      uint64_t sum = lathe_ckpt_sum(p, n - 8);
      memcpy(p + n - 8, &sum, 8);
    }
  }
  rc = lathe_store_ckpt_put(st, txn, a->run, step, p, n, 1000, UINT64_MAX);
  free(p);
  return rc;
}

int main(int argc, char **argv) {
  int badkey = argc == 4 && !strcmp(argv[3], "badkey");
  if (argc == 4 && !strcmp(argv[3], "dump")) {
    lathe_store_t *st;
    lathe_buf_t b = {0};
    char plugin[64];
    int rc = lathe_store_open(argv[1], 1, &st);
    if (!rc) rc = lathe_run_state(st, (uint32_t)strtoul(argv[2], NULL, 10), &b, plugin);
    if (!rc) fwrite(b.p, 1, b.n, stdout);
    if (rc) fprintf(stderr, "lathe-tamper: %s\n", lathe_lasterr());
    lathe_buf_free(&b);
    lathe_store_close(st);
    return rc ? 1 : 0;
  }
  if (!badkey && (argc < 5 || (strcmp(argv[3], "truncate") && strcmp(argv[3], "flip") &&
                               strcmp(argv[3], "forge")))) {
    fprintf(stderr,
            "usage: lathe-tamper STORE RUN truncate BYTES | flip BIT | forge SEED K | badkey\n");
    return 2;
  }
  args_t a = {(uint32_t)strtoul(argv[2], NULL, 10), argv[3],
              argc > 4 ? strtoull(argv[4], NULL, 10) : 0,
              argc > 5 ? strtoull(argv[5], NULL, 10) : 1};
  lathe_store_t *st;
  int rc = lathe_store_open(argv[1], 0, &st);
  if (!rc) {
    rc = lathe_store_write(st, badkey ? badkey_txn : tamper_txn, &a);
    lathe_store_close(st);
  }
  if (rc) fprintf(stderr, "lathe-tamper: %s\n", lathe_lasterr());
  return rc ? 1 : 0;
}
