/* fuzz_config.c - libFuzzer target: configuration values as `--set` and
 * recipes give them (key=value lines against a schema of every type), and a
 * run record's config (JSON) read back on resume. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/config.h"
#include "../../workbench/error.h"

static const lathe_opt_t opts[] = {
    {"steps", LATHE_INT, "100", 1, 1e10, NULL, "an integer with a range"},
    {"lr", LATHE_NUM, "3e-4", 0, 1, NULL, "a number with a range"},
    {"gamma", LATHE_NUM, "0.99", 1, 0, NULL, "a number without one"},
    {"double_q", LATHE_BOOL, "false", 0, -1, NULL, "a bool"},
    {"head", LATHE_STR, "mse", 0, -1, "mse|huber|two_hot|hl_gauss|c51", "choices"},
    {"hidden", LATHE_STR, "120,84", 0, -1, NULL, "free text"},
    {NULL}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  lathe_cfg_t c;
  if (!lathe_cfg_init(&c, "fuzz", opts, NULL)) {
    for (char *line = text, *next; line && *line; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = 0;
      char *eq = strchr(line, '=');
      if (!eq) continue;
      *eq = 0;
      lathe_cfg_set(&c, line, eq + 1);
    }
    json_object *j = lathe_cfg_json(&c);
    json_object_put(j);
    lathe_cfg_free(&c);
  }
  memcpy(text, data, size); /* the same bytes as a run record's config */
  json_object *o = json_tokener_parse(text);
  if (o && !lathe_cfg_init(&c, "fuzz", opts, NULL)) {
    lathe_cfg_from_json(&c, o);
    lathe_cfg_free(&c);
  }
  json_object_put(o);
  free(text);
  return 0;
}
