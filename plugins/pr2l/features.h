/* features.h - PR2L's promptable representation (specs/pr2l.md): a frozen
 * language model (another run's, read once) reads a scene's description
 * and, with a prompt, answers it greedily; the representation is the hidden
 * states, at one layer, of the prompt's tokens and the generated ones (the
 * answer's text is kept only for inspection). Generic features are the
 * description's own hidden states, with no prompt and no answer.
 *
 * The sequence is encode(description "\n") ++ encode(prompt "\n") ++ the
 * greedy answer (at most max_gen ids, ending at <eos>), as the scenes
 * records train it. Layer l follows Hugging Face's hidden_states: 0 the
 * embeddings, 1..L-1 the residual stream after block l, L the final
 * LayerNorm's output.
 *
 * Determinism: every sequence is computed alone (batch of one, its own
 * length), so its features are a fixed function of (description, prompt,
 * model, thread count) and never of which other observations were computed
 * with it. A cache keyed by the description keeps each one; pf_get of a
 * cached description returns the very bytes it returned the first time. A
 * resumed run recomputes its cache and gets the same bits (at the same
 * --threads).
 *
 * Ownership: pf_t owns the model, the cache and every entry; pointers
 * pf_get returns stay valid until the next pf_get (the cache may be cleared
 * when it is full) or pf_close. */
#ifndef LATHE_PR2L_FEATURES_H
#define LATHE_PR2L_FEATURES_H

#include "../../workbench/lathe.h"
#include "../../workbench/nn/lm.h"
#include "../../workbench/nn/nn.h"

typedef struct pf_entry {
  struct pf_entry *next;
  uint64_t hash;
  char *key, *answer;
  int T;
  float *h; /* (T, C) */
} pf_entry_t;

typedef struct {
  nn_tok_t tok;
  nn_gpt_t gpt;
  int C, layer, max_gen, generic, cache;
  char *prompt;
  pf_entry_t **tab, scratch; /* scratch: the one entry when the cache is off */
  size_t nb, count, max_entries;
  int64_t hits, misses;
  int *seq;
} pf_t;

/* Open the text model of run `run` (key: the option naming it, for
 * messages). generic: description only (prompt ignored); otherwise a
 * non-empty prompt. layer in [0, L] (-1: L). cache: 0 recomputes every
 * call. Refuses in one line (LATHE_ECONFIG): no such run, not a language
 * model, an empty prompt, a layer out of range. On failure too the caller
 * releases f with pf_close. */
int pf_open(pf_t *f, const lathe_host_t *h, lathe_ctx_t *c, const char *key, uint32_t run,
            const char *prompt, int generic, int layer, int max_gen, int cache);
/* The rest of pf_open over a model already in f->tok and f->gpt (f zeroed
 * but for them): 0, LATHE_ECONFIG (empty prompt), LATHE_ESHAPE (layer out
 * of range) or LATHE_ENOMEM; pf_close releases f either way. */
int pf_init(pf_t *f, const char *prompt, int generic, int layer, int max_gen, int cache);
void pf_close(pf_t *f);
/* The features of one description: *hs (T, C) and *T, and the decoded
 * answer (may be NULL). 0, LATHE_ESHAPE (the sequence does not fit the
 * model's context) or LATHE_ENOMEM. */
int pf_get(pf_t *f, const char *desc, const float **hs, int *T, const char **answer);
/* The longest T pf_get can return (the model's context). */
int pf_max_len(const pf_t *f);

#endif
