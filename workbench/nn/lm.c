/* lm.c - a language model as one unit: the "LMB1" checkpoint block (tokenizer
 * and GPT together) and batched generation with the KV cache (see lm.h). */
#include "lm.h"

#include <pthread.h>

#include <stdlib.h>
#include <string.h>

void nn_lm_save(const nn_tok_t *tok, const nn_gpt_t *g, lathe_buf_t *b, int with_opt) {
  uint32_t magic = 0x31424d4c, has = tok != NULL; /* "LMB1" */
  LATHE_PUT(b, magic), LATHE_PUT(b, has);
  if (tok) nn_tok_save(tok, b);
  const nn_gpt_config_t *c = &g->cfg;
  int32_t cfg[5] = {c->vocab, c->ctx, c->layers, c->heads, c->width};
  lathe_buf_put(b, cfg, sizeof cfg);
  nn_params_save(&g->params, b, with_opt);
}

int nn_lm_load(nn_tok_t *tok, int *has_tok, nn_gpt_t *g, lathe_buf_t *b) {
  uint32_t magic, has;
  int32_t cfg[5];
  memset(tok, 0, sizeof *tok);
  memset(g, 0, sizeof *g);
  LATHE_GET(b, magic), LATHE_GET(b, has);
  if (b->err || magic != 0x31424d4c || has > 1) return LATHE_ECKPT;
  int rc = has ? nn_tok_load(tok, b) : 0;
  if (rc) return rc;
  lathe_buf_get(b, cfg, sizeof cfg);
  if (b->err || cfg[0] < 2 || cfg[1] < 1 || cfg[2] < 1 || cfg[3] < 1 || cfg[4] < 1 ||
      cfg[4] % cfg[3] || cfg[0] > (1 << 20) || cfg[1] > (1 << 16) || cfg[2] > 256 ||
      cfg[4] > (1 << 14) || (has && tok->vocab > cfg[0])) {
    nn_tok_free(tok);
    return LATHE_ECKPT;
  }
  /* the parameters must be present before anything is allocated for them:
   * at least the embeddings and 12 width^2 per layer, 4 bytes each */
  uint64_t V = (uint64_t)cfg[0], T = (uint64_t)cfg[1], L = (uint64_t)cfg[2], W = (uint64_t)cfg[4];
  if (lathe_buf_left(b) / 4 < (V + T) * W + L * 12 * W * W) {
    nn_tok_free(tok);
    return LATHE_ECKPT;
  }
  nn_rng_t r;
  nn_rng_seed(&r, 0);
  if ((rc = nn_gpt_init(g, (nn_gpt_config_t){cfg[0], cfg[1], cfg[2], cfg[3], cfg[4]}, &r)) ||
      (rc = nn_params_load(&g->params, b))) {
    nn_tok_free(tok), nn_gpt_free(g);
    return rc == LATHE_ENOMEM ? rc : LATHE_ECKPT;
  }
  *has_tok = (int)has;
  return 0;
}

int nn_lm_restore(nn_tok_t *tok, nn_gpt_t *g, lathe_buf_t *b) {
  nn_tok_t t;
  nn_gpt_t h;
  int has, rc = nn_lm_load(&t, &has, &h, b);
  if (rc) return rc;
  if (has != (tok != NULL) || h.params.total != g->params.total ||
      memcmp(&h.cfg, &g->cfg, sizeof h.cfg) || (tok && t.vocab != tok->vocab)) {
    nn_tok_free(&t), nn_gpt_free(&h);
    return LATHE_ESHAPE;
  }
  if (tok) nn_tok_free(tok), *tok = t;
  nn_gpt_free(g);
  *g = h;
  return 0;
}

const char *nn_lm_restore_error(int rc) {
  return rc == LATHE_ESHAPE ? "the checkpoint's model has another shape" : "bad model block";
}

