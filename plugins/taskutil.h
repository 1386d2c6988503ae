/* taskutil.h - what every task plugin shares: a deterministic prompt hash,
 * a caller's task, task tokens as text, and the plugin descriptor (a task is a pure function of its
 * config: no save or load) (DESTROY frees an instance). Header-only; included by the task plugins.
 */
#ifndef LATHE_TASKUTIL_H
#define LATHE_TASKUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../workbench/lathe.h"
#include "../workbench/nn/nn.h"

/* SplitMix64: prompt i's tokens are a function of (i, salt) alone. */
static inline uint64_t task_mix(uint64_t x) {
  return nn_splitmix64(&x);
}

/* The task the caller's config names (keys "task" and "task_args", the
 * latter "key=value,key=value"), created as a child of the caller's context:
 * 0, or a code with its message set (who names the caller in it), also when
 * the plugin is not a task. */
static inline int task_create(const lathe_host_t *h, lathe_ctx_t *c, const char *who,
                              const lathe_plugin_t **tp, void **task) {
  int rc =
      lathe_plugin_create_list(h, c, h->cfg_str(c, "task"), h->cfg_str(c, "task_args"), tp, task);
  if (rc) return rc;
  if ((*tp)->kind != LATHE_TASK)
    return h->fail(c, LATHE_ECONFIG, "%s: '%s' is not a task (its kind is %s)", who, (*tp)->name,
                   lathe_kind_name((*tp)->kind));
  return 0;
}

/* Task tokens as text, for a text reward model (pref's proxy reward, the
 * taskprefs generator): "w<id>" words joined by single spaces, stopping at
 * the first eos (eos < 0: none); NUL-terminated in out. A word that would
 * not fit in cap bytes, and every word after it, is left out. Returns the
 * length written. */
static inline size_t task_text(const int *tok, int n, int eos, char *out, size_t cap) {
  size_t at = 0;
  if (!cap) return 0;
  out[0] = 0;
  for (int i = 0; i < n && tok[i] != eos; i++) {
    int k = snprintf(out + at, cap - at, "%sw%d", at ? " " : "", tok[i]);
    if (k < 0 || (size_t)k >= cap - at) { /* did not fit: cut it off */
      out[at] = 0;
      break;
    }
    at += (size_t)k;
  }
  return at;
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
