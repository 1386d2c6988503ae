/* pr2l.c - PPO on the grid world (world.h) over one of three
 * representations (specs/pr2l.md):
 *   prompt  - PR2L: a frozen language model's hidden states of a prompt and
 *             its greedy answer about the scene's description (features.h),
 *             summarised by attention pooling (nn_pool: H heads, learned
 *             queries) into D floats;
 *   generic - the same model's hidden states of the description alone, the
 *             same pooling;
 *   raw     - the one-hot grid through one Linear layer into D floats.
 * Policy and value heads (D -> hidden -> actions, D -> hidden -> 1, tanh)
 * are identical across the three; the summariser trains with them, the
 * language model never does.
 *
 * PPO is CleanRL's ppo.py for discrete actions: num_envs environments
 * stepped num_steps times per iteration, GAE (gamma 0.99, lambda 0.95),
 * update_epochs passes over num_minibatches shuffled minibatches,
 * per-minibatch advantage normalisation, the clipped objective (0.2), a
 * clipped value loss, entropy bonus 0.01, value coefficient 0.5, global
 * gradient-norm clip 0.5, Adam (eps 1e-5) with the learning rate annealed
 * linearly to 0. A truncated episode is bootstrapped (r += gamma V(final
 * observation)) rather than treated as a failure.
 *
 * Training episodes start in one of `layouts` training layouts (layout
 * stream 0), the agent on a drawn empty cell; evaluation plays
 * eval_episodes episodes on the training layouts and as many on
 * heldout_layouts layouts no training episode saw (stream 1), from the same
 * starts at every evaluation, actions sampled from the policy with a fixed
 * stream, so every run and every evaluation is scored on the same episodes;
 * eval/train_optimal_return and eval/heldout_optimal_return are the return of shortest paths from
 * those starts.
 *
 * One step() is one PPO iteration (collection and update), plus an
 * evaluation when due. The checkpoint holds the networks with Adam's
 * moments, the RNG, every environment's layout, position and clock, and the
 * counters; the feature cache is rebuilt on demand (features.h: exact). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../textdata.h"
#include "features.h"
#include "world.h"

static const lathe_opt_t opts[] = {
    {"repr", LATHE_STR, "prompt", 0, 0, "prompt|generic|raw", "the policy's input"},
    {"model_run", LATHE_INT, "0", 0, 4e9, NULL, "the frozen world model's run (prompt, generic)"},
    {"prompt", LATHE_STR, "where is the key ?", 0, 0, NULL, "the question asked of every scene"},
    {"layer", LATHE_INT, "-1", -1, 64, NULL, "hidden-state layer (0 embeddings .. L; -1: L)"},
    {"max_gen", LATHE_INT, "16", 0, 64, NULL, "most answer tokens generated (0: prompt only)"},
    {"cache", LATHE_BOOL, "true", 0, 0, NULL, "cache features per observation"},
    {"size", LATHE_INT, "5", 2, PW_MAX_G, NULL, "grid side G"},
    {"objects", LATHE_INT, "3", 1, PW_TYPES, NULL,
     "objects per layout (the target and distractors)"},
    {"target", LATHE_STR, "key", 0, 0, "key|ball|box|door|gem|tree", "the type to go to"},
    {"world_seed", LATHE_INT, "0", 0, 1e18, NULL, "seed of the layout streams"},
    {"layouts", LATHE_INT, "50", 1, 1e6, NULL, "training layouts"},
    {"heldout_layouts", LATHE_INT, "200", 1, 1e6, NULL, "held-out layouts for evaluation"},
    {"episode_steps", LATHE_INT, "20", 1, 1000, NULL, "episode length limit"},
    {"total_timesteps", LATHE_INT, "50000", 1, 1e10, NULL, "environment steps"},
    {"num_envs", LATHE_INT, "8", 1, 1024, NULL, "parallel environments"},
    {"num_steps", LATHE_INT, "64", 1, 65536, NULL, "steps per environment per iteration"},
    {"learning_rate", LATHE_NUM, "2.5e-4", 0, 1, NULL, "Adam learning rate"},
    {"anneal_lr", LATHE_BOOL, "true", 0, 0, NULL, "decay the learning rate linearly to 0"},
    {"gamma", LATHE_NUM, "0.99", 0, 1, NULL, "discount"},
    {"gae_lambda", LATHE_NUM, "0.95", 0, 1, NULL, "GAE lambda"},
    {"update_epochs", LATHE_INT, "4", 1, 1000, NULL, "passes over each rollout"},
    {"num_minibatches", LATHE_INT, "4", 1, 65536, NULL, "minibatches per pass"},
    {"clip_coef", LATHE_NUM, "0.2", 0, 10, NULL, "PPO's ratio clip"},
    {"clip_vloss", LATHE_BOOL, "true", 0, 0, NULL, "clip the value loss as the ratio"},
    {"norm_adv", LATHE_BOOL, "true", 0, 0, NULL, "normalise advantages per minibatch"},
    {"ent_coef", LATHE_NUM, "0.01", 0, 100, NULL, "entropy bonus"},
    {"vf_coef", LATHE_NUM, "0.5", 0, 100, NULL, "value loss coefficient"},
    {"max_grad_norm", LATHE_NUM, "0.5", 0, 1e6, NULL, "global gradient-norm clip (0: off)"},
    {"dim", LATHE_INT, "64", 1, 4096, NULL, "summary width D"},
    {"pool_heads", LATHE_INT, "4", 1, 64, NULL, "attention-pooling heads (dividing dim)"},
    {"hidden", LATHE_INT, "64", 1, 4096, NULL, "hidden width of the policy and value heads"},
    {"eval_every", LATHE_INT, "10", 1, 1e9, NULL, "iterations between evaluations"},
    {"eval_episodes", LATHE_INT, "100", 1, 100000, NULL, "episodes per layout set per evaluation"},
    {NULL}};

enum { R_PROMPT, R_GENERIC, R_RAW };

typedef struct {
  int li, ax, ay, t; /* training layout index, agent, clock */
  double ret;
} env_t;

