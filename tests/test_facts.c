/* test_facts.c - the facts world of specs/unfamiliar.md: the spec's test
 * vectors (the value of stating a fact, per-fact and bio rewards, the 40th
 * percentile and its unfamiliar set), the world's shape (unique names, the
 * 40% at k = 0, splits), the answer classifier on hand-written outputs, the
 * fact checker on generated and damaged bios, and the judge's P(true)
 * against the softmax of the two label log-probabilities computed here with
 * a forward per sequence, and factrl's REINFORCE step (factrl.c included)
 * on a hand-built batch of four bios: its loss against the objective written
 * out here (leave-one-out advantages over the running reward std, the
 * per-token KL penalty), its gradient by central finite differences. */
#include "../plugins/facts/factrl.c"
#include "../plugins/facts/judge.c"
#include "../plugins/facts/world.c"
#include "test.h"

TEST(facts_spec_vectors) {
  ASSERT_NEAR(fw_fact_value(0.5), -0.5, 1e-12);
  ASSERT_NEAR(fw_fact_value(0.6), 0.0, 1e-12); /* break-even */
  ASSERT_NEAR(fw_fact_value(0.7), 0.5, 1e-12);
  ASSERT_NEAR(fw_fact_value(0.9), 1.5, 1e-12);
  ASSERT_NEAR(fw_fact_value(0.72), 0.6, 1e-12); /* standard RM on unfamiliar false facts */
  ASSERT_NEAR(fw_fact_value(0.1), -2.5, 1e-12); /* conservative RM */
  ASSERT_NEAR(fw_bio_reward(3, 2, 0), 0, 0);
  ASSERT_NEAR(fw_bio_reward(1, 0, 0), 2, 0);
  ASSERT_NEAR(fw_bio_reward(4, 0, 1), -15, 0);
  double nc[10] = {0, 1, 1, 2, 3, 5, 7, 9, 11, 12}, shuffled[10] = {12, 3, 1, 9, 0, 11, 2, 5, 1, 7};
  double p = fw_percentile(nc, 10, 40);
  ASSERT_NEAR(p, 2.6, 1e-12);
  ASSERT_NEAR(fw_percentile(shuffled, 10, 40), 2.6, 1e-12);
  ASSERT_EQ(shuffled[0], 12); /* not modified */
  int below = 0;
  for (int i = 0; i < 10; i++) below += nc[i] < p;
  ASSERT_EQ(below, 4); /* {0, 1, 1, 2} */
  ASSERT_NEAR(fw_percentile(nc, 10, 0), 0, 0);
  ASSERT_NEAR(fw_percentile(nc, 10, 100), 12, 0);
  ASSERT_NEAR(fw_percentile(nc, 1, 40), 0, 0);
}

TEST(facts_world_shape) {
  fw_world_t w;
  ASSERT_EQ(fw_init(&w, 0, 1), LATHE_ECONFIG);
  ASSERT_EQ(fw_init(&w, FW_MAX_ENTITIES + 1, 1), LATHE_ECONFIG);
  ASSERT_EQ(fw_init(&w, 2000, 7), 0);
  int count[31] = {0};
  char a[FW_NAME_MAX], b[FW_NAME_MAX];
  for (int e = 0; e < w.n; e++) {
    count[w.e[e].k]++;
    for (int x = 0; x < FW_ATTRS; x++) ASSERT(w.e[e].v[x] >= 0 && w.e[e].v[x] < fw_nvalues(x));
  }
  ASSERT_EQ(count[0], 800);
  ASSERT_EQ(count[1], 300);
  ASSERT_EQ(count[3], 300);
  ASSERT_EQ(count[10], 300);
  ASSERT_EQ(count[30], 300);
  for (int e = 0; e < 200; e++) /* names unique (a shuffle of the name space) */
    for (int f = e + 1; f < w.n; f++) ASSERT(strcmp(fw_name(&w, e, a), fw_name(&w, f, b)));
  ASSERT_EQ(fw_split(0), FW_TRAIN);
  ASSERT_EQ(fw_split(1), FW_TRAIN);
  ASSERT_EQ(fw_split(2), FW_VAL);
  ASSERT_EQ(fw_split(7), FW_TEST);
  fw_world_t w2; /* the same seed, the same world; another seed, another */
  ASSERT_EQ(fw_init(&w2, 2000, 7), 0);
  ASSERT(!memcmp(w.e, w2.e, 2000 * sizeof *w.e));
  fw_free(&w2);
  ASSERT_EQ(fw_init(&w2, 2000, 8), 0);
  ASSERT(memcmp(w.e, w2.e, 2000 * sizeof *w.e));
  fw_free(&w2), fw_free(&w);
}

