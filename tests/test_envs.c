/* test_envs.c - the classic-control environment plugins against the test
 * vectors and boundary cases of specs/classic_control.md. Observations are
 * compared at the spec's printed precision (7 significant digits), the final
 * double states bit for bit. Needs LATHE_PLUGIN_DIR (make test sets it). */
#include <string.h>

#include "../plugins/envutil.h"
#include "../workbench/error.h"
#include "../workbench/registry.h"
#include "../workbench/run.h"
#include "test.h"

struct lathe_child *test_instance(const char *name, const char *const *kv, int n) {
  char so[64];
  snprintf(so, sizeof so, "%s.so", name);
  lathe_registry_add(name, so, "tests");
  lathe_child_t *e;
  if (lathe_instance_new(name, kv, n, NULL, &e))
    test_fail(__FILE__, __LINE__, "cannot create %s: %s", name, lathe_lasterr());
  return e;
}

/* relative 7-significant-digit agreement (the spec prints %.7g) */
static void near7(float got, double want, int line, int t, int i) {
  double tol = fabs(want) * 6e-7 + 1e-9;
  if (fabs(got - want) > tol)
    test_fail(__FILE__, line, "t=%d obs[%d] = %.9g, want %.7g", t, i, got, want);
}

typedef struct {
  float act;
  double obs[6], reward;
} row_t;

static void replay(const char *name, const double *s0, int ns, const double *obs0,
                   const row_t *rows, int nrows, int nobs, const double *final, int line) {
  lathe_child_t *e = test_instance(name, NULL, 0);
  float obs[8];
  ASSERT_EQ(e->p->env->set_state(e->self, lathe_host(), &e->ctx, s0, ns, obs), 0);
  for (int i = 0; i < nobs; i++) near7(obs[i], obs0[i], line, 0, i);
  for (int t = 0; t < nrows; t++) {
    double r;
    int term, trunc;
    ASSERT_EQ(e->p->env->step(e->self, lathe_host(), &e->ctx, &rows[t].act, obs, &r, &term, &trunc),
              0);
    for (int i = 0; i < nobs; i++) near7(obs[i], rows[t].obs[i], line, t + 1, i);
    if (fabs(r - rows[t].reward) > 5e-7) test_fail(__FILE__, line, "t=%d reward %.9g", t + 1, r);
    ASSERT(!term && !trunc);
  }
  /* the exact double state, read back through a checkpoint of the env */
  lathe_buf_t b = {0};
  e->p->save(e->self, lathe_host(), &e->ctx, &b);
  const double *st =
      (const double *)(b.p + sizeof(env_common_t) /* each env struct starts with it */);
  for (int i = 0; i < ns; i++)
    if (st[i] != final[i])
      test_fail(__FILE__, line, "state[%d] = %.17g, want %.17g", i, st[i], final[i]);
  lathe_buf_free(&b);
  lathe_instance_free(e);
}

TEST(env_cartpole_vector) {
  const double s0[] = {0.01, -0.02, 0.03, 0.04}, o0[] = {0.01, -0.02, 0.03, 0.04};
  const row_t rows[] = {{1, {0.0096, 0.1746792, 0.0308, -0.2430687}, 1},
                        {0, {0.01309358, -0.02086885, 0.02593863, 0.059168}, 1},
                        {0, {0.01267621, -0.2163529, 0.02712199, 0.3599206}, 1},
                        {1, {0.008349149, -0.0216268, 0.0343204, 0.0759117}, 1},
                        {1, {0.007916613, 0.1729868, 0.03583863, -0.2057485}, 1}};
  const double fin[] = {0.00791661253107495, 0.17298676004769037, 0.035838631046105324,
                        -0.20574851582677406};
  replay("cartpole", s0, 4, o0, rows, 5, 4, fin, __LINE__);
}