typedef struct {
  /* configuration */
  int repr, E, S, A, D, F, Tcap, G, nobj, target, max_steps, layouts, heldout;
  int epochs, nmb, eval_every, eval_episodes, anneal, clip_vloss, norm_adv;
  double lr, gamma, lam, clip, ent, vfc, max_gn;
  int64_t iters;
  uint64_t world_seed;
  pf_t pf;
  nn_pool_t pool; /* prompt, generic */
  nn_mlp_t enc;   /* raw */
  nn_mlp_t pi, vf;
  nn_adamw_t opt;
  /* state */
  nn_rng_t rng;
  int64_t iter, episodes;
  env_t *env;
  /* rollout (S*E samples) */
  float *feat; /* (S*E, Tcap, F) */
  int *flen, *act;
  float *logp, *val, *rew, *adv, *ret;
  uint8_t *done;
  /* batch scratch */
  float *x, *logits, *values, *dz, *dlogits, *dvalues;
  int *xlen, *idx;
  int spare;  /* feat rows spare.. spare+E-1: observations outside the rollout */
  int *ident; /* 0, 1, 2, ...: row lists for gather */
  pw_layout_t *train_lay, *held_lay;
  double t_feat; /* seconds in feature extraction this iteration */
} pp_t;

static void destroy(void *self) {
  pp_t *p = self;
  if (!p) return;
  pf_close(&p->pf);
  nn_pool_free(&p->pool), nn_mlp_free(&p->enc), nn_mlp_free(&p->pi), nn_mlp_free(&p->vf);
  free(p->env), free(p->feat), free(p->flen), free(p->act), free(p->logp), free(p->val);
  free(p->rew), free(p->adv), free(p->ret), free(p->done), free(p->x), free(p->logits);
  free(p->values), free(p->dz), free(p->dlogits), free(p->dvalues), free(p->xlen), free(p->idx);
  free(p->train_lay), free(p->held_lay), free(p->ident);
  free(p);
}

/* CleanRL's layer_init: orthogonal weights with a gain, zero biases. */
static void ortho(nn_mlp_t *m, float out_gain, nn_rng_t *r) {
  for (int l = 0; l < m->nlayers; l++) {
    nn_init_orthogonal(&m->params, m->iw[l], l + 1 < m->nlayers ? sqrtf(2.0f) : out_gain, r);
    nn_init_const(&m->params, m->ib[l], 0.0f);
  }
}

/* The observation of state s as the representation's rows into x (Tcap x
 * F floats): *len rows. */
