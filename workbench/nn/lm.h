/* lm.h - a language model as one unit: a tokenizer (optional: task policies
 * speak raw ids) with its GPT, saved as one checkpoint block, and batched
 * generation with the KV cache (temperature, top-k, top-p, stop tokens, a
 * seeded RNG). The block ("LMB1") opens every text model's checkpoint (the
 * sft and pref plugins write it first), which is how `lathe.sample` and runs
 * started from another run's model read it. */
#ifndef LATHE_NN_LM_H
#define LATHE_NN_LM_H

#include "nn.h"
#include "tok.h"

/* Write the block: tok (NULL: none), the GPT's config and parameters. */
void nn_lm_save(const nn_tok_t *tok, const nn_gpt_t *g, lathe_buf_t *b, int with_opt);
/* Read a block into an uninitialised tok and g (built from the stored
 * config); *has_tok says whether a tokenizer came with it. LATHE_ECKPT if
 * malformed. On success the caller owns both (nn_tok_free, nn_gpt_free). */
int nn_lm_load(nn_tok_t *tok, int *has_tok, nn_gpt_t *g, lathe_buf_t *b);

/* Read a block over an existing model of the same configuration (a resume):
 * g, and tok when not NULL (NULL: the block must have no tokenizer), are
 * replaced. LATHE_ECKPT if malformed, LATHE_ESHAPE if the shapes differ. */
int nn_lm_restore(nn_tok_t *tok, nn_gpt_t *g, lathe_buf_t *b);
/* What an nn_lm_restore failure means, for a one-line message. */
const char *nn_lm_restore_error(int rc);

typedef struct nn_gen {
  float temperature; /* 0: greedy */
  int top_k;         /* 0: off */
  float top_p;       /* 1: off */
  const int *stop;   /* a sequence ends after emitting one of these (kept in the output) */
  int nstop;
  int no_cache;   /* recompute every position each step (for benchmarks) */
  int no_prefill; /* feed the prompts one position at a time (for benchmarks) */
} nn_gen_t;

/* Continue B prompts (prompt b: plen[b] tokens at prompt + b*stride, 1 <=
 * plen[b] < ctx) by up to max_new tokens each, within the context: out(B,
 * max_new) and olen(B); logp(B, max_new), unless NULL, the log-probability of
 * each generated token under the model (its logits at temperature 1) from
 * the decode itself, no second forward. The positions before the shortest
 * prompt's last are filled in one batched pass (nn_gpt_prefill); then
 * sequences advance one position per step together, each starting to sample
 * after its own prompt; the RNG is drawn once per sampled token, sequences
 * in order. Returns 0, LATHE_ESHAPE
 * or LATHE_ENOMEM. */
int nn_lm_generate(nn_gpt_t *g, const int *prompt, const int *plen, int B, int stride, int max_new,
                   const nn_gen_t *o, nn_rng_t *r, int *out, int *olen, float *logp);

/* nn_lm_generate over S shards of consecutive sequences (shard s: sequences
 * [B s/S, B (s+1)/S), sampled with rngs[s]) run on up to `threads` threads,
 * BLAS held to one thread meanwhile. The result depends on S and the RNGs,
 * never on threads. S in 1..64; errors as nn_lm_generate.
 * Caveat: OpenBLAS's thread count is one setting per process, and sgemm's
 * bits depend on it; with threads >= 2 another run stepped at the same time
 * by another worker (`--workers 2 --threads 2`) may see one BLAS thread for
 * a while and so lose bit-identity. With `--threads 1` (the setting for
 * several workers) the hold changes nothing. */
int nn_lm_generate_sharded(nn_gpt_t *g, const int *prompt, const int *plen, int B, int stride,
                           int max_new, const nn_gen_t *o, nn_rng_t *rngs, int S, int threads,
                           int *out, int *olen, float *logp);

#endif
