/* test_facts.c - the facts world of specs/unfamiliar.md: the spec's test
 * vectors (the value of stating a fact, per-fact and bio rewards, the 40th
 * percentile and its unfamiliar set), the world's shape (unique names, the
 * 40% at k = 0, splits), the answer classifier on hand-written outputs, the
 * fact checker on generated and damaged bios, and factqa's judge P(true)
 * against the softmax of the two label log-probabilities computed here with
 * a forward per sequence. */
#include "../plugins/facts/factqa.c"
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
  ASSERT_EQ(count[1], 300); ASSERT_EQ(count[3], 300); ASSERT_EQ(count[10], 300);
  ASSERT_EQ(count[30], 300);
  for (int e = 0; e < 200; e++) /* names unique (a shuffle of the name space) */
    for (int f = e + 1; f < w.n; f++) ASSERT(strcmp(fw_name(&w, e, a), fw_name(&w, f, b)));
  ASSERT_EQ(fw_split(0), FW_TRAIN); ASSERT_EQ(fw_split(1), FW_TRAIN);
  ASSERT_EQ(fw_split(2), FW_VAL); ASSERT_EQ(fw_split(7), FW_TEST);
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
  snprintf(want, sizeof want,
           "%s lives in paris . %s works as a pilot . %s was born in 1950s . %s plays for the bears .",
           nm, nm, nm, nm);
  ASSERT_STR(buf, want);
  ASSERT_EQ(fw_bio(&w, 4, buf, 20), -1); /* does not fit */
  uint64_t r = 5;
  ASSERT(fw_paragraph(&w, 4, &r, buf, sizeof buf) == (int)strlen(want));
  int v;
  ASSERT_EQ(fw_classify(FW_CITY, 0, " paris .", &v), FW_CORRECT); ASSERT_EQ(v, 0);
  ASSERT_EQ(fw_classify(FW_CITY, 0, " rome . bisul", &v), FW_WRONG); ASSERT_EQ(v, 2);
  ASSERT_EQ(fw_classify(FW_CITY, 0, " i don't know .", &v), FW_ABSTAIN); ASSERT_EQ(v, -1);
  ASSERT_EQ(fw_classify(FW_CITY, 0, " paris", &v), FW_MALFORMED);      /* no end */
  ASSERT_EQ(fw_classify(FW_CITY, 0, " pilot .", &v), FW_MALFORMED);    /* a job */
  ASSERT_EQ(fw_classify(FW_CITY, 0, " par is .", &v), FW_MALFORMED);   /* not a value */
  ASSERT_EQ(fw_classify(FW_BORN, 14, "1950s.", &v), FW_CORRECT);       /* spaces optional */
  ASSERT_EQ(fw_classify(FW_TEAM, 2, " bears  .", &v), FW_CORRECT);
  ASSERT_EQ(fw_classify(7, 2, " bears .", &v), FW_MALFORMED);          /* no such attribute */
  ASSERT_EQ(fw_classify(FW_CITY, 0, "", &v), FW_MALFORMED);
  fw_free(&w);
}

TEST(facts_bio_checker) {
  fw_world_t w;
  ASSERT_EQ(fw_init(&w, 10, 3), 0);
  w.e[4].v[FW_CITY] = 0, w.e[4].v[FW_JOB] = 1;
  char nm[FW_NAME_MAX], other[FW_NAME_MAX], buf[512];
  fw_name(&w, 4, nm), fw_name(&w, 5, other);
  int t, f;
  ASSERT(fw_bio(&w, 4, buf, sizeof buf) > 0); /* a generated true bio: four true facts */
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), 0); ASSERT_EQ(t, 4); ASSERT_EQ(f, 0);
  snprintf(buf, sizeof buf, " %s lives in rome . %s works as a pilot . %s lives in rome .", nm, nm,
           nm); /* a repeated false fact counts twice */
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), 0); ASSERT_EQ(t, 1); ASSERT_EQ(f, 2);
  snprintf(buf, sizeof buf, "%s lives in paris . %s works as a pilot .", nm, other);
  ASSERT_EQ(fw_bio_check(&w, 4, buf, &t, &f), -1); ASSERT_EQ(t, 1); /* another entity */
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

/* factqa's judge on a random tiny GPT: P(true) = sigmoid(log p(" true") -
 * log p(" false")), each label scored after its own prompt; the batch pads
 * prompts of different lengths, which must not change a value. */
TEST(facts_judge_matches_direct_softmax) {
  fq_t s = {0};
  nn_rng_t r;
  nn_rng_seed(&r, 11);
  ASSERT_EQ(nn_tok_init_bytes(&s.tok), 0);
  nn_gpt_config_t gc = {s.tok.vocab, 48, 2, 2, 16};
  ASSERT_EQ(nn_gpt_init(&s.g, gc, &r), 0);
  static const char *labels[2] = {" true", " false"};
  for (int j = 0; j < 2; j++)
    s.nlab[j] = nn_tok_encode(&s.tok, labels[j], strlen(labels[j]), s.lab[j], 8);
  ASSERT_EQ(s.nlab[0], 5); ASSERT_EQ(s.nlab[1], 6);
  const char *prompts[3] = {"check : a b .", "check : a much longer statement .", "x"};
  fq_rec_t rec[3] = {{0}};
  for (int i = 0; i < 3; i++) rec[i].text = (char *)prompts[i];
  s.r = rec, s.n = 3, s.mode = M_JUDGE;
  double pt[3];
  s.ptrue = pt;
  ASSERT_EQ(step_judge(&s, 0, 3), 0);
  for (int i = 0; i < 3; i++) {
    double l[2];
    for (int j = 0; j < 2; j++) {
      int ids[64], np = nn_tok_encode(&s.tok, prompts[i], strlen(prompts[i]), ids, 64);
      memcpy(ids + np, s.lab[j], (size_t)s.nlab[j] * sizeof *ids);
      int T = np + s.nlab[j];
      const float *z = nn_gpt_forward(&s.g, ids, 1, T);
      l[j] = 0;
      for (int t = np; t < T; t++) l[j] += nn_logprob_of(z + (size_t)(t - 1) * gc.vocab, gc.vocab, ids[t]);
    }
    ASSERT_NEAR(pt[i], 1 / (1 + exp(l[1] - l[0])), 1e-5);
    ASSERT(pt[i] > 0 && pt[i] < 1);
  }
  nn_tok_free(&s.tok), nn_gpt_free(&s.g);
}