static int observe(pp_t *p, const pw_state_t *s, float *x, int *len, const lathe_host_t *h,
                   lathe_ctx_t *c) {
  if (p->repr == R_RAW) {
    pw_onehot(s, x);
    *len = 1;
    return 0;
  }
  char d[256];
  const float *hs;
  int T;
  if (pw_describe(s, d, sizeof d) < 0) return h->fail(c, LATHE_EPLUGIN, "pr2l: scene too long");
  double t0 = tx_now();
  int rc = pf_get(&p->pf, d, &hs, &T, NULL);
  p->t_feat += tx_now() - t0;
  if (rc == LATHE_ESHAPE)
    return h->fail(c, LATHE_ESHAPE,
                   "pr2l: description, prompt and %d answer tokens do not fit the model's "
                   "context of %d",
                   p->pf.max_gen, p->pf.gpt.cfg.ctx);
  if (rc) return h->fail(c, rc, "pr2l: out of memory");
  memcpy(x, hs, (size_t)T * p->F * sizeof *x);
  *len = T;
  return 0;
}

/* Gather samples idx[0..N) of the rollout into x (N, Tb, F), zero-padded;
 * returns Tb. */
static int gather(pp_t *p, const int *idx, int N) {
  int Tb = 1;
  for (int i = 0; i < N; i++) Tb = p->flen[idx[i]] > Tb ? p->flen[idx[i]] : Tb;
  for (int i = 0; i < N; i++) {
    int L = p->flen[idx[i]];
    float *dst = p->x + (size_t)i * Tb * p->F;
    memcpy(dst, p->feat + (size_t)idx[i] * p->Tcap * p->F, (size_t)L * p->F * sizeof *dst);
    memset(dst + (size_t)L * p->F, 0, (size_t)(Tb - L) * p->F * sizeof *dst);
    p->xlen[i] = L;
  }
  return Tb;
}

/* Logits (N, A) and values (N) of x (N, T, F) with lengths xlen. */
static int forward(pp_t *p, const float *x, const int *len, int N, int T) {
  const float *z =
      p->repr == R_RAW ? nn_mlp_forward(&p->enc, x, N) : nn_pool_forward(&p->pool, x, len, N, T);
  if (!z) return LATHE_ENOMEM;
  const float *lo = nn_mlp_forward(&p->pi, z, N), *vo = nn_mlp_forward(&p->vf, z, N);
  if (!lo || !vo) return LATHE_ENOMEM;
  memcpy(p->logits, lo, (size_t)N * p->A * sizeof *lo);
  memcpy(p->values, vo, (size_t)N * sizeof *vo);
  return 0;
}

static void backward(pp_t *p, int N) {
  memset(p->dz, 0, (size_t)N * p->D * sizeof *p->dz);
  nn_mlp_backward(&p->pi, p->dlogits, p->dz);
  nn_mlp_backward(&p->vf, p->dvalues, p->dz);
  if (p->repr == R_RAW)
    nn_mlp_backward(&p->enc, p->dz, NULL);
  else
    nn_pool_backward(&p->pool, p->dz, NULL);
}

static nn_params_t *param_set(pp_t *p, int k) {
  return k == 0   ? (p->repr == R_RAW ? &p->enc.params : &p->pool.params)
         : k == 1 ? &p->pi.params
                  : &p->vf.params;
}

/* Sample an action from softmax(z) with r; its log-probability into *lp. */
static int sample(const float *z, int A, nn_rng_t *r, float *lp) {
  double m = z[0], s = 0.0, u = nn_rng_uniform_d(r), acc = 0.0;
  for (int k = 1; k < A; k++) m = z[k] > m ? z[k] : m;
  for (int k = 0; k < A; k++) s += exp(z[k] - m);
  int a = A - 1;
  for (int k = 0; k < A; k++)
    if ((acc += exp(z[k] - m) / s) > u) {
      a = k;
      break;
    }
  *lp = (float)(z[a] - m - log(s));
  return a;
}

static void env_reset(pp_t *p, env_t *e) {
  e->li = (int)nn_rng_below(&p->rng, (uint32_t)p->layouts);
  pw_start(&p->train_lay[e->li], &p->rng, &e->ax, &e->ay);
  e->t = 0, e->ret = 0.0;
}

