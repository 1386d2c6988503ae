/* taskprefs.c - preference pairs from a task, for training a proxy reward
 * model on what the task's gold reward prefers (the setting of Tajwar et al.
 * 2024, whose synthetic tasks train a reward model first). Each record is one
 * of the task's prompts (indices first_prompt, first_prompt + 1, ...) with two
 * responses drawn from the task's reference distribution, token by token
 * (where the task restricts offline data, as Skew Length does, responses it
 * excludes are drawn again), the higher gold reward chosen (a tie labelled
 * 0.5), written as text: "w<id>" words (task_text), the form in which pref
 * with reward_run shows its samples to the reward model. */
#include <math.h>
#include <string.h>

#include "../genutil.h"
#include "../taskutil.h"

static const lathe_opt_t opts[] = {
    {"task", LATHE_STR, "length", 0, -1, NULL, "the task plugin"},
    {"task_args", LATHE_STR, "", 0, -1, NULL, "the task's options, \"key=value,key=value\""},
    {"pairs", LATHE_INT, "4000", 1, 1e8, NULL, "records to make"},
    {"first_prompt", LATHE_INT, "1000000000000", 0, 1e15, NULL,
     "the first prompt index (pref trains on indices from 0 and evaluates from 10^9)"},
    {"seed", LATHE_INT, "0", 0, 1e18, NULL, "generator seed"},
    {NULL}};

#define TP_TRIES 10000 /* draws of an excluded response before giving up */

typedef struct {
  const lathe_plugin_t *tp;
  void *task;
  lathe_task_spec_t spec;
  nn_rng_t rng;
  int64_t total, made, first;
  int *prompt, *resp[2], len[2];
  float *probs;
  char *text[3];
  size_t cap;
} gen_t;

static void destroy(void *self) {
  gen_t *g = self;
  if (!g) return;
  free(g->prompt), free(g->resp[0]), free(g->resp[1]), free(g->probs);
  for (int i = 0; i < 3; i++) free(g->text[i]);
  free(g);
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  gen_t *g = calloc(1, sizeof *g);
  if (!g) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = g;
  int rc = task_create(h, c, "taskprefs", &g->tp, &g->task);
  if (rc) return rc;
  g->tp->task->spec(g->task, &g->spec);
  lathe_task_spec_t *s = &g->spec;
  if (s->prompt_len < 1 || s->prompt_len > 4096 || s->max_response < 1 || s->max_response > 4096 ||
      s->vocab < 2 || s->vocab > 1000000)
    return h->fail(c, LATHE_ECONFIG, "taskprefs: task %s has an unusable spec", g->tp->name);
  g->total = h->cfg_int(c, "pairs"), g->first = h->cfg_int(c, "first_prompt");
  nn_rng_seed(&g->rng, (uint64_t)h->cfg_int(c, "seed") * 0x9e3779b97f4a7c15ULL + 7);
  g->cap = (size_t)(s->prompt_len > s->max_response ? s->prompt_len : s->max_response) * 9 + 1;
  g->prompt = malloc(sizeof(int) * (size_t)s->prompt_len);
  g->resp[0] = malloc(sizeof(int) * (size_t)s->max_response);
  g->resp[1] = malloc(sizeof(int) * (size_t)s->max_response);
  g->probs = malloc(sizeof(float) * (size_t)s->vocab);
  for (int i = 0; i < 3; i++) g->text[i] = malloc(g->cap);
  if (!g->prompt || !g->resp[0] || !g->resp[1] || !g->probs || !g->text[0] || !g->text[1] ||
      !g->text[2])
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  return 0;
}

/* One response from the reference into g->resp[k]; its length. */
static int draw(gen_t *g, const lathe_host_t *h, lathe_ctx_t *c, int k) {
  int n = 0, V = g->spec.vocab;
  while (n < g->spec.max_response) {
    int rc = g->tp->task->reference(g->task, h, c, g->prompt, g->resp[k], n, g->probs);
    if (rc) return rc;
    double tot = 0;
    for (int v = 0; v < V; v++) tot += g->probs[v] > 0 ? g->probs[v] : 0;
    if (!(tot > 0) || !isfinite(tot))
      return h->fail(c, LATHE_EIO, "taskprefs: task %s gave a reference with no mass", g->tp->name);
    double u = nn_rng_uniform_d(&g->rng) * tot, acc = 0;
    int t = V - 1;
    for (int v = 0; v < V; v++) {
      acc += g->probs[v] > 0 ? g->probs[v] : 0;
      if (u < acc) {
        t = v;
        break;
      }
    }
    g->resp[k][n++] = t;
    if (t == g->spec.eos) break;
  }
  g->len[k] = n;
  return 0;
}

static int gen_next(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *out) {
  gen_t *g = self;
  if (g->made == g->total) return LATHE_DONE;
  int rc = g->tp->task->prompt(g->task, h, c, (uint64_t)(g->first + g->made), g->prompt);
  if (rc) return rc;
  g->made++;
  for (int k = 0; k < 2; k++) {
    int tries = 0;
    do {
      if (++tries > TP_TRIES)
        return h->fail(c, LATHE_ECONFIG,
                       "taskprefs: %d reference responses in a row are excluded from offline data "
                       "by task %s",
                       TP_TRIES, g->tp->name);
      if ((rc = draw(g, h, c, k))) return rc;
    } while (g->tp->task->offline_ok &&
             !g->tp->task->offline_ok(g->task, g->prompt, g->resp[k], g->len[k]));
  }
  double r[2];
  for (int k = 0; k < 2; k++) r[k] = g->tp->task->reward(g->task, g->prompt, g->resp[k], g->len[k]);
  int first = r[1] > r[0]; /* the chosen response */
  task_text(g->prompt, g->spec.prompt_len, -1, g->text[0], g->cap);
  task_text(g->resp[first], g->len[first], g->spec.eos, g->text[1], g->cap);
  task_text(g->resp[!first], g->len[!first], g->spec.eos, g->text[2], g->cap);
  char num[96];
  lathe_buf_put(out, "{\"prompt\":\"", 11), gen_put_json(out, g->text[0]);
  lathe_buf_put(out, "\",\"chosen\":\"", 12), gen_put_json(out, g->text[1]);
  lathe_buf_put(out, "\",\"rejected\":\"", 14), gen_put_json(out, g->text[2]);
  int n = snprintf(num, sizeof num, "\",\"label\":%g,\"r_chosen\":%.17g,\"r_rejected\":%.17g}",
                   r[0] == r[1] ? 0.5 : 1.0, r[first], r[!first]);
  lathe_buf_put(out, num, (size_t)n);
  return out->err ? out->err : LATHE_CONTINUE;
}

GENERATOR_PLUGIN("taskprefs", "prefs",
                 "preference pairs from a task: two reference responses per prompt, the gold "
                 "reward's choice, as text (prefs)")
