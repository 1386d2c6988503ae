/* test_stepneg_update.c - the stepneg plugin's own code (train.c and
 * common.c included, so the plugin's code runs, not a copy) on hand-built
 * examples: which tokens each objective scores (per-step DPO: steps 1..c and
 * no <eos>; the prefix form: only the continuation after s_{c-1}), the
 * per-step DPO loss against nn_pref_pair on separately computed
 * log-probabilities, its parameter gradient against central finite
 * differences, and AWR's loss against nn_awr_loss on per-step sums. */
#include "../plugins/stepneg/common.c"
#include "../plugins/stepneg/train.c"
#include "test.h"

static const char *Q = "3+4*2", *NEG = "3+4=0\n0*2=1\nans=1";

static void setup(sg_t *s, int method) {
  memset(s, 0, sizeof *s);
  nn_rng_t r;
  nn_rng_seed(&r, 3);
  ASSERT(nn_tok_init_bytes(&s->tok) == 0);
  nn_gpt_config_t gc = {s->tok.vocab, 48, 1, 2, 16};
  ASSERT(nn_gpt_init(&s->pol, gc, &r) == 0);
  s->method = method, s->pref = (nn_pref_t){NN_PREF_DPO, 0.1, 0, 0};
  s->awr_beta = 0.5, s->w_max = 20;
  s->ids = malloc(2 * 8 * 48 * sizeof *s->ids), s->mask = malloc(2 * 8 * 48 * sizeof *s->mask);
  s->lp = malloc(16 * sizeof *s->lp), s->dlp = malloc(16 * sizeof *s->dlp);
}

static int scored(const seq_t *q, int *first) {
  int n = 0;
  *first = -1;
  for (int t = 0; t < q->len; t++)
    if (q->w[t] != 0) n++, *first = *first < 0 ? t : *first;
  return n;
}

TEST(stepneg_spans_scored) {
  sg_t s;
  setup(&s, STEP);
  seq_t a, b, c;
  int f;
  ASSERT(make_seq(&s, Q, NULL, 0, NEG, 2, 0, NULL, &a) == 0); /* steps 1..2, no <eos> */
  ASSERT_EQ(a.len, 6 + 12);
  ASSERT_EQ(scored(&a, &f), 12);
  ASSERT_EQ(f, 6); /* right after "3+4*2\n" */
  ASSERT(a.ids[a.len - 1] != NN_TOK_EOS);
  ASSERT(make_seq(&s, Q, NULL, 0, NEG, -1, 1, NULL, &b) == 0); /* outcome: all, <eos> */
  ASSERT_EQ(scored(&b, &f), 18);
  ASSERT_EQ(b.ids[b.len - 1], NN_TOK_EOS);
  /* prefix form, c = 2: prompt = question + step 1; the rest scored, <eos> too */
  ASSERT(make_seq(&s, Q, NEG, 1, "0*2=1\nans=1", -1, 1, NULL, &c) == 0);
  ASSERT_EQ(scored(&c, &f), 12);
  ASSERT_EQ(f, 12);
  double w[3] = {2, 0.5, 1}; /* AWR: each step's tokens carry its weight */
  seq_t d;
  ASSERT(make_seq(&s, Q, NULL, 0, NEG, -1, 1, w, &d) == 0);
  ASSERT_NEAR(d.w[6], 2, 0);
  ASSERT_NEAR(d.w[6 + 6], 0.5, 0);
  ASSERT_NEAR(d.w[d.len - 1], 1, 0);
  ASSERT_EQ(d.steps, 3);
  free(a.ids), free(a.w), free(b.ids), free(b.w), free(c.ids), free(c.w), free(d.ids), free(d.w);
  seq_t e;
  ASSERT_EQ(make_seq(&s, "9999999999999999999999999999999999999999999999999", NULL, 0, NEG, -1, 1,
                     NULL, &e),
            1); /* does not fit: left out */
  nn_tok_free(&s.tok), nn_gpt_free(&s.pol);
  free(s.ids), free(s.mask), free(s.lp), free(s.dlp);
}

