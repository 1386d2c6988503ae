/* transport.c - liblathe-mpi.so: the only code in lathe that calls MPI. A
 * thin byte transport (cluster.h's lathe_mpi_t) over MPI_COMM_WORLD; the
 * protocol lives in cluster.c. Built with mpicc when Open MPI is installed. */
#define LATHE_MPI_MODULE
#include "../cluster.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int t_init(int *rank, int *size, char *err, size_t errlen) {
  int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
  if (rc != MPI_SUCCESS) {
    snprintf(err, errlen, "MPI_Init_thread failed (code %d)", rc);
    return -1;
  }
  if (provided < MPI_THREAD_MULTIPLE) {
    snprintf(err, errlen, "this MPI library gives thread level %d; lathe needs MPI_THREAD_MULTIPLE",
             provided);
    MPI_Finalize();
    return -1;
  }
  /* a lost peer is the caller's to handle (its runs marked interrupted), not an abort */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  return 0;
}

static const char *t_version(void) {
  static char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0;
  MPI_Get_library_version(v, &n);
  for (int i = 0; i < n; i++)
    if (v[i] == '\n' || v[i] == ',') v[i] = 0; /* the first line, up to its details */
  return v;
}

static int t_send(const void *p, size_t n, int dest, int tag) {
  if (n > INT_MAX) return -1;
  return MPI_Send(p, (int)n, MPI_BYTE, dest, tag, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

/* Poll with a sleep that grows from 20 us to 0.3 ms: a blocking MPI_Recv spins
 * a core in Open MPI, and ranks share cores with the numeric threads. */
static int t_recv(int src, int tag, void **p, size_t *n, double timeout) {
  MPI_Message msg;
  MPI_Status st;
  int flag = 0, count = 0;
  long wait_ns = 20000;
  double end = timeout >= 0 ? MPI_Wtime() + timeout : 0;
  for (;;) {
    if (MPI_Improbe(src, tag, MPI_COMM_WORLD, &flag, &msg, &st) != MPI_SUCCESS) return -1;
    if (flag) break;
    if (timeout >= 0 && MPI_Wtime() >= end) return 1;
    struct timespec ts = {0, wait_ns};
    nanosleep(&ts, NULL);
    if (wait_ns < 250000) wait_ns *= 2;
  }
  MPI_Get_count(&st, MPI_BYTE, &count);
  *p = malloc(count ? (size_t)count : 1);
  if (!*p) return -1;
  *n = (size_t)count;
  return MPI_Mrecv(*p, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE) == MPI_SUCCESS ? 0 : -1;
}

static void t_finalize(void) {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}

static void t_abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
}

static const lathe_mpi_t module = {LATHE_MPI_ABI, t_init,     t_version, t_send,
                                   t_recv,        t_finalize, t_abort};

/* The module's entry point (dlsym'd by cluster.c). */
const lathe_mpi_t *lathe_mpi_module(void) {
  return &module;
}
