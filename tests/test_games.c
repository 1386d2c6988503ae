/* test_games.c - the turn-based text games (specs/archer.md): the spec's
 * DP values (identify-then-guess and blind, discounted and not, N = 16/K =
 * 4 and N = 64/K = 6), the exact optimum of N = 16 against a brute-force
 * DP over every candidate set written out here, guessnum's binary search,
 * the answerer and reward rules on hand-written dialogues, bad utterances,
 * the turn limit, the exact value of scripted policies (every hidden state
 * enumerated) against a Monte-Carlo estimate, and the checkpoint. The
 * games' own code is included, and played through the plugin ABI. */
#include "../plugins/games/guessnum.c"
#include "../plugins/games/twentyq.c"
#include "../workbench/error.h"
#include "../workbench/registry.h"
#include "../workbench/run.h"
#include "test.h"

static lathe_child_t *game(const char *name, const char *const *kv, int n) {
  lathe_registry_add(name, "games.so", "tests");
  lathe_child_t *e;
  if (lathe_instance_new(name, kv, n, NULL, &e))
    test_fail(__FILE__, __LINE__, "cannot create %s: %s", name, lathe_lasterr());
  ASSERT(e->p->kind == LATHE_TEXTENV);
  return e;
}

static double say(lathe_child_t *e, const char *u, const char **obs, int *term, int *trunc) {
  double r = 99;
  ASSERT_EQ(e->p->textenv->step(e->self, lathe_host(), &e->ctx, u, strlen(u), obs, &r, term, trunc),
            0);
  return r;
}

TEST(games_spec_values) {
  double opt, id;
  ASSERT_EQ(tq_values(16, 4, 20, 0.95, &opt, &id), 0);
  ASSERT_NEAR(id, -3.709875, 5e-7);
  ASSERT_NEAR(gm_blind(16, 20, 0.95), -6.003167, 5e-7);
  ASSERT_EQ(tq_values(16, 4, 20, 1.0, &opt, &id), 0);
  ASSERT_NEAR(id, -4.0, 1e-12);
  ASSERT_NEAR(gm_blind(16, 20, 1.0), -7.5, 1e-12);
  ASSERT_EQ(tq_values(64, 6, 20, 0.95, &opt, &id), 0);
  ASSERT_NEAR(id, -5.298162, 5e-7);
  ASSERT_NEAR(gm_blind(64, 20, 0.95), -11.061356, 5e-7);
  ASSERT_NEAR(gm_blind(64, 20, 1.0), -16.71875, 1e-12);
  ASSERT(opt > id); /* guessing among a few beats asking them apart */
  ASSERT_NEAR(gn_value(64, 20, 1.0), -264.0 / 64,
              1e-12); /* binary search: 264 wrong guesses in all */
}

/* every set of 16 candidates, every turn, every action: no pruning */
static double brute[1 << 16][21];
TEST(games_twentyq_optimum_brute_force) {
  const double g = 0.95;
  for (int t = 20; t >= 0; t--)
    for (uint32_t S = 1; S < 1u << 16; S++) {
      int m = __builtin_popcount(S);
      if (t == 20 || m == 1) {
        brute[S][t] = 0;
        continue;
      }
      double best = -INFINITY;
      for (int j = 0; j < 4; j++) {
        uint32_t a = 0;
        for (int i = 0; i < 16; i++) a |= (uint32_t)(i >> j & 1) << i;
        uint32_t s1 = S & a, s0 = S & ~a & 0xffffu;
        double v = !s1 || !s0 ? -1 + g * brute[S][t + 1]
                              : -1 + g *
                                         (__builtin_popcount(s1) * brute[s1][t + 1] +
                                          __builtin_popcount(s0) * brute[s0][t + 1]) /
                                         m;
        best = v > best ? v : best;
      }
      for (int i = 0; i < 16; i++)
        if (S >> i & 1) {
          double v = (m - 1.0) / m * (-1 + g * brute[S & ~(1u << i)][t + 1]);
          best = v > best ? v : best;
        }
      brute[S][t] = best;
    }
  double opt, id;
  ASSERT_EQ(tq_values(16, 4, 20, g, &opt, &id), 0);
  ASSERT_NEAR(opt, brute[0xffff][0], 1e-12);
  ASSERT_NEAR(opt, -3.2591890625, 1e-10);
}

