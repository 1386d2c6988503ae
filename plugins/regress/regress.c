/* regress.c - the runtime's test plugin: an MLP fit by AdamW to a fixed
 * synthetic regression problem, y = sin(w . x) + noise, drawn from the seed.
 *
 * Small but real state: parameters, Adam moments, the minibatch RNG and the
 * step counter, so kill-and-resume exactness is tested on what every algorithm
 * plugin has. Two options inject faults for the runtime's tests: nan_at makes
 * the loss non-finite at a step (the divergence guard), fail_at makes step()
 * fail (run failure handling).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/lathe.h"
#include "../../workbench/nn/nn.h"

static const lathe_opt_t opts[] = {
    {"steps", LATHE_INT, "2000", 1, 1e9, NULL, "training steps"},
    {"batch", LATHE_INT, "32", 1, 4096, NULL, "minibatch size"},
    {"hidden", LATHE_INT, "32", 1, 4096, NULL, "hidden width of the 2-layer MLP"},
    {"inputs", LATHE_INT, "4", 1, 256, NULL, "input dimension"},
    {"data", LATHE_INT, "512", 8, 1000000, NULL, "number of training points"},
    {"lr", LATHE_NUM, "3e-3", 0, 10, NULL, "AdamW learning rate"},
    {"weight_decay", LATHE_NUM, "0", 0, 1, NULL, "AdamW decoupled weight decay"},
    {"activation", LATHE_STR, "tanh", 0, -1, "relu|gelu|tanh|silu", "hidden activation"},
    {"log_every", LATHE_INT, "10", 1, 1e9, NULL, "steps between loss metrics"},
    {"eval_every", LATHE_INT, "100", 1, 1e9, NULL, "steps between full-data evaluations"},
    {"nan_at", LATHE_INT, "0", 0, 1e12, NULL, "test: report a NaN loss at this step (0: never)"},
    {"fail_at", LATHE_INT, "0", 0, 1e12, NULL, "test: fail at this step (0: never)"},
    {NULL}};

typedef struct {
  nn_mlp_t net;
  nn_adamw_t opt;
  nn_rng_t rng;
  int64_t step, steps, log_every, eval_every, nan_at, fail_at;
  int batch, in, n;
  float *x, *y, *bx, *by, *d;
} regress_t;

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  regress_t *r = calloc(1, sizeof *r);
  if (!r) return h->fail(c, LATHE_ENOMEM, "regress: out of memory");
  r->steps = h->cfg_int(c, "steps"), r->batch = (int)h->cfg_int(c, "batch");
  r->in = (int)h->cfg_int(c, "inputs"), r->n = (int)h->cfg_int(c, "data");
  r->log_every = h->cfg_int(c, "log_every"), r->eval_every = h->cfg_int(c, "eval_every");
  r->nan_at = h->cfg_int(c, "nan_at"), r->fail_at = h->cfg_int(c, "fail_at");
  nn_rng_seed(&r->rng, h->seed(c));
  /* the problem: fixed by the seed */
  nn_rng_t prob;
  nn_rng_seed(&prob, h->seed(c) ^ 0x5eed5eedULL);
  float w[256];
  for (int i = 0; i < r->in; i++) w[i] = nn_rng_normal(&prob);
  r->x = malloc(sizeof(float) * r->n * r->in), r->y = malloc(sizeof(float) * r->n);
  r->bx = malloc(sizeof(float) * r->batch * r->in), r->by = malloc(sizeof(float) * r->batch);
  r->d = malloc(sizeof(float) * (r->n > r->batch ? r->n : r->batch));
  if (!r->x || !r->y || !r->bx || !r->by || !r->d)
    return h->fail(c, LATHE_ENOMEM, "regress: out of memory");
  for (int i = 0; i < r->n; i++) {
    float dotp = 0;
    for (int k = 0; k < r->in; k++) dotp += w[k] * (r->x[i * r->in + k] = nn_rng_normal(&prob));
    r->y[i] = sinf(dotp) + 0.05f * nn_rng_normal(&prob);
  }
  int hid = (int)h->cfg_int(c, "hidden"), width[4] = {r->in, hid, hid, 1};
  int rc =
      nn_mlp_init(&r->net, "mlp", 3, width, nn_act_parse(h->cfg_str(c, "activation")), 0, &r->rng);
  if (rc) return h->fail(c, rc, "regress: cannot build the MLP");
  r->opt = nn_adamw_default();
  r->opt.lr = (float)h->cfg_num(c, "lr"),
  r->opt.weight_decay = (float)h->cfg_num(c, "weight_decay");
  h->set_total(c, r->steps);
  *self = r;
  return 0;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  regress_t *r = self;
  if (r->fail_at && r->step + 1 == r->fail_at)
    return h->fail(c, LATHE_EPLUGIN, "regress: injected failure at step %lld",
                   (long long)r->fail_at);
  for (int b = 0; b < r->batch; b++) {
    uint32_t i = nn_rng_below(&r->rng, (uint32_t)r->n);
    memcpy(r->bx + b * r->in, r->x + i * r->in, sizeof(float) * r->in);
    r->by[b] = r->y[i];
  }
  float *out = nn_mlp_forward(&r->net, r->bx, r->batch);
  float loss = nn_mse_loss(r->d, out, r->by, r->batch);
  nn_params_zero_grad(&r->net.params);
  nn_mlp_backward(&r->net, r->d, NULL);
  float gnorm = nn_clip_grad_norm(&r->net.params, 0);
  nn_adamw_step(&r->net.params, &r->opt, r->opt.lr);
  r->step++;
  if (r->nan_at && r->step == r->nan_at) loss = NAN;
  if (r->step % r->log_every == 0 || !isfinite(loss)) {
    h->metric(c, "loss", loss);
    h->metric(c, "grad_norm", gnorm);
  }
  if (r->step % r->eval_every == 0 || r->step == r->steps) {
    out = nn_mlp_forward(&r->net, r->x, r->n);
    h->metric(c, "eval_loss", nn_mse_loss(NULL, out, r->y, r->n));
  }
  return r->step >= r->steps ? LATHE_DONE : LATHE_CONTINUE;
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  regress_t *r = self;
  LATHE_PUT(b, r->step), LATHE_PUT(b, r->rng);
  nn_params_save(&r->net.params, b, 1);
  return 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  regress_t *r = self;
  LATHE_GET(b, r->step), LATHE_GET(b, r->rng);
  if (b->err || r->step < 0 || r->step > r->steps)
    return h->fail(c, LATHE_ECKPT, "regress: checkpoint field 'step' out of range or truncated");
  int rc = nn_params_load(&r->net.params, b);
  return rc ? h->fail(c, rc, "regress: checkpoint does not match this configuration") : 0;
}

static void destroy(void *self) {
  regress_t *r = self;
  nn_mlp_free(&r->net);
  free(r->x), free(r->y), free(r->bx), free(r->by), free(r->d);
  free(r);
}

static const lathe_algorithm_t algorithm = {
    .step = step, .main_metric = "eval_loss", .main_lower_better = 1};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "regress",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "MLP regression on a fixed synthetic problem (the runtime's test plugin)",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY(plugin)
