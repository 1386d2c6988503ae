/* envutil.h - what every environment plugin shares: Gymnasium's TimeLimit
 * (truncated once the step counter reaches max_episode_steps, independent of
 * terminated), optional Gaussian reward noise, reset seeding, and checkpoints
 * of the whole (plain-data) environment struct. Header-only; included by the
 * environment plugins. */
#ifndef LATHE_ENVUTIL_H
#define LATHE_ENVUTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../workbench/lathe.h"
#include "../workbench/nn/nn.h"

/* Options every environment has. */
#define ENV_COMMON_OPTS(steps)                                                                     \
  {"max_episode_steps", LATHE_INT, steps, 0, 1e9, NULL, "time limit (0: none)"}, {                 \
    "reward_noise", LATHE_NUM, "0", 0, 1e6, NULL,                                                  \
        "std of zero-mean Gaussian noise added to every reward (0: off)"                           \
  }

typedef struct env_common {
  nn_rng_t rng, noise_rng; /* initial states; reward noise */
  int64_t t, max_steps;    /* steps since reset; the time limit */
  double noise;
  int seeded;
} env_common_t;

static inline void env_common_init(env_common_t *c, const lathe_host_t *h, lathe_ctx_t *ctx) {
  memset(c, 0, sizeof *c);
  c->max_steps = h->cfg_int(ctx, "max_episode_steps");
  if (c->max_steps == 0) c->max_steps = INT64_MAX;
  c->noise = h->cfg_num(ctx, "reward_noise");
  nn_rng_seed(&c->rng, 0), nn_rng_seed(&c->noise_rng, 1);
}

/* A checkpointed env_common_t fits the one the config made: the same limit and
 * noise, a step count within the limit. Every environment file also defines
 * env_accept(const TYPE *in, const TYPE *cur): 1 if the checkpointed struct
 * keeps cur's configuration and holds a sane state (finite, indices in range). */
static inline int env_common_accept(const env_common_t *in, const env_common_t *cur) {
  return in->max_steps == cur->max_steps && !memcmp(&in->noise, &cur->noise, sizeof in->noise) &&
         in->t >= 0 && in->t <= in->max_steps && (in->seeded == 0 || in->seeded == 1);
}

/* 1 if all n values are finite. */
static inline int env_finite(const double *x, int n) {
  for (int i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* reset(seed): reseed unless LATHE_NO_SEED, zero the step counter. */
static inline void env_common_reset(env_common_t *c, uint64_t seed) {
  if (seed != LATHE_NO_SEED) {
    nn_rng_seed(&c->rng, seed);
    nn_rng_seed(&c->noise_rng, seed ^ 0x9e3779b97f4a7c15ULL);
  }
  c->t = 0;
}

/* uniform(low, high) in double, half-open, as NumPy's Generator.uniform */
static inline double env_uniform(env_common_t *c, double low, double high) {
  return low + (high - low) * nn_rng_uniform_d(&c->rng);
}

/* After the inner step: count it, truncate at the limit, add reward noise. */
static inline void env_common_step(env_common_t *c, double *reward, int *truncated) {
  c->t++;
  *truncated = c->t >= c->max_steps;
  if (c->noise > 0) *reward += c->noise * nn_rng_normal(&c->noise_rng);
}

/* Gymnasium-exact squares: libm pow(x, 2.0), which glibc does not always round like x*x. */
static inline double env_pow2(double x) {
  volatile double two = 2.0;
  return pow(x, two);
}

/* Everything an environment plugin declares the same way: checkpoints of the
 * whole plain-data struct TYPE, destroy, the interface, the descriptor and the entry point. The
 * file defines opts, create, spaces, reset, set_state and step, then ends with ENV_PLUGIN(TYPE,
 * "name", "doc"). */
#define ENV_PLUGIN(TYPE, NAME, DOC) ENV_PLUGIN_INFO(TYPE, NAME, DOC, NULL)
/* The same with env_info (reference returns, goal) given by function INFO. */
#define ENV_PLUGIN_INFO(TYPE, NAME, DOC, INFO)                                                     \
  static int env_save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {         \
    lathe_buf_put(b, self, sizeof(TYPE));                                                          \
    return 0;                                                                                      \
  }                                                                                                \
  static int env_load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {         \
    TYPE in; /* checked before it replaces anything: same config, sane state */                    \
    lathe_buf_get(b, &in, sizeof in);                                                              \
    if (b->err) return h->fail(c, LATHE_ECKPT, "%s: truncated environment state", NAME);           \
    if (!env_common_accept(&((TYPE *)&in)->c, &((TYPE *)self)->c) || !env_accept(&in, self))       \
      return h->fail(c, LATHE_ECKPT, "%s: checkpointed state does not fit this config", NAME);     \
    memcpy(self, &in, sizeof in);                                                                  \
    return 0;                                                                                      \
  }                                                                                                \
  static void env_destroy(void *self) {                                                            \
    free(self);                                                                                    \
  }                                                                                                \
  static const lathe_env_t env_if = {                                                              \
      .spaces = spaces, .reset = reset, .set_state = set_state, .step = step, .info = INFO};       \
  static const lathe_plugin_t plugin = {.major = LATHE_API_MAJOR,                                  \
                                        .minor = LATHE_API_TARGET,                                 \
                                        .name = NAME,                                              \
                                        .kind = LATHE_ENVIRONMENT,                                 \
                                        .version = "1.0.0",                                        \
                                        .doc = DOC,                                                \
                                        .opts = opts,                                              \
                                        .nn_abi = NN_ABI,                                          \
                                        .create = create,                                          \
                                        .destroy = env_destroy,                                    \
                                        .save = env_save,                                          \
                                        .load = env_load,                                          \
                                        .env = &env_if};                                           \
  LATHE_PLUGIN_ENTRY(plugin)

#endif
