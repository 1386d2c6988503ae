/* fuzz_import.c - libFuzzer target: `lathe data import` of every schema and
 * container. The first byte picks the schema and the file name (.jsonl,
 * .json: one array, .jsonl.gz: a gzip stream, read as plain bytes when it is
 * not one); the rest is the file. Import with no store only checks. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "../../storage/dataset.h"
#include "../../workbench/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *schemas[] = {"prefs", "sft", "math", "text", "transitions", "any"};
  static const char *ext[] = {".jsonl", ".json", ".jsonl.gz"};
  if (size < 1) return 0;
  char path[96];
  snprintf(path, sizeof path, "/tmp/lathe-fuzz-import-%d%s", (int)getpid(), ext[(data[0] / 6) % 3]);
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  fwrite(data + 1, 1, size - 1, f);
  fclose(f);
  int64_t n;
  lathe_dataset_import(NULL, path, "fuzz", schemas[data[0] % 6], &n);
  unlink(path);
  return 0;
}
