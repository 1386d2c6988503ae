/* runner.c - runs every registered unit test (optionally those whose name
 * contains argv[1]) and prints "N passed, N failed". Exit status 1 on failure. */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 512
static struct {
  const char *name;
  test_fn fn;
} tests[MAX_TESTS];
static int ntests;
jmp_buf test_jmp;
const char *test_tmpdir;

void test_register(const char *name, test_fn fn) {
  if (ntests < MAX_TESTS) tests[ntests].name = name, tests[ntests++].fn = fn;
}

void test_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "  %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  longjmp(test_jmp, 1);
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void nn_thread_init(void);

int main(int argc, char **argv) {
  static int passed, failed;
  nn_thread_init(); /* as lathe's worker threads */
  qsort(tests, ntests, sizeof tests[0], cmp);
  char base[] = "/tmp/lathe-test-XXXXXX";
  if (!mkdtemp(base)) return 2;
  for (int i = 0; i < ntests; i++) {
    if (argc > 1 && !strstr(tests[i].name, argv[1])) continue;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", base, tests[i].name);
    mkdir(dir, 0700);
    test_tmpdir = dir;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (setjmp(test_jmp) == 0) {
      tests[i].fn();
      clock_gettime(CLOCK_MONOTONIC, &t1);
      printf("ok   %-40s %6.2fs\n", tests[i].name,
             (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
      passed++;
    } else {
      printf("FAIL %s\n", tests[i].name);
      failed++;
    }
    fflush(stdout);
  }
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", base);
  if (system(cmd)) { /* leave it */
  }
  printf("unit: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
