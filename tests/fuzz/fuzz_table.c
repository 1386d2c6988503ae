/* fuzz_table.c - libFuzzer target: the question games' attribute-table
 * parser (a `table=FILE` of twentyq and gameplay is untrusted input). A table
 * it accepts must name its objects and tests back, and a small one is solved
 * by the DP: both values finite, within [-T, 0], the optimum at least the
 * ask-until-identified value. */
#include <stdint.h>
#include <stdlib.h>

#include "../../plugins/games/table.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tb_table_t t;
  char why[160];
  if (tb_parse(&t, (const char *)data, size, why, sizeof why)) {
    if (!why[0]) abort(); /* a refusal always says why */
    return 0;
  }
  for (int i = 0; i < t.n; i++)
    if (tb_object(&t, t.obj[i]) != i) abort();
  for (int q = 0; q < t.ntest; q++)
    if (tb_test(&t, t.attr[t.test[q].attr], t.test[q].val) != q) abort();
  if (t.n <= 12 && t.ntest <= 40) {
    const int T = 4;
    double opt, id;
    if (tb_values(&t, T, 0.95, &opt, &id) == 0 &&
        (!(opt <= 0 && opt >= -T) || !(id <= 0 && id >= -T) || opt < id - 1e-12))
      abort();
  }
  tb_free(&t);
  return 0;
}