static double seq_lp(sg_t *s, seq_t *q) {
  float lp;
  seq_t *one[1] = {q};
  int T = stack(s, one, 1);
  nn_gpt_logprobs(&s->pol, &lp, s->ids, s->mask, 1, T);
  return lp;
}

TEST(stepneg_dpo_step_loss_and_gradient) {
  sg_t s;
  setup(&s, STEP);
  item_t it = {{{0}}};
  ASSERT(make_seq(&s, Q, NULL, 0, "3+4=0\n0*2=0\nans=0", -1, 1, NULL, &it.s[0]) == 0);
  ASSERT(make_seq(&s, Q, NULL, 0, NEG, 2, 0, NULL, &it.s[1]) == 0);
  it.ref[0] = seq_lp(&s, &it.s[0]) + 0.3, it.ref[1] = seq_lp(&s, &it.s[1]) - 0.2;
  s.it = &it, s.nit = 1;
  int idx[1] = {0};
  double acc, L = loss_grad(&s, idx, 1, &acc);
  double pw = seq_lp(&s, &it.s[0]), pl = seq_lp(&s, &it.s[1]);
  ASSERT_NEAR(L, nn_pref_pair(&s.pref, pw, pl, it.ref[0], it.ref[1], 1, 1, NULL, NULL), 1e-6);
  loss_grad(&s, idx, 1, &acc); /* the gradient of this loss, in the parameters */
  nn_params_t *ps = &s.pol.params;
  float *g = malloc(ps->total * sizeof *g);
  memcpy(g, ps->g, ps->total * sizeof *g);
  for (size_t k = 0; k < ps->total; k += ps->total / 23 + 1) {
    float keep = ps->w[k];
    ps->w[k] = keep + 1e-2f;
    double lp_ = loss_grad(&s, idx, 1, &acc);
    ps->w[k] = keep - 1e-2f;
    double lm = loss_grad(&s, idx, 1, &acc);
    ps->w[k] = keep;
    ASSERT_NEAR(g[k], (lp_ - lm) / 2e-2, 2e-4 + 2e-2 * fabs(g[k]));
  }
  free(g), free_item(&it);
  nn_tok_free(&s.tok), nn_gpt_free(&s.pol);
  free(s.ids), free(s.mask), free(s.lp), free(s.dlp);
}

TEST(stepneg_awr_loss_is_the_spec_reduction) {
  sg_t s;
  setup(&s, AWR);
  const double A[2][3] = {{0.125, -0.5, 0}, {0.25, 0.1, -0.3}};
  item_t it[2] = {{{{0}}}};
  const char *texts[2] = {NEG, "3+4=0\n0*2=0\nans=0"};
  double lp[6], w[6];
  int n = 0;
  for (int k = 0; k < 2; k++) {
    double wk[3];
    for (int i = 0; i < 3; i++) wk[i] = nn_awr_weight(A[k][i], 0.5, 20);
    ASSERT(make_seq(&s, Q, NULL, 0, texts[k], -1, 1, wk, &it[k].s[0]) == 0);
    /* each step's log-probability: its tokens, one step at a time */
    seq_t *q = &it[k].s[0];
    float *tl = malloc((size_t)q->len * sizeof *tl);
    ASSERT(nn_gpt_token_logprobs(&s.pol, q->ids, 1, q->len, tl) == 0);
    int st[3], ends[3], ns, plen = 6;
    (void)st;
    sn_solution(&s.tok, texts[k], -1, 1, s.ids, 48, ends, &ns);
    ASSERT_EQ(ns, 3);
    for (int i = 0, t = plen; i < 3; i++, n++) {
      lp[n] = 0, w[n] = wk[i];
      for (; t < plen + ends[i]; t++) lp[n] += tl[t];
    }
    free(tl);
  }
  s.it = it, s.nit = 2;
  int idx[2] = {0, 1};
  double acc, L = loss_grad(&s, idx, 2, &acc);
  ASSERT_NEAR(L, nn_awr_loss(lp, w, n, NULL), 1e-4);
  free_item(&it[0]), free_item(&it[1]);
  nn_tok_free(&s.tok), nn_gpt_free(&s.pol);
  free(s.ids), free(s.mask), free(s.lp), free(s.dlp);
}
