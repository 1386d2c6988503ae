/* train.c - training on Monte-Carlo step values (specs/per_step_negatives.md,
 * "Objectives"): the stepneg plugin.
 *
 * From the policy of init_run (pi_sft, also the frozen reference) and a
 * stepvalue dataset, `method` trains with
 *   sft          NLL on the teacher solutions (more SFT: the equal-steps baseline)
 *   rft          NLL on the teacher solutions and up to `rft_keep` distinct
 *                correct self-samples per problem (rejection-sampling FT)
 *   dpo_outcome  DPO: a positive against the whole negative
 *   dpo_step     DPO: a positive against the negative cut after its critical
 *                step (steps 1..c scored, no <eos>)
 *   dpo_prefix   DPO on the continuation after s_{c-1}: a successful rollout
 *                from s_{c-1} against the negative's steps c..T (pairs
 *                without a successful rollout are left out)
 *   awr          advantage-weighted regression on the valued samples' steps:
 *                -(1/steps) sum_i w_i log pi(step i), w_i = min(exp(A_i/awr_beta), w_max)
 * The positive of a pair is a correct self-sample of the problem (in turn)
 * or, when none, the teacher's solution. DPO's losses are nn_pref_pair's;
 * only the tokens after the shared prompt (and prefix) are scored. Held-out
 * pass@1 on eval_dataset every eval_every steps (eval/pass1 greedy,
 * eval/pass1_sampled, eval/spurious: traces with a right answer and a wrong
 * line); test_dataset only once, after the last step (test/...). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stepneg.h"

static const lathe_opt_t opts[] = {
    {"dataset", LATHE_STR, "", 0, 0, NULL, "a stepvalue dataset"},
    {"init_run", LATHE_INT, "0", 0, 4e9, NULL, "the SFT run: the start and the reference"},
    {"method", LATHE_STR, "dpo_step", 0, 0, "sft|rft|dpo_outcome|dpo_step|dpo_prefix|awr",
     "more SFT, RFT, DPO on whole or cut negatives or on continuations, AWR"},
    {"problems", LATHE_INT, "0", 0, 1e9, NULL, "use the first N problems (0: all)"},
    {"beta", LATHE_NUM, "0.1", 1e-6, 1e6, NULL, "DPO's beta"},
    {"awr_beta", LATHE_NUM, "0.5", 1e-6, 1e6, NULL, "AWR's temperature"},
    {"w_max", LATHE_NUM, "20", 0, 1e9, NULL, "AWR's weight clip"},
    {"values", LATHE_STR, "plain", 0, 0, "plain|bok", "which advantages AWR uses"},
    {"rft_keep", LATHE_INT, "4", 1, 64, NULL,
     "RFT: distinct correct self-samples kept per problem"},
    {"steps", LATHE_INT, "500", 1, 1e9, NULL, "training steps"},
    {"batch", LATHE_INT, "32", 1, 4096, NULL, "examples (or pairs) per step"},
    {"lr", LATHE_NUM, "0.0001", 0, 10, NULL, "peak learning rate (AdamW)"},
    {"warmup", LATHE_INT, "20", 0, 1e9, NULL, "linear warm-up steps, then cosine decay to 10%"},
    {"grad_clip", LATHE_NUM, "1", 0, 1e9, NULL, "gradient norm clip (0: off)"},
    {"eval_dataset", LATHE_STR, "", 0, 0, NULL, "held-out math problems (validation)"},
    {"eval_problems", LATHE_INT, "500", 1, 1e9, NULL, "validation problems used"},
    {"eval_every", LATHE_INT, "100", 1, 1e9, NULL, "steps between validations"},
    {"test_dataset", LATHE_STR, "", 0, 0, NULL, "test problems, evaluated once at the end"},
    {"test_problems", LATHE_INT, "1000", 1, 1e9, NULL, "test problems used"},
    {"mod", LATHE_INT, "97", 2, 1000, NULL, "arith's modulus (for the line check)"},
    {NULL}};

enum { SFT, RFT, OUTCOME, STEP, PREFIX, AWR };
static const char *methods[] = {"sft", "rft", "dpo_outcome", "dpo_step", "dpo_prefix", "awr"};

/* A scored sequence: ids, and the weight of each token as a target
 * (w[t]: token t, t >= 1; 0 on the prompt). */
