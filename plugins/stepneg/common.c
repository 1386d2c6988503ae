/* common.c - the per-step negatives plugins' shared pieces (stepneg.h). */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../textdata.h"
#include "stepneg.h"

static const char *field(json_object *o, const char *k) {
  json_object *v;
  return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : NULL;
}

void sn_free(sn_prob_t *p, int64_t n) {
  for (int64_t i = 0; p && i < n; i++) free(p[i].q), free(p[i].sol), free(p[i].ans);
  free(p);
}

int64_t sn_read(const lathe_host_t *h, lathe_ctx_t *c, const char *name, int64_t limit,
                sn_prob_t **out) {
  int64_t n = h->dataset_count(c, name);
  if (n < 0) return n;
  if (n == 0) return h->fail(c, LATHE_EDATA, "dataset '%s' is empty", name);
  if (limit > 0 && n > limit) n = limit;
  sn_prob_t *p = calloc((size_t)n, sizeof *p);
  if (!p) return h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    char *js = h->dataset_get(c, name, i);
    json_object *o = js ? json_tokener_parse(js) : NULL;
    free(js);
    const char *q = field(o, "question"), *s = field(o, "solution"), *a = field(o, "answer");
    char norm[256];
    if (!q || !s || !a || mt_normalise(a, strlen(a), norm, sizeof norm)) {
      json_object_put(o), sn_free(p, n);
      return h->fail(c, LATHE_EDATA,
                     "dataset '%s' record %lld: want a math record (question, solution and a "
                     "non-empty answer)",
                     name, (long long)i);
    }
    p[i] = (sn_prob_t){strdup(q), strdup(s), strdup(a)};
    json_object_put(o);
    if (!p[i].q || !p[i].sol || !p[i].ans) {
      sn_free(p, n);
      return h->fail(c, LATHE_ENOMEM, "out of memory");
    }
  }
  *out = p;
  return n;
}

int sn_policy(const lathe_host_t *h, lathe_ctx_t *c, const char *key, uint32_t run, nn_tok_t *tok,
              nn_gpt_t *g) {
  return tx_model_of_run(h, c, key, run, " (a task policy?)", tok, g);
}

int sn_prompt(const nn_tok_t *t, const char *q, int *ids, int max) {
  size_t n = strlen(q);
  int k = nn_tok_encode(t, q, n, ids, max);
  if (k < 0 || k + 1 > max) return -1;
  return k + nn_tok_encode(t, "\n", 1, ids + k, max - k);
}

int sn_solution(const nn_tok_t *t, const char *text, int steps, int eos, int *ids, int max,
                int *end, int *nsteps) {
  int st[SN_MAX_STEPS], all = mt_steps(text, st, SN_MAX_STEPS), T = all, k = 0;
  if (steps >= 0 && steps < T) T = steps;
  size_t len = strlen(text);
  for (int i = 0; i < T; i++) {
    size_t a = (size_t)st[i], b = i + 1 < all ? (size_t)st[i + 1] : len;
    int w = nn_tok_encode(t, text + a, b - a, ids + k, max - k);
    if (w > max - k) return -1;
    k += w;
    end[i] = k;
  }
  if (eos) {
    if (k >= max) return -1;
    ids[k++] = NN_TOK_EOS;
    if (T) end[T - 1] = k;
  }
  *nsteps = T;
  return k;
}

char *sn_text(const nn_tok_t *t, const int *ids, int n) {
  int m = 0;
  while (m < n && ids[m] != NN_TOK_EOS) m++;
  size_t need = nn_tok_decode(t, ids, m, NULL, 0) + 1;
  char *s = malloc(need);
  if (s) nn_tok_decode(t, ids, m, s, need);
  return s;
}

int sn_sample(nn_gpt_t *g, const int *prompt, const int *plen, int B, int stride, int max_new,
              float temperature, nn_rng_t *rngs, int threads, int *out, int *olen) {
  static const int stop[] = {NN_TOK_EOS};
  nn_gen_t o = {temperature, 0, 1.0f, stop, 1, 0};
  return nn_lm_generate_sharded(g, prompt, plen, B, stride, max_new, &o, rngs, SN_SHARDS, threads,
                                out, olen, NULL);
}

int sn_evaluate(nn_gpt_t *g, const nn_tok_t *t, const sn_prob_t *probs, int64_t n, int mod,
                uint64_t seed, int threads, sn_eval_t *e) {
  int C = g->cfg.ctx, chunk = 256, rc = 0;
  int *pr = malloc((size_t)chunk * C * sizeof *pr), *pl = malloc(chunk * sizeof *pl);
  int *out = malloc((size_t)chunk * C * sizeof *out), *ol = malloc(chunk * sizeof *ol);
  int *skip = malloc(chunk * sizeof *skip);
  double right[2] = {0, 0}, spur[2] = {0, 0};
  int arith = 1;
  nn_rng_t rngs[SN_SHARDS];
  for (int s = 0; s < SN_SHARDS; s++) nn_rng_seed(&rngs[s], seed * 7919 + (uint64_t)s + 1);
  if (!pr || !pl || !out || !ol || !skip) rc = LATHE_ENOMEM;
  for (int64_t i0 = 0; i0 < n && !rc; i0 += chunk) {
    int B = (int)(n - i0 < chunk ? n - i0 : chunk), maxp = 1;
    for (int b = 0; b < B; b++) {
      pl[b] = sn_prompt(t, probs[i0 + b].q, pr + (size_t)b * C, C - 1);
      skip[b] = pl[b] < 1; /* too long: a stand-in prompt, counted wrong */
      if (skip[b]) pl[b] = 1, pr[(size_t)b * C] = NN_TOK_EOS;
      maxp = pl[b] > maxp ? pl[b] : maxp;
    }
    for (int greedy = 1; greedy >= 0 && !rc; greedy--) {
      if ((rc = sn_sample(g, pr, pl, B, C, C - maxp, greedy ? 0.0f : 1.0f, rngs, threads, out, ol)))
        break;
      for (int b = 0; b < B && !rc; b++) {
        char *s = sn_text(t, out + (size_t)b * (C - maxp), ol[b]);
        if (!s) {
          rc = LATHE_ENOMEM;
          break;
        }
        int ok = !skip[b] && mt_verify(s, probs[i0 + b].ans),
            fw = mt_arith_first_wrong(probs[i0 + b].q, s, mod);
        arith &= fw >= 0;
        right[greedy] += ok, spur[greedy] += ok && fw > 0;
        free(s);
      }
    }
  }
  free(pr), free(pl), free(out), free(ol), free(skip);
  if (rc) return rc;
  *e = (sn_eval_t){right[1] / n, right[0] / n, spur[1] / n, spur[0] / n, arith};
  return 0;
}
