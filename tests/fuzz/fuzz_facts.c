/* fuzz_facts.c - libFuzzer target: the facts world's readers of model
 * output (a sampled answer and a sampled bio are untrusted text), and the
 * free-text classifier of real QA answers. The first
 * byte picks the entity, the attribute and the truth; the rest is the text.
 * The classifier's class and value must agree (a correct answer names the
 * truth, a wrong one another value of the attribute, the others none), and
 * every fact the bio parser returns must be a value of its attribute whose
 * truth is the world's; fw_bio_check's counts must add up to them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/facts/world.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fw_world_t w;
  if (!w.n && fw_init(&w, 12, 5)) abort();
  if (size < 1) return 0;
  int e = data[0] % 12, a = (data[0] >> 4) % FW_ATTRS, truth = data[0] % fw_nvalues(a);
  char *text = malloc(size);
  if (!text) return 0;
  memcpy(text, data + 1, size - 1), text[size - 1] = 0;
  int v, cls = fw_classify(a, truth, text, &v);
  if (cls < 0 || cls >= FW_CLASSES || (cls == FW_CORRECT) != (v == truth && v >= 0) ||
      (cls == FW_WRONG) != (v >= 0 && v != truth) || v >= fw_nvalues(a))
    abort();
  const char *alias[2] = {text, "the answer"}; /* free text: any class, never a crash */
  int fc = fw_classify_free(text, alias, 2);
  if (fc < 0 || fc >= FW_CLASSES) abort();
  fw_fact_t f[FW_MAX_FACTS];
  int n, t, fl, rc = fw_bio_facts(&w, e, text, f, FW_MAX_FACTS, &n);
  if (n < 0 || (rc && rc != -1) || (!rc && n == 0)) abort();
  for (int k = 0; k < n && k < FW_MAX_FACTS; k++)
    if (f[k].attr < 0 || f[k].attr >= FW_ATTRS || f[k].value < 0 ||
        f[k].value >= fw_nvalues(f[k].attr) || f[k].truth != (w.e[e].v[f[k].attr] == f[k].value))
      abort();
  if (fw_bio_check(&w, e, text, &t, &fl) != rc || t + fl != (n < FW_MAX_FACTS ? n : FW_MAX_FACTS))
    abort();
  free(text);
  return 0;
}