typedef struct {
  int *ids, len;
  float *w;
  int steps; /* AWR: steps scored */
} seq_t;

typedef struct {
  seq_t s[2];    /* NLL and AWR: s[0] only; DPO: chosen, rejected */
  double ref[2]; /* DPO: log pi_ref of each scored span */
} item_t;

typedef struct {
  nn_tok_t tok;
  nn_gpt_t pol;
  nn_rng_t rng;
  int method, B, mod;
  nn_pref_t pref;
  double awr_beta, w_max;
  const char *awr_values;
  item_t *it;
  int nit, cap;
  sn_prob_t *ev, *te;
  int64_t nev, nte;
  int64_t step, steps, warmup, eval_every;
  double lr, clip;
  int *ids;
  float *mask, *lp, *dlp;
} sg_t;

static void free_item(item_t *x) {
  for (int k = 0; k < 2; k++) free(x->s[k].ids), free(x->s[k].w);
}

static void destroy(void *self) {
  sg_t *s = self;
  if (!s) return;
  for (int i = 0; i < s->nit; i++) free_item(&s->it[i]);
  free(s->it);
  sn_free(s->ev, s->nev), sn_free(s->te, s->nte);
  nn_tok_free(&s->tok), nn_gpt_free(&s->pol);
  free(s->ids), free(s->mask), free(s->lp), free(s->dlp);
  free(s);
}

/* prompt ++ (prefix steps of `pre`: its first npre lines) ++ text, the
 * tokens of `text` (its first `steps` lines; all: -1) weighted 1 (or by
 * step weights sw when not NULL); eos after a whole text. Returns 0, 1 when
 * it does not fit (left out), or LATHE_ENOMEM. */
static int make_seq(sg_t *s, const char *q, const char *pre, int npre, const char *text, int steps,
                    int eos, const double *sw, seq_t *out) {
  int C = s->pol.cfg.ctx, *ids = malloc((size_t)C * sizeof *ids), end[SN_MAX_STEPS], ns = 0;
  float *w = calloc((size_t)C, sizeof *w);
  if (!ids || !w) {
    free(ids), free(w);
    return LATHE_ENOMEM;
  }
  int k = sn_prompt(&s->tok, q, ids, C), m = 0;
  if (k >= 0 && pre && npre > 0) {
    m = sn_solution(&s->tok, pre, npre, 0, ids + k, C - k, end, &ns);
    k = m < 0 ? -1 : k + m;
  }
  int start = k, n = k < 0 ? -1 : sn_solution(&s->tok, text, steps, eos, ids + k, C - k, end, &ns);
  if (k < 1 || n < 1) {
    free(ids), free(w);
    return 1;
  }
  for (int i = 0, t = start; i < ns; i++)
    for (; t < start + end[i]; t++) w[t] = sw ? (float)sw[i] : 1.0f;
  *out = (seq_t){ids, start + n, w, ns};
  return 0;
}

static double *arr(json_object *o, const char *k, int n, double *v) {
  json_object *a;
  if (!json_object_object_get_ex(o, k, &a) || !json_object_is_type(a, json_type_array) ||
      (int)json_object_array_length(a) != n)
    return NULL;
  for (int i = 0; i < n; i++) v[i] = json_object_get_double(json_object_array_get_idx(a, i));
  return v;
}

static const char *str(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : NULL;
}

static int add_item(sg_t *s, item_t *x) {
  if (s->nit == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    item_t *p = realloc(s->it, (size_t)cap * sizeof *p);
    if (!p) return LATHE_ENOMEM;
    s->it = p, s->cap = cap;
  }
  s->it[s->nit++] = *x;
  return 0;
}

