/* pairs.c - the pref plugin on a preference dataset (see pref.h): offline
 * DPO, cDPO, robust, hinge, IPO or Pref-FT (sft: NLL of the chosen reply) on
 * stored (prompt, chosen, rejected) pairs (a record whose label is below 0.5
 * is read the other way round; a tie, 0.5, is left out). The policy and the frozen
 * reference both start as init_run's model (an SFT run, tokenizer included);
 * pi_ref's log-probabilities are computed once for every pair (TRL's
 * precompute_ref_log_probs). Chosen and rejected are scored in one stacked
 * batch, over their response tokens and <eos> only. The held-out pairs (the
 * same index split as the sft plugin's) give the eval/rewards metrics, next to
 * eval/length_baseline_accuracy: how often the longer reply is the chosen one.
 * On-policy (onpolicy with reward_run) the training pairs lend their prompts;
 * the responses are the policy's, ranked by the reward model, pi_ref's
 * log-probabilities computed as they come (rm/samples_* metrics). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../textdata.h"
#include "pref.h"

typedef struct {
  int *ids[2], len[2], plen[2]; /* chosen, rejected: prompt ++ reply ++ <eos> */
  double ref[2];                /* summed log pi_ref of the replies */
} pair_t;

struct pairs {
  pair_t *p;
  char **prompt;                    /* on-policy: the prompt texts */
  int *train, *eval, ntrain, neval; /* eval: the validation pairs, then the test pairs */
  int nval;                         /* (neval - nval: the test split's) */
  int *tok;
  float *mask, lp[8192];
};

void pairs_free(pref_t *p) {
  struct pairs *d = p->pairs;
  if (!d) return;
  for (int i = 0; i < d->ntrain + d->neval; i++) {
    int k = i < d->ntrain ? d->train[i] : d->eval[i - d->ntrain];
    free(d->p[k].ids[0]), free(d->p[k].ids[1]);
  }
  for (int i = 0; d->prompt && i < d->ntrain + d->neval; i++) free(d->prompt[i]);
  free(d->prompt), free(d->p), free(d->train), free(d->eval), free(d->tok), free(d->mask);
  free(d);
  p->pairs = NULL;
}

/* Stack the chosen then the rejected sequences of pairs idx[0..G) into
 * (2G, T) with response masks; returns T. */
static int stack(pref_t *p, const int *idx, int G) {
  struct pairs *d = p->pairs;
  int T = 2;
  for (int g = 0; g < G; g++)
    for (int s = 0; s < 2; s++) T = d->p[idx[g]].len[s] > T ? d->p[idx[g]].len[s] : T;
  for (int s = 0; s < 2; s++)
    for (int g = 0; g < G; g++) {
      const pair_t *q = &d->p[idx[g]];
      size_t row = (size_t)(s * G + g) * T;
      for (int t = 0; t < T; t++) {
        d->tok[row + t] = t < q->len[s] ? q->ids[s][t] : NN_TOK_PAD;
        d->mask[row + t] = t >= q->plen[s] && t < q->len[s] ? 1.0f : 0.0f;
      }
    }
  return T;
}

/* A held-out pair in the test split: a hash of its index other than
 * tx_held_out's, so the split depends on the index alone. */
static int test_pair(int64_t i, double fraction) {
  return tx_held_out(i ^ 0x5851f42d4c957f2dLL, fraction);
}

static int reply_tokens(const pair_t *q, int s) {
  return q->len[s] - q->plen[s];
}

