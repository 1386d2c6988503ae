/* cartpole.c - CartPole-v1 exactly as Gymnasium 1.4 defines it (specs/classic_control.md):
 * double-precision state, explicit Euler by default, termination on the double
 * state, +1 on the terminating step and 0 after it, TimeLimit 500.
 * State order for env_set_state: x, x_dot, theta, theta_dot. */
#include <limits.h>

#include "../envutil.h"

#define THETA_LIMIT (12 * 2 * M_PI / 360) /* 0.20943951023931953, not radians(12) */

static const lathe_opt_t opts[] = {
    ENV_COMMON_OPTS("500"),
    {"integrator", LATHE_STR, "euler", 0, -1, "euler|semi-implicit", "integration scheme"},
    {"sutton_barto_reward", LATHE_BOOL, "false", 0, -1, NULL,
     "0 per step and -1 on termination instead of +1 per step"},
    {NULL}};

typedef struct {
  env_common_t c;
  double s[4];
  int euler, sb_reward;
  int beyond; /* steps_beyond_terminated: -1 unset */
} cartpole_t;

static int create(const lathe_host_t *h, lathe_ctx_t *ctx, void **self) {
  cartpole_t *e = calloc(1, sizeof *e);
  if (!e) return h->fail(ctx, LATHE_ENOMEM, "cartpole: out of memory");
  env_common_init(&e->c, h, ctx);
  e->euler = !strcmp(h->cfg_str(ctx, "integrator"), "euler");
  e->sb_reward = (int)h->cfg_int(ctx, "sutton_barto_reward");
  e->beyond = -1;
  *self = e;
  return 0;
}

static void observe(const cartpole_t *e, float *obs) {
  for (int i = 0; i < 4; i++) obs[i] = (float)e->s[i];
}

static int spaces(void *self, lathe_space_t *obs, lathe_space_t *act) {
  *obs = (lathe_space_t){0,
                         4,
                         {-4.8f, -INFINITY, -2 * (float)THETA_LIMIT, -INFINITY},
                         {4.8f, INFINITY, 2 * (float)THETA_LIMIT, INFINITY}};
  *act = (lathe_space_t){1, 2};
  return 0;
}

static int reset(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t seed, float *obs) {
  cartpole_t *e = self;
  env_common_reset(&e->c, seed);
  for (int i = 0; i < 4; i++) e->s[i] = env_uniform(&e->c, -0.05, 0.05);
  e->beyond = -1;
  observe(e, obs);
  return 0;
}

static int set_state(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const double *s, int n,
                     float *obs) {
  cartpole_t *e = self;
  if (n != 4) return h->fail(ctx, LATHE_ESHAPE, "cartpole: a state has 4 values, not %d", n);
  env_common_reset(&e->c, LATHE_NO_SEED);
  memcpy(e->s, s, sizeof e->s);
  e->beyond = -1;
  observe(e, obs);
  return 0;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const float *action,
                float *obs, double *reward, int *terminated, int *truncated) {
  cartpole_t *e = self;
  int a = (int)action[0];
  if (a != 0 && a != 1)
    return h->fail(ctx, LATHE_EDATA, "cartpole: action %g is not 0 or 1", action[0]);
  double x = e->s[0], x_dot = e->s[1], theta = e->s[2], theta_dot = e->s[3];
  double force = a == 1 ? 10.0 : -10.0;
  double s = sin(theta), c = cos(theta);
  double temp = (force + (0.05 * (theta_dot * theta_dot)) * s) / 1.1;
  double thetaacc = (9.8 * s - c * temp) / (0.5 * (4.0 / 3.0 - (0.1 * (c * c)) / 1.1));
  double xacc = temp - ((0.05 * thetaacc) * c) / 1.1;
  if (e->euler) {
    x = x + 0.02 * x_dot;
    x_dot = x_dot + 0.02 * xacc;
    theta = theta + 0.02 * theta_dot;
    theta_dot = theta_dot + 0.02 * thetaacc;
  } else {
    x_dot = x_dot + 0.02 * xacc;
    x = x + 0.02 * x_dot;
    theta_dot = theta_dot + 0.02 * thetaacc;
    theta = theta + 0.02 * theta_dot;
  }
  e->s[0] = x, e->s[1] = x_dot, e->s[2] = theta, e->s[3] = theta_dot;
  int term = x < -2.4 || x > 2.4 || theta < -THETA_LIMIT || theta > THETA_LIMIT;
  double r;
  if (!term)
    r = e->sb_reward ? 0.0 : 1.0;
  else if (e->beyond < 0) {
    r = e->sb_reward ? -1.0 : 1.0;
    e->beyond = 0;
  } else {
    r = e->sb_reward ? -1.0 : 0.0;
    if (e->beyond < INT_MAX) e->beyond++; /* a restored counter may sit at the top */
  }
  *reward = r, *terminated = term;
  env_common_step(&e->c, reward, truncated);
  observe(e, obs);
  return 0;
}

static int env_accept(const cartpole_t *in, const cartpole_t *cur) {
  return in->euler == cur->euler && in->sb_reward == cur->sb_reward && in->beyond >= -1 &&
         env_finite(in->s, 4);
}

ENV_PLUGIN(cartpole_t, "cartpole", "CartPole-v1, Gymnasium-exact (obs 4, actions 2, limit 500)")