TEST(games_twentyq_dialogue) {
  lathe_child_t *e = game("twentyq", NULL, 0);
  const lathe_textenv_t *t = e->p->textenv;
  const char *obs;
  int term, trunc;
  int64_t n;
  ASSERT_EQ(t->set_hidden(e->self, lathe_host(), &e->ctx, -1, &n, &obs), 0);
  ASSERT_EQ(n, 16);
  ASSERT_EQ(t->set_hidden(e->self, lathe_host(), &e->ctx, 5, &n, &obs), 0); /* o5 = 0101 */
  ASSERT_STR(obs, "Questions:\n");
  ASSERT_NEAR(say(e, "ask a0 1 ?", &obs, &term, &trunc), -1, 0);
  ASSERT(!term && !trunc);
  say(e, "ask a1 1 ?", &obs, &term, &trunc);
  say(e, "ask a2 0 ?\nand more", &obs, &term, &trunc); /* cut at the newline */
  say(e, "ask a4 1 ?", &obs, &term, &trunc);           /* no attribute a4 */
  say(e, "guess o16 .", &obs, &term, &trunc);          /* no object o16 */
  say(e, "guess o05 .", &obs, &term, &trunc);          /* not a name */
  say(e, "ask  a3   0 ?", &obs, &term, &trunc);        /* spaces are separators */
  say(e, "guess o4 .", &obs, &term, &trunc);
  ASSERT_STR(obs, "Questions:\nask a0 1 ? yes\nask a1 1 ? no\nask a2 0 ? no\nask a4 1 ? invalid\n"
                  "guess o16 . invalid\nguess o05 . invalid\nask a3 0 ? yes\nguess o4 . no\n");
  char big[80];
  memset(big, 'x', sizeof big - 1), big[79] = 0; /* longer than the 64-byte cap */
  ASSERT_NEAR(say(e, big, &obs, &term, &trunc), -1, 0);
  ASSERT_NEAR(say(e, "ask a\x01 1 ?", &obs, &term, &trunc), -1, 0);
  ASSERT(strstr(obs, "guess o4 . no\n<invalid> invalid\n<invalid> invalid\n"));
  ASSERT_NEAR(say(e, "guess o5 .", &obs, &term, &trunc), 0, 0);
  ASSERT(term && !trunc);
  double r;
  ASSERT(t->step(e->self, lathe_host(), &e->ctx, "guess o5 .", 10, &obs, &r, &term, &trunc) ==
         LATHE_EUSAGE); /* over: reset first */
  ASSERT(strstr(lathe_lasterr(), "the episode is over"));
  /* the turn limit: 20 turns, the 20th truncates */
  ASSERT_EQ(t->reset(e->self, lathe_host(), &e->ctx, 7, &obs), 0);
  for (int i = 1; i <= 20; i++) {
    ASSERT_NEAR(say(e, "ask a0 0 ?", &obs, &term, &trunc), -1, 0);
    ASSERT(!term && trunc == (i == 20));
  }
  lathe_instance_free(e);
}

TEST(games_guessnum_dialogue) {
  lathe_child_t *e = game("guessnum", NULL, 0);
  const char *obs;
  int64_t n;
  int term, trunc;
  ASSERT_EQ(e->p->textenv->set_hidden(e->self, lathe_host(), &e->ctx, 40, &n, &obs), 0); /* 41 */
  ASSERT_EQ(n, 64);
  say(e, "guess 32 .", &obs, &term, &trunc);
  say(e, "guess 48 .", &obs, &term, &trunc);
  say(e, "guess 65 .", &obs, &term, &trunc);
  say(e, "guess 041 .", &obs, &term, &trunc);
  ASSERT_NEAR(say(e, "guess 41 .", &obs, &term, &trunc), 0, 0);
  ASSERT(term);
  ASSERT_STR(obs, "Guess the number:\nguess 32 . higher\nguess 48 . lower\nguess 65 . invalid\n"
                  "guess 041 . invalid\nguess 41 . correct\n");
  lathe_instance_free(e);
}

/* Scripted policies: the blind guesser and twenty questions' "ask until
 * one is left"; guessnum's bisection. */