int pairs_create(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c) {
  uint32_t run = (uint32_t)h->cfg_int(c, "init_run"); /* validate() checked the rules */
  p->shard = h->shard(c, &p->nshards);
  if (p->M_groups % p->nshards)
    return h->fail(c, LATHE_ECONFIG, "pref: prompts %d does not split over %d data-parallel shards",
                   p->M_groups, p->nshards);
  lathe_buf_t b = {0};
  char made_by[64];
  int has = 0, rc = h->run_checkpoint(c, run, &b, made_by);
  if (rc) return h->fail(c, rc, "pref: init_run %u has no checkpoint to start from", run);
  rc = nn_lm_load(&p->tok, &has, &p->pol, &b);
  lathe_buf_free(&b);
  if (rc || !has)
    return h->fail(c, LATHE_ECONFIG, "pref: init_run %u (%s) holds no text model", run, made_by);
  nn_params_reset_opt(&p->pol.params); /* a fresh optimizer */
  if (p->onpolicy && (rc = pref_load_rm(p, h, c))) return rc;
  nn_rng_t r;
  nn_rng_seed(&r, 0);
  if (nn_gpt_init(&p->ref, p->pol.cfg, &r)) return h->fail(c, LATHE_ENOMEM, "out of memory");
  nn_params_copy(&p->ref.params, &p->pol.params);
  p->V = p->pol.cfg.vocab, p->T = p->pol.cfg.ctx;
  /* the pairs, tokenised */
  tx_record_t *rec = NULL;
  const char *ds = h->cfg_str(c, "dataset");
  int64_t n = tx_read(h, c, ds, 1, h->cfg_num(c, "holdout"), 0, &rec);
  if (n < 0) return (int)n;
  struct pairs *d = calloc(1, sizeof *d);
  p->pairs = d;
  int G = p->M_groups, *ids = malloc((size_t)p->T * sizeof *ids), dropped = 0, longer[2] = {0, 0};
  int ties = 0, ntest = 0;
  double test_split = h->cfg_num(c, "test_split");
  if (d) {
    d->p = calloc((size_t)n, sizeof *d->p), d->train = malloc((size_t)n * sizeof(int));
    d->eval = malloc((size_t)n * sizeof(int));
    d->tok = malloc((size_t)2 * G * p->T * sizeof(int));
    d->mask = malloc((size_t)2 * G * p->T * sizeof(float));
    d->prompt = p->onpolicy ? calloc((size_t)n, sizeof *d->prompt) : NULL;
  }
  if (!d || !ids || !d->p || !d->train || !d->eval || !d->tok || !d->mask ||
      (p->onpolicy && !d->prompt)) {
    free(ids), tx_free(rec, n);
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < n && !rc; i++) {
    pair_t q = {{NULL, NULL}};
    if (rec[i].label == 0.5 && !p->onpolicy) { /* a tie has no preferred reply */
      ties++;
      continue;
    }
    int flip = rec[i].label < 0.5; /* the label says rejected wins */
    const char *reply[2] = {flip ? rec[i].rejected : rec[i].response,
                            flip ? rec[i].response : rec[i].rejected};
    for (int s = 0; s < 2 && !rc; s++) {
      q.len[s] = tx_encode(&p->tok, rec[i].prompt, reply[s], p->T, ids, &q.plen[s]);
      if (q.len[s] < 0 || !(q.ids[s] = malloc((size_t)q.len[s] * sizeof *ids)))
        rc = h->fail(c, LATHE_ENOMEM, "out of memory");
      else
        memcpy(q.ids[s], ids, (size_t)q.len[s] * sizeof *ids);
    }
    if (!rc && (q.plen[0] < 1 || q.plen[1] < 1)) { /* nothing of the prompt fits */
      free(q.ids[0]), free(q.ids[1]);
      dropped++;
      continue;
    }
    d->p[i] = q;
    if (p->onpolicy && !(d->prompt[i] = strdup(rec[i].prompt)))
      rc = h->fail(c, LATHE_ENOMEM, "out of memory");
    if (rec[i].held_out) { /* validation first, the test split from the end (reversed below) */
      int test = test_pair(i, test_split);
      d->eval[test ? n - 1 - ntest++ : d->nval++] = (int)i;
      longer[test] += strlen(reply[0]) > strlen(reply[1]);
    } else
      d->train[d->ntrain++] = (int)i;
  }
  free(ids);
  tx_free(rec, n);
  for (int lo = (int)n - ntest, hi = (int)n - 1; lo < hi; lo++, hi--) { /* in index order */
    int t = d->eval[lo];
    d->eval[lo] = d->eval[hi], d->eval[hi] = t;
  }
  memmove(d->eval + d->nval, d->eval + n - ntest, (size_t)ntest * sizeof *d->eval);
  d->neval = d->nval + ntest;
  if (rc) return rc;
  if (!d->ntrain) return h->fail(c, LATHE_EDATA, "pref: dataset '%s' leaves no training pair", ds);
  /* pi_ref, once for every pair */
  for (int part = 0; part < 2; part++) {
    int *list = part ? d->eval : d->train, m = part ? d->neval : d->ntrain;
    for (int i = 0; i < m; i += G) {
      int g = m - i < G ? m - i : G, T = stack(p, list + i, g);
      nn_gpt_logprobs(&p->ref, d->lp, d->tok, d->mask, 2 * g, T);
      for (int k = 0; k < g; k++)
        d->p[list[i + k]].ref[0] = d->lp[k], d->p[list[i + k]].ref[1] = d->lp[g + k];
    }
  }
  p->ref_steps = 0, p->train_steps = h->cfg_int(c, "steps");
  if (d->nval) h->metric(c, "eval/length_baseline_accuracy", (double)longer[0] / d->nval);
  if (ntest) h->metric(c, "test/length_baseline_accuracy", (double)longer[1] / ntest);
  char split[48] = "";
  if (ntest) snprintf(split, sizeof split, " (%d of them the test split)", ntest);
  h->log(c, "%d training and %d held-out pairs%s%s%s", d->ntrain, d->neval, split,
         dropped ? " (some left out: no room for their prompt)" : "",
         ties ? " (ties left out: label 0.5)" : "");
  return 0;
}

