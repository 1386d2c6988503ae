/* error.c - error codes, names, per-thread messages and exit statuses. */
#include "error.h"

#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char msg[1024];
static _Thread_local int msg_code;

int lathe_seterr(int code, const char *fmt, ...) {
  char tmp[sizeof msg]; /* the arguments may include lathe_lasterr() itself */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  memcpy(msg, tmp, sizeof msg);
  msg_code = code;
  return code;
}

const char *lathe_lasterr(void) {
  return msg;
}
int lathe_lasterr_code(void) {
  return msg_code;
}
void lathe_clearerr(void) {
  msg[0] = 0, msg_code = 0;
}

const char *lathe_strerror(int code) {
  switch (code) {
#define X(name, c, text)                                                                           \
  case c:                                                                                          \
    return text;
    LATHE_ERRNO_MAP(X)
#undef X
  }
  if (code <= MDB_KEYEXIST && code >= MDB_LAST_ERRCODE) return mdb_strerror(code);
  return strerror(-code);
}

int lathe_exit_code(int code) {
  switch (code) {
  case LATHE_OK:
    return 0;
  case LATHE_EUSAGE:
    return 2;
  case LATHE_ECONFIG:
  case LATHE_ERECIPE:
    return 3;
  case LATHE_ESTORE:
    return 4;
  case LATHE_ENOPLUGIN:
  case LATHE_EAPIVER:
  case LATHE_EPLUGIN:
    return 5;
  case LATHE_ENAN:
    return 6;
  case LATHE_EINTR:
    return 130;
  }
  if (code <= MDB_KEYEXIST && code >= MDB_LAST_ERRCODE) return 4;
  return 1;
}

void lathe_abort(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "lathe: internal error at %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}