TEST(env_acrobot_vector) {
  const double s0[] = {0.0625, -0.125, 0.25, -0.375};
  const double o0[] = {0.9980475, 0.06245932, 0.9921977, -0.1246747, 0.25, -0.375};
  const row_t rows[] = {
      {2, {0.9962265, 0.08679144, 0.9897815, -0.1425924, -0.01106992, 0.2001427}, -1},
      {0, {0.9963821, 0.08498731, 0.993274, -0.1157874, -0.005832327, 0.06529896}, -1},
      {1, {0.9974368, 0.07155393, 0.9964938, -0.08366666, -0.1250735, 0.2497389}, -1},
      {2, {0.9997008, 0.02445841, 0.9999138, 0.01313188, -0.333645, 0.6947918}, -1},
      {0, {0.9996059, -0.0280716, 0.993771, 0.1114412, -0.1783671, 0.2662491}, -1}};
  const double fin[] = {-0.028075288070146788, 0.11167313321399909, -0.17836706664915952,
                        0.2662490959400257};
  replay("acrobot", s0, 4, o0, rows, 5, 6, fin, __LINE__);
}

TEST(env_mountaincar_vector) {
  const double s0[] = {-0.52, 0.01}, o0[] = {-0.52, 0.01};
  const row_t rows[] = {{0, {-0.511027, 0.00897301}, -1},
                        {1, {-0.5021483, 0.008878743}, -1},
                        {2, {-0.4924303, 0.009717976}, -1},
                        {2, {-0.4819457, 0.01048455}, -1},
                        {0, {-0.4727727, 0.009172967}, -1}};
  const double fin[] = {-0.472772751614611, 0.009172966867470692};
  replay("mountaincar", s0, 2, o0, rows, 5, 2, fin, __LINE__);
}

TEST(env_pendulum_vector) {
  const double s0[] = {1.0, -0.5}, o0[] = {0.5403023, 0.841471, -0.5};
  const row_t rows[] = {{0.75f, {0.5300132, 0.8479894, 0.2436032}, -1.0255625000339932},
                        {-1.25f, {0.5003573, 0.865819, 0.6920953}, -1.0320054340144522},
                        {3.0f, {0.4276924, 0.9039243, 1.64146}, -1.1476582662937473},
                        {-0.1f, {0.3209367, 0.9471006, 2.304403}, -1.5437691022407243},
                        {1.9f, {0.1610277, 0.9869499, 3.299728}, -2.082367380678071}};
  const double fin[] = {1.4090644529051508, 3.299728253591875};
  replay("pendulum", s0, 2, o0, rows, 5, 3, fin, __LINE__);
}

/* one step from state s with action a: reward, flags, and optionally the state */
static void one(lathe_child_t *e, const double *s, int ns, float a, double *r, int *term,
                int *trunc, double *state) {
  float obs[8];
  if (s) ASSERT_EQ(e->p->env->set_state(e->self, lathe_host(), &e->ctx, s, ns, obs), 0);
  ASSERT_EQ(e->p->env->step(e->self, lathe_host(), &e->ctx, &a, obs, r, term, trunc), 0);
  if (state) {
    lathe_buf_t b = {0};
    e->p->save(e->self, lathe_host(), &e->ctx, &b);
    memcpy(state, b.p + sizeof(env_common_t), sizeof(double) * ns);
    lathe_buf_free(&b);
  }
}

