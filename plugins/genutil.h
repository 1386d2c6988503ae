/* genutil.h - what every generator plugin shares: it cannot run as a run's
 * algorithm or checkpoint (a generator is a pure function of its config,
 * driven by `lathe data generate`), and its descriptor. Header-only;
 * included by the generator plugins, which define opts, create, gen_next
 * and destroy first. */
#ifndef LATHE_GENUTIL_H
#define LATHE_GENUTIL_H

#include "../workbench/lathe.h"

#define GENERATOR_PLUGIN(NAME, SCHEMA, DOC)                                                        \
  static int gen_nostep(void *self, const lathe_host_t *h, lathe_ctx_t *c) {                       \
    return h->fail(c, LATHE_EPLUGIN, "a generator cannot run: use lathe data generate");           \
  }                                                                                                \
  static int gen_nosave(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {       \
    return LATHE_EPLUGIN;                                                                          \
  }                                                                                                \
  static const lathe_plugin_t plugin = {.apiver = LATHE_PLUGIN_APIVER,                             \
                                        .name = NAME,                                              \
                                        .kind = "generator",                                       \
                                        .version = "1.0.0",                                        \
                                        .doc = DOC,                                                \
                                        .opts = opts,                                              \
                                        .create = create,                                          \
                                        .step = gen_nostep,                                        \
                                        .save = gen_nosave,                                        \
                                        .load = gen_nosave,                                        \
                                        .destroy = destroy,                                        \
                                        .gen_schema = SCHEMA,                                      \
                                        .gen_next = gen_next};                                     \
  const lathe_plugin_t *lathe_plugin_entry(int v) {                                                \
    return v == LATHE_PLUGIN_APIVER ? &plugin : NULL;                                              \
  }

#endif
