/* probe.c - PR2L's offline prompt evaluation (specs/pr2l.md, "prompt
 * selection without RL runs"): how well a representation separates the
 * task-relevant label, before any RL is spent on it.
 *
 * Observations: `examples` scenes of the training layouts (the pool pr2l
 * trains on, the same world_seed), the agent on a drawn empty cell; the
 * label is where the target lies relative to the agent, one of 9 classes
 * (pw_direction). Features: a representation of pr2l's (prompt, generic or
 * raw), the token states mean-pooled (a fixed summary, so the score needs
 * no training of the summariser). A softmax-regression probe (standardised
 * features, full-batch Adam, `steps` steps, L2 weight_decay) is fitted on
 * the scenes of the first half of the layouts and scored on the other half:
 * probe/accuracy is the held-out layouts' accuracy, the score that ranks
 * prompts. When the prompt is one of the world's questions about the target
 * ("where is the key ?"), probe/answer_accuracy says how often the model's
 * greedy answer is the world's exact answer.
 *
 * The whole evaluation is one step (a second or two); its checkpoint is a
 * version and a done flag. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features.h"
#include "world.h"

static const lathe_opt_t opts[] = {
    {"repr", LATHE_STR, "prompt", 0, 0, "prompt|generic|raw", "the representation scored"},
    {"model_run", LATHE_INT, "0", 0, 4e9, NULL, "the frozen world model's run (prompt, generic)"},
    {"prompt", LATHE_STR, "where is the key ?", 0, 0, NULL, "the question asked of every scene"},
    {"layer", LATHE_INT, "-1", -1, 64, NULL, "hidden-state layer (0 embeddings .. L; -1: L)"},
    {"max_gen", LATHE_INT, "16", 0, 64, NULL, "most answer tokens generated (0: prompt only)"},
    {"size", LATHE_INT, "5", 2, PW_MAX_G, NULL, "grid side G"},
    {"objects", LATHE_INT, "3", 1, PW_TYPES, NULL, "objects per layout"},
    {"target", LATHE_STR, "key", 0, 0, "key|ball|box|door|gem|tree", "the type the label is about"},
    {"world_seed", LATHE_INT, "0", 0, 1e18, NULL, "seed of the layout streams"},
    {"layouts", LATHE_INT, "50", 2, 1e6, NULL, "training layouts (half fit, half score)"},
    {"examples", LATHE_INT, "1000", 2, 1e6, NULL, "labelled scenes"},
    {"steps", LATHE_INT, "300", 1, 1e6, NULL, "probe fitting steps"},
    {"lr", LATHE_NUM, "0.01", 0, 10, NULL, "probe Adam learning rate"},
    {"weight_decay", LATHE_NUM, "1e-3", 0, 10, NULL, "probe L2 (AdamW's decoupled decay)"},
    {NULL}};

#define NCLS 9

typedef struct {
  int repr, G, nobj, target, layouts, n, steps, done;
  double lr, wd;
  uint64_t world_seed;
  pf_t pf;
} probe_t;

static void destroy(void *self) {
  probe_t *p = self;
  if (!p) return;
  pf_close(&p->pf);
  free(p);
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  probe_t *p = calloc(1, sizeof *p);
  if (!p) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = p;
  const char *repr = h->cfg_str(c, "repr");
  p->repr = !strcmp(repr, "raw") ? 2 : !strcmp(repr, "generic") ? 1 : 0;
  p->G = (int)h->cfg_int(c, "size"), p->nobj = (int)h->cfg_int(c, "objects");
  p->target = pw_type(h->cfg_str(c, "target")), p->layouts = (int)h->cfg_int(c, "layouts");
  p->n = (int)h->cfg_int(c, "examples"), p->steps = (int)h->cfg_int(c, "steps");
  p->lr = h->cfg_num(c, "lr"), p->wd = h->cfg_num(c, "weight_decay");
  p->world_seed = (uint64_t)h->cfg_int(c, "world_seed");
  if (p->nobj >= p->G * p->G)
    return h->fail(c, LATHE_ECONFIG, "pr2lprobe: %d objects leave no free cell in a %dx%d grid",
                   p->nobj, p->G, p->G);
  if (p->repr != 2)
    return pf_open(&p->pf, h, c, "model_run", (uint32_t)h->cfg_int(c, "model_run"),
                   h->cfg_str(c, "prompt"), p->repr == 1, (int)h->cfg_int(c, "layer"),
                   (int)h->cfg_int(c, "max_gen"), 1);
  return 0;
}

/* The world question the prompt asks about the target, or -1. */
static int known_question(const char *prompt, int target) {
  char q[64];
  for (int k = 0; k < PW_NQ; k++)
    if (pw_question(k, target, q, sizeof q) > 0 && !strcmp(q, prompt)) return k;
  return -1;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  probe_t *p = self;
  int F = p->repr == 2 ? pw_onehot_size(p->G) : p->pf.C, n = p->n, rc = 0;
  float *x = calloc((size_t)n * F, sizeof *x), *mu = calloc(F, sizeof *mu);
  float *sd = calloc(F, sizeof *sd);
  int *y = calloc(n, sizeof *y), *fit = calloc(n, sizeof *fit);
  pw_layout_t *lay = malloc((size_t)p->layouts * sizeof *lay);
  nn_mlp_t m = {0};
  if (!x || !mu || !sd || !y || !fit || !lay) {
    rc = h->fail(c, LATHE_ENOMEM, "out of memory");
    goto out;
  }
  for (int i = 0; i < p->layouts; i++)
    pw_layout(&lay[i], p->G, p->nobj, p->target, p->world_seed, 0, (uint64_t)i);
  nn_rng_t r;
  nn_rng_seed(&r, p->world_seed * 7919 + 3);
  int q = p->repr == 0 ? known_question(p->pf.prompt, p->target) : -1, right = 0;
  double len = 0;
  for (int i = 0; i < n; i++) {
    int li = i % p->layouts;
    pw_state_t s = {lay[li], 0, 0, 0};
    pw_start(&s.lay, &r, &s.ax, &s.ay);
    y[i] = pw_direction(&s, p->target), fit[i] = li < p->layouts / 2;
    float *xi = x + (size_t)i * F;
    if (p->repr == 2) {
      pw_onehot(&s, xi);
      continue;
    }
    char d[256], want[128];
    const float *hs;
    const char *ans;
    int T;
    pw_describe(&s, d, sizeof d);
    if ((rc = pf_get(&p->pf, d, &hs, &T, &ans))) {
      rc = h->fail(c, rc, "pr2lprobe: %s",
                   rc == LATHE_ESHAPE ? "the scene and prompt do not fit the model's context"
                                      : "out of memory");
      goto out;
    }
    len += T;
    for (int t = 0; t < T; t++)
      for (int f = 0; f < F; f++) xi[f] += hs[(size_t)t * F + f] / T;
    if (q >= 0 && pw_answer(&s, q, p->target, want, sizeof want) >= 0) right += !strcmp(ans, want);
  }
  int nfit = 0;
  for (int i = 0; i < n; i++) nfit += fit[i];
  if (!nfit || nfit == n) {
    rc = h->fail(c, LATHE_ECONFIG, "pr2lprobe: %d examples over %d layouts leave a half empty", n,
                 p->layouts);
    goto out;
  }
  for (int i = 0; i < n; i++)
    for (int f = 0; f < F && fit[i]; f++) mu[f] += x[(size_t)i * F + f] / nfit;
  for (int i = 0; i < n; i++)
    for (int f = 0; f < F && fit[i]; f++) {
      float d = x[(size_t)i * F + f] - mu[f];
      sd[f] += d * d / nfit;
    }
  for (int f = 0; f < F; f++) sd[f] = sqrtf(sd[f]) + 1e-6f;
  for (size_t i = 0; i < (size_t)n * F; i++) x[i] = (x[i] - mu[i % F]) / sd[i % F];
  if (nn_mlp_init(&m, "probe", 1, (int[]){F, NCLS}, NN_TANH, 0, &r)) {
    rc = h->fail(c, LATHE_ENOMEM, "out of memory");
    goto out;
  }
  nn_adamw_t o = {(float)p->lr, 0.9f, 0.999f, 1e-8f, (float)p->wd};
  float *dz = calloc((size_t)n * NCLS, sizeof *dz);
  if (!dz) {
    rc = h->fail(c, LATHE_ENOMEM, "out of memory");
    goto out;
  }
  double acc[2] = {0, 0}, loss = 0;
  for (int s = 0; s <= p->steps; s++) {
    const float *z = nn_mlp_forward(&m, x, n);
    memset(dz, 0, (size_t)n * NCLS * sizeof *dz);
    loss = 0, acc[0] = acc[1] = 0;
    for (int i = 0; i < n; i++) {
      const float *zi = z + (size_t)i * NCLS;
      int best = 0;
      for (int k = 1; k < NCLS; k++) best = zi[k] > zi[best] ? k : best;
      acc[fit[i]] += best == y[i];
      if (fit[i])
        loss -= nn_categorical(zi, NCLS, y[i], -1.0 / nfit, 0, dz + (size_t)i * NCLS, NULL);
      else
        memset(dz + (size_t)i * NCLS, 0, NCLS * sizeof *dz);
    }
    if (s == p->steps) break; /* the last forward scores the fitted probe */
    nn_params_zero_grad(&m.params);
    nn_mlp_backward(&m, dz, NULL);
    nn_adamw_step(&m.params, &o, o.lr);
  }
  free(dz);
  h->metric(c, "probe/accuracy", acc[0] / (n - nfit));
  h->metric(c, "probe/train_accuracy", acc[1] / nfit);
  h->metric(c, "probe/train_loss", loss / nfit);
  if (p->repr != 2) h->metric(c, "probe/feature_len", len / n);
  if (q >= 0) h->metric(c, "probe/answer_accuracy", (double)right / n);
  p->done = 1;
out:
  nn_mlp_free(&m);
  free(x), free(mu), free(sd), free(y), free(fit), free(lay);
  return rc ? rc : LATHE_DONE;
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  (void)h, (void)c;
  uint32_t v = 1, done = (uint32_t)((probe_t *)self)->done;
  LATHE_PUT(b, v), LATHE_PUT(b, done);
  return b->err;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  uint32_t v, done;
  LATHE_GET(b, v), LATHE_GET(b, done);
  if (b->err || v != 1 || done > 1)
    return h->fail(c, LATHE_ECKPT, "pr2lprobe: bad checkpoint (version %u)", v);
  ((probe_t *)self)->done = (int)done;
  return 0;
}

static const lathe_algorithm_t algorithm = {.step = step, .main_metric = "probe/accuracy"};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "pr2lprobe",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "PR2L's offline prompt evaluation: a linear probe of a representation for the "
           "target's direction, on held-out layouts",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_pr2lprobe, plugin)