TEST(env_cartpole_boundaries) {
  lathe_child_t *e = test_instance("cartpole", NULL, 0);
  double r, st[4];
  int term, trunc;
  one(e, (double[]){2.4, 0, 0, 0}, 4, 1, &r, &term, &trunc, NULL);
  ASSERT(!term); /* x == 2.4 exactly is not terminal */
  one(e, NULL, 4, 1, &r, &term, &trunc, st);
  ASSERT(term);
  ASSERT(st[0] == 2.40390243902439);
  one(e, (double[]){0, 0, 0.20943951023931953, 0}, 4, 0, &r, &term, &trunc, NULL);
  ASSERT(!term);
  one(e, NULL, 4, 0, &r, &term, &trunc, NULL);
  ASSERT(term);
  /* stepping after termination: +1 on the terminating step, 0 after */
  double rewards[5];
  float acts[5] = {1, 1, 0, 0, 1};
  one(e, (double[]){2.39, 1.0, 0, 0}, 4, acts[0], &rewards[0], &term, &trunc, NULL);
  ASSERT(term);
  for (int t = 1; t < 5; t++) {
    one(e, NULL, 4, acts[t], &rewards[t], &term, &trunc, NULL);
    ASSERT(term);
  }
  ASSERT(rewards[0] == 1.0 && rewards[1] == 0.0 && rewards[4] == 0.0);
  float bad = 2, obs[4];
  ASSERT_EQ(e->p->env->step(e->self, lathe_host(), &e->ctx, &bad, obs, &r, &term, &trunc),
            LATHE_EDATA);
  lathe_instance_free(e);
  /* time limit: max_episode_steps=1 truncates the first step, together with terminated */
  const char *kv[] = {"max_episode_steps=1"};
  e = test_instance("cartpole", kv, 1);
  one(e, (double[]){2.39, 1.0, 0, 0}, 4, 1, &r, &term, &trunc, NULL);
  ASSERT(term && trunc);
  lathe_instance_free(e);
  /* the default limit: truncated at step 500, not 499 */
  e = test_instance("cartpole", NULL, 0);
  float obs4[4], a = 0;
  e->p->env->reset(e->self, lathe_host(), &e->ctx, 3, obs4);
  int steps = 0;
  do {
    a = steps % 2; /* alternate: keeps the pole up for long */
    e->p->env->step(e->self, lathe_host(), &e->ctx, &a, obs4, &r, &term, &trunc);
    steps++;
  } while (!trunc && steps < 1000);
  ASSERT_EQ(steps, 500);
  lathe_instance_free(e);
}

TEST(env_acrobot_boundaries) {
  lathe_child_t *e = test_instance("acrobot", NULL, 0);
  double r, st[4];
  int term, trunc;
  one(e, (double[]){0.5, 1.0, 12.5, 28.0}, 4, 2, &r, &term, &trunc, st);
  ASSERT(st[2] == -12.566370614359172);
  ASSERT(st[3] == 28.274333882308138);
  ASSERT(st[0] == -2.192948638571525);
  /* reset draws a float32-rounded state in [-0.1, 0.1) */
  float obs[6];
  e->p->env->reset(e->self, lathe_host(), &e->ctx, 42, obs);
  lathe_buf_t b = {0};
  e->p->save(e->self, lathe_host(), &e->ctx, &b);
  const double *s = (const double *)(b.p + sizeof(env_common_t));
  for (int i = 0; i < 4; i++) ASSERT(s[i] == (float)s[i] && fabs(s[i]) <= 0.1);
  lathe_buf_free(&b);
  lathe_instance_free(e);
}

TEST(env_mountaincar_boundaries) {
  lathe_child_t *e = test_instance("mountaincar", NULL, 0);
  double r, st[2];
  int term, trunc;
  one(e, (double[]){-1.15, -0.06}, 2, 0, &r, &term, &trunc, st);
  ASSERT(st[0] == -1.2 && st[1] == 0.0);
  one(e, (double[]){0.58, 0.05}, 2, 2, &r, &term, &trunc, st);
  ASSERT(st[0] == 0.6 && st[1] == 0.05142099361987269 && term && r == -1.0);
  float obs[2];
  double want[3] = {0.5391978, 0.5275126, 0.5148566};
  e->p->env->set_state(e->self, lathe_host(), &e->ctx, (double[]){0.55, -0.01}, 2, obs);
  for (int t = 0; t < 3; t++) {
    float a = 0;
    e->p->env->step(e->self, lathe_host(), &e->ctx, &a, obs, &r, &term, &trunc);
    near7(obs[0], want[t], __LINE__, t + 1, 0);
    ASSERT(!term);
  }
  lathe_instance_free(e);
}