static pw_state_t env_state(const pp_t *p, const env_t *e) {
  return (pw_state_t){p->train_lay[e->li], e->ax, e->ay, e->t};
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  pp_t *p = calloc(1, sizeof *p);
  if (!p) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = p;
  const char *repr = h->cfg_str(c, "repr");
  p->repr = !strcmp(repr, "raw") ? R_RAW : !strcmp(repr, "generic") ? R_GENERIC : R_PROMPT;
  p->E = (int)h->cfg_int(c, "num_envs"), p->S = (int)h->cfg_int(c, "num_steps");
  p->A = PW_ACTIONS, p->D = (int)h->cfg_int(c, "dim");
  p->G = (int)h->cfg_int(c, "size"), p->nobj = (int)h->cfg_int(c, "objects");
  p->target = pw_type(h->cfg_str(c, "target")), p->max_steps = (int)h->cfg_int(c, "episode_steps");
  p->layouts = (int)h->cfg_int(c, "layouts"), p->heldout = (int)h->cfg_int(c, "heldout_layouts");
  p->epochs = (int)h->cfg_int(c, "update_epochs"), p->nmb = (int)h->cfg_int(c, "num_minibatches");
  p->eval_every = (int)h->cfg_int(c, "eval_every");
  p->eval_episodes = (int)h->cfg_int(c, "eval_episodes");
  p->anneal = (int)h->cfg_int(c, "anneal_lr"), p->clip_vloss = (int)h->cfg_int(c, "clip_vloss");
  p->norm_adv = (int)h->cfg_int(c, "norm_adv");
  p->lr = h->cfg_num(c, "learning_rate"), p->gamma = h->cfg_num(c, "gamma");
  p->lam = h->cfg_num(c, "gae_lambda"), p->clip = h->cfg_num(c, "clip_coef");
  p->ent = h->cfg_num(c, "ent_coef"), p->vfc = h->cfg_num(c, "vf_coef");
  p->max_gn = h->cfg_num(c, "max_grad_norm");
  p->world_seed = (uint64_t)h->cfg_int(c, "world_seed");
  int64_t per = (int64_t)p->E * p->S;
  p->iters = (h->cfg_int(c, "total_timesteps") + per - 1) / per;
  p->opt = (nn_adamw_t){(float)p->lr, 0.9f, 0.999f, 1e-5f, 0.0f};
  nn_rng_seed(&p->rng, h->seed(c));
  int rc;
  if (p->repr != R_RAW &&
      (rc = pf_open(&p->pf, h, c, "model_run", (uint32_t)h->cfg_int(c, "model_run"),
                    h->cfg_str(c, "prompt"), p->repr == R_GENERIC, (int)h->cfg_int(c, "layer"),
                    (int)h->cfg_int(c, "max_gen"), (int)h->cfg_int(c, "cache"))))
    return rc;
  int hid = (int)h->cfg_int(c, "hidden");
  if (p->repr == R_RAW) {
    p->F = pw_onehot_size(p->G), p->Tcap = 1;
    rc = nn_mlp_init(&p->enc, "enc", 1, (int[]){p->F, p->D}, NN_TANH, 0, &p->rng);
  } else {
    p->F = p->pf.C, p->Tcap = pf_max_len(&p->pf);
    rc = nn_pool_init(&p->pool, "pool", p->F, p->D, (int)h->cfg_int(c, "pool_heads"), &p->rng);
  }
  if (rc || nn_mlp_init(&p->pi, "pi", 2, (int[]){p->D, hid, p->A}, NN_TANH, 0, &p->rng) ||
      nn_mlp_init(&p->vf, "vf", 2, (int[]){p->D, hid, 1}, NN_TANH, 0, &p->rng))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  if (p->repr == R_RAW) ortho(&p->enc, sqrtf(2.0f), &p->rng);
  ortho(&p->pi, 0.01f, &p->rng), ortho(&p->vf, 1.0f, &p->rng);
  size_t N = (size_t)per, B = N > (size_t)p->eval_episodes ? N : (size_t)p->eval_episodes;
  size_t rowsz = (size_t)p->Tcap * p->F;
  p->env = calloc((size_t)p->E, sizeof *p->env);
  p->spare = (int)(N > B ? N : B);
  size_t rows = (size_t)p->spare + (size_t)p->E;
  p->feat = malloc(rows * rowsz * sizeof *p->feat), p->flen = calloc(rows, sizeof *p->flen);
  p->ident = malloc(rows * sizeof *p->ident), p->act = calloc(N, sizeof *p->act);
  p->logp = calloc(N, sizeof(float)), p->val = calloc(N, sizeof(float));
  p->rew = calloc(N, sizeof(float)), p->adv = calloc(N, sizeof(float));
  p->ret = calloc(N, sizeof(float)), p->done = calloc(N, 1);
  p->x = malloc(B * rowsz * sizeof *p->x), p->xlen = calloc(B, sizeof *p->xlen);
  p->logits = malloc(B * p->A * sizeof(float)), p->values = malloc(B * sizeof(float));
  p->dz = malloc(B * p->D * sizeof(float)), p->dlogits = malloc(B * p->A * sizeof(float));
  p->dvalues = malloc(B * sizeof(float)), p->idx = malloc(B * sizeof *p->idx);
  p->train_lay = malloc((size_t)p->layouts * sizeof *p->train_lay);
  p->held_lay = malloc((size_t)p->heldout * sizeof *p->held_lay);
  if (!p->env || !p->feat || !p->flen || !p->ident || !p->act || !p->logp || !p->val || !p->rew ||
      !p->adv || !p->ret || !p->done || !p->x || !p->xlen || !p->logits || !p->values || !p->dz ||
      !p->dlogits || !p->dvalues || !p->idx || !p->train_lay || !p->held_lay)
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  for (size_t i = 0; i < rows; i++) p->ident[i] = (int)i;
  for (int i = 0; i < p->layouts; i++)
    pw_layout(&p->train_lay[i], p->G, p->nobj, p->target, p->world_seed, 0, (uint64_t)i);
  for (int i = 0; i < p->heldout; i++)
    pw_layout(&p->held_lay[i], p->G, p->nobj, p->target, p->world_seed, 1, (uint64_t)i);
  for (int e = 0; e < p->E; e++) env_reset(p, &p->env[e]);
  h->set_total(c, p->iters);
  return 0;
}

