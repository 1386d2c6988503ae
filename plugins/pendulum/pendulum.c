/* pendulum.c - Pendulum-v1 exactly as Gymnasium 1.4 with NumPy >= 2 defines it
 * (specs/classic_control.md): float32 torque arithmetic, floored modulo for
 * the angle in the cost, semi-implicit Euler, no termination, limit 200.
 * State order for env_set_state: theta, theta_dot. */
#include "../envutil.h"

static const lathe_opt_t opts[] = {
    ENV_COMMON_OPTS("200"), {"g", LATHE_NUM, "10.0", 0, 100, NULL, "gravity"}, {NULL}};

typedef struct {
  env_common_t c;
  double s[2], g;
} pendulum_t;

static int create(const lathe_host_t *h, lathe_ctx_t *ctx, void **self) {
  pendulum_t *e = calloc(1, sizeof *e);
  if (!e) return h->fail(ctx, LATHE_ENOMEM, "pendulum: out of memory");
  env_common_init(&e->c, h, ctx);
  e->g = h->cfg_num(ctx, "g");
  *self = e;
  return 0;
}

static void observe(const pendulum_t *e, float *obs) {
  obs[0] = (float)cos(e->s[0]), obs[1] = (float)sin(e->s[0]), obs[2] = (float)e->s[1];
}

static int spaces(void *self, lathe_space_t *obs, lathe_space_t *act) {
  *obs = (lathe_space_t){0, 3, {-1, -1, -8}, {1, 1, 8}};
  *act = (lathe_space_t){0, 1, {-2}, {2}};
  return 0;
}

static int reset(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t seed, float *obs) {
  pendulum_t *e = self;
  env_common_reset(&e->c, seed);
  e->s[0] = env_uniform(&e->c, -M_PI, M_PI);
  e->s[1] = env_uniform(&e->c, -1.0, 1.0);
  observe(e, obs);
  return 0;
}

static int set_state(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const double *s, int n,
                     float *obs) {
  pendulum_t *e = self;
  if (n != 2) return h->fail(ctx, LATHE_ESHAPE, "pendulum: a state has 2 values, not %d", n);
  env_common_reset(&e->c, LATHE_NO_SEED);
  e->s[0] = s[0], e->s[1] = s[1];
  observe(e, obs);
  return 0;
}

/* ((x + pi) mod 2 pi) - pi with Python's floored modulo */
static double angle_normalize(double x) {
  double r = fmod(x + M_PI, 2 * M_PI);
  if (r != 0 && r < 0) r += 2 * M_PI;
  return r - M_PI;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const float *action,
                float *obs, double *reward, int *terminated, int *truncated) {
  pendulum_t *e = self;
  volatile float two = 2.0f;
  float u = action[0];
  u = u < -2.0f ? -2.0f : (u > 2.0f ? 2.0f : u); /* float32 clip */
  double th = e->s[0], thdot = e->s[1];
  float u2 = powf(u, two), uterm = 0.001f * u2; /* float32, as NumPy 2 */
  double cost = (env_pow2(angle_normalize(th)) + 0.1 * env_pow2(thdot)) + (double)uterm;
  float u3 = 3.0f * u;
  double newthdot = thdot + (((3 * e->g / 2.0) * sin(th) + (double)u3) * 0.05);
  newthdot = newthdot < -8 ? -8 : (newthdot > 8 ? 8 : newthdot);
  e->s[0] = th + newthdot * 0.05, e->s[1] = newthdot;
  *reward = -cost, *terminated = 0;
  env_common_step(&e->c, reward, truncated);
  observe(e, obs);
  return 0;
}

static int env_accept(const pendulum_t *in, const pendulum_t *cur) {
  return !memcmp(&in->g, &cur->g, sizeof in->g) && env_finite(in->s, 2);
}

ENV_PLUGIN(pendulum_t, "pendulum",
           "Pendulum-v1, Gymnasium-exact (obs 3, action box [-2, 2], limit 200)")