/* The items of one problem record. */
static int build(sg_t *s, const lathe_host_t *h, lathe_ctx_t *c, json_object *o, int64_t i,
                 int *skipped, int *valued) {
  const char *q = str(o, "question"), *sol = str(o, "solution");
  json_object *samples;
  if (q && sol && json_object_object_get_ex(o, "skipped", NULL)) return 0; /* did not fit */
  if (!q || !sol || !json_object_object_get_ex(o, "samples", &samples) ||
      !json_object_is_type(samples, json_type_array))
    return h->fail(c, LATHE_EDATA,
                   "dataset record %lld: not a stepvalue record (question, "
                   "solution, samples)",
                   (long long)i);
  int ns = (int)json_object_array_length(samples), rc = 0, npos = 0, used = 0;
  const char *pos[64];
  for (int k = 0; k < ns && npos < 64; k++) { /* distinct correct self-samples */
    json_object *e = json_object_array_get_idx(samples, k), *v;
    const char *t = str(e, "text");
    if (!t || !json_object_object_get_ex(e, "correct", &v)) continue;
    if (!json_object_get_boolean(v)) continue;
    int dup = 0;
    for (int j = 0; j < npos; j++) dup |= !strcmp(pos[j], t);
    if (!dup) pos[npos++] = t;
  }
  item_t x = {{{0}}};
  if (s->method == SFT || s->method == RFT) {
    int keep = s->method == RFT ? (int)h->cfg_int(c, "rft_keep") : 0;
    for (int k = -1; k < (keep < npos ? keep : npos) && !rc; k++) {
      memset(&x, 0, sizeof x);
      int r = make_seq(s, q, NULL, 0, k < 0 ? sol : pos[k], -1, 1, NULL, &x.s[0]);
      if (r == 1)
        (*skipped)++;
      else if (!(rc = r))
        rc = add_item(s, &x);
    }
    return rc;
  }
  for (int k = 0; k < ns && !rc; k++) {
    json_object *e = json_object_array_get_idx(samples, k), *v;
    const char *t = str(e, "text");
    int T = json_object_object_get_ex(e, "steps", &v) ? json_object_get_int(v) : -1;
    int correct = json_object_object_get_ex(e, "correct", &v) && json_object_get_boolean(v);
    int cs = json_object_object_get_ex(e, "critical", &v) ? json_object_get_int(v) : 0;
    double a[SN_MAX_STEPS], w[SN_MAX_STEPS];
    int has =
        T >= 1 && T <= SN_MAX_STEPS &&
        arr(e, s->method == AWR && !strcmp(s->awr_values, "bok") ? "advantages_bok" : "advantages",
            T, a);
    int st[SN_MAX_STEPS];
    if (!t || T < 0)
      return h->fail(c, LATHE_EDATA,
                     "dataset record %lld: sample %d lacks text or "
                     "steps",
                     (long long)i, k);
    if (T != mt_steps(t, st, SN_MAX_STEPS)) /* the per-step arrays index the text's steps */
      return h->fail(c, LATHE_EDATA,
                     "dataset record %lld: sample %d says %d steps, its text has %d", (long long)i,
                     k, T, mt_steps(t, st, SN_MAX_STEPS));
    if (!has || (correct && s->method != AWR)) continue;
    if (cs < 1 || cs > T)
      return h->fail(c, LATHE_EDATA,
                     "dataset record %lld: sample %d's critical step %d is outside "
                     "1..%d",
                     (long long)i, k, cs, T);
    (*valued)++;
    memset(&x, 0, sizeof x);
    int r = 0;
    if (s->method == AWR) {
      for (int j = 0; j < T; j++) w[j] = nn_awr_weight(a[j], s->awr_beta, s->w_max);
      r = make_seq(s, q, NULL, 0, t, -1, 1, w, &x.s[0]);
    } else {
      const char *chosen = npos ? pos[used++ % npos] : sol;
      if (s->method == PREFIX) {
        const char *cont = str(e, "chosen_continuation");
        if (!cont) {
          (*skipped)++;
          continue;
        }
        const char *rest = t + st[cs - 1]; /* the rejected: the negative's steps c..T */
        r = make_seq(s, q, t, cs - 1, cont, -1, 1, NULL, &x.s[0]);
        if (!r) r = make_seq(s, q, t, cs - 1, rest, -1, 1, NULL, &x.s[1]);
      } else {
        r = make_seq(s, q, NULL, 0, chosen, -1, 1, NULL, &x.s[0]);
        if (!r)
          r = make_seq(s, q, NULL, 0, t, s->method == STEP ? cs : -1, s->method != STEP || cs == T,
                       NULL, &x.s[1]);
      }
    }
    if (r == 1) {
      free_item(&x), (*skipped)++;
      continue;
    }
    if ((rc = r) || (rc = add_item(s, &x))) free_item(&x);
  }
  return rc;
}

