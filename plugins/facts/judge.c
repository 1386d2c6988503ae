/* judge.c - the True/False judge (judge.h). */
#include "judge.h"

#include "../textdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fj_ptrue(fj_t *j, const char *const *prompts, const char *const *values, int n, double *out) {
  int C = j->g.cfg.ctx, rc = 0, T = 2;
  if (n <= 0) return 0;
  int *len = malloc((size_t)2 * n * sizeof *len), *nc = malloc((size_t)2 * n * sizeof *nc);
  int *tok = calloc((size_t)2 * n * C, sizeof *tok);
  float *lp = NULL;
  if (!len || !nc || !tok) rc = LATHE_ENOMEM;
  for (int i = 0; i < n && !rc; i++)
    for (int k = 0; k < 2 && !rc; k++) {
      char cont[160];
      if (values)
        snprintf(cont, sizeof cont, k ? " not %s ." : " %s .", values[i]);
      else
        snprintf(cont, sizeof cont, "%s", k ? " false" : " true");
      int *r = tok + ((size_t)2 * i + k) * C,
          m = nn_tok_encode(&j->tok, cont, strlen(cont), NULL, 0);
      if (m >= C) {
        rc = LATHE_ESHAPE;
        break;
      }
      int np = tx_encode_end(&j->tok, prompts[i], r, C - m);
      if (np < 0) rc = LATHE_ENOMEM;
      if (np == 0) r[0] = NN_TOK_EOS, np = 1; /* an empty prompt: from <eos> */
      nn_tok_encode(&j->tok, cont, strlen(cont), r + np, m);
      len[2 * i + k] = np + m, nc[2 * i + k] = m, T = np + m > T ? np + m : T;
    }
  /* rows padded with <eos> to the longest, packed to T columns; each
   * continuation is scored where it sits (causal: the padding after it
   * changes nothing) */
  for (int b = 1; b < 2 * n && !rc; b++)
    memmove(tok + (size_t)b * T, tok + (size_t)b * C, (size_t)T * sizeof *tok);
  if (!rc && !(lp = malloc((size_t)2 * n * T * sizeof *lp))) rc = LATHE_ENOMEM;
  if (!rc) rc = nn_gpt_token_logprobs(&j->g, tok, 2 * n, T, lp);
  for (int i = 0; i < n && !rc; i++) {
    double l[2] = {0, 0};
    for (int k = 0; k < 2; k++)
      for (int t = len[2 * i + k] - nc[2 * i + k]; t < len[2 * i + k]; t++)
        l[k] += lp[((size_t)2 * i + k) * T + t];
    out[i] = 1.0 / (1.0 + exp(l[1] - l[0]));
  }
  free(len), free(nc), free(tok), free(lp);
  return rc;
}

void fj_free(fj_t *j) {
  nn_tok_free(&j->tok), nn_gpt_free(&j->g);
}
