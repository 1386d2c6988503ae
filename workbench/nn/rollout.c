/* rollout.c - episodes of an environment plugin under a policy: what every
 * RL plugin's evaluation does (nn.h). */
#include "nn.h"

int nn_episode(const lathe_plugin_t *envp, void *env, const lathe_host_t *h, lathe_ctx_t *c,
               uint64_t seed, int64_t max_len, nn_policy_fn policy, void *ud, double *rew,
               nn_episode_t *out) {
  float obs[LATHE_SPACE_MAX], a[LATHE_SPACE_MAX];
  out->ret = 0, out->len = 0, out->terminated = 0, out->cut = 0;
  int rc = envp->env->reset(env, h, c, seed, obs);
  for (int trunc = 0; !rc && !out->terminated && !trunc;) {
    policy(ud, obs, a);
    double r;
    rc = envp->env->step(env, h, c, a, obs, &r, &out->terminated, &trunc);
    if (rc) break;
    if (rew) rew[out->len] = r;
    out->ret += r, out->len++;
    if (max_len > 0 && out->len >= max_len && !out->terminated && !trunc) trunc = out->cut = 1;
  }
  return rc;
}
