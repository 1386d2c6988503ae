/* taskutil.h - what every task plugin shares: a deterministic prompt hash,
 * stateless checkpoints (a task is a pure function of its config), and the
 * plugin descriptor (DESTROY frees an instance). Header-only; included by the task plugins. */
#ifndef LATHE_TASKUTIL_H
#define LATHE_TASKUTIL_H

#include <stdlib.h>

#include "../workbench/lathe.h"

/* SplitMix64: prompt i's tokens are a function of (i, salt) alone. */
static inline uint64_t task_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

#define TASK_PLUGIN(NAME, DOC, OFFLINE_OK, DESTROY)                                                \
  static int task_save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {        \
    return 0;                                                                                      \
  }                                                                                                \
  static int task_load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {        \
    return 0;                                                                                      \
  }                                                                                                \
  static int task_nostep(void *self, const lathe_host_t *h, lathe_ctx_t *c) {                      \
    return h->fail(c, LATHE_EPLUGIN, "a task cannot run alone: give it to the pref plugin");       \
  }                                                                                                \
  static const lathe_plugin_t plugin = {.apiver = LATHE_PLUGIN_APIVER,                             \
                                        .name = NAME,                                              \
                                        .kind = "task",                                            \
                                        .version = "1.0.0",                                        \
                                        .doc = DOC,                                                \
                                        .opts = opts,                                              \
                                        .create = create,                                          \
                                        .step = task_nostep,                                       \
                                        .save = task_save,                                         \
                                        .load = task_load,                                         \
                                        .destroy = DESTROY,                                        \
                                        .task_spec = spec,                                         \
                                        .task_prompt = prompt,                                     \
                                        .task_reward = reward,                                     \
                                        .task_reference = reference,                               \
                                        .task_offline_ok = OFFLINE_OK};                            \
  const lathe_plugin_t *lathe_plugin_entry(int v) {                                                \
    return v == LATHE_PLUGIN_APIVER ? &plugin : NULL;                                              \
  }

#endif