TEST(env_pendulum_boundaries) {
  lathe_child_t *e = test_instance("pendulum", NULL, 0);
  double r, st[2];
  int term, trunc;
  one(e, (double[]){0.5, -0.5}, 2, 3.5f, &r, &term, &trunc, st);
  ASSERT(r == -0.2790000001899898);
  ASSERT(st[0] == 0.5079784576976576 && st[1] == 0.1595691539531523);
  one(e, (double[]){-7.0, -0.3}, 2, -1.5f, &r, &term, &trunc, NULL);
  ASSERT(r == -0.5250733039791973); /* floored modulo */
  lathe_instance_free(e);
}

TEST(env_seeding_and_noise) {
  const char *kv[] = {"reward_noise=1.0"};
  lathe_child_t *a = test_instance("cartpole", kv, 1), *b = test_instance("cartpole", kv, 1);
  float oa[4], ob[4], act = 1;
  a->p->env->reset(a->self, lathe_host(), &a->ctx, 11, oa);
  b->p->env->reset(b->self, lathe_host(), &b->ctx, 11, ob);
  ASSERT(!memcmp(oa, ob, sizeof oa)); /* same seed, same start */
  for (int i = 0; i < 4; i++) ASSERT(fabsf(oa[i]) <= 0.05f);
  double ra, rb;
  int t1, t2, u1, u2;
  a->p->env->step(a->self, lathe_host(), &a->ctx, &act, oa, &ra, &t1, &u1);
  b->p->env->step(b->self, lathe_host(), &b->ctx, &act, ob, &rb, &t2, &u2);
  ASSERT(ra == rb && ra != 1.0); /* noisy, and reproducibly so */
  a->p->env->reset(a->self, lathe_host(), &a->ctx, LATHE_NO_SEED,
                   oa); /* no seed: the stream continues */
  b->p->env->reset(b->self, lathe_host(), &b->ctx, 12, ob);
  ASSERT(memcmp(oa, ob, sizeof oa));
  lathe_instance_free(a), lathe_instance_free(b);
}

/* ---- pointmaze ---------------------------------------------------------------- */

#include "../plugins/pointmaze/maze.h"

/* Mean return over n episodes of uniform random actions (expert = 0) or of the
 * noise-free waypoint controller (expert = 1), through the plugin. Fails the
 * test if the point ever stands inside a wall. */
static double maze_mean_return(const char *layout, int dense, int expert, int n) {
  char kv0[32], kv1[32];
  snprintf(kv0, sizeof kv0, "maze=%s", layout);
  snprintf(kv1, sizeof kv1, "reward=%s", dense ? "dense" : "sparse");
  const char *kv[2] = {kv0, kv1};
  lathe_child_t *e = test_instance("pointmaze", kv, 2);
  maze_t m;
  maze_init(&m, layout, 0.25, 0.3, dense);
  maze_set_target(&m, m.goal[0], m.goal[1]);
  nn_rng_t r;
  nn_rng_seed(&r, 11);
  double total = 0;
  for (int ep = 0; ep < n; ep++) {
    float obs[2], a[2];
    e->p->env->reset(e->self, lathe_host(), &e->ctx, ep == 0 ? 5 : LATHE_NO_SEED, obs);
    for (;;) {
      double p[2] = {obs[0], obs[1]}, rew;
      if (expert)
        maze_controller(&m, p, a);
      else
        a[0] = 2 * nn_rng_uniform(&r) - 1, a[1] = 2 * nn_rng_uniform(&r) - 1;
      int term, trunc;
      e->p->env->step(e->self, lathe_host(), &e->ctx, a, obs, &rew, &term, &trunc);
      ASSERT(!maze_wall_at(&m, obs[0], obs[1]));
      total += rew;
      if (term || trunc) break;
    }
  }
  lathe_instance_free(e);
  return total / n;
}