int nn_lm_generate(nn_gpt_t *g, const int *prompt, const int *plen, int B, int stride, int max_new,
                   const nn_gen_t *o, nn_rng_t *r, int *out, int *olen, float *logp) {
  int V = g->cfg.vocab, T = g->cfg.ctx, maxp = 0, rc = 0;
  for (int b = 0; b < B; b++) {
    if (plen[b] < 1 || plen[b] > stride || plen[b] >= T) return LATHE_ESHAPE;
    maxp = plen[b] > maxp ? plen[b] : maxp;
    olen[b] = 0;
  }
  int end = maxp + max_new < T ? maxp + max_new : T; /* positions fed: 0 .. end-2 */
  float *logits = malloc((size_t)B * V * sizeof *logits);
  float *sc = malloc(2 * (size_t)V * sizeof *sc);
  int *cur = malloc(B * sizeof *cur), *done = calloc(B, sizeof *done);
  nn_kvcache_t kv = {0};
  int cached = !o->no_cache;
  int *seq = cached ? NULL : malloc((size_t)B * T * sizeof *seq); /* the whole prefix, refed */
  if (!logits || !sc || !cur || !done || (!cached && !seq) ||
      (cached && nn_kvcache_init(&kv, g, B)))
    rc = LATHE_ENOMEM;
  /* the positions before the shortest prompt's last: no sequence samples
   * there, so their keys and values are filled in one batched pass */
  int minp = maxp;
  for (int b = 0; b < B; b++) minp = plen[b] < minp ? plen[b] : minp;
  int start = cached && !o->no_prefill && minp > 1 && !rc ? minp - 1 : 0;
  if (start) {
    int *pt = malloc((size_t)B * start * sizeof *pt);
    if (!pt) rc = LATHE_ENOMEM;
    for (int b = 0; b < B && !rc; b++)
      memcpy(pt + (size_t)b * start, prompt + (size_t)b * stride, (size_t)start * sizeof *pt);
    if (!rc) rc = nn_gpt_prefill(g, &kv, pt, start);
    free(pt);
  }
  for (int pos = start, live = B; pos + 1 < end && !rc && live; pos++) {
    int sampling = 0;             /* does any sequence sample after this position? */
    for (int b = 0; b < B; b++) { /* a prompt token, or the last generated one */
      cur[b] = pos < plen[b] ? prompt[(size_t)b * stride + pos]
               : olen[b]     ? out[(size_t)b * max_new + olen[b] - 1]
                             : NN_TOK_PAD;
      sampling |= !done[b] && pos + 1 >= plen[b] && olen[b] < max_new;
    }
    const float *lg = logits;
    if (cached) {
      if ((rc = nn_gpt_decode(g, &kv, cur, sampling ? logits : NULL))) break;
    } else { /* no cache: the full forward over every position so far */
      int *tmp = malloc((size_t)B * (pos + 1) * sizeof *tmp);
      if (!tmp) {
        rc = LATHE_ENOMEM;
        break;
      }
      for (int b = 0; b < B; b++)
        for (int t = 0; t <= pos; t++)
          tmp[(size_t)b * (pos + 1) + t] = t < pos ? seq[(size_t)b * pos + t] : cur[b];
      memcpy(seq, tmp, (size_t)B * (pos + 1) * sizeof *seq);
      free(tmp);
      float *full = nn_gpt_forward(g, seq, B, pos + 1);
      if (!full) {
        rc = LATHE_ENOMEM;
        break;
      }
      for (int b = 0; b < B; b++)
        memcpy(logits + (size_t)b * V, full + ((size_t)b * (pos + 1) + pos) * V,
               V * sizeof *logits);
    }
    for (int b = 0; b < B; b++) {
      if (done[b] || pos + 1 < plen[b] || olen[b] >= max_new) continue;
      int y = nn_sample(lg + (size_t)b * V, V, o->temperature, o->top_k, o->top_p, r, sc);
      if (logp) logp[(size_t)b * max_new + olen[b]] = nn_logprob_of(lg + (size_t)b * V, V, y);
      out[(size_t)b * max_new + olen[b]++] = y;
      for (int k = 0; k < o->nstop; k++) done[b] |= y == o->stop[k];
    }
    live = 0; /* stop once every sequence has ended or filled its room */
    for (int b = 0; b < B; b++) live += !done[b] && olen[b] < max_new;
  }
  if (cached) nn_kvcache_free(&kv);
  free(logits), free(sc), free(cur), free(done), free(seq);
  return rc;
}

typedef struct {
  nn_gpt_t *g;
  const int *prompt, *plen;
  int B, stride, max_new;
  const nn_gen_t *o;
  nn_rng_t *r;
  int *out, *olen;
  float *logp;
  int rc;
} shard_t;

static void *shard_run(void *arg) {
  shard_t *s = arg;
  nn_thread_init(); /* the same floating-point mode on every thread */
  s->rc = s->B ? nn_lm_generate(s->g, s->prompt, s->plen, s->B, s->stride, s->max_new, s->o, s->r,
                                s->out, s->olen, s->logp)
               : 0;
  return NULL;
}

int nn_lm_generate_sharded(nn_gpt_t *g, const int *prompt, const int *plen, int B, int stride,
                           int max_new, const nn_gen_t *o, nn_rng_t *rngs, int S, int threads,
                           int *out, int *olen, float *logp) {
  if (S < 1 || S > 64) return LATHE_ESHAPE;
  shard_t sh[64];
  for (int s = 0; s < S; s++) {
    int lo = (int)((int64_t)B * s / S), hi = (int)((int64_t)B * (s + 1) / S);
    sh[s] = (shard_t){g,
                      prompt + (size_t)lo * stride,
                      plen + lo,
                      hi - lo,
                      stride,
                      max_new,
                      o,
                      &rngs[s],
                      out + (size_t)lo * max_new,
                      olen + lo,
                      logp ? logp + (size_t)lo * max_new : NULL,
                      0};
  }
  if (threads < 2 || S < 2) {
    for (int s = 0; s < S; s++) shard_run(&sh[s]);
  } else { /* BLAS single-threaded meanwhile: the shards are the parallelism */
    int blas = nn_get_threads();
    nn_set_threads(1);
    for (int s0 = 0; s0 < S; s0 += threads) {
      pthread_t t[64];
      int started[64] = {0}, n = S - s0 < threads ? S - s0 : threads;
      for (int k = 1; k < n; k++) started[k] = !pthread_create(&t[k], NULL, shard_run, &sh[s0 + k]);
      shard_run(&sh[s0]);
      for (int k = 1; k < n; k++)
        if (started[k])
          pthread_join(t[k], NULL);
        else
          shard_run(&sh[s0 + k]);
    }
    nn_set_threads(blas);
  }
  for (int s = 0; s < S; s++)
    if (sh[s].rc) return sh[s].rc;
  return 0;
}