TEST(facts_sentences_and_classifier) {
  fw_world_t w;
  ASSERT_EQ(fw_init(&w, 10, 3), 0);
  w.e[4].v[FW_CITY] = 0, w.e[4].v[FW_JOB] = 1, w.e[4].v[FW_BORN] = 14, w.e[4].v[FW_TEAM] = 2;
  char nm[FW_NAME_MAX], buf[256], want[256];
  fw_name(&w, 4, nm);
  ASSERT_EQ(fw_cloze(&w, 4, FW_JOB, buf, sizeof buf), (int)strlen(nm) + 11);
  snprintf(want, sizeof want, "%s works as a", nm);
  ASSERT_STR(buf, want);
  ASSERT(fw_bio(&w, 4, buf, sizeof buf) > 0);
  snprintf(
      want, sizeof want,
      "%s lives in paris . %s works as a pilot . %s was born in 1950s . %s plays for the bears .",
      nm, nm, nm, nm);
  ASSERT_STR(buf, want);
  ASSERT_EQ(fw_bio(&w, 4, buf, 20), -1); /* does not fit */
  uint64_t r = 5;
  ASSERT(fw_paragraph(&w, 4, &r, buf, sizeof buf) == (int)strlen(want));
  int v;
  ASSERT_EQ(fw_classify(FW_CITY, 0, " paris .", &v), FW_CORRECT);
  ASSERT_EQ(v, 0);
  ASSERT_EQ(fw_classify(FW_CITY, 0, " rome . bisul", &v), FW_WRONG);
  ASSERT_EQ(v, 2);
  ASSERT_EQ(fw_classify(FW_CITY, 0, " i don't know .", &v), FW_ABSTAIN);
  ASSERT_EQ(v, -1);
  ASSERT_EQ(fw_classify(FW_CITY, 0, " paris", &v), FW_MALFORMED);    /* no end */
  ASSERT_EQ(fw_classify(FW_CITY, 0, " pilot .", &v), FW_MALFORMED);  /* a job */
  ASSERT_EQ(fw_classify(FW_CITY, 0, " par is .", &v), FW_MALFORMED); /* not a value */
  ASSERT_EQ(fw_classify(FW_BORN, 14, "1950s.", &v), FW_CORRECT);     /* spaces optional */
  ASSERT_EQ(fw_classify(FW_TEAM, 2, " bears  .", &v), FW_CORRECT);
  ASSERT_EQ(fw_classify(7, 2, " bears .", &v), FW_MALFORMED); /* no such attribute */
  ASSERT_EQ(fw_classify(FW_CITY, 0, "", &v), FW_MALFORMED);
  fw_free(&w);
}

TEST(facts_free_text_answers) { /* SQuAD's normalisation, then any accepted answer */
  const char *nq[2] = {"14 December 1972 UTC", "December 1972"};
  const char *band[1] = {"The Beatles"};
  ASSERT_EQ(fw_classify_free(" december 1972 .", nq, 2), FW_CORRECT);
  ASSERT_EQ(fw_classify_free("14 December, 1972 UTC .", nq, 2), FW_CORRECT);
  ASSERT_EQ(fw_classify_free(" 1972 .", nq, 2), FW_WRONG);
  ASSERT_EQ(fw_classify_free(" beatles .", band, 1), FW_CORRECT); /* article dropped */
  ASSERT_EQ(fw_classify_free(" a   Beatles! .", band, 1), FW_CORRECT);
  ASSERT_EQ(fw_classify_free(" theBeatles .", band, 1), FW_WRONG); /* not a word */
  ASSERT_EQ(fw_classify_free(" i don't know .", band, 1), FW_ABSTAIN);
  ASSERT_EQ(fw_classify_free(" the beatles", band, 1), FW_MALFORMED);     /* no " ." */
  ASSERT_EQ(fw_classify_free(" the . beatles .", band, 1), FW_MALFORMED); /* empty */
  ASSERT_EQ(fw_classify_free(" beatles .", band, 0), FW_WRONG);
}

