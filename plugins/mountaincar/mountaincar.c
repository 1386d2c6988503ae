/* mountaincar.c - MountainCar-v0 exactly as Gymnasium 1.4 defines it
 * (specs/classic_control.md): velocity clipped before moving, left-wall
 * zeroing only, goal needs velocity >= goal_velocity, -1 per step, limit 200.
 * State order for env_set_state: position, velocity. */
#include "../envutil.h"

static const lathe_opt_t opts[] = {
    ENV_COMMON_OPTS("200"),
    {"goal_velocity", LATHE_NUM, "0", -0.07, 0.07, NULL, "velocity needed at the goal"},
    {NULL}};

typedef struct {
  env_common_t c;
  double s[2], goal_velocity;
} mountaincar_t;

static int create(const lathe_host_t *h, lathe_ctx_t *ctx, void **self) {
  mountaincar_t *e = calloc(1, sizeof *e);
  if (!e) return h->fail(ctx, LATHE_ENOMEM, "mountaincar: out of memory");
  env_common_init(&e->c, h, ctx);
  e->goal_velocity = h->cfg_num(ctx, "goal_velocity");
  *self = e;
  return 0;
}

static void observe(const mountaincar_t *e, float *obs) {
  obs[0] = (float)e->s[0], obs[1] = (float)e->s[1];
}

static int spaces(void *self, lathe_space_t *obs, lathe_space_t *act) {
  *obs = (lathe_space_t){0, 2, {-1.2f, -0.07f}, {0.6f, 0.07f}};
  *act = (lathe_space_t){1, 3};
  return 0;
}

static int reset(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t seed, float *obs) {
  mountaincar_t *e = self;
  env_common_reset(&e->c, seed);
  e->s[0] = env_uniform(&e->c, -0.6, -0.4), e->s[1] = 0.0;
  observe(e, obs);
  return 0;
}

static int set_state(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const double *s, int n,
                     float *obs) {
  mountaincar_t *e = self;
  if (n != 2) return h->fail(ctx, LATHE_ESHAPE, "mountaincar: a state has 2 values, not %d", n);
  env_common_reset(&e->c, LATHE_NO_SEED);
  e->s[0] = s[0], e->s[1] = s[1];
  observe(e, obs);
  return 0;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const float *action,
                float *obs, double *reward, int *terminated, int *truncated) {
  mountaincar_t *e = self;
  int a = (int)action[0];
  if (a < 0 || a > 2)
    return h->fail(ctx, LATHE_EDATA, "mountaincar: action %g is not 0, 1 or 2", action[0]);
  double pos = e->s[0], vel = e->s[1];
  vel = vel + ((a - 1) * 0.001 + cos(3 * pos) * (-0.0025));
  vel = vel < -0.07 ? -0.07 : (vel > 0.07 ? 0.07 : vel);
  pos = pos + vel;
  pos = pos < -1.2 ? -1.2 : (pos > 0.6 ? 0.6 : pos);
  if (pos == -1.2 && vel < 0) vel = 0;
  e->s[0] = pos, e->s[1] = vel;
  *terminated = pos >= 0.5 && vel >= e->goal_velocity;
  *reward = -1.0;
  env_common_step(&e->c, reward, truncated);
  observe(e, obs);
  return 0;
}

static int env_accept(const mountaincar_t *in, const mountaincar_t *cur) {
  return !memcmp(&in->goal_velocity, &cur->goal_velocity, sizeof in->goal_velocity) &&
         env_finite(in->s, 2);
}

ENV_PLUGIN(mountaincar_t, "mountaincar",
           "MountainCar-v0, Gymnasium-exact (obs 2, actions 3, limit 200)")
