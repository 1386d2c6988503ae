/* test.h - the unit-test harness: TEST(name) registers a function, ASSERT_*
 * report file and line, and the runner (runner.c) prints one line per test and
 * a closing "N passed, N failed". A failing assertion ends only its own test. */
#ifndef LATHE_TEST_H
#define LATHE_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdio.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
extern jmp_buf test_jmp;
extern const char *test_tmpdir; /* a fresh directory per test */
/* A plugin instance (an environment, a task) from build/plugins/NAME.so with
 * "key=value" options; fails the test when it cannot be made (test_envs.c). */
struct lathe_child *test_instance(const char *name, const char *const *kv, int n);
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define TEST(name)                                                                                 \
  static void test_##name(void);                                                                   \
  __attribute__((constructor)) static void reg_##name(void) {                                      \
    test_register(#name, test_##name);                                                             \
  }                                                                                                \
  static void test_##name(void)

#define ASSERT(c)                                                                                  \
  do {                                                                                             \
    if (!(c)) test_fail(__FILE__, __LINE__, "assertion failed: %s", #c);                           \
  } while (0)
#define ASSERT_EQ(a, b)                                                                            \
  do {                                                                                             \
    long long _a = (long long)(a), _b = (long long)(b);                                            \
    if (_a != _b) test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, _b);         \
  } while (0)
#define ASSERT_NEAR(a, b, tol)                                                                     \
  do {                                                                                             \
    double _a = (double)(a), _b = (double)(b);                                                     \
    if (!(fabs(_a - _b) <= (tol)))                                                                 \
      test_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, _a, _b,              \
                (double)(tol));                                                                    \
  } while (0)
#define ASSERT_STR(a, b)                                                                           \
  do {                                                                                             \
    const char *_a = (a), *_b = (b);                                                               \
    if (!_a || !_b || strcmp(_a, _b))                                                              \
      test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)",      \
                _b ? _b : "(null)");                                                               \
  } while (0)

#endif