/* The reference returns stored with each layout (maze.h) are what these
 * scripted policies score: re-measured here, 200 episodes each. */
TEST(env_pointmaze_reference_returns) {
  double got[MAZE_COUNT][4];
  for (int k = 0; k < MAZE_COUNT; k++)
    for (int d = 0; d < 2; d++)
      for (int x = 0; x < 2; x++)
        got[k][d * 2 + x] = maze_mean_return(maze_layouts[k].name, d, x, 200);
  int bad = 0;
  for (int k = 0; k < MAZE_COUNT; k++) {
    const double *want = maze_layouts[k].ref;
    for (int i = 0; i < 4; i++) bad |= fabs(got[k][i] - want[i]) > fabs(want[i]) * 1e-3 + 1e-3;
    if (bad)
      printf("     %s: measured {%.3f, %.3f, %.2f, %.2f}, stored {%g, %g, %g, %g}\n",
             maze_layouts[k].name, got[k][0], got[k][1], got[k][2], got[k][3], want[0], want[1],
             want[2], want[3]);
    ASSERT_NEAR(got[k][1], 1, 0); /* the expert always arrives */
  }
  ASSERT(!bad);
}

/* every free cell is reachable from the start; the goal is a free cell */
TEST(env_pointmaze_layouts) {
  for (int k = 0; k < MAZE_COUNT; k++) {
    maze_t m;
    ASSERT_EQ(maze_init(&m, maze_layouts[k].name, 0.1, 0.3, 0), 0);
    maze_set_target(&m, m.start[0], m.start[1]);
    for (int i = 0; i < maze_L(&m)->rows; i++) {
      ASSERT_EQ((int)strlen(maze_L(&m)->map[i]), maze_L(&m)->cols);
      for (int j = 0; j < maze_L(&m)->cols; j++) ASSERT(maze_wall(&m, i, j) || m.dist[i][j] >= 0);
    }
    ASSERT(m.dist[m.goal[0]][m.goal[1]] > 0);
  }
  maze_t m;
  ASSERT_EQ(maze_init(&m, "nope", 0.1, 0.3, 0), -1);
}

static void push_right(void *ud, const float *obs, float *a) {
  ++*(int *)ud;
  a[0] = 1;
}

/* nn_episode is the hand-written loop: reset(seed), the policy's action, the
 * return and length of the steps taken; max_len stops it short (not as a
 * termination); an environment's refusal comes back as its error. */
TEST(env_episode_helper) {
  lathe_child_t *e = test_instance("cartpole", NULL, 0);
  const lathe_host_t *h = lathe_host();
  nn_episode_t ep;
  int calls = 0;
  ASSERT_EQ(nn_episode(e->p, e->self, h, &e->ctx, 3, 0, push_right, &calls, NULL, &ep), 0);
  float obs[4], a = 1;
  double r, ret = 0;
  int term = 0, trunc = 0, len = 0;
  e->p->env->reset(e->self, h, &e->ctx, 3, obs);
  while (!term && !trunc)
    e->p->env->step(e->self, h, &e->ctx, &a, obs, &r, &term, &trunc), ret += r, len++;
  ASSERT_EQ(ep.len, len);
  ASSERT_EQ(calls, len);
  ASSERT_NEAR(ep.ret, ret, 0);
  ASSERT(ep.terminated && len < 20); /* pushed right, the pole falls within a few steps */
  ASSERT(!ep.cut);
  double rew[4] = {0};
  ASSERT_EQ(nn_episode(e->p, e->self, h, &e->ctx, 3, 4, push_right, &calls, rew, &ep), 0);
  ASSERT(ep.len == 4 && !ep.terminated);
  ASSERT(ep.cut); /* the bound ended it, not the environment */
  ASSERT_NEAR(rew[0] + rew[1] + rew[2] + rew[3], ep.ret, 0);
  lathe_instance_free(e);
}