typedef struct {
  double loss;
  nn_pref_stats_t ps;
} pstats_t;

/* Loss of pairs idx[0..G) through the policy's last stacked forward (lp);
 * fills dlp (2G) when not NULL, each pair's gradient divided by `of` (the
 * batch's pairs, all shards together). */
static void pair_losses(pref_t *p, const int *idx, int G, int of, const float *lp, float *dlp,
                        pstats_t *st) {
  struct pairs *d = p->pairs;
  for (int g = 0; g < G; g++) {
    const pair_t *q = &d->p[idx[g]];
    double dw = 0, dl = 0, l;
    if (p->method == M_SFT) /* Pref-FT: the chosen reply's NLL */
      l = -lp[g], dw = -1;
    else
      l = nn_pref_pair(&p->pref, lp[g], lp[G + g], q->ref[0], q->ref[1], reply_tokens(q, 0),
                       reply_tokens(q, 1), &dw, &dl);
    if (!p->neg) dl = 0;
    if (dlp) dlp[g] = (float)(dw / of), dlp[G + g] = (float)(dl / of);
    st->loss += l;
    nn_pref_stats_add(&st->ps, p->pref.beta, lp[g], lp[G + g], q->ref[0], q->ref[1]);
  }
}

void pref_report(const lathe_host_t *h, lathe_ctx_t *c, const char *pre, const nn_pref_stats_t *s) {
  if (!s->pairs) return;
  char k[64];
  int n = s->pairs;
#define M(name, v) snprintf(k, sizeof k, "%s%s", pre, name), h->metric(c, k, (v) / n)
  M("rewards/chosen", s->chosen), M("rewards/rejected", s->rejected);
  M("rewards/margins", s->margins), M("rewards/accuracies", s->accuracies);
  M("logps/chosen", s->logps_chosen), M("logps/rejected", s->logps_rejected);
#undef M
}

/* Data-parallel: the gradients, the statistics st and the n values extra
 * summed over the shards (nothing to do with one). */
static int reduce(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c, pstats_t *st, double *extra,
                  int n) {
  if (p->nshards < 2) return 0;
  double x[8] = {st->loss};
  for (int i = 0; i < n && i < 7; i++) x[1 + i] = extra[i];
  int rc = h->allreduce(c, p->pol.params.g, p->pol.params.total);
  if (!rc) rc = pref_sum_stats(p, x, 1 + n, &st->ps);
  st->loss = x[0];
  for (int i = 0; i < n && i < 7; i++) extra[i] = x[1 + i];
  return rc;
}

/* The loss and pair metrics of pairs list[0..n), named pre + ... */
static void evaluate_list(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c, const int *list, int n,
                          const char *pre) {
  int G = p->M_groups;
  pstats_t st = {0};
  char k[64];
  for (int i = 0; i < n; i += G) {
    int g = n - i < G ? n - i : G, T = stack(p, list + i, g);
    nn_gpt_logprobs(&p->pol, p->pairs->lp, p->pairs->tok, p->pairs->mask, 2 * g, T);
    pair_losses(p, list + i, g, g, p->pairs->lp, NULL, &st);
  }
  snprintf(k, sizeof k, "%sloss", pre);
  h->metric(c, k, st.loss / n);
  pref_report(h, c, pre, &st.ps);
}