static void policy(const char *name, const char *obs, char *u, size_t cap) {
  int turns = 0;
  for (const char *p = strchr(obs, '\n') + 1; *p; p = strchr(p, '\n') + 1) turns++;
  if (!strcmp(name, "blind")) {
    snprintf(u, cap, "guess o%d .", turns);
    return;
  }
  if (!strcmp(name, "identify")) { /* ask a0..a3, then guess the object they spell */
    if (turns < 4) {
      snprintf(u, cap, "ask a%d 1 ?", turns);
      return;
    }
    int o = 0, j = 0;
    for (const char *p = strchr(obs, '\n') + 1; j < 4; p = strchr(p, '\n') + 1, j++)
      o |= (strncmp(strchr(p, '?') + 2, "yes", 3) == 0) << j;
    snprintf(u, cap, "guess o%d .", o);
    return;
  }
  int lo = 1, hi = 64; /* bisect */
  for (const char *p = strchr(obs, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
    int k = atoi(p + 6);
    if (strstr(p, "higher") && strstr(p, "higher") < strchr(p, '\n'))
      lo = k + 1;
    else
      hi = k - 1;
  }
  snprintf(u, cap, "guess %d .", (lo + hi) / 2);
}

static double episode(lathe_child_t *e, const char *pol, const char *obs, double g) {
  double ret = 0, disc = 1;
  int term = 0, trunc = 0;
  char u[64];
  while (!term && !trunc) {
    policy(pol, obs, u, sizeof u);
    ret += disc * say(e, u, &obs, &term, &trunc);
    disc *= g;
  }
  return ret;
}

TEST(games_policy_value_exact_and_sampled) {
  struct {
    const char *game, *pol;
    double want;
  } c[] = {{"twentyq", "blind", -6.0031667162941},
           {"twentyq", "identify", -3.709875},
           {"guessnum", "bisect", -3.7821306591797}};
  for (int k = 0; k < 3; k++) {
    lathe_child_t *e = game(c[k].game, NULL, 0);
    const lathe_textenv_t *t = e->p->textenv;
    const char *obs;
    int64_t n;
    t->set_hidden(e->self, lathe_host(), &e->ctx, -1, &n, &obs);
    double exact = 0, s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) { /* every hidden state: the exact value */
      t->set_hidden(e->self, lathe_host(), &e->ctx, i, &n, &obs);
      exact += episode(e, c[k].pol, obs, 0.95) / n;
    }
    ASSERT_NEAR(exact, c[k].want, 1e-9);
    int M = 4000;
    for (int i = 0; i < M; i++) { /* sampled episodes: within four standard errors */
      ASSERT_EQ(t->reset(e->self, lathe_host(), &e->ctx, i == 0 ? 1 : LATHE_NO_SEED, &obs), 0);
      double r = episode(e, c[k].pol, obs, 0.95);
      s += r, ss += r * r;
    }
    double mean = s / M, se = sqrt(fmax(ss / M - mean * mean, 0) / M);
    ASSERT(fabs(mean - exact) <= 4 * se + 1e-12);
    lathe_instance_free(e);
  }
}

TEST(games_checkpoint) {
  lathe_child_t *e = game("twentyq", (const char *const[]){"objects=64", "attributes=6"}, 2);
  const lathe_textenv_t *t = e->p->textenv;
  const char *obs;
  int term, trunc;
  t->reset(e->self, lathe_host(), &e->ctx, 11, &obs);
  say(e, "ask a5 1 ?", &obs, &term, &trunc);
  lathe_buf_t b = {0};
  ASSERT_EQ(e->p->save(e->self, lathe_host(), &e->ctx, &b), 0);
  char before[GM_MAX_TEXT];
  snprintf(before, sizeof before, "%s", obs);
  say(e, "guess o1 .", &obs, &term, &trunc);
  ASSERT_EQ(e->p->load(e->self, lathe_host(), &e->ctx, &b), 0);
  ASSERT_STR(((tq_t *)e->self)->d.text, before);
  b.off = 0, b.n -= 3; /* truncated */
  ASSERT(e->p->load(e->self, lathe_host(), &e->ctx, &b) == LATHE_ECKPT);
  b.n += 3, b.off = 0, b.err = 0;
  memset(b.p + sizeof(nn_rng_t), 0x7f, 4); /* a turn count out of range */
  ASSERT(e->p->load(e->self, lathe_host(), &e->ctx, &b) == LATHE_ECKPT);
  ASSERT(strstr(lathe_lasterr(), "out of range"));
  lathe_buf_free(&b);
  lathe_instance_free(e);
}
