/* stepneg.h - what the per-step negatives plugins share
 * (specs/per_step_negatives.md): math problems read from the store, the
 * policy taken from another run, solutions as token sequences with step
 * boundaries, sampling on both cores, and the held-out evaluation.
 *
 * stepvalue.c samples solutions from an SFT policy and estimates the value
 * of every step prefix by Monte-Carlo rollouts, writing a dataset; train.c
 * trains on that dataset (SFT, RFT, outcome DPO, per-step DPO in two forms,
 * AWR). A solution's steps are its lines; a solution's tokens are its lines
 * encoded one at a time (each with its newline, the last without) then
 * <eos>, so every step is a whole span of tokens. */
#ifndef LATHE_STEPNEG_H
#define LATHE_STEPNEG_H

#include "../../workbench/lathe.h"
#include "../../workbench/mathtext.h"
#include "../../workbench/nn/lm.h"
#include "../../workbench/nn/nn.h"

#define SN_MAX_STEPS 64 /* a solution's steps at most; longer ones are cut */
#define SN_SHARDS    2  /* sampling shards: results are the same on 1 or 2 threads */

typedef struct {
  char *q, *sol, *ans; /* question, teacher solution, answer */
} sn_prob_t;

/* Read the first `limit` (0: all) math records of dataset `name`: question,
 * solution and answer are required (a record without refuses the dataset,
 * naming it). Returns the count or a negative code (reported). */
int64_t sn_read(const lathe_host_t *h, lathe_ctx_t *c, const char *name, int64_t limit,
                sn_prob_t **out);
void sn_free(sn_prob_t *p, int64_t n);

/* The text model of run `run` (its newest checkpoint) into empty tok and g;
 * refuses a run without one, or without a tokenizer, in one line. */
int sn_policy(const lathe_host_t *h, lathe_ctx_t *c, const char *key, uint32_t run, nn_tok_t *tok,
              nn_gpt_t *g);

/* question + "\n" as ids; -1 when it takes more than max. */
int sn_prompt(const nn_tok_t *t, const char *q, int *ids, int max);
/* The first `steps` lines of text (all: steps < 0) as ids, line by line;
 * end[i] = the ids after step i. eos: append <eos> (counted in the last
 * step). Returns the length, -1 when it takes more than max. *nsteps gets
 * the steps encoded (at most SN_MAX_STEPS). */
int sn_solution(const nn_tok_t *t, const char *text, int steps, int eos, int *ids, int max,
                int *end, int *nsteps);
/* Decode ids up to the first <eos> into a malloc'd string (NULL: no memory). */
char *sn_text(const nn_tok_t *t, const int *ids, int n);

/* Continue B prompts (prompt b: plen[b] ids at prompt + b*stride) with a
 * sampled (temperature > 0) or greedy solution of at most max_new ids,
 * stopping at <eos>: SN_SHARDS shards with rngs, on `threads` threads. */
int sn_sample(nn_gpt_t *g, const int *prompt, const int *plen, int B, int stride, int max_new,
              float temperature, nn_rng_t *rngs, int threads, int *out, int *olen);

/* Held-out evaluation of policy g on probs[0..n): greedy pass@1, sampled
 * pass@1 (temperature 1, one sample each, from rng), and for arith
 * questions the spurious-step rate (traces with a right final answer and a
 * wrong line) of the greedy traces; the arith modulus is `mod`. */
typedef struct {
  double greedy, sampled, spurious, spurious_sampled;
  int arith; /* 1 when every question parsed as arith */
} sn_eval_t;
int sn_evaluate(nn_gpt_t *g, const nn_tok_t *t, const sn_prob_t *probs, int64_t n, int mod,
                uint64_t seed, int threads, sn_eval_t *out);

#endif