/* eval/ on the validation pairs (select on these), test/ on the test split. */
static void pairs_evaluate(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c) {
  struct pairs *d = p->pairs;
  if (p->shard) return; /* shard 0 reports */
  if (d->nval) evaluate_list(p, h, c, d->eval, d->nval, "eval/");
  if (d->neval > d->nval) evaluate_list(p, h, c, d->eval + d->nval, d->neval - d->nval, "test/");
}

/* One on-policy step: N samples for each of G training prompts, ranked by
 * the reward model; the loss on (best, worst) with pi_ref's log-probs now. */
static int onpolicy_step(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c) {
  struct pairs *d = p->pairs;
  /* data-parallel: every shard draws the batch's prompts; this one samples
   * and scores its share with a stream of its own (seeded from the run's
   * stream and the shard index, so nothing depends on timing) */
  int Gall = p->M_groups, G = Gall / p->nshards, g0 = p->shard * G;
  int N = p->N, M = G * N, T = p->T, max_new = T / 2, rc = 0, reduced = 0;
  int *prompt = malloc((size_t)M * T * sizeof *prompt), *plen = malloc((size_t)M * sizeof *plen);
  int *out = malloc((size_t)M * max_new * sizeof *out), *olen = malloc((size_t)M * sizeof *olen);
  char **text = calloc((size_t)M, sizeof *text);
  double *score = malloc((size_t)M * sizeof *score), rsum = 0, best_sum = 0, len_sum = 0;
  int *pick = malloc((size_t)2 * G * sizeof *pick), idx[4096], stop = NN_TOK_EOS;
  if (!prompt || !plen || !out || !olen || !text || !score || !pick) rc = LATHE_ENOMEM;
  for (int g = 0; g < Gall; g++) idx[g] = d->train[nn_rng_below(&p->rng, (uint32_t)d->ntrain)];
  nn_rng_t own, *rng = pref_shard_rng(p, &own);
  memmove(idx, idx + g0, (size_t)G * sizeof *idx);
  for (int g = 0; g < G && !rc; g++) {
    const pair_t *q = &d->p[idx[g]];
    int pl = q->plen[0] < T - max_new ? q->plen[0] : T - max_new; /* keep the prompt's end */
    for (int k = 0; k < N; k++) {
      memcpy(prompt + (size_t)(g * N + k) * T, q->ids[0] + q->plen[0] - pl,
             (size_t)pl * sizeof(int));
      plen[g * N + k] = pl;
    }
  }
  nn_gen_t gen = {(float)p->temp, 0, 1.0f, &stop, 1, 0};
  if (!rc) rc = nn_lm_generate(&p->pol, prompt, plen, M, T, max_new, &gen, rng, out, olen, NULL);
  for (int i = 0; i < M && !rc; i++) { /* the reward model reads text */
    int k = olen[i] && out[(size_t)i * max_new + olen[i] - 1] == NN_TOK_EOS ? olen[i] - 1 : olen[i];
    size_t need = nn_tok_decode(&p->tok, out + (size_t)i * max_new, k, NULL, 0) + 1;
    if (!(text[i] = malloc(need)))
      rc = LATHE_ENOMEM;
    else
      nn_tok_decode(&p->tok, out + (size_t)i * max_new, k, text[i], need);
  }
  for (int g = 0; g < G && !rc; g++) {
    rc = nn_rm_rank(&p->rm, d->prompt[idx[g]], (const char *const *)text + g * N, N, score + g * N);
    int b = 0, w = 0;
    for (int k = 1; k < N && !rc; k++) {
      if (score[g * N + k] > score[g * N + b]) b = k;
      if (score[g * N + k] < score[g * N + w]) w = k;
    }
    for (int k = 0; k < N; k++) rsum += score[g * N + k], len_sum += strlen(text[g * N + k]);
    pick[g] = g * N + b, pick[G + g] = g * N + w, best_sum += score[g * N + b];
  }
  /* (best, worst) stacked as (2G, Tm): prompt ++ sample, the sample masked in */
  int Tm = 2;
  for (int r = 0; r < 2 * G && !rc; r++)
    Tm = plen[pick[r]] + olen[pick[r]] > Tm ? plen[pick[r]] + olen[pick[r]] : Tm;
  for (int r = 0; r < 2 * G && !rc; r++) {
    int i = pick[r], pl = plen[i];
    for (int t = 0; t < Tm; t++) {
      int in = t < pl + olen[i];
      d->tok[(size_t)r * Tm + t] = t < pl ? prompt[(size_t)i * T + t]
                                   : in   ? out[(size_t)i * max_new + t - pl]
                                          : NN_TOK_PAD;
      d->mask[(size_t)r * Tm + t] = t >= pl && in ? 1.0f : 0.0f;
    }
  }
  float ref[8192], dlp[8192];
  pstats_t st = {0};
  if (!rc) {
    nn_gpt_logprobs(&p->ref, ref, d->tok, d->mask, 2 * G, Tm);
    nn_gpt_logprobs(&p->pol, d->lp, d->tok, d->mask, 2 * G, Tm);
    for (int g = 0; g < G; g++) {
      double dw = 0, dl = 0;
      st.loss += nn_pref_pair(&p->pref, d->lp[g], d->lp[G + g], ref[g], ref[G + g], olen[pick[g]],
                              olen[pick[G + g]], &dw, &dl);
      if (!p->neg) dl = 0;
      dlp[g] = (float)(dw / Gall), dlp[G + g] = (float)(dl / Gall);
      nn_pref_stats_add(&st.ps, p->pref.beta, d->lp[g], d->lp[G + g], ref[g], ref[G + g]);
    }
    nn_params_zero_grad(&p->pol.params);
    nn_gpt_logprobs_backward(&p->pol, dlp, d->mask);
    double sums[3] = {rsum, best_sum, len_sum};
    reduced = (rc = reduce(p, h, c, &st, sums, 3)) != 0;
    rsum = sums[0], best_sum = sums[1], len_sum = sums[2];
  }
  if (!rc) { /* (the batch's counts: every shard's) */
    double gn = nn_clip_grad_norm(&p->pol.params, p->grad_clip > 0 ? (float)p->grad_clip : 0);
    nn_adamw_t o = nn_adamw_default();
    int Mb = M * p->nshards;
    rc = nn_adamw_step(&p->pol.params, &o, (float)p->lr);
    h->metric(c, "loss", st.loss / Gall), h->metric(c, "grad_norm", gn);
    h->metric(c, "rm/reward_mean", rsum / Mb), h->metric(c, "rm/reward_best", best_sum / Gall);
    h->metric(c, "samples/length_bytes", len_sum / Mb);
    pref_report(h, c, "", &st.ps);
  }
  for (int i = 0; text && i < M; i++) free(text[i]);
  free(prompt), free(plen), free(out), free(olen), free(text), free(score), free(pick);
  if (reduced) return rc; /* the allreduce said why */
  return rc ? h->fail(c, rc, "pref: on-policy step: %s",
                      rc == LATHE_ENOMEM ? "out of memory" : "generation failed")
            : 0;
}

