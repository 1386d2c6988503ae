/* test_stepneg.c - per-step credit (nn/steps.c) against
 * specs/per_step_negatives.md's test vectors, the best-of-K estimator's
 * unbiasedness, the math verifier (mathtext.h) on GSM8K's own 1,319 test
 * answers, and the arith line checker on hand-built traces. */
#include <json-c/json.h>
#include <string.h>
#include <zlib.h>

#include "../workbench/mathtext.h"
#include "../workbench/nn/nn.h"
#include "test.h"

TEST(steps_spec_vector) {
  int S[4] = {4, 5, 4, 0};
  double v[5], a[4];
  nn_step_values(S, 4, 8, 1, 0, v, a);
  const double wv[5] = {0.5, 0.625, 0.5, 0, 0}, wa[4] = {0.125, -0.125, -0.5, 0};
  for (int i = 0; i < 5; i++) ASSERT_NEAR(v[i], wv[i], 1e-12);
  for (int i = 0; i < 4; i++) ASSERT_NEAR(a[i], wa[i], 1e-12);
  ASSERT_EQ(nn_first_pit(v, a, 4), 3);
  const double bok[5] = {0.9375, 0.980225, 0.9375, 0, 0}; /* the plug-in, K = 4 */
  for (int i = 0; i < 5; i++) ASSERT_NEAR(nn_bok_plugin(v[i], 4), bok[i], 1e-6);
}

TEST(steps_first_pit_is_not_the_largest_drop) {
  int S[4] = {4, 4, 1, 0}; /* s_1..s_3 succeed 4, 1, 0 of 8: drops 0, 0.375, 0.125 */
  double v[5], a[4];
  nn_step_values(S, 4, 8, 1, 0, v, a);
  ASSERT_EQ(nn_first_pit(v, a, 4), 3);
  int worst = 1;
  for (int i = 2; i <= 4; i++) worst = a[i - 1] < a[worst - 1] ? i : worst;
  ASSERT_EQ(worst, 2);
  int P[3] = {6, 7, 3}; /* no pit (a positive): the first smallest advantage */
  double pv[4], pa[3];
  nn_step_values(P, 3, 8, 1, 1, pv, pa);
  ASSERT_EQ(nn_first_pit(pv, pa, 3), 2); /* advantages 0.125, -0.5, 0.625 */
}

TEST(steps_bok_estimator) {
  ASSERT_NEAR(nn_bok_value(0, 8, 8), 0, 0); /* M = K: 1[S > 0] */
  ASSERT_NEAR(nn_bok_value(1, 8, 8), 1, 1e-12);
  ASSERT_NEAR(nn_bok_value(4, 8, 4), 1 - 1.0 / 70, 1e-12); /* 1 - C(4,4)/C(8,4) */
  ASSERT_NEAR(nn_bok_value(3, 8, 1), 3.0 / 8, 1e-12);
  ASSERT(isnan(nn_bok_value(1, 0, 1)));
  /* unbiased: over many draws S ~ Binomial(M, p) the mean estimate is
   * 1 - (1 - p)^K within four standard errors (and the plain one p) */
  nn_rng_t r;
  nn_rng_seed(&r, 5);
  const double ps[3] = {0.05, 0.3, 0.7};
  for (int k = 0; k < 3; k++) {
    double p = ps[k], sum = 0, sq = 0, plain = 0;
    int R = 40000, M = 8, K = 4;
    for (int i = 0; i < R; i++) {
      int S = 0;
      for (int m = 0; m < M; m++) S += nn_rng_uniform_d(&r) < p;
      double e = nn_bok_value(S, M, K);
      sum += e, sq += e * e, plain += (double)S / M;
    }
    double mean = sum / R, se = sqrt((sq / R - mean * mean) / R);
    ASSERT_NEAR(mean, 1 - pow(1 - p, K), 4 * se + 1e-9);
    ASSERT_NEAR(plain / R, p, 4 * sqrt(p * (1 - p) / M / R));
  }
}

TEST(steps_awr_vector) {
  const double a[4] = {0.125, -0.125, -0.5, 0}, lp[4] = {-3, -2, -4, -1.5};
  const double ww[4] = {1.28403, 0.778801, 0.367879, 1.0};
  const double wn[4] = {1.4971, 0.908036, 0.428926, 1.16594}; /* self-normalised */
  double w[4], mean = 0, g[4];
  for (int i = 0; i < 4; i++) w[i] = nn_awr_weight(a[i], 0.5, 20), mean += w[i] / 4;
  for (int i = 0; i < 4; i++) {
    ASSERT_NEAR(w[i], ww[i], 1e-5);
    ASSERT_NEAR(w[i] / mean, wn[i], 1e-5);
  }
  ASSERT_NEAR(nn_awr_loss(lp, w, 4, g), 2.0953, 1e-4);
  double sum = 0;
  for (int i = 0; i < 4; i++) {
    sum -= w[i] * lp[i];
    ASSERT_NEAR(g[i], -w[i] / 4, 1e-12);
  }
  ASSERT_NEAR(sum, 8.38120, 1e-4);                /* the per-sequence sum the spec contrasts */
  ASSERT_NEAR(nn_awr_weight(10, 0.5, 20), 20, 0); /* the clip */
}

