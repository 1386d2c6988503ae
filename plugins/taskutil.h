/* taskutil.h - what every task plugin shares: a deterministic prompt hash,
 * and the plugin descriptor (a task is a pure function of its config: no
 * save or load) (DESTROY frees an instance). Header-only; included by the task plugins. */
#ifndef LATHE_TASKUTIL_H
#define LATHE_TASKUTIL_H

#include <stdlib.h>

#include "../workbench/lathe.h"
#include "../workbench/nn/nn.h"

/* SplitMix64: prompt i's tokens are a function of (i, salt) alone. */
static inline uint64_t task_mix(uint64_t x) {
  return nn_splitmix64(&x);
}

#define TASK_PLUGIN(NAME, DOC, OFFLINE_OK, DESTROY)                                                \
  static const lathe_task_t task_if = {.spec = spec,                                               \
                                       .prompt = prompt,                                           \
                                       .reward = reward,                                           \
                                       .reference = reference,                                     \
                                       .offline_ok = OFFLINE_OK};                                  \
  static const lathe_plugin_t plugin = {.major = LATHE_API_MAJOR,                                  \
                                        .minor = LATHE_API_TARGET,                                 \
                                        .name = NAME,                                              \
                                        .kind = LATHE_TASK,                                        \
                                        .version = "1.0.0",                                        \
                                        .doc = DOC,                                                \
                                        .opts = opts,                                              \
                                        .nn_abi = NN_ABI,                                          \
                                        .create = create,                                          \
                                        .destroy = DESTROY,                                        \
                                        .task = &task_if};                                         \
  LATHE_PLUGIN_ENTRY(plugin)

#endif
