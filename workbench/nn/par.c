/* par.c - the numeric threads: their floating-point mode, OpenBLAS's setup
 * and thread count, and the parallel loops (nn.h, "Threads and matrix
 * products").
 *
 * A pool of threads - 1 workers, started on first use and kept. One caller at
 * a time owns the pool (an atomic flag); any other caller, and any call made
 * from inside a loop body, runs its loop inline, which gives the same result
 * because a body never reduces across ranges. A job is a generation number,
 * the body and its split, published under the mutex; each worker takes the
 * ranges numbered by its index, the caller takes range 0 and then waits for
 * the count of unfinished ranges to reach zero. Workers spin briefly before
 * sleeping, since the GPT's elementwise passes arrive a matrix product apart.
 * Every worker adopts the caller's floating-point mode (MXCSR) for the job.
 */
#include "nn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAR_MAX  64   /* workers + 1 */
#define PAR_SPIN 2000 /* polls (pause instructions) before a worker or the caller sleeps */

extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);
/* OpenBLAS's own (exported, undocumented): read the environment again; stop
 * and start its threads, which read the timeout when they start */
extern int openblas_read_env(void);
extern int blas_thread_shutdown_(void);
extern int blas_thread_init(void);

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  atomic_flag busy;
  atomic_int threads; /* the numeric thread count (nn_set_threads) */
  int started;        /* workers running */
  atomic_ulong gen;   /* job generation: a change means a new job */
  atomic_int left;    /* ranges not yet finished */
  nn_range_fn fn;     /* the job, valid for generation gen */
  void *ctx;
  size_t n;
  int parts;
  unsigned mxcsr;
  unsigned long born[PAR_MAX]; /* the generation current when each worker started */
} P = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER,
       .busy = ATOMIC_FLAG_INIT,
       .threads = 1};

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static unsigned fp_mode(void) {
#if defined(__SSE__) || defined(__x86_64__)
  return __builtin_ia32_stmxcsr();
#else
  return 0;
#endif
}

static void set_fp_mode(unsigned m) {
#if defined(__SSE__) || defined(__x86_64__)
  if (__builtin_ia32_stmxcsr() != m) __builtin_ia32_ldmxcsr(m);
#else
  (void)m;
#endif
}

static void run_part(nn_range_fn fn, void *ctx, size_t n, int parts, int k) {
  size_t lo = n * (size_t)k / (size_t)parts, hi = n * (size_t)(k + 1) / (size_t)parts;
  if (lo < hi) fn(ctx, lo, hi);
}

static void finish_part(void) {
  if (atomic_fetch_sub_explicit(&P.left, 1, memory_order_acq_rel) == 1) {
    pthread_mutex_lock(&P.mu); /* the caller may be asleep */
    pthread_cond_signal(&P.done);
    pthread_mutex_unlock(&P.mu);
  }
}

static void *worker_main(void *arg) {
  int me = (int)(intptr_t)arg; /* 1 .. PAR_MAX-1 */
  pthread_mutex_lock(&P.mu);
  unsigned long seen = P.born[me]; /* jobs from then on are this worker's */
  pthread_mutex_unlock(&P.mu);
  for (;;) {
    unsigned long g;
    for (int i = 0;
         i < PAR_SPIN && (g = atomic_load_explicit(&P.gen, memory_order_acquire)) == seen; i++)
      relax();
    pthread_mutex_lock(&P.mu);
    while ((g = atomic_load_explicit(&P.gen, memory_order_relaxed)) == seen)
      pthread_cond_wait(&P.wake, &P.mu);
    nn_range_fn fn = P.fn;
    void *ctx = P.ctx;
    size_t n = P.n;
    int parts = P.parts;
    unsigned mx = P.mxcsr;
    pthread_mutex_unlock(&P.mu);
    seen = g;
    if (me < parts) { /* workers beyond the job's split sit it out */
      set_fp_mode(mx);
      run_part(fn, ctx, n, parts, me);
      finish_part();
    }
  }
  return NULL;
}

static void par_atfork_child(void) { /* a forked child has no workers */
  pthread_mutex_init(&P.mu, NULL);
  pthread_cond_init(&P.wake, NULL);
  pthread_cond_init(&P.done, NULL);
  atomic_flag_clear(&P.busy);
  P.started = 0;
}