typedef struct {
  double pg, v, h, kl, cf, gn; /* sums over minibatches (kl, cf: over samples) */
} stats_t;

/* One minibatch of PPO: rollout samples ix[0..mb), forward, CleanRL's loss
 * pg - ent_coef H + vf_coef v (v: the clipped value loss, halved), and its
 * gradients accumulated into the three parameter sets. Returns 0 or
 * LATHE_ENOMEM; the loss's parts are added to st. */
static int minibatch(pp_t *p, const int *ix, int mb, stats_t *st) {
  int A = p->A, Tb = gather(p, ix, mb), rc;
  if ((rc = forward(p, p->x, p->xlen, mb, Tb))) return rc;
  double am = 0, as = 0;
  for (int k = 0; k < mb; k++) am += p->adv[ix[k]];
  am /= mb;
  for (int k = 0; k < mb; k++) as += (p->adv[ix[k]] - am) * (p->adv[ix[k]] - am);
  as = mb > 1 ? sqrt(as / (mb - 1)) : 0.0; /* torch's std(): unbiased */
  memset(p->dlogits, 0, (size_t)mb * A * sizeof(float));
  for (int k = 0; k < mb; k++) {
    int i = ix[k];
    const float *z = p->logits + (size_t)k * A;
    double H, lp = nn_categorical(z, A, p->act[i], 0, 0, NULL, &H);
    double lr_ = lp - p->logp[i], ratio = exp(lr_);
    st->kl += (ratio - 1) - lr_, st->cf += fabs(ratio - 1) > p->clip;
    double adv = p->norm_adv ? (p->adv[i] - am) / (as + 1e-8) : p->adv[i], g;
    st->pg += nn_pg_ppo_token(lp, p->logp[i], 0, adv, p->clip, 0, &g) / mb;
    st->h += H / mb;
    nn_categorical(z, A, p->act[i], g / mb, -p->ent / mb, p->dlogits + (size_t)k * A, NULL);
    double v = p->values[k], dv = v - p->ret[i], vl = dv * dv, dgrad = dv;
    if (p->clip_vloss) {
      double vc = p->val[i] + fmin(fmax(v - p->val[i], -p->clip), p->clip), dc = vc - p->ret[i];
      if (dc * dc > vl) vl = dc * dc, dgrad = fabs(v - p->val[i]) < p->clip ? dc : 0.0;
    }
    st->v += 0.5 * vl / mb;
    p->dvalues[k] = (float)(p->vfc * dgrad / mb);
  }
  backward(p, mb);
  return 0;
}

/* Play n episodes on layouts lay[i % nl] from fixed starts with actions
 * sampled from a fixed stream: mean return and success rate. */
