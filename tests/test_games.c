/* test_games.c - the turn-based text games (specs/archer.md): the spec's
 * DP values (identify-then-guess and blind, discounted and not, N = 16/K =
 * 4 and N = 64/K = 6), the exact optimum of N = 16 against a brute-force
 * DP over every candidate set written out here, guessnum's binary search,
 * the answerer and reward rules on hand-written dialogues, bad utterances,
 * the turn limit, the exact value of scripted policies (every hidden state
 * enumerated) against a Monte-Carlo estimate, and the checkpoint; the
 * attribute tables: the pruned DP against brute force on random tables with
 * short and long turn limits, the parser's refusals, the built-in tables'
 * games. The
 * games' own code is included, and played through the plugin ABI. */
#include "../plugins/games/guessnum.c"
#include "../plugins/games/table.c"
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

/* The synthetic table's optimal and identify values. */
static int tq_values(int N, int K, int T, double g, double *opt, double *id) {
  tb_table_t t;
  if (tb_synthetic(&t, N, K)) return LATHE_ENOMEM;
  int rc = tb_values(&t, T, g, opt, id);
  tb_free(&t);
  return rc;
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

/* Random tables of 10 objects (3 to 5 attributes: the first two spell a
 * shuffled id so every object is told apart, the rest random with 2 to 4
 * values): the pruned DP
 * against a DP over every candidate set and turn with every action, at turn
 * limits 2, 3, 5 and 20 (where truncation decides and where it does not),
 * discounted and not, optimal and identify. */
static double tbf[1 << 10][21][2];
TEST(games_table_dp_brute_force) {
  nn_rng_t r;
  nn_rng_seed(&r, 42);
  for (int trial = 0; trial < 24; trial++) {
    int n = 10, k = 3 + (int)nn_rng_below(&r, 3);
    char text[2048];
    int len = snprintf(text, sizeof text, "object");
    for (int a = 0; a < k; a++) len += snprintf(text + len, sizeof text - (size_t)len, "\tq%d", a);
    len += snprintf(text + len, sizeof text - (size_t)len, "\n");
    int nv[5];
    for (int a = 0; a < k; a++) nv[a] = 2 + (int)nn_rng_below(&r, 3);
    int perm[10];
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) { /* the id attribute: a shuffled mixed radix */
      int j = (int)nn_rng_below(&r, (uint32_t)i + 1), x = perm[i];
      perm[i] = perm[j], perm[j] = x;
    }
    for (int i = 0; i < n; i++) {
      len += snprintf(text + len, sizeof text - (size_t)len, "x%d", i);
      for (int a = 0; a < k; a++) {
        int v = a == 0   ? perm[i] % nv[0]
                : a == 1 ? perm[i] / nv[0]
                         : (int)nn_rng_below(&r, (uint32_t)nv[a]);
        len += snprintf(text + len, sizeof text - (size_t)len, "\tv%d", v);
      }
      len += snprintf(text + len, sizeof text - (size_t)len, "\n");
    }
    tb_table_t t;
    char why[160] = "";
    ASSERT_EQ(tb_parse(&t, text, (size_t)len, why, sizeof why), 0);
    int T = (int[]){2, 3, 5, 20}[trial % 4];
    double g = trial % 8 < 4 ? 0.95 : 1.0;
    for (int id = 0; id < 2; id++)
      for (int tt = T; tt >= 0; tt--)
        for (uint32_t S = 1; S < 1u << n; S++) {
          int m = __builtin_popcount(S);
          if (tt == T || m == 1) {
            tbf[S][tt][id] = 0;
            continue;
          }
          double best = -INFINITY;
          for (int q = 0; q < t.ntest; q++) {
            uint32_t s1 = S & (uint32_t)t.test[q].has.w[0], s0 = S & ~s1;
            if (!s1 || !s0) continue;
            double v = -1 + g *
                                (__builtin_popcount(s1) * tbf[s1][tt + 1][id] +
                                 __builtin_popcount(s0) * tbf[s0][tt + 1][id]) /
                                m;
            best = v > best ? v : best;
          }
          for (int i = 0; i < n && !id; i++)
            if (S >> i & 1) {
              double v = (m - 1.0) / m * (-1 + g * tbf[S & ~(1u << i)][tt + 1][0]);
              best = v > best ? v : best;
            }
          tbf[S][tt][id] = best == -INFINITY ? -1 + g * tbf[S][tt + 1][id] : best;
        }
    double opt, ident;
    ASSERT_EQ(tb_values(&t, T, g, &opt, &ident), 0);
    ASSERT_NEAR(opt, tbf[(1u << n) - 1][0][0], 1e-12);
    ASSERT_NEAR(ident, tbf[(1u << n) - 1][0][1], 1e-12);
    tb_free(&t);
  }
}

static void parse_fails(const char *text, const char *want) {
  tb_table_t t;
  char why[160] = "";
  ASSERT_EQ(tb_parse(&t, text, strlen(text), why, sizeof why), -1);
  if (!strstr(why, want)) test_fail(__FILE__, __LINE__, "'%s' does not say '%s'", why, want);
  ASSERT(t.obj == NULL && t.n == 0);
}