/* Stack sequences seqs[0..n) into s->ids / s->mask (B, T); returns T. */
static int stack(sg_t *s, seq_t *const *seqs, int n) {
  int T = 2;
  for (int b = 0; b < n; b++) T = seqs[b]->len > T ? seqs[b]->len : T;
  for (int b = 0; b < n; b++)
    for (int t = 0; t < T; t++) {
      size_t i = (size_t)b * T + t;
      s->ids[i] = t < seqs[b]->len ? seqs[b]->ids[t] : NN_TOK_PAD;
      s->mask[i] = t < seqs[b]->len ? seqs[b]->w[t] : 0.0f;
    }
  return T;
}

static int dpo(const sg_t *s) {
  return s->method == OUTCOME || s->method == STEP || s->method == PREFIX;
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  sg_t *s = calloc(1, sizeof *s);
  if (!s) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = s;
  const char *m = h->cfg_str(c, "method");
  for (int i = 0; i < 6; i++)
    if (!strcmp(m, methods[i])) s->method = i;
  s->B = (int)h->cfg_int(c, "batch"), s->mod = (int)h->cfg_int(c, "mod");
  s->pref = (nn_pref_t){NN_PREF_DPO, h->cfg_num(c, "beta"), 0, 0};
  s->awr_beta = h->cfg_num(c, "awr_beta"), s->w_max = h->cfg_num(c, "w_max");
  s->awr_values = h->cfg_str(c, "values");
  s->steps = h->cfg_int(c, "steps"), s->warmup = h->cfg_int(c, "warmup");
  s->eval_every = h->cfg_int(c, "eval_every");
  s->lr = h->cfg_num(c, "lr"), s->clip = h->cfg_num(c, "grad_clip");
  nn_rng_seed(&s->rng, h->seed(c));
  int rc = sn_policy(h, c, "init_run", (uint32_t)h->cfg_int(c, "init_run"), &s->tok, &s->pol);
  if (rc) return rc;
  const char *ev = h->cfg_str(c, "eval_dataset"), *te = h->cfg_str(c, "test_dataset");
  if (*ev && (s->nev = sn_read(h, c, ev, h->cfg_int(c, "eval_problems"), &s->ev)) < 0) {
    rc = (int)s->nev, s->nev = 0;
    return rc;
  }
  if (*te && (s->nte = sn_read(h, c, te, h->cfg_int(c, "test_problems"), &s->te)) < 0) {
    rc = (int)s->nte, s->nte = 0;
    return rc;
  }
  /* the items */
  const char *ds = h->cfg_str(c, "dataset");
  int64_t n = h->dataset_count(c, ds), lim = h->cfg_int(c, "problems");
  if (n < 0) return (int)n;
  if (lim > 0 && n > lim) n = lim;
  int skipped = 0, valued = 0;
  for (int64_t i = 0; i < n && !rc; i++) {
    char *js = h->dataset_get(c, ds, i);
    json_object *o = js ? json_tokener_parse(js) : NULL;
    free(js);
    if (!o) return h->fail(c, LATHE_EDATA, "dataset '%s' record %lld: not JSON", ds, (long long)i);
    rc = build(s, h, c, o, i, &skipped, &valued);
    json_object_put(o);
  }
  if (rc) return rc == LATHE_ENOMEM ? h->fail(c, rc, "out of memory") : rc;
  if (!s->nit)
    return h->fail(c, LATHE_EDATA, "stepneg: dataset '%s' gives %s no example (%s)", ds, m,
                   s->method == PREFIX ? "no negative has a successful rollout from before its "
                                         "critical step"
                   : dpo(s) || s->method == AWR ? "no valued samples: was it made by stepvalue?"
                                                : "no problems");
  int C = s->pol.cfg.ctx, R = 2 * s->B > 256 ? 2 * s->B : 256;
  s->ids = malloc((size_t)R * C * sizeof *s->ids),
  s->mask = malloc((size_t)R * C * sizeof *s->mask);
  s->lp = malloc((size_t)R * sizeof *s->lp), s->dlp = malloc((size_t)R * sizeof *s->dlp);
  if (!s->ids || !s->mask || !s->lp || !s->dlp) return h->fail(c, LATHE_ENOMEM, "out of memory");
  if (dpo(s)) { /* log pi_ref (= the starting policy) of every scored span, once */
    seq_t *seqs[256] = {0};
    for (int i0 = 0; i0 < s->nit; i0 += 128) {
      int g = s->nit - i0 < 128 ? s->nit - i0 : 128;
      for (int k = 0; k < g; k++) seqs[k] = &s->it[i0 + k].s[0], seqs[g + k] = &s->it[i0 + k].s[1];
      int T = stack(s, seqs, 2 * g);
      nn_gpt_logprobs(&s->pol, s->lp, s->ids, s->mask, 2 * g, T);
      for (int k = 0; k < g; k++)
        s->it[i0 + k].ref[0] = s->lp[k], s->it[i0 + k].ref[1] = s->lp[g + k];
    }
  }
  h->set_total(c, s->steps);
  h->log(c,
         "%s: %d examples from %lld problems (%d valued samples; %d left out: too long or no "
         "successful rollout)",
         m, s->nit, (long long)n, valued, skipped);
  return 0;
}

