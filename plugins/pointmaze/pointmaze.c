/* pointmaze.c - a 2-D point mass in a maze (maze.h): the small, MuJoCo-free
 * stand-in for D4RL's AntMaze that specs/calql.md asks for. Observation
 * (x, y) in cell units, action box [-1, 1]^2, sparse reward 1 at the goal
 * (or dense -distance), terminated at the goal, truncated at the time limit.
 * Resets put the point within reset_noise of the start cell's centre.
 * State order for env_set_state: x, y. */
#include "../envutil.h"
#include "maze.h"

static const lathe_opt_t opts[] = {
    ENV_COMMON_OPTS("0"), /* 0: the layout's time limit */
    {"maze", LATHE_STR, "umaze", 0, -1, "open|umaze|medium", "layout"},
    {"reward", LATHE_STR, "sparse", 0, -1, "sparse|dense",
     "sparse: 1 at the goal, else 0; dense: minus the distance to the goal"},
    {"speed", LATHE_NUM, "0.25", 0.01, 1, NULL, "distance moved by a unit action"},
    {"goal_radius", LATHE_NUM, "0.3", 0.01, 1, NULL, "success within this distance of the goal"},
    {"reset_noise", LATHE_NUM, "0.1", 0, 0.4, NULL, "uniform noise on the start position"},
    {NULL}};

typedef struct {
  env_common_t c;
  maze_t m;
  double p[2], reset_noise;
} pointmaze_t;

static int create(const lathe_host_t *h, lathe_ctx_t *ctx, void **self) {
  pointmaze_t *e = calloc(1, sizeof *e);
  if (!e) return h->fail(ctx, LATHE_ENOMEM, "pointmaze: out of memory");
  env_common_init(&e->c, h, ctx);
  if (maze_init(&e->m, h->cfg_str(ctx, "maze"), h->cfg_num(ctx, "speed"),
                h->cfg_num(ctx, "goal_radius"), !strcmp(h->cfg_str(ctx, "reward"), "dense"))) {
    free(e);
    return h->fail(ctx, LATHE_ECONFIG, "pointmaze: unknown maze '%s'", h->cfg_str(ctx, "maze"));
  }
  if (h->cfg_int(ctx, "max_episode_steps") == 0)
    e->c.max_steps = maze_L(&e->m)->horizon; /* its own */
  e->reset_noise = h->cfg_num(ctx, "reset_noise");
  *self = e;
  return 0;
}

static void observe(const pointmaze_t *e, float *obs) {
  obs[0] = (float)e->p[0], obs[1] = (float)e->p[1];
}

static int spaces(void *self, lathe_space_t *obs, lathe_space_t *act) {
  pointmaze_t *e = self;
  *obs = (lathe_space_t){0, 2, {0, 0}, {(float)maze_L(&e->m)->cols, (float)maze_L(&e->m)->rows}};
  *act = (lathe_space_t){0, 2, {-1, -1}, {1, 1}};
  return 0;
}

static int reset(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t seed, float *obs) {
  pointmaze_t *e = self;
  env_common_reset(&e->c, seed);
  e->p[0] = e->m.start[1] + 0.5 + env_uniform(&e->c, -e->reset_noise, e->reset_noise);
  e->p[1] = e->m.start[0] + 0.5 + env_uniform(&e->c, -e->reset_noise, e->reset_noise);
  observe(e, obs);
  return 0;
}

static int set_state(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const double *s, int n,
                     float *obs) {
  pointmaze_t *e = self;
  if (n != 2) return h->fail(ctx, LATHE_ESHAPE, "pointmaze: a state has 2 values, not %d", n);
  if (!(s[0] >= 0 && s[0] <= maze_L(&e->m)->cols && s[1] >= 0 && s[1] <= maze_L(&e->m)->rows))
    return h->fail(ctx, LATHE_ESHAPE, "pointmaze: state (%g, %g) lies outside the maze", s[0],
                   s[1]); /* cell indices would be meaningless */
  env_common_reset(&e->c, LATHE_NO_SEED);
  e->p[0] = s[0], e->p[1] = s[1];
  observe(e, obs);
  return 0;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const float *action,
                float *obs, double *reward, int *terminated, int *truncated) {
  pointmaze_t *e = self;
  *reward = maze_move(&e->m, e->p, action, terminated);
  env_common_step(&e->c, reward, truncated);
  observe(e, obs);
  return 0;
}

static int info(void *self, lathe_env_info_t *out) {
  pointmaze_t *e = self;
  const maze_layout_t *L = maze_L(&e->m);
  out->ref_random = L->ref[2 * e->m.dense], out->ref_expert = L->ref[2 * e->m.dense + 1];
  out->goal = 1;
  return 0;
}

static int env_accept(const pointmaze_t *in, const pointmaze_t *cur) {
  const maze_t *a = &in->m, *b = &cur->m;
  if (a->layout != b->layout || memcmp(a->start, b->start, sizeof a->start) ||
      memcmp(a->goal, b->goal, sizeof a->goal) || a->dense != b->dense ||
      memcmp(&a->speed, &b->speed, sizeof a->speed) ||
      memcmp(&a->goal_radius, &b->goal_radius, sizeof a->goal_radius) ||
      memcmp(&in->reset_noise, &cur->reset_noise, sizeof in->reset_noise))
    return 0;
  if (a->target[0] < 0 || a->target[0] >= MAZE_MAX || a->target[1] < 0 || a->target[1] >= MAZE_MAX)
    return 0;
  for (int i = 0; i < MAZE_MAX; i++)
    for (int j = 0; j < MAZE_MAX; j++)
      if (a->dist[i][j] < -1 || a->dist[i][j] > MAZE_MAX * MAZE_MAX) return 0;
  const maze_layout_t *L = maze_L(b); /* inside the maze's box (found by fuzzing: a far-off
                                       * position became an out-of-range cell index) */
  return env_finite(in->p, 2) && in->p[0] >= 0 && in->p[0] <= L->cols && in->p[1] >= 0 &&
         in->p[1] <= L->rows;
}

ENV_PLUGIN_INFO(pointmaze_t, "pointmaze",
                "2-D point mass in a maze (open, umaze, medium): obs (x, y), action box [-1, 1]^2, "
                "sparse or dense reward",
                info)