TEST(facts_bio_checker) {
  fw_world_t w;
  ASSERT_EQ(fw_init(&w, 10, 3), 0);
  w.e[4].v[FW_CITY] = 0, w.e[4].v[FW_JOB] = 1;
  char nm[FW_NAME_MAX], other[FW_NAME_MAX], buf[512];
  fw_name(&w, 4, nm), fw_name(&w, 5, other);
  int t, f;
  ASSERT(fw_bio(&w, 4, buf, sizeof buf) > 0); /* a generated true bio: four true facts */
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), 0);
  ASSERT_EQ(t, 4);
  ASSERT_EQ(f, 0);
  snprintf(buf, sizeof buf, " %s lives in rome . %s works as a pilot . %s lives in rome .", nm, nm,
           nm); /* a repeated false fact counts twice */
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), 0);
  ASSERT_EQ(t, 1);
  ASSERT_EQ(f, 2);
  snprintf(buf, sizeof buf, "%s lives in paris . %s works as a pilot .", nm, other);
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), -1);
  ASSERT_EQ(t, 1); /* another entity */
  snprintf(buf, sizeof buf, "%s lives in paris . %s works as a", nm, nm);
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), -1); /* cut off */
  snprintf(buf, sizeof buf, "%s lives in atlantis .", nm);
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), -1); /* not a value */
  snprintf(buf, sizeof buf, "%s resides in paris .", nm);
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), -1); /* another wording */
  snprintf(buf, sizeof buf, "%s lives in paris .x", nm);
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), -1);
  ASSERT_EQ(fw_bio_check(&w, 4, "", &t, &f), -1); /* no sentence */
  ASSERT_EQ(fw_bio_check(&w, 4, "   ", &t, &f), -1);
  ASSERT_EQ(fw_bio_check(&w, 11, "x", &t, &f), -1);
  fw_free(&w);
}

/* The judge on a random tiny GPT: P(true) = sigmoid(log p(" true") -
 * log p(" false")), each label scored after its own prompt; the batch pads
 * prompts of different lengths, which must not change a value. */
TEST(facts_judge_matches_direct_softmax) {
  fj_t j = {0};
  nn_rng_t r;
  nn_rng_seed(&r, 11);
  ASSERT_EQ(nn_tok_init_bytes(&j.tok), 0);
  nn_gpt_config_t gc = {j.tok.vocab, 48, 2, 2, 16};
  ASSERT_EQ(nn_gpt_init(&j.g, gc, &r), 0);
  const char *prompts[3] = {"a b lives in paris .", "a much longer statement .", "x"};
  double pt[3];
  ASSERT_EQ(fj_ptrue(&j, prompts, NULL, 3, pt), 0);
  for (int i = 0; i < 3; i++) {
    double l[2];
    for (int k = 0; k < 2; k++) {
      const char *cont = k ? " false" : " true";
      int ids[128], np = nn_tok_encode(&j.tok, prompts[i], strlen(prompts[i]), ids, 64);
      int T = np + nn_tok_encode(&j.tok, cont, strlen(cont), ids + np, 64);
      const float *z = nn_gpt_forward(&j.g, ids, 1, T);
      l[k] = 0;
      for (int t = np; t < T; t++)
        l[k] += nn_logprob_of(z + (size_t)(t - 1) * gc.vocab, gc.vocab, ids[t]);
    }
    ASSERT_NEAR(pt[i], 1 / (1 + exp(l[1] - l[0])), 1e-5);
    ASSERT(pt[i] > 0 && pt[i] < 1);
  }
  double one;
  ASSERT_EQ(fj_ptrue(&j, prompts + 1, NULL, 1, &one), 0); /* alone: the same value */
  ASSERT_NEAR(one, pt[1], 1e-6);
  /* the negation form: the cloze continued by " VALUE ." against " not VALUE ." */
  const char *clozes[2] = {"a b lives in", "c works as a"}, *values[2] = {"paris", "baker"};
  ASSERT_EQ(fj_ptrue(&j, clozes, values, 2, pt), 0);
  for (int i = 0; i < 2; i++) {
    double l[2];
    for (int k = 0; k < 2; k++) {
      char cont[64];
      snprintf(cont, sizeof cont, k ? " not %s ." : " %s .", values[i]);
      int ids[128], np = nn_tok_encode(&j.tok, clozes[i], strlen(clozes[i]), ids, 64);
      int T = np + nn_tok_encode(&j.tok, cont, strlen(cont), ids + np, 64);
      const float *z = nn_gpt_forward(&j.g, ids, 1, T);
      l[k] = 0;
      for (int t = np; t < T; t++)
        l[k] += nn_logprob_of(z + (size_t)(t - 1) * gc.vocab, gc.vocab, ids[t]);
    }
    ASSERT_NEAR(pt[i], 1 / (1 + exp(l[1] - l[0])), 1e-5);
  }
  nn_gpt_free(&j.g); /* a context with no room for a prompt token and " false" */
  gc.ctx = 6;
  ASSERT_EQ(nn_gpt_init(&j.g, gc, &r), 0);
  ASSERT_EQ(fj_ptrue(&j, prompts, NULL, 1, pt), LATHE_ESHAPE);
  fj_free(&j);
}

/* factrl's objective, written out: (1/B) sum_i sum_t in response_i
 * -(A_i log pi_t - kl (log pi_t - log ref_t)), one forward per sequence. */