TEST(games_table_parse) {
  const char *ok = "object\tcolor\tbig\nsun\tyellow\t1\nsky\tblue\t1\nbee\tyellow\t0\n";
  tb_table_t t;
  char why[160] = "";
  ASSERT_EQ(tb_parse(&t, ok, strlen(ok), why, sizeof why), 0);
  ASSERT(t.n == 3 && t.k == 2 && t.ntest == 4 && t.hash != 0);
  ASSERT_EQ(tb_object(&t, "bee"), 2);
  ASSERT_EQ(tb_object(&t, "be"), -1);
  int q = tb_test(&t, "color", "yellow");
  ASSERT(q >= 0 && tb_has(t.test[q].has, 0) && !tb_has(t.test[q].has, 1) &&
         tb_has(t.test[q].has, 2));
  ASSERT_EQ(tb_test(&t, "big", "yellow"), -1);
  /* a two-valued attribute's second value is skipped by the DP */
  ASSERT(t.test[tb_test(&t, "big", "1")].split && !t.test[tb_test(&t, "big", "0")].split);
  tb_free(&t);
  ASSERT_EQ(tb_parse(&t, ok, strlen(ok) - 1, why, sizeof why), 0); /* no final newline */
  ASSERT_EQ(t.n, 3);
  tb_free(&t);
  parse_fails("object\tcolor\nsun\tyellow\n", "line 3: a table needs a header and at least two");
  parse_fails("object\nsun\nsky\n", "line 1: no attribute columns");
  parse_fails("object\tcolor\nsun\tyellow\nsun\tblue\n", "line 3: object sun twice");
  parse_fails("object\tc\tc\nsun\ty\t1\nsky\tb\t1\n", "line 1: attribute c twice");
  parse_fails("object\tcolor\nsun\tyellow\nsky\tyellow\n", "sun and sky have the same");
  parse_fails("object\tcolor\nsun\tYellow\nsky\tblue\n", "line 2, field 2: not a word");
  parse_fails("object\tcolor\nsun\tyellow\r\nsky\tblue\n", "line 2, field 2: not a word");
  parse_fails("object\tcolor\tbig\nsun\tyellow\nsky\tblue\t1\n",
              "line 2: 2 fields, the header has 3");
  parse_fails("object\tcolor\nsun\tyellow\t1\nsky\tblue\n", "line 2: more fields");
  parse_fails("object\tcolor\nsun\t\nsky\tblue\n", "line 2, field 2: not a word");
  parse_fails("object\tcolor\n\nsky\tblue\nsun\tred\n", "line 2, field 1");
  const char nul[] = "object\tcolor\nsun\tyel\0low\nsky\tblue\n";
  ASSERT_EQ(tb_parse(&t, nul, sizeof nul - 1, why, sizeof why), -1);
  ASSERT(strstr(why, "line 2, field 2: not a word"));
  char longw[64];
  memset(longw, 'a', 40), longw[40] = 0;
  char text[256];
  snprintf(text, sizeof text, "object\tcolor\n%s\tyellow\nsky\tblue\n", longw);
  parse_fails(text, "line 2, field 1: not a word of [a-z0-9_] (at most 31 bytes)");
}

/* The built-in tables: ArCHer's 157 objects and 91 cities, played in words. */
TEST(games_table_builtin) {
  lathe_child_t *e = game("twentyq", (const char *const[]){"table=objects"}, 1);
  const lathe_textenv_t *t = e->p->textenv;
  const char *obs;
  int term, trunc;
  int64_t n;
  ASSERT_EQ(t->set_hidden(e->self, lathe_host(), &e->ctx, -1, &n, &obs), 0);
  ASSERT_EQ(n, 157);
  ASSERT_EQ(t->set_hidden(e->self, lathe_host(), &e->ctx, 10, &n, &obs), 0); /* cat */
  say(e, "ask category animals ?", &obs, &term, &trunc);
  say(e, "ask pet 1 ?", &obs, &term, &trunc);
  say(e, "ask category cat ?", &obs, &term, &trunc);
  say(e, "guess dog .", &obs, &term, &trunc);
  ASSERT_NEAR(say(e, "guess cat .", &obs, &term, &trunc), 0, 0);
  ASSERT(term);
  ASSERT_STR(obs, "Questions:\nask category animals ? yes\nask pet 1 ? yes\n"
                  "ask category cat ? invalid\nguess dog . no\nguess cat . yes\n");
  lathe_buf_t b = {0}; /* a table game's checkpoint carries the table's hash */
  ASSERT_EQ(e->p->save(e->self, lathe_host(), &e->ctx, &b), 0);
  ASSERT_EQ(e->p->load(e->self, lathe_host(), &e->ctx, &b), 0);
  b.off = 0;
  b.p[b.n - 1] ^= 1;
  ASSERT(e->p->load(e->self, lathe_host(), &e->ctx, &b) == LATHE_ECKPT);
  ASSERT(strstr(lathe_lasterr(), "twentyq: checkpoint of another table"));
  lathe_buf_free(&b);
  lathe_instance_free(e);
  e = game("guesscity", NULL, 0);
  ASSERT_EQ(e->p->textenv->set_hidden(e->self, lathe_host(), &e->ctx, 0, &n, &obs), 0);
  ASSERT_EQ(n, 91);
  say(e, "ask continent asia ?", &obs, &term, &trunc);
  say(e, "ask country south_korea ?", &obs, &term, &trunc);
  say(e, "ask letters 5 ?", &obs, &term, &trunc);
  ASSERT_NEAR(say(e, "guess seoul .", &obs, &term, &trunc), 0, 0);
  ASSERT_STR(obs, "Questions:\nask continent asia ? yes\nask country south_korea ? yes\n"
                  "ask letters 5 ? yes\nguess seoul . yes\n");
  lathe_instance_free(e);
  /* a table that cannot be read or parsed is refused in one line */
  lathe_registry_add("twentyq", "games.so", "tests");
  lathe_child_t *bad;
  ASSERT(lathe_instance_new("twentyq", (const char *const[]){"table=/nonexistent.tsv"}, 1, NULL,
                            &bad) == LATHE_EIO);
  ASSERT(strstr(lathe_lasterr(), "twentyq: table /nonexistent.tsv: No such file"));
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
