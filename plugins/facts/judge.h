/* judge.h - a generative True/False judge (specs/unfamiliar.md): a text
 * model fine-tuned to continue a prompt with a claim's two labelled forms,
 * read as P(true) = the softmax over the log-probabilities of the two
 * continuations. Two forms:
 *   statement  the spec's: prompt "NAME lives in paris .", continuations
 *              " true" and " false" (the label after the claim)
 *   negation   prompt the cloze "NAME lives in", continuations " paris ."
 *              (true) and " not paris ." (false): the label is decided
 *              where the model recalls the value, so the judge can use
 *              what the base model knows
 * fj_t owns its tokenizer and GPT (fj_free). Shared by factqa (mode judge)
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
 * padded batch: out[i]. values NULL: the statement form; else values[i] is
 * the claimed value of the negation form. 0, LATHE_ESHAPE (the context has
 * no room for a prompt token and a continuation) or LATHE_ENOMEM. Reads j's
 * parameters and overwrites its activations (not thread-safe on one j). */
int fj_ptrue(fj_t *j, const char *const *prompts, const char *const *values, int n, double *out);
void fj_free(fj_t *j);

#endif
