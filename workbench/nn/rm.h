/* rm.h - reward models (specs/rrm.md): a GPT whose final hidden state at the
 * last non-pad position feeds a scalar head.
 *
 *   Bradley-Terry  reads [prompt <eos> response <eos>] and gives a reward r;
 *                  P(y1 beats y2) = sigmoid(r1 - r2).
 *   pairwise       reads [prompt <eos> first <eos> second <eos>] and gives the
 *                  logit z of P(first beats second); at inference both orders
 *                  are averaged (nn_rm_sym) to remove position bias.
 *
 * Both train with the soft-target cross-entropy (c = 1, 0 or 0.5 for a tie).
 * RRM's pieces (the augmentation as index triplets, the filter rule) live here
 * too, so the plugins, the Lua bindings and the tests share one definition.
 * The "RMB1" block follows the model's "LMB1" block in a checkpoint; any run
 * whose checkpoint starts so is a reward model other runs can load.
 * Ownership: nn_rm_t owns its tokenizer, GPT, head and scratch (nn_rm_free). */
#ifndef LATHE_NN_RM_H
#define LATHE_NN_RM_H

#include "lm.h"

typedef enum { NN_RM_BT, NN_RM_PAIRWISE } nn_rm_kind_t;

typedef struct nn_rm {
  nn_rm_kind_t kind;
  nn_tok_t tok;
  nn_gpt_t gpt;
  nn_params_t head; /* "head.w" (C), "head.b" (1) */
  /* the last forward */
  int B, T, *len;
  float *dh;
  size_t cap;
} nn_rm_t;

/* "bt" | "pairwise" -> kind, -1 if unknown. */
int nn_rm_parse(const char *name);
/* A new model over tokenizer tok (moved into m: the caller's copy is
 * zeroed); GPT-2's init, head normal(0, 0.02) with bias 0. cfg.vocab is
 * taken from tok. Returns 0 or LATHE_ENOMEM. */
int nn_rm_init(nn_rm_t *m, nn_rm_kind_t kind, nn_tok_t *tok, nn_gpt_config_t cfg, nn_rng_t *r);
void nn_rm_free(nn_rm_t *m);

/* The model's input for prompt and first (and second: pairwise only; NULL
 * for Bradley-Terry) in at most ctx ids: each response keeps its start (at
 * most ctx/2, or 3ctx/8 for pairwise, <eos> included), the prompt its end.
 * Returns the length, or -1 (out of memory). */
int nn_rm_encode(const nn_rm_t *m, const char *prompt, const char *first, const char *second,
                 int *ids);

/* Forward tok(B,T), right-padded, sequence b of len[b] ids (1 <= len[b] <=
 * T <= ctx): out(B) = the head at position len[b]-1. Returns 0,
 * LATHE_ESHAPE or LATHE_ENOMEM. Activations stay for nn_rm_backward. */
int nn_rm_forward(nn_rm_t *m, const int *tok, const int *len, int B, int T, float *out);
/* Backward of the last forward given dout(B); accumulates the GPT's and
 * the head's gradients. */
void nn_rm_backward(nn_rm_t *m, const float *dout);
/* Scores of n texts, batched: Bradley-Terry r(prompt[i], first[i]); pairwise
 * the symmetrised P(first[i] beats second[i]). Returns 0 or a code. */
int nn_rm_score(nn_rm_t *m, const char *const *prompt, const char *const *first,
                const char *const *second, int n, double *out);

/* Scores of k responses to one prompt for ranking them: Bradley-Terry
 * r(prompt, resp[i]); pairwise the mean symmetrised P(resp[i] beats resp[j])
 * over the k - 1 others (a round robin; 0.5 when k = 1). Returns 0 or a code. */
int nn_rm_rank(nn_rm_t *m, const char *prompt, const char *const *resp, int k, double *out);

/* Gradient-norm clip over the GPT and the head together; the norm before. */
float nn_rm_clip(nn_rm_t *m, float max_norm);

/* The "RMB1" block: kind and head (the "LMB1" block comes first). */
void nn_rm_save(const nn_rm_t *m, lathe_buf_t *b, int with_opt);
/* Read both blocks into an uninitialised m. LATHE_ECKPT if malformed or not a
 * reward model. */
int nn_rm_load(nn_rm_t *m, lathe_buf_t *b);
/* Read both blocks over a model of the same shape (a resume). */
int nn_rm_restore(nn_rm_t *m, lathe_buf_t *b);

/* ---- losses and RRM --------------------------------------------------------- */

/* Bradley-Terry's P(first beats second) from z = r_first - r_second: s(z). */
double nn_rm_bt(double z);
/* Soft-target cross-entropy -[c log s(z) + (1-c) log(1-s(z))]; *dz = s(z) - c. */
double nn_rm_soft_ce(double z, double c, double *dz);
/* A pairwise model's P(a beats b) from both orders: (s(z_ab) + 1 - s(z_ba)) / 2. */
double nn_rm_sym(double z_ab, double z_ba);
/* RRM's filter: keep an augmented triplet iff the baseline's |P - c| >= threshold. */
int nn_rrm_keep(double p, double c, double threshold);

/* One augmented triplet over an original set of n examples: the prompt of
 * example `prompt`; responses as 2*example + 0 (chosen) or + 1 (rejected). */
typedef struct nn_rrm_triplet {
  int32_t prompt, first, second;
  float label; /* 1: first wins; 0.5: tie */
} nn_rrm_triplet_t;

enum { NN_RRM_WINS = 1, NN_RRM_TIES = 2 };
/* RRM's augmentation of n >= 3 examples: for each i two distinct other
 * examples j, k; their four responses form the off-prompt pool; with prompt
 * i, each of i's two responses beats each pool member (8 triplets, kinds &
 * NN_RRM_WINS) and the pool's 6 pairs tie (kinds & NN_RRM_TIES). Then a
 * random subset of round(frac * total) is kept, in construction order.
 * *out (malloc'd, the caller frees) receives them; *generated the count
 * before the subsample. Returns the count kept, or -1 (no memory or n < 3). */
int64_t nn_rrm_augment(int64_t n, int kinds, double frac, nn_rng_t *r, nn_rrm_triplet_t **out,
                       int64_t *generated);

#endif