int pairs_step(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c) {
  struct pairs *d = p->pairs;
  int G = p->M_groups, idx[4096];
  if (p->step % p->eval_every == 0 && d->neval) pairs_evaluate(p, h, c);
  if (p->onpolicy) {
    int rc = onpolicy_step(p, h, c);
    if (!rc && p->step + 1 == p->train_steps && d->neval) pairs_evaluate(p, h, c);
    return rc;
  }
  for (int g = 0; g < G; g++) idx[g] = d->train[nn_rng_below(&p->rng, (uint32_t)d->ntrain)];
  int ng = G / p->nshards, *mine = idx + p->shard * ng; /* data-parallel: this shard's pairs */
  int T = stack(p, mine, ng);
  float dlp[8192];
  pstats_t st = {0};
  nn_gpt_logprobs(&p->pol, d->lp, d->tok, d->mask, 2 * ng, T);
  pair_losses(p, mine, ng, G, d->lp, dlp, &st);
  nn_params_zero_grad(&p->pol.params);
  nn_gpt_logprobs_backward(&p->pol, dlp, d->mask);
  int rc = reduce(p, h, c, &st, NULL, 0);
  if (rc) return rc;
  double gn = nn_clip_grad_norm(&p->pol.params, p->grad_clip > 0 ? (float)p->grad_clip : 0);
  nn_adamw_t o = nn_adamw_default();
  if (nn_adamw_step(&p->pol.params, &o, (float)p->lr))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  h->metric(c, "loss", st.loss / G), h->metric(c, "grad_norm", gn);
  pref_report(h, c, "", &st.ps);
  if (p->step + 1 == p->train_steps && d->neval) pairs_evaluate(p, h, c);
  return 0;
}
