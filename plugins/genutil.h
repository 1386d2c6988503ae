/* genutil.h - what every generator plugin shares: it cannot run as a run's
 * algorithm or checkpoint (a generator is a pure function of its config,
 * driven by `lathe data generate`), its descriptor, and text written as a
 * JSON string. Header-only;
 * included by the generator plugins, which define opts, create, gen_next
 * and destroy first. */
#ifndef LATHE_GENUTIL_H
#define LATHE_GENUTIL_H

#include "../workbench/lathe.h"
#include "../workbench/nn/nn.h"

#include <stdio.h>

/* Append s as the body of a JSON string: quote, backslash and control bytes
 * escaped. */
static inline void gen_put_json(lathe_buf_t *out, const char *s) {
  for (; *s; s++) {
    char esc[8];
    int n = *s == '\n'                 ? snprintf(esc, sizeof esc, "\\n")
            : *s == '"' || *s == '\\'  ? snprintf(esc, sizeof esc, "\\%c", *s)
            : (unsigned char)*s < 0x20 ? snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)*s)
                                       : (esc[0] = *s, 1);
    lathe_buf_put(out, esc, (size_t)n);
  }
}

#define GENERATOR_PLUGIN(NAME, SCHEMA, DOC)                                                        \
  static const lathe_generator_t gen_if = {.schema = SCHEMA, .next = gen_next};                    \
  static const lathe_plugin_t plugin = {.major = LATHE_API_MAJOR,                                  \
                                        .minor = LATHE_API_TARGET,                                 \
                                        .name = NAME,                                              \
                                        .kind = LATHE_GENERATOR,                                   \
                                        .version = "1.0.0",                                        \
                                        .doc = DOC,                                                \
                                        .opts = opts,                                              \
                                        .nn_abi = NN_ABI,                                          \
                                        .create = create,                                          \
                                        .destroy = destroy,                                        \
                                        .generator = &gen_if};                                     \
  LATHE_PLUGIN_ENTRY(plugin)

#endif
