/* fuzz_store.c - libFuzzer target: opening a damaged store. The input is a
 * store's data.mdb; it is opened read-only, listed, and walked by `lathe store
 * check` (every table, every record's shape). LMDB trusts its own pages, so
 * this target also guards what lathe adds around them. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../storage/store.h"
#include "../../workbench/error.h"
#include "../../workbench/run.h"

static char dir[64];

static void ignore(const char *what, void *arg) {
  (void)what, (void)arg;
}
static int each(uint32_t id, const char *json, size_t n, void *arg) {
  (void)id, (void)json, (void)n, (void)arg;
  return 0;
}
static int list_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  return lathe_store_run_each(st, txn, each, arg);
}

/* A fault inside the store's map or LMDB's code is the outcome lathe itself
 * turns into "store damaged" (exit 4, workbench/main.c): here it ends the
 * input. A damaged B-tree can also send LMDB round a cycle of pages for
 * ever; lathe cannot see that from outside LMDB, so a second of CPU spent
 * inside LMDB on one input ends it too (the limit is recorded in
 * tests/README.md). */
static sigjmp_buf back;
static struct sigaction prev[3];
static void on_fault(int sig, siginfo_t *info, void *ctx) {
  if (lathe_store_fault_is_damage(info->si_addr, ctx)) siglongjmp(back, 1);
  struct sigaction *p = &prev[sig == SIGSEGV ? 1 : sig == SIGFPE ? 2 : 0];
  if (p->sa_flags & SA_SIGINFO && p->sa_sigaction)
    p->sa_sigaction(sig, info, ctx);
  else
    signal(sig, SIG_DFL);
}

static void on_assert(const char *what) { /* LMDB's assertion on a damaged page */
  (void)what;
  siglongjmp(back, 1);
}

static void on_cpu(int sig, siginfo_t *info, void *ctx) {
  (void)sig, (void)info, (void)ctx;
  void *frames[64];
  int n = backtrace(frames, 64); /* a harness, not lathe: backtrace here is fine */
  for (int i = 0; i < n; i++) {
    Dl_info dl;
    if (dladdr(frames[i], &dl) && dl.dli_fname && strstr(dl.dli_fname, "liblmdb"))
      siglongjmp(back, 1); /* a second of CPU with LMDB on the stack: looping in a damaged tree */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int handlers;
  if (!handlers) { /* after libFuzzer's and the sanitizers' own */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault, sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, &prev[0]), sigaction(SIGSEGV, &sa, &prev[1]);
    sigaction(SIGFPE, &sa, &prev[2]);
    sa.sa_sigaction = on_cpu;
    sigaction(SIGVTALRM, &sa, NULL);
    lathe_store_on_damage = on_assert;
    handlers = 1;
  }
  struct itimerval cpu = {{1, 0}, {1, 0}}; /* every CPU second while this input runs */
  setitimer(ITIMER_VIRTUAL, &cpu, NULL);
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/lathe-fuzz-store-%d", (int)getpid());
    mkdir(dir, 0755);
  }
  char path[128];
  snprintf(path, sizeof path, "%s/lock.mdb", dir), unlink(path);
  snprintf(path, sizeof path, "%s/data.mdb", dir);
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  static lathe_store_t *st;
  struct itimerval off = {{0, 0}, {0, 0}};
  if (sigsetjmp(back, 1)) { /* faulted or looped inside LMDB: the env is abandoned */
    setitimer(ITIMER_VIRTUAL, &off, NULL);
    st = NULL;
    return 0;
  }
  if (!lathe_store_open(dir, 1, &st)) {
    long n;
    lathe_store_read(st, list_txn, NULL);
    lathe_store_check(st, lathe_ckpt_ok, ignore, NULL, &n);
    lathe_store_close(st);
  }
  setitimer(ITIMER_VIRTUAL, &off, NULL);
  return 0;
}