static int evaluate(pp_t *p, const pw_layout_t *lay, int nl, uint64_t stream, double *ret,
                    double *succ, double *best, const lathe_host_t *h, lathe_ctx_t *c) {
  int n = p->eval_episodes, rc;
  nn_rng_t r;
  nn_rng_seed(&r, p->world_seed * 7919 + stream);
  pw_state_t *s = malloc((size_t)n * sizeof *s);
  uint8_t *live = malloc((size_t)n);
  if (!s || !live) {
    free(s), free(live);
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  double R = 0, W = 0, B = 0;
  for (int i = 0; i < n; i++) {
    s[i] = (pw_state_t){lay[i % nl], 0, 0, 0};
    pw_start(&s[i].lay, &r, &s[i].ax, &s[i].ay);
    live[i] = 1;
    for (int k = 0; k < s[i].lay.nobj; k++) /* a shortest path, then interact */
      if (s[i].lay.type[k] == p->target) {
        int d = abs(s[i].lay.x[k] - s[i].ax) + abs(s[i].lay.y[k] - s[i].ay);
        B += d + 1 <= p->max_steps ? 1.0 - 0.9 * (d + 1) / p->max_steps : 0.0;
      }
  }
  size_t rowsz = (size_t)p->Tcap * p->F;
  for (int t = 0; t < p->max_steps; t++) {
    int m = 0;
    for (int i = 0; i < n; i++)
      if (live[i]) {
        if ((rc = observe(p, &s[i], p->feat + (size_t)m * rowsz, &p->flen[m], h, c))) goto out;
        p->idx[m++] = i;
      }
    if (!m) break;
    int Tb = gather(p, p->ident, m);
    if ((rc = forward(p, p->x, p->xlen, m, Tb))) {
      h->fail(c, rc, "out of memory");
      goto out;
    }
    for (int j = 0; j < m; j++) {
      int i = p->idx[j], term, trunc, win;
      float lp;
      int a = sample(p->logits + (size_t)j * p->A, p->A, &r, &lp);
      R += pw_step(&s[i], a, p->target, p->max_steps, &term, &trunc, &win);
      W += win;
      if (term || trunc) live[i] = 0;
    }
  }
  *ret = R / n, *succ = W / n, *best = B / n, rc = 0;
out:
  free(s), free(live);
  return rc;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  pp_t *p = self;
  int E = p->E, S = p->S, A = p->A, N = E * S, rc;
  size_t rowsz = (size_t)p->Tcap * p->F;
  double t0 = tx_now(), ep_ret = 0, ep_win = 0, ep_len = 0;
  int64_t hits0 = p->pf.hits, miss0 = p->pf.misses;
  int eps = 0;
  p->t_feat = 0;
  /* collect */
  for (int s = 0; s < S; s++) {
    for (int e = 0; e < E; e++) {
      pw_state_t st = env_state(p, &p->env[e]);
      int i = s * E + e;
      if ((rc = observe(p, &st, p->feat + (size_t)i * rowsz, &p->flen[i], h, c))) return rc;
      p->idx[e] = i;
    }
    int Tb = gather(p, p->idx, E);
    if ((rc = forward(p, p->x, p->xlen, E, Tb))) return h->fail(c, rc, "out of memory");
    for (int e = 0; e < E; e++) {
      int i = s * E + e;
      p->act[i] = sample(p->logits + (size_t)e * A, A, &p->rng, &p->logp[i]);
      p->val[i] = p->values[e];
    }
    for (int e = 0; e < E; e++) {
      int i = s * E + e, term, trunc, win;
      env_t *v = &p->env[e];
      pw_state_t st = env_state(p, v);
      double r = pw_step(&st, p->act[i], p->target, p->max_steps, &term, &trunc, &win);
      v->ax = st.ax, v->ay = st.ay, v->t = st.t, v->ret += r;
      if (trunc && !term) { /* bootstrap the timeout from the final observation */
        int row = p->spare + e;
        if ((rc = observe(p, &st, p->feat + (size_t)row * rowsz, &p->flen[row], h, c))) return rc;
        if ((rc = forward(p, p->x, p->xlen, 1, gather(p, &row, 1))))
          return h->fail(c, rc, "out of memory");
        r += p->gamma * p->values[0];
      }
      p->rew[i] = (float)r, p->done[i] = (uint8_t)(term || trunc);
      if (term || trunc) {
        ep_ret += v->ret, ep_win += win, ep_len += v->t, eps++, p->episodes++;
        env_reset(p, v);
      }
    }
  }
  /* the value after the last step, then GAE */
  for (int e = 0; e < E; e++) {
    pw_state_t st = env_state(p, &p->env[e]);
    int row = p->spare + e;
    if ((rc = observe(p, &st, p->feat + (size_t)row * rowsz, &p->flen[row], h, c))) return rc;
  }
  if ((rc = forward(p, p->x, p->xlen, E, gather(p, p->ident + p->spare, E))))
    return h->fail(c, rc, "out of memory");
  nn_gae(p->rew, p->val, p->done, p->values, S, E, p->gamma, p->lam, p->adv, p->ret);
  double t_collect = tx_now() - t0;
  /* update */
  float lr = (float)(p->anneal ? p->lr * (1.0 - (double)p->iter / p->iters) : p->lr);
  int mb = N / p->nmb;
  stats_t st = {0};
  int nup = 0;
  int *perm = malloc((size_t)N * sizeof *perm);
  if (!perm) return h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int i = 0; i < N; i++) perm[i] = i;
  for (int ep = 0; ep < p->epochs; ep++) {
    for (int i = N - 1; i > 0; i--) {
      int j = (int)nn_rng_below(&p->rng, (uint32_t)i + 1), t = perm[i];
      perm[i] = perm[j], perm[j] = t;
    }
    for (int b = 0; b + mb <= N; b += mb) {
      const int *ix = perm + b;
      for (int k = 0; k < 3; k++) nn_params_zero_grad(param_set(p, k));
      if ((rc = minibatch(p, ix, mb, &st))) {
        free(perm);
        return h->fail(c, rc, "out of memory");
      }
      nn_params_t *ps[3] = {param_set(p, 0), param_set(p, 1), param_set(p, 2)};
      st.gn += nn_clip_grad_norm_sets(ps, 3, p->max_gn);
      for (int k = 0; k < 3; k++)
        if (nn_adamw_step(param_set(p, k), &p->opt, lr)) {
          free(perm);
          return h->fail(c, LATHE_ENOMEM, "out of memory");
        }
      nup++;
    }
  }
  free(perm);
  p->iter++;
  double dt = tx_now() - t0;
  /* explained variance of the values against the returns */
  double ym = 0, dm = 0, yv = 0, rv = 0;
  for (int i = 0; i < N; i++) ym += p->ret[i], dm += p->ret[i] - p->val[i];
  ym /= N, dm /= N;
  for (int i = 0; i < N; i++) {
    double d = p->ret[i] - p->val[i] - dm;
    yv += (p->ret[i] - ym) * (p->ret[i] - ym), rv += d * d;
  }
  if (eps) {
    h->metric(c, "charts/episodic_return", ep_ret / eps);
    h->metric(c, "charts/success_rate", ep_win / eps);
    h->metric(c, "charts/episodic_length", ep_len / eps);
  }
  h->metric(c, "charts/env_steps", (double)p->iter * N);
  h->metric(c, "charts/learning_rate", lr);
  h->metric(c, "losses/policy_loss", st.pg / nup);
  h->metric(c, "losses/value_loss", st.v / nup);
  h->metric(c, "losses/entropy", st.h / nup);
  h->metric(c, "losses/approx_kl", st.kl / nup / mb);
  h->metric(c, "losses/clipfrac", st.cf / nup / mb);
  h->metric(c, "losses/grad_norm", st.gn / nup);
  h->metric(c, "losses/explained_variance", yv > 0 ? 1 - rv / yv : NAN);
  h->metric(c, "perf/env_steps_per_sec", N / t_collect);
  h->metric(c, "perf/steps_per_sec", N / dt);
  if (p->repr != R_RAW) {
    int64_t hit = p->pf.hits - hits0, miss = p->pf.misses - miss0;
    h->metric(c, "perf/cache_hit_rate", hit + miss ? (double)hit / (hit + miss) : NAN);
    h->metric(c, "perf/feature_seconds", p->t_feat);
  }
  if (p->iter % p->eval_every == 0 || p->iter == p->iters) {
    double r, w, b;
    if ((rc = evaluate(p, p->train_lay, p->layouts, 1, &r, &w, &b, h, c))) return rc;
    h->metric(c, "eval/train_return", r), h->metric(c, "eval/train_success", w);
    h->metric(c, "eval/train_optimal_return", b);
    if ((rc = evaluate(p, p->held_lay, p->heldout, 2, &r, &w, &b, h, c))) return rc;
    h->metric(c, "eval/heldout_return", r), h->metric(c, "eval/heldout_success", w);
    h->metric(c, "eval/heldout_optimal_return", b);
  }
  return p->iter >= p->iters ? LATHE_DONE : LATHE_CONTINUE;
}