/* Start workers until threads - 1 run; returns how many do (the mutex held). */
static int par_start(int want) {
  static int registered;
  if (!registered) registered = !pthread_atfork(NULL, NULL, par_atfork_child);
  while (P.started < want - 1) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    P.born[P.started + 1] = atomic_load(&P.gen);
    int rc = pthread_create(&t, &a, worker_main, (void *)(intptr_t)(P.started + 1));
    pthread_attr_destroy(&a);
    if (rc) break;
    P.started++;
  }
  return P.started + 1;
}

void nn_thread_init(void) {
#if defined(__SSE__) || defined(__x86_64__)
  /* flush-to-zero and denormals-are-zero: a lane that computes a denormal, even
   * one a vectorised select throws away, costs ~100 cycles in microcode */
  __builtin_ia32_ldmxcsr(__builtin_ia32_stmxcsr() | 0x8040);
#endif
}

const char *nn_blas_core_for(const char *chosen, int avx2_fma, int avx512) {
  /* OpenBLAS's cores without AVX2: what its detection falls back to */
  static const char *old[] = {"Prescott",   "Core2",         "Penryn",      "Dunnington",
                              "Nehalem",    "Atom",          "Sandybridge", "Katmai",
                              "Coppermine", "Northwood",     "Banias",      "Barcelona",
                              "Opteron",    "Opteron(SSE3)", "Bobcat",      "Bulldozer",
                              "Piledriver", "Steamroller",   "Nano"};
  if (!chosen || !avx2_fma) return NULL;
  for (size_t i = 0; i < sizeof old / sizeof *old; i++)
    if (!strcmp(chosen, old[i])) return avx512 ? "SkylakeX" : "Haswell";
  return NULL;
}

extern char *openblas_get_corename(void);
const char *nn_blas_better_core(void) {
  const char *set = getenv("OPENBLAS_CORETYPE");
  if (set && *set) return NULL;
#if defined(__x86_64__)
  __builtin_cpu_init();
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512cd");
  return nn_blas_core_for(openblas_get_corename(), avx2, avx512);
#else
  return NULL;
#endif
}

void nn_blas_setup(void) {
  if (getenv("OPENBLAS_THREAD_TIMEOUT")) return; /* the user's choice */
  setenv("OPENBLAS_THREAD_TIMEOUT", "18", 0);
  openblas_read_env();
  blas_thread_shutdown_();
  blas_thread_init();
}

void nn_set_threads(int n) {
  n = n < 1 ? 1 : n > PAR_MAX ? PAR_MAX : n;
  atomic_store(&P.threads, n);
  openblas_set_num_threads(n);
}

int nn_get_threads(void) {
  return atomic_load(&P.threads);
}

void nn_parallel(size_t n, size_t grain, int flags, nn_range_fn fn, void *ctx) {
  if (!n) return;
  if (grain < 1) grain = 1;
  size_t most = n / grain;
  int threads = atomic_load_explicit(&P.threads, memory_order_relaxed);
  int parts = threads < (int)(most < PAR_MAX ? most : PAR_MAX) ? threads : (int)most;
  if (parts < 2 || atomic_flag_test_and_set_explicit(&P.busy, memory_order_acquire)) {
    fn(ctx, 0, n);
    return;
  }
  pthread_mutex_lock(&P.mu);
  int have = par_start(threads);
  if (parts > have) parts = have;
  if (parts < 2) {
    pthread_mutex_unlock(&P.mu);
    atomic_flag_clear_explicit(&P.busy, memory_order_release);
    fn(ctx, 0, n);
    return;
  }
  int blas = flags & NN_PAR_BLAS1 ? openblas_get_num_threads() : 1;
  if (blas > 1) openblas_set_num_threads(1);
  P.fn = fn, P.ctx = ctx, P.n = n, P.parts = parts, P.mxcsr = fp_mode();
  atomic_store_explicit(&P.left, parts - 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);
  pthread_cond_broadcast(&P.wake);
  pthread_mutex_unlock(&P.mu);
  run_part(fn, ctx, n, parts, 0);
  for (int i = 0; i < PAR_SPIN && atomic_load_explicit(&P.left, memory_order_acquire); i++) relax();
  if (atomic_load_explicit(&P.left, memory_order_acquire)) {
    pthread_mutex_lock(&P.mu);
    while (atomic_load_explicit(&P.left, memory_order_acquire)) pthread_cond_wait(&P.done, &P.mu);
    pthread_mutex_unlock(&P.mu);
  }
  if (blas > 1) openblas_set_num_threads(blas);
  atomic_flag_clear_explicit(&P.busy, memory_order_release);
}
