/* judge.h - a generative True/False judge (specs/unfamiliar.md): a text
 * model fine-tuned on statements ("NAME lives in paris .") labelled " true"
 * or " false", read as P(true) = the softmax over the log-probabilities of
 * the two continuations. fj_t owns its tokenizer and GPT (fj_free). Shared by factqa (mode judge)
 * and factrl (the reward). */
#ifndef LATHE_FACTS_JUDGE_H
#define LATHE_FACTS_JUDGE_H

#include "../../workbench/lathe.h"
#include "../../workbench/nn/nn.h"
#include "../../workbench/nn/tok.h"

typedef struct {
  nn_tok_t tok;
  nn_gpt_t g;
} fj_t;

/* P(true) of each prompts[i] (its end kept when it is long), i < n, in one
 * padded batch: out[i]. 0, LATHE_ESHAPE (the context has no room for a
 * prompt token and a label) or LATHE_ENOMEM. Reads j's parameters and
 * overwrites its activations (not thread-safe on one j). */
int fj_ptrue(fj_t *j, const char *const *prompts, int n, double *out);
void fj_free(fj_t *j);

#endif