#define PR2L_STATE_VERSION 1u

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  (void)h, (void)c;
  pp_t *p = self;
  uint32_t v = PR2L_STATE_VERSION;
  int32_t repr = p->repr, E = p->E;
  LATHE_PUT(b, v), LATHE_PUT(b, repr), LATHE_PUT(b, E);
  LATHE_PUT(b, p->rng), LATHE_PUT(b, p->iter), LATHE_PUT(b, p->episodes);
  for (int e = 0; e < p->E; e++) {
    int32_t s[4] = {p->env[e].li, p->env[e].ax, p->env[e].ay, p->env[e].t};
    LATHE_PUT(b, s), LATHE_PUT(b, p->env[e].ret);
  }
  for (int k = 0; k < 3; k++) nn_params_save(param_set(p, k), b, 1);
  return b->err;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  pp_t *p = self;
  uint32_t v;
  int32_t repr, E;
  LATHE_GET(b, v);
  if (v != PR2L_STATE_VERSION) return h->fail(c, LATHE_ECKPT, "pr2l: checkpoint version %u", v);
  LATHE_GET(b, repr), LATHE_GET(b, E);
  LATHE_GET(b, p->rng), LATHE_GET(b, p->iter), LATHE_GET(b, p->episodes);
  if (b->err) return h->fail(c, LATHE_ECKPT, "pr2l: truncated checkpoint (counters)");
  if (repr != p->repr || E != p->E)
    return h->fail(c, LATHE_ECKPT, "pr2l: checkpoint of repr %d with %d envs; this run has %d, %d",
                   repr, E, p->repr, p->E);
  if (p->iter < 0 || p->iter > p->iters || p->episodes < 0)
    return h->fail(c, LATHE_ECKPT, "pr2l: checkpoint counters out of range (iteration %lld)",
                   (long long)p->iter);
  for (int e = 0; e < p->E; e++) {
    int32_t s[4];
    LATHE_GET(b, s), LATHE_GET(b, p->env[e].ret);
    if (b->err) return h->fail(c, LATHE_ECKPT, "pr2l: truncated checkpoint (environments)");
    if (s[0] < 0 || s[0] >= p->layouts || s[1] < 0 || s[1] >= p->G || s[2] < 0 || s[2] >= p->G ||
        s[3] < 0 || s[3] >= p->max_steps || !isfinite(p->env[e].ret))
      return h->fail(c, LATHE_ECKPT,
                     "pr2l: checkpoint environment %d: layout %d at (%d, %d) step %d is out of "
                     "range",
                     e, s[0], s[1], s[2], s[3]);
    p->env[e] = (env_t){s[0], s[1], s[2], s[3], p->env[e].ret};
  }
  for (int k = 0; k < 3; k++)
    if (nn_params_load(param_set(p, k), b))
      return h->fail(c, LATHE_ECKPT, "pr2l: checkpoint networks do not match this configuration");
  return 0;
}

