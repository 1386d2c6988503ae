/* fuzz_model.c - libFuzzer target: the model blocks a checkpoint opens with:
 * the tokenizer ("LTOK"), the language model ("LMB1": tokenizer and GPT) and
 * the reward model (LMB1 then "RMB1"). The first byte picks the reader. */
#include <stdint.h>

#include "../../workbench/nn/rm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  lathe_buf_t b = {(uint8_t *)data + 1, size - 1, 0, 0, 0};
  switch (data[0] % 3) {
  case 0: {
    nn_tok_t t;
    if (!nn_tok_load(&t, &b)) nn_tok_free(&t);
    break;
  }
  case 1: {
    nn_tok_t t;
    nn_gpt_t g;
    int has;
    if (!nn_lm_load(&t, &has, &g, &b)) nn_tok_free(&t), nn_gpt_free(&g);
    break;
  }
  default: {
    nn_rm_t m;
    if (!nn_rm_load(&m, &b)) nn_rm_free(&m);
  }
  }
  return 0;
}