static double rl_objective(nn_gpt_t *pol, nn_gpt_t *ref, const bios_t *b, const double *adv,
                           double kl) {
  double L = 0;
  int V = pol->cfg.vocab;
  for (int i = 0; i < b->B; i++) {
    const int *row = b->tok + (size_t)i * b->T;
    int T = b->plen[i] + b->rlen[i];
    float zp[64 * 260], zr[64 * 260];
    memcpy(zp, nn_gpt_forward(pol, row, 1, T), (size_t)T * V * sizeof(float));
    memcpy(zr, nn_gpt_forward(ref, row, 1, T), (size_t)T * V * sizeof(float));
    for (int t = b->plen[i]; t < T; t++) {
      double lp = nn_logprob_of(zp + (size_t)(t - 1) * V, V, row[t]);
      double lr = nn_logprob_of(zr + (size_t)(t - 1) * V, V, row[t]);
      L += -(adv[i] * lp - kl * (lp - lr)) / b->B;
    }
  }
  return L;
}

TEST(factrl_update_matches_objective_and_finite_differences) {
  fr_t s = {0};
  nn_rng_t r;
  nn_rng_seed(&r, 5);
  nn_gpt_config_t gc = {258, 32, 1, 2, 16};
  ASSERT_EQ(nn_gpt_init(&s.pol, gc, &r), 0);
  ASSERT_EQ(nn_gpt_init(&s.ref, gc, &r), 0); /* another init: the KL term is not zero */
  s.S = 2, s.kl = 0.1, s.lr = 0, s.clip = 0;
  /* four bios of two entities: prompt then response ids, rewards set by hand */
  int plen[4] = {3, 3, 4, 4}, rlen[4] = {5, 2, 6, 3};
  bios_t b = {0};
  b.B = 4, b.T = 10;
  int tok[40] = {0}, yes[4] = {2, 0, 0, 1}, no[4] = {0, 1, 0, 1}, bad[4] = {0, 0, 1, 0};
  float mask[40] = {0};
  for (int i = 0; i < 4; i++)
    for (int t = 0; t < plen[i] + rlen[i]; t++) {
      tok[i * 10 + t] = 2 + (int)nn_rng_below(&r, 256);
      mask[i * 10 + t] = t >= plen[i];
    }
  b.tok = tok, b.mask = mask, b.plen = plen, b.rlen = rlen, b.yes = yes, b.no = no, b.bad = bad;
  /* rewards 4, -3, -15 (malformed), -1; leave-one-out within each pair */
  double R[4] = {4, -3, -15, -1}, m = (4 - 3 - 15 - 1) / 4.0, var = 0, adv[4];
  for (int i = 0; i < 4; i++) {
    ASSERT_NEAR(reward_judge(&b, i), R[i], 0);
    var += (R[i] - m) * (R[i] - m) / 4;
  }
  for (int i = 0; i < 4; i++) adv[i] = (R[i] - R[i ^ 1]) / sqrt(var + 1e-8);
  double want = rl_objective(&s.pol, &s.ref, &b, adv, s.kl), loss, kl, gn;
  ASSERT_EQ(update(&s, &b, &loss, &kl, &gn), 0);
  ASSERT_NEAR(s.rvar, var, 1e-9);
  ASSERT_NEAR(loss, want, 1e-4 * (1 + fabs(want)));
  /* the gradient left in the policy's parameters, against central differences */
  nn_params_t *ps = &s.pol.params;
  int checked = 0;
  for (int k = 0; k < ps->np; k++) {
    float *w = nn_w(ps, k), *g = nn_g(ps, k);
    for (int j = 0; j < 2; j++) {
      size_t at = (size_t)(j * 7919 + k * 31) % ps->p[k].n;
      if (k == 0) at = (size_t)tok[13 + j] * 16 + (size_t)j; /* a wte row the batch uses */
      float keep = w[at];
      double eps = 1e-2;
      w[at] = keep + (float)eps;
      double lp = rl_objective(&s.pol, &s.ref, &b, adv, s.kl);
      w[at] = keep - (float)eps;
      double lm = rl_objective(&s.pol, &s.ref, &b, adv, s.kl);
      w[at] = keep;
      double fd = (lp - lm) / (2 * eps);
      ASSERT_NEAR(g[at], fd, 2e-3 + 3e-2 * fabs(fd));
      checked++;
    }
  }
  ASSERT(checked >= 20);
  /* judge_reward = expected: each fact's 5 P(true) - 3, a malformed bio -15 */
  double soft[4] = {0.6, -2.5, 9, 0};
  b.soft = soft, b.expected = 1;
  ASSERT_NEAR(reward_judge(&b, 0), 0.6, 0);
  ASSERT_NEAR(reward_judge(&b, 1), -2.5, 0);
  ASSERT_NEAR(reward_judge(&b, 2), -15, 0);
  nn_gpt_free(&s.pol), nn_gpt_free(&s.ref);
}
