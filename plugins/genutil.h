/* genutil.h - what every generator plugin shares: it cannot run as a run's
 * algorithm or checkpoint (a generator is a pure function of its config,
 * driven by `lathe data generate`), and its descriptor. Header-only;
 * included by the generator plugins, which define opts, create, gen_next
 * and destroy first. */
#ifndef LATHE_GENUTIL_H
#define LATHE_GENUTIL_H

#include "../workbench/lathe.h"
#include "../workbench/nn/nn.h"

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