static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  int G = (int)h->cfg_int(c, "size"), n = (int)h->cfg_int(c, "objects");
  if (n >= G * G)
    return h->fail(c, LATHE_ECONFIG, "pr2l: %d objects leave no free cell in a %dx%d grid", n, G,
                   G);
  int64_t N = h->cfg_int(c, "num_envs") * h->cfg_int(c, "num_steps");
  if (N % h->cfg_int(c, "num_minibatches") || N < h->cfg_int(c, "num_minibatches"))
    return h->fail(c, LATHE_ECONFIG,
                   "pr2l: num_envs x num_steps = %lld does not split into %lld minibatches",
                   (long long)N, (long long)h->cfg_int(c, "num_minibatches"));
  if (h->cfg_int(c, "dim") % h->cfg_int(c, "pool_heads"))
    return h->fail(c, LATHE_ECONFIG, "pr2l: dim %lld is not divisible by pool_heads %lld",
                   (long long)h->cfg_int(c, "dim"), (long long)h->cfg_int(c, "pool_heads"));
  const char *repr = h->cfg_str(c, "repr");
  if (!strcmp(repr, "prompt") && !*h->cfg_str(c, "prompt"))
    return h->fail(c, LATHE_ECONFIG,
                   "pr2l: prompt is empty (repr = prompt asks the model a question; repr = "
                   "generic has none)");
  if (strcmp(repr, "raw") && !h->cfg_int(c, "model_run"))
    return h->fail(c, LATHE_ECONFIG, "pr2l: repr = %s needs model_run (the world model's run)",
                   repr);
  return 0;
}

static const lathe_algorithm_t algorithm = {.step = step, .main_metric = "eval/train_return"};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "pr2l",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "PPO on a grid world over a frozen language model's promptable features (PR2L), "
           "generic features or the raw grid",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .validate = validate,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_pr2l, plugin)
