/* acrobot.c - Acrobot-v1 exactly as Gymnasium 1.4 defines it (specs/classic_control.md):
 * book dynamics, one RK4 step of 0.2 s, angle wrapping and velocity clipping
 * after the step, float32-rounded initial state, TimeLimit 500.
 * State order for env_set_state: theta1, theta2, dtheta1, dtheta2. */
#include "../envutil.h"

#define MAX_VEL_1 (4 * M_PI)
#define MAX_VEL_2 (9 * M_PI)

static const lathe_opt_t opts[] = {
    ENV_COMMON_OPTS("500"),
    {"dynamics", LATHE_STR, "book", 0, -1, "book|nips", "book (default) or NIPS-paper dynamics"},
    {NULL}};

typedef struct {
  env_common_t c;
  double s[4];
  int book;
} acrobot_t;

static int create(const lathe_host_t *h, lathe_ctx_t *ctx, void **self) {
  acrobot_t *e = calloc(1, sizeof *e);
  if (!e) return h->fail(ctx, LATHE_ENOMEM, "acrobot: out of memory");
  env_common_init(&e->c, h, ctx);
  e->book = !strcmp(h->cfg_str(ctx, "dynamics"), "book");
  *self = e;
  return 0;
}

static void observe(const acrobot_t *e, float *obs) {
  obs[0] = (float)cos(e->s[0]), obs[1] = (float)sin(e->s[0]);
  obs[2] = (float)cos(e->s[1]), obs[3] = (float)sin(e->s[1]);
  obs[4] = (float)e->s[2], obs[5] = (float)e->s[3];
}

static int spaces(void *self, lathe_space_t *obs, lathe_space_t *act) {
  *obs = (lathe_space_t){0,
                         6,
                         {-1, -1, -1, -1, -(float)MAX_VEL_1, -(float)MAX_VEL_2},
                         {1, 1, 1, 1, (float)MAX_VEL_1, (float)MAX_VEL_2}};
  *act = (lathe_space_t){1, 3};
  return 0;
}

static int reset(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t seed, float *obs) {
  acrobot_t *e = self;
  env_common_reset(&e->c, seed);
  for (int i = 0; i < 4; i++) e->s[i] = (float)env_uniform(&e->c, -0.1, 0.1); /* float32 state */
  observe(e, obs);
  return 0;
}

static int set_state(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const double *s, int n,
                     float *obs) {
  acrobot_t *e = self;
  if (n != 4) return h->fail(ctx, LATHE_ESHAPE, "acrobot: a state has 4 values, not %d", n);
  env_common_reset(&e->c, LATHE_NO_SEED);
  memcpy(e->s, s, sizeof e->s);
  observe(e, obs);
  return 0;
}

/* d/dt of (theta1, theta2, dtheta1, dtheta2) with torque a, in the source's order */
static void deriv(const acrobot_t *e, const double *y, double a, double *dy) {
  double theta1 = y[0], theta2 = y[1], dtheta1 = y[2], dtheta2 = y[3];
  double s2 = sin(theta2), c2 = cos(theta2);
  double d1 = ((0.25 + (1.25 + c2)) + 1.0) + 1.0;
  double d2 = (0.25 + 0.5 * c2) + 1.0;
  double phi2 = 4.9 * cos((theta1 + theta2) - M_PI / 2);
  double phi1 = (((-0.5 * env_pow2(dtheta2)) * s2 - (dtheta2 * dtheta1) * s2) +
                 14.700000000000001 * cos(theta1 - M_PI / 2)) +
                phi2;
  double ddtheta2;
  if (e->book)
    ddtheta2 = (((a + (d2 / d1) * phi1) - (0.5 * env_pow2(dtheta1)) * s2) - phi2) /
               (1.25 - env_pow2(d2) / d1);
  else
    ddtheta2 = ((a + (d2 / d1) * phi1) - phi2) / (1.25 - env_pow2(d2) / d1);
  double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
  dy[0] = dtheta1, dy[1] = dtheta2, dy[2] = ddtheta1, dy[3] = ddtheta2;
}

static double wrap(double x) {
  if (!(fabs(x) < 1e6))
    x = fmod(x, 2 * M_PI); /* absurd angles (set_state) without a 1e300-step loop */
  while (x > M_PI) x -= 2 * M_PI;
  while (x < -M_PI) x += 2 * M_PI;
  return x;
}

static double clipd(double x, double lo, double hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const float *action,
                float *obs, double *reward, int *terminated, int *truncated) {
  acrobot_t *e = self;
  int act = (int)action[0];
  if (act < 0 || act > 2)
    return h->fail(ctx, LATHE_EDATA, "acrobot: action %g is not 0, 1 or 2", action[0]);
  double a = act - 1.0, *y = e->s, k1[4], k2[4], k3[4], k4[4], t[4];
  deriv(e, y, a, k1);
  for (int i = 0; i < 4; i++) t[i] = y[i] + 0.1 * k1[i];
  deriv(e, t, a, k2);
  for (int i = 0; i < 4; i++) t[i] = y[i] + 0.1 * k2[i];
  deriv(e, t, a, k3);
  for (int i = 0; i < 4; i++) t[i] = y[i] + 0.2 * k3[i];
  deriv(e, t, a, k4);
  double n[4];
  for (int i = 0; i < 4; i++)
    n[i] = y[i] + (0.2 / 6.0) * (((k1[i] + 2 * k2[i]) + 2 * k3[i]) + k4[i]);
  e->s[0] = wrap(n[0]), e->s[1] = wrap(n[1]);
  e->s[2] = clipd(n[2], -MAX_VEL_1, MAX_VEL_1), e->s[3] = clipd(n[3], -MAX_VEL_2, MAX_VEL_2);
  int term = (-cos(e->s[0]) - cos(e->s[1] + e->s[0])) > 1.0;
  *reward = term ? 0.0 : -1.0, *terminated = term;
  env_common_step(&e->c, reward, truncated);
  observe(e, obs);
  return 0;
}

/* A state step() can have left: wrapped angles, clipped velocities (found by
 * fuzzing: an angle of 1e300 made wrap() loop for ever). */
static int env_accept(const acrobot_t *in, const acrobot_t *cur) {
  return in->book == cur->book && env_finite(in->s, 4) && fabs(in->s[0]) <= M_PI &&
         fabs(in->s[1]) <= M_PI && fabs(in->s[2]) <= MAX_VEL_1 && fabs(in->s[3]) <= MAX_VEL_2;
}

ENV_PLUGIN(acrobot_t, "acrobot", "Acrobot-v1, Gymnasium-exact (obs 6, actions 3, limit 500)")
