/* features.c - PR2L's promptable representation (features.h). */
#include "features.h"

#include "../textdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pf_open(pf_t *f, const lathe_host_t *h, lathe_ctx_t *c, const char *key, uint32_t run,
            const char *prompt, int generic, int layer, int max_gen, int cache) {
  memset(f, 0, sizeof *f);
  int rc = tx_model_of_run(h, c, key, run, "", &f->tok, &f->gpt);
  if (rc) return rc;
  rc = pf_init(f, prompt, generic, layer, max_gen, cache);
  if (rc == LATHE_ECONFIG)
    return h->fail(c, rc,
                   "prompt: empty (a promptable representation needs a question; repr = "
                   "generic has none)");
  if (rc == LATHE_ESHAPE)
    return h->fail(c, LATHE_ECONFIG, "layer %d: the model of run %u has layers 0..%d", layer, run,
                   f->gpt.cfg.layers);
  return rc ? h->fail(c, rc, "out of memory") : 0;
}

int pf_init(pf_t *f, const char *prompt, int generic, int layer, int max_gen, int cache) {
  int L = f->gpt.cfg.layers;
  f->C = f->gpt.cfg.width, f->generic = generic, f->max_gen = generic ? 0 : max_gen;
  f->layer = layer < 0 ? L : layer, f->cache = cache, f->max_entries = 1u << 16;
  if (!generic && !*prompt) return LATHE_ECONFIG;
  if (f->layer > L) return LATHE_ESHAPE;
  f->prompt = strdup(generic ? "" : prompt);
  f->nb = 4096, f->tab = calloc(f->nb, sizeof *f->tab);
  f->seq = malloc((size_t)f->gpt.cfg.ctx * sizeof *f->seq);
  return f->prompt && f->tab && f->seq ? 0 : LATHE_ENOMEM;
}

static void entry_free(pf_entry_t *e) {
  free(e->key), free(e->answer), free(e->h);
}

static void cache_clear(pf_t *f) {
  for (size_t i = 0; f->tab && i < f->nb; i++)
    for (pf_entry_t *e = f->tab[i], *n; e; e = n) n = e->next, entry_free(e), free(e);
  if (f->tab) memset(f->tab, 0, f->nb * sizeof *f->tab);
  f->count = 0;
}

void pf_close(pf_t *f) {
  cache_clear(f);
  entry_free(&f->scratch);
  free(f->tab), free(f->prompt), free(f->seq);
  nn_tok_free(&f->tok), nn_gpt_free(&f->gpt);
  memset(f, 0, sizeof *f);
}

int pf_max_len(const pf_t *f) {
  return f->gpt.cfg.ctx;
}

static uint64_t fnv(const char *s) {
  uint64_t x = 1469598103934665603ULL;
  for (; *s; s++) x = (x ^ (uint8_t)*s) * 1099511628211ULL;
  return x;
}

/* The features of desc into e (key, answer and h freed and replaced). */
static int compute(pf_t *f, const char *desc, pf_entry_t *e) {
  int ctx = f->gpt.cfg.ctx, C = f->C, L = f->gpt.cfg.layers;
  size_t dn = strlen(desc), pn = strlen(f->prompt);
  char *text = malloc(dn + pn + 2);
  if (!text) return LATHE_ENOMEM;
  memcpy(text, desc, dn), text[dn] = '\n';
  int n1 = nn_tok_encode(&f->tok, text, dn + 1, f->seq, ctx), n2 = 0;
  if (n1 <= ctx && !f->generic) {
    memcpy(text, f->prompt, pn), text[pn] = '\n';
    n2 = nn_tok_encode(&f->tok, text, pn + 1, f->seq + n1, ctx - n1);
  }
  free(text);
  int plen = n1 + n2, olen = 0, gen[256];
  if (plen + f->max_gen > ctx || f->max_gen > 256) return LATHE_ESHAPE;
  if (f->max_gen > 0) {
    static const int stop[1] = {NN_TOK_EOS};
    nn_gen_t o = {0.0f, 0, 1.0f, stop, 1, 0};
    nn_rng_t r; /* greedy decoding draws nothing; a fixed stream all the same */
    nn_rng_seed(&r, 0);
    int rc = nn_lm_generate(&f->gpt, f->seq, &plen, 1, ctx, f->max_gen, &o, &r, gen, &olen, NULL);
    if (rc) return rc;
    memcpy(f->seq + plen, gen, (size_t)olen * sizeof *gen);
  }
  int total = plen + olen;
  float *lnf = nn_gpt_hidden(&f->gpt, f->seq, 1, total);
  if (!lnf) return LATHE_ENOMEM;
  const float *src = f->layer == L   ? lnf
                     : f->layer == 0 ? f->gpt.encoded
                                     : f->gpt.residual3 + (size_t)(f->layer - 1) * total * C;
  int first = f->generic ? 0 : n1, T = total - first;
  entry_free(e);
  e->key = strdup(desc), e->h = malloc(((size_t)T + 1) * C * sizeof *e->h);
  size_t cap = (size_t)olen * 16 + 1;
  e->answer = malloc(cap);
  if (!e->key || !e->h || !e->answer) return LATHE_ENOMEM;
  memcpy(e->h, src + (size_t)first * C, (size_t)T * C * sizeof *e->h);
  nn_tok_decode(&f->tok, gen, olen, e->answer, cap);
  e->T = T;
  return 0;
}

int pf_get(pf_t *f, const char *desc, const float **hs, int *T, const char **answer) {
  pf_entry_t *e = NULL;
  uint64_t x = fnv(desc);
  if (f->cache) {
    for (e = f->tab[x % f->nb]; e; e = e->next)
      if (e->hash == x && !strcmp(e->key, desc)) break;
    if (e) f->hits++;
  }
  if (!e) {
    f->misses++;
    if (!f->cache)
      e = &f->scratch;
    else {
      if (f->count >= f->max_entries) cache_clear(f); /* recomputing is exact */
      if (!(e = calloc(1, sizeof *e))) return LATHE_ENOMEM;
    }
    int rc = compute(f, desc, e);
    if (rc) {
      if (f->cache) entry_free(e), free(e);
      return rc;
    }
    e->hash = x;
    if (f->cache) e->next = f->tab[x % f->nb], f->tab[x % f->nb] = e, f->count++;
  }
  *hs = e->h, *T = e->T;
  if (answer) *answer = e->answer;
  return 0;
}