static void evaluate(sg_t *s, const lathe_host_t *h, lathe_ctx_t *c, const char *pre,
                     const sn_prob_t *p, int64_t n) {
  sn_eval_t e;
  char k[64];
  if (!n || sn_evaluate(&s->pol, &s->tok, p, n, s->mod, 1, nn_get_threads(), &e)) return;
  snprintf(k, sizeof k, "%s/pass1", pre), h->metric(c, k, e.greedy);
  snprintf(k, sizeof k, "%s/pass1_sampled", pre), h->metric(c, k, e.sampled);
  if (e.arith) {
    snprintf(k, sizeof k, "%s/spurious", pre), h->metric(c, k, e.spurious);
    snprintf(k, sizeof k, "%s/spurious_sampled", pre), h->metric(c, k, e.spurious_sampled);
  }
}

/* One step's loss and gradient on items idx[0..n): returns the loss. */
static double loss_grad(sg_t *s, const int *idx, int n, double *acc) {
  seq_t *seqs[8192] = {0};
  int two = dpo(s), G = two ? 2 * n : n;
  for (int k = 0; k < n; k++) {
    seqs[k] = &s->it[idx[k]].s[0];
    if (two) seqs[n + k] = &s->it[idx[k]].s[1];
  }
  int T = stack(s, seqs, G);
  nn_gpt_logprobs(&s->pol, s->lp, s->ids, s->mask, G, T);
  double loss = 0, wins = 0;
  if (two) {
    for (int k = 0; k < n; k++) {
      const item_t *x = &s->it[idx[k]];
      double dw, dl;
      loss += nn_pref_pair(&s->pref, s->lp[k], s->lp[n + k], x->ref[0], x->ref[1], 1, 1, &dw, &dl);
      s->dlp[k] = (float)(dw / n), s->dlp[n + k] = (float)(dl / n);
      wins += (s->lp[k] - x->ref[0]) > (s->lp[n + k] - x->ref[1]);
    }
    loss /= n;
  } else { /* NLL: mean over tokens; AWR: mean over steps of w_i log pi(step i) */
    double den = 0;
    for (int k = 0; k < n; k++) {
      if (s->method == AWR)
        den += seqs[k]->steps;
      else
        for (int t = 0; t < seqs[k]->len; t++) den += seqs[k]->w[t];
    }
    for (int k = 0; k < n; k++) loss -= s->lp[k], s->dlp[k] = (float)(-1.0 / den);
    loss /= den;
  }
  nn_params_zero_grad(&s->pol.params);
  nn_gpt_logprobs_backward(&s->pol, s->dlp, s->mask);
  if (acc) *acc = two ? wins / n : NAN;
  return loss;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  sg_t *s = self;
  if (s->step % s->eval_every == 0) evaluate(s, h, c, "eval", s->ev, s->nev);
  int idx[4096], n = s->B;
  for (int k = 0; k < n; k++) idx[k] = (int)nn_rng_below(&s->rng, (uint32_t)s->nit);
  double acc, loss = loss_grad(s, idx, n, &acc);
  double gn = nn_clip_grad_norm(&s->pol.params, s->clip > 0 ? (float)s->clip : 0);
  nn_adamw_t o = nn_adamw_default();
  o.weight_decay = 0;
  float lr = nn_lr_at(NN_SCHED_COSINE, (float)s->lr, s->step, s->warmup, s->steps, 0.1f);
  if (nn_adamw_step(&s->pol.params, &o, lr)) return h->fail(c, LATHE_ENOMEM, "out of memory");
  s->step++;
  h->metric(c, "loss", loss), h->metric(c, "grad_norm", gn);
  if (!isnan(acc)) h->metric(c, "rewards/accuracies", acc);
  if (s->step < s->steps) return LATHE_CONTINUE;
  evaluate(s, h, c, "eval", s->ev, s->nev);
  evaluate(s, h, c, "test", s->te, s->nte);
  return LATHE_DONE;
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  sg_t *s = self;
  nn_lm_save(&s->tok, &s->pol, b, 1);
  uint32_t v = 1;
  LATHE_PUT(b, v), LATHE_PUT(b, s->step), LATHE_PUT(b, s->rng);
  return b->err ? h->fail(c, LATHE_ENOMEM, "out of memory") : 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  sg_t *s = self;
  int rc = nn_lm_restore(&s->tok, &s->pol, b);
  if (rc) return h->fail(c, LATHE_ECKPT, "stepneg: %s", nn_lm_restore_error(rc));
  uint32_t v;
  LATHE_GET(b, v), LATHE_GET(b, s->step), LATHE_GET(b, s->rng);
  if (b->err || v != 1) return h->fail(c, LATHE_ECKPT, "stepneg: truncated checkpoint");
  if (s->step < 0 || s->step > s->steps)
    return h->fail(c, LATHE_ECKPT, "stepneg: checkpoint field 'step' = %lld is outside [0, %lld]",
                   (long long)s->step, (long long)s->steps);
  return 0;
}

static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  if (!*h->cfg_str(c, "dataset"))
    return h->fail(c, LATHE_ECONFIG, "stepneg: no dataset given (dataset = a stepvalue dataset)");
  if (!h->cfg_int(c, "init_run"))
    return h->fail(c, LATHE_ECONFIG, "stepneg: no policy given (init_run = RUN of an sft run)");
  return 0;
}

static const lathe_algorithm_t algorithm = {
    .step = step, .main_metric = "eval/pass1", .main_lower_better = 0};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "stepneg",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "math RL on per-step negatives: SFT, RFT, outcome / per-step DPO, AWR",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .validate = validate,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_stepneg, plugin)
