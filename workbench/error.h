/* error.h - lathe's one error convention.
 *
 * Functions return 0 or a negative code: a LATHE_E* code (lathe.h), an LMDB
 * code, or a negated errno. The function that detects a failure records a
 * one-line message naming what is wrong and where with lathe_seterr(); callers
 * up the stack pass the code through and the CLI prints lathe_lasterr() once.
 * Messages are per thread. Programmer errors abort via LATHE_ASSERT.
 */
#ifndef LATHE_ERROR_H
#define LATHE_ERROR_H

#include "lathe.h"

/* Record a message for code; returns code so callers can `return lathe_seterr(...)`. */
int lathe_seterr(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The calling thread's last message ("" if none). */
const char *lathe_lasterr(void);
int lathe_lasterr_code(void);
void lathe_clearerr(void);
/* Text for any code: lathe's own, LMDB's, or strerror(-code). */
const char *lathe_strerror(int code);
/* The CLI exit status for a code (see the man page's EXIT STATUS). */
int lathe_exit_code(int code);

void lathe_abort(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
#define LATHE_ASSERT(c)                                                                            \
  do {                                                                                             \
    if (!(c)) lathe_abort(__FILE__, __LINE__, "assertion failed: %s", #c);                         \
  } while (0)

#endif
