/* arith.c - the arith task's problems with teacher solutions, a generator of
 * math records (specs/per_step_negatives.md, "Small-scale faithful
 * reproduction"; mathtext.h has the format and the exact checker).
 *
 * A problem is a start value in [0, mod) and 3-6 operations (+, -, * with a
 * constant in [1, mod)) applied left to right modulo `mod` (97): question
 * "57+12*3-40", solution "57+12=69\n69*3=13\n13-40=70\nans=70", answer "70".
 * The spec writes a line "v = a op c = value"; lathe drops the spaces and
 * the "v =" (which carry nothing) so a byte-level model's context stays
 * under 96 tokens.
 *
 * Spurious teacher: a fraction `spurious` of the solutions has one wrong
 * intermediate line (not the last operation's) while every other line and
 * the final answer stay right: the next line starts from the right value.
 * Such a record says "spurious": true. Records also carry "ops" and, for
 * the credit check, "first_wrong" (0 when every line is right).
 * `split` picks a stream: train, valid and test never share one. */
#include <stdio.h>
#include <string.h>

#include "../genutil.h"
#include "../../workbench/mathtext.h"

static const lathe_opt_t opts[] = {
    {"n", LATHE_INT, "1000", 1, 1e8, NULL, "problems to make"},
    {"min_ops", LATHE_INT, "3", 1, MT_ARITH_MAX, NULL, "fewest operations"},
    {"max_ops", LATHE_INT, "6", 1, MT_ARITH_MAX, NULL, "most operations"},
    {"mod", LATHE_INT, "97", 2, 1000, NULL, "the modulus"},
    {"spurious", LATHE_NUM, "0.1", 0, 1, NULL,
     "fraction of teacher solutions with one wrong intermediate line"},
    {"split", LATHE_STR, "train", 0, 0, "train|valid|test", "which stream of problems"},
    {"seed", LATHE_INT, "0", 0, 1e18, NULL, "generator seed"},
    {NULL}};

typedef struct {
  nn_rng_t rng;
  int lo, hi, mod;
  double spurious;
  int64_t total, made;
} arith_t;

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  arith_t *a = calloc(1, sizeof *a);
  if (!a) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = a;
  a->lo = (int)h->cfg_int(c, "min_ops"), a->hi = (int)h->cfg_int(c, "max_ops");
  a->mod = (int)h->cfg_int(c, "mod"), a->spurious = h->cfg_num(c, "spurious");
  a->total = h->cfg_int(c, "n");
  if (a->lo > a->hi)
    return h->fail(c, LATHE_ECONFIG, "arith: min_ops %d is above max_ops %d", a->lo, a->hi);
  const char *split = h->cfg_str(c, "split");
  uint64_t s = (uint64_t)h->cfg_int(c, "seed") * 3 + (!strcmp(split, "valid")  ? 1
                                                      : !strcmp(split, "test") ? 2
                                                                               : 0);
  nn_rng_seed(&a->rng, nn_splitmix64(&s) ^ 0x61726974680aULL);
  return 0;
}

static int gen_next(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *out) {
  arith_t *a = self;
  if (a->made == a->total) return LATHE_DONE;
  a->made++;
  int k = a->lo + (int)nn_rng_below(&a->rng, (uint32_t)(a->hi - a->lo + 1));
  int x = (int)nn_rng_below(&a->rng, (uint32_t)a->mod), cs[MT_ARITH_MAX];
  char ops[MT_ARITH_MAX], q[256], sol[512];
  for (int j = 0; j < k; j++)
    ops[j] = "+-*"[nn_rng_below(&a->rng, 3)], cs[j] = 1 + (int)nn_rng_below(&a->rng, a->mod - 1);
  int spur = k > 1 && nn_rng_uniform_d(&a->rng) < a->spurious;
  int bad = spur ? (int)nn_rng_below(&a->rng, (uint32_t)k - 1) : -1; /* the wrong line */
  size_t qn = (size_t)snprintf(q, sizeof q, "%d", x), sn = 0;
  for (int j = 0; j < k; j++) {
    qn += (size_t)snprintf(q + qn, sizeof q - qn, "%c%d", ops[j], cs[j]);
    int y = mt_arith_apply(x, ops[j], cs[j], a->mod), shown = y;
    if (j == bad) shown = (y + 1 + (int)nn_rng_below(&a->rng, a->mod - 1)) % a->mod;
    sn += (size_t)snprintf(sol + sn, sizeof sol - sn, "%d%c%d=%d\n", x, ops[j], cs[j], shown);
    x = y;
  }
  snprintf(sol + sn, sizeof sol - sn, "ans=%d", x);
  char line[1024];
  int n = snprintf(line, sizeof line, "{\"question\":\"%s\",\"solution\":\"", q);
  for (const char *p = sol; *p && n + 4 < (int)sizeof line; p++) /* JSON: newlines escaped */
    n += *p == '\n' ? snprintf(line + n, sizeof line - n, "\\n") : (line[n] = *p, 1);
  n += snprintf(line + n, sizeof line - n,
                "\",\"answer\":\"%d\",\"ops\":%d,\"spurious\":%s,\"first_wrong\":%d}", x, k,
                spur ? "true" : "false", mt_arith_first_wrong(q, sol, a->mod));
  lathe_buf_put(out, line, (size_t)n);
  return out->err ? out->err : LATHE_CONTINUE;
}

static void destroy(void *self) {
  free(self);
}

GENERATOR_PLUGIN("arith", "math",
                 "chained modular arithmetic with teacher solutions, some spurious (math)")