TEST(steps_dpo_forms_vector) {
  nn_pref_t o = {NN_PREF_DPO, 0.1, 0, 0};
  double dw, dl;
  /* form 1: y+ against the negative cut after its critical step (-3 -2 -4) */
  ASSERT_NEAR(nn_pref_pair(&o, -12, -3 - 2 - 4, -12.5, -8.5, 1, 1, &dw, &dl), 0.644397, 1e-6);
  ASSERT_NEAR(dl, 0.0475021, 1e-6);
  ASSERT_NEAR(dw, -0.0475021, 1e-6);
  /* form 2: continuations after the shared prefix s_{c-1} */
  ASSERT_NEAR(nn_pref_pair(&o, -5, -5.5, -5.5, -5.0, 1, 1, NULL, NULL), 0.644397, 1e-6);
}

static void norm_is(const char *text, const char *want) {
  char out[256];
  if (!want) {
    ASSERT(mt_final_answer(text, out, sizeof out) != 0);
    return;
  }
  ASSERT(mt_final_answer(text, out, sizeof out) == 0);
  ASSERT_STR(out, want);
}

TEST(math_final_answers) {
  norm_is("so 3 + 4 = 7\n#### 7", "7");
  norm_is("#### 1,234", "1234");
  norm_is("#### $18.", "18");
  norm_is("#### -0", "0");
  norm_is("#### 007", "7");
  norm_is("#### 2.50", "2.5");
  norm_is("#### 12 dollars", "12");
  norm_is("#### 45%", "45");
  norm_is("thus \\boxed{\\frac{1}{2}} and", "\\frac{1}{2}");
  norm_is("\\boxed{3} then \\boxed{ 4 }", "4");
  norm_is("1+2=3\nans=3", "3");
  norm_is("the answer is 5", NULL); /* no marker: no answer (strict) */
  norm_is("#### ", NULL);
  norm_is("\\boxed{1", NULL);
  ASSERT(mt_verify("x\n#### 1,000", "1000"));
  ASSERT(!mt_verify("x\n#### 999", "1000"));
  ASSERT(!mt_verify("1000", "1000"));
}

TEST(math_gsm8k_test_answers_parse) {
  gzFile f = gzopen("share/data/math/gsm8k/test.jsonl.gz", "rb");
  if (!f) return; /* a trimmed copy without the data (e2e reports the skip) */
  char line[16384];
  int n = 0;
  while (gzgets(f, line, sizeof line)) {
    json_object *o = json_tokener_parse(line), *a;
    ASSERT(o && json_object_object_get_ex(o, "answer", &a));
    const char *s = json_object_get_string(a), *m = strstr(s, "#### ");
    char out[256], want[64];
    ASSERT(m && mt_final_answer(s, out, sizeof out) == 0);
    size_t k = 0; /* the answer as written, without commas */
    for (const char *p = m + 5; *p && *p != '\n' && k + 1 < sizeof want; p++)
      if (*p != ',') want[k++] = *p;
    want[k] = 0;
    ASSERT_STR(out, want);
    json_object_put(o);
    n++;
  }
  gzclose(f);
  ASSERT_EQ(n, 1319);
}

TEST(math_steps_split_on_newlines) {
  int st[8];
  ASSERT_EQ(mt_steps("a\nbb\nc", st, 8), 3);
  ASSERT_EQ(st[1], 2);
  ASSERT_EQ(st[2], 5);
  ASSERT_EQ(mt_steps("a\nb\n", st, 8), 2);
  ASSERT_EQ(mt_steps("", st, 8), 0);
}

TEST(arith_line_checker) {
  const char *q = "5*60+1-68";
  ASSERT_EQ(mt_arith_first_wrong(q, "5*60=9\n9+1=10\n10-68=39\nans=39", 97), 0);
  ASSERT_EQ(mt_arith_first_wrong(q, "5*60=8\n9+1=10\n10-68=39\nans=39", 97), 1); /* spurious */
  ASSERT_EQ(mt_arith_first_wrong(q, "5*60=9\n9+1=11\n11-68=40\nans=40", 97), 2);
  ASSERT_EQ(mt_arith_first_wrong(q, "5*60=9\n9+2=11\n11-68=40\nans=40", 97), 2); /* wrong c */
  ASSERT_EQ(mt_arith_first_wrong(q, "5*60=9\n9+1=10\n10-68=39\nans=38", 97), 4);
  ASSERT_EQ(mt_arith_first_wrong(q, "5*60=9\n9+1=10", 97), 3);                      /* stops */
  ASSERT_EQ(mt_arith_first_wrong(q, "5*60=9\n9+1=10\n10-68=39\nans=39\nx", 97), 5); /* extra */
  ASSERT_EQ(mt_arith_first_wrong(q, "5*60=9 \n9+1=10\n10-68=39\nans=39", 97), 1);
  ASSERT_EQ(mt_arith_first_wrong("what", "1+1=2", 97), -1);
  ASSERT(mt_verify("5*60=8\n9+1=10\n10-68=39\nans=39", "39")); /* right answer, wrong line */
}
