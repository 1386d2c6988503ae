/* mazedata.c - a generator of offline datasets for pointmaze (maze.h): the
 * waypoint controller with Gaussian action noise, as D4RL built AntMaze's
 * data. "diverse": each trajectory starts in a random free cell and chases
 * random target cells, a new one each time it arrives; "fixed": from the
 * start cell toward the goal. Rewards are the environment's (relabelled to
 * the evaluation goal, as D4RL's), a trajectory ends terminated on reaching
 * the goal or truncated at trajectory_steps. Records use the transitions
 * schema; `lathe data generate mazedata NAME --set ...` stores them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../genutil.h"
#include "../../workbench/nn/nn.h"
#include "../pointmaze/maze.h"

static const lathe_opt_t opts[] = {
    {"maze", LATHE_STR, "umaze", 0, -1, "open|umaze|medium", "layout (as pointmaze)"},
    {"reward", LATHE_STR, "sparse", 0, -1, "sparse|dense", "reward (as pointmaze)"},
    {"speed", LATHE_NUM, "0.25", 0.01, 1, NULL, "as pointmaze"},
    {"goal_radius", LATHE_NUM, "0.3", 0.01, 1, NULL, "as pointmaze"},
    {"transitions", LATHE_INT, "100000", 1, 1e8, NULL, "records to make"},
    {"noise", LATHE_NUM, "0.4", 0, 10, NULL, "std of Gaussian noise added to every action"},
    {"starts", LATHE_STR, "diverse", 0, -1, "diverse|fixed",
     "diverse: random start cells and targets; fixed: start cell to goal"},
    {"goal_frac", LATHE_NUM, "0", 0, 1, NULL,
     "diverse: probability that a new target is the goal cell (else a uniform free cell)"},
    {"trajectory_steps", LATHE_INT, "0", 0, 1e6, NULL,
     "steps before a trajectory times out (0: the layout's time limit)"},
    {"seed", LATHE_INT, "0", 0, 1e18, NULL, "generator seed"},
    {NULL}};

typedef struct {
  maze_t m;
  nn_rng_t rng;
  int64_t total, made, traj_steps, t;
  double noise, goal_frac, p[2];
  int diverse, in_traj, free_cells[MAZE_MAX * MAZE_MAX][2], nfree;
} gen_t;

static int create(const lathe_host_t *h, lathe_ctx_t *ctx, void **self) {
  gen_t *g = calloc(1, sizeof *g);
  if (!g) return LATHE_ENOMEM;
  if (maze_init(&g->m, h->cfg_str(ctx, "maze"), h->cfg_num(ctx, "speed"),
                h->cfg_num(ctx, "goal_radius"), !strcmp(h->cfg_str(ctx, "reward"), "dense"))) {
    free(g);
    return h->fail(ctx, LATHE_ECONFIG, "mazedata: unknown maze '%s'", h->cfg_str(ctx, "maze"));
  }
  g->total = h->cfg_int(ctx, "transitions");
  g->noise = h->cfg_num(ctx, "noise"), g->goal_frac = h->cfg_num(ctx, "goal_frac");
  g->diverse = !strcmp(h->cfg_str(ctx, "starts"), "diverse");
  g->traj_steps = h->cfg_int(ctx, "trajectory_steps");
  if (!g->traj_steps) g->traj_steps = maze_L(&g->m)->horizon;
  nn_rng_seed(&g->rng, (uint64_t)h->cfg_int(ctx, "seed"));
  for (int i = 0; i < maze_L(&g->m)->rows; i++)
    for (int j = 0; j < maze_L(&g->m)->cols; j++)
      if (!maze_wall(&g->m, i, j)) g->free_cells[g->nfree][0] = i, g->free_cells[g->nfree++][1] = j;
  *self = g;
  return 0;
}

static void new_target(gen_t *g) {
  int ci = (int)floor(g->p[1]), cj = (int)floor(g->p[0]), ti, tj;
  if (!g->diverse || nn_rng_uniform_d(&g->rng) < g->goal_frac) {
    ti = g->m.goal[0], tj = g->m.goal[1];
  } else {
    do {
      int k = (int)nn_rng_below(&g->rng, (uint32_t)g->nfree);
      ti = g->free_cells[k][0], tj = g->free_cells[k][1];
    } while (ti == ci && tj == cj);
  }
  maze_set_target(&g->m, ti, tj);
}

static void start(gen_t *g) {
  int i = g->m.start[0], j = g->m.start[1];
  while (g->diverse) { /* any free cell but the goal's */
    int k = (int)nn_rng_below(&g->rng, (uint32_t)g->nfree);
    i = g->free_cells[k][0], j = g->free_cells[k][1];
    if (i != g->m.goal[0] || j != g->m.goal[1]) break;
  }
  g->p[0] = j + 0.5 + 0.1 * (2 * nn_rng_uniform_d(&g->rng) - 1);
  g->p[1] = i + 0.5 + 0.1 * (2 * nn_rng_uniform_d(&g->rng) - 1);
  g->t = 0, g->in_traj = 1;
  new_target(g);
}

static int gen_next(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, lathe_buf_t *out) {
  gen_t *g = self;
  if (g->made == g->total) return LATHE_DONE;
  if (!g->in_traj) start(g);
  /* arrived at the target's centre: chase a new one */
  if (hypot(g->p[0] - (g->m.target[1] + 0.5), g->p[1] - (g->m.target[0] + 0.5)) < 0.15)
    new_target(g);
  float a[2], obs[2] = {(float)g->p[0], (float)g->p[1]};
  maze_controller(&g->m, g->p, a);
  for (int k = 0; k < 2; k++) {
    float v = a[k] + (float)(g->noise * nn_rng_normal(&g->rng));
    a[k] = v < -1 ? -1 : (v > 1 ? 1 : v);
  }
  int done;
  double r = maze_move(&g->m, g->p, a, &done);
  g->t++, g->made++;
  int trunc = !done && (g->t >= g->traj_steps || g->made == g->total);
  if (done || trunc) g->in_traj = 0;
  char line[320];
  int n = snprintf(line, sizeof line,
                   "{\"obs\":[%.9g,%.9g],\"action\":[%.9g,%.9g],\"reward\":%.9g,"
                   "\"next_obs\":[%.9g,%.9g],\"terminated\":%s,\"truncated\":%s}",
                   obs[0], obs[1], a[0], a[1], r, (float)g->p[0], (float)g->p[1],
                   done ? "true" : "false", trunc ? "true" : "false");
  lathe_buf_put(out, line, (size_t)n);
  return out->err ? out->err : LATHE_CONTINUE;
}

static void destroy(void *self) {
  free(self);
}

GENERATOR_PLUGIN(
    "mazedata", "transitions",
    "offline pointmaze datasets: a waypoint controller with action noise (transitions)")
