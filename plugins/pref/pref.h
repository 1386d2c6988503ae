/* pref.h - the pref plugin's state, shared by its two modes: tasks
 * (pref.c: a reference fitted to the task, sampling, every method) and
 * preference datasets (pairs.c: offline losses on stored pairs, the policy
 * and reference taken from another run's model). */
#ifndef LATHE_PREF_H
#define LATHE_PREF_H

#include "../../workbench/lathe.h"
#include "../../workbench/nn/lm.h"
#include "../../workbench/nn/nn.h"
#include "../../workbench/nn/rm.h"

enum { M_SFT = 10, M_BON, M_RWR, M_REINFORCE, M_PPO };

/* Sampled responses: M sequences of T tokens, n per prompt (groups of n). */
typedef struct {
  int M, n, T;
  int *tok;       /* M*T: prompt, response, zero padding */
  int *rlen;      /* M: response tokens */
  float *mask;    /* M*T: 1 where the token is a response token */
  double *reward; /* M */
  float *ref_tok; /* M*T: log pi_ref of each token (0 outside responses) */
  float *old_tok; /* M*T: log pi of the sampling policy (ppo) */
} set_t;

typedef struct {
  const lathe_host_t *h; /* the run's host and context, for the task's hooks */
  lathe_ctx_t *c;
  const lathe_plugin_t *tp;
  void *task;
  lathe_task_spec_t spec;
  int P, R, T, V; /* prompt, response, context, vocab */
  int method, onpolicy, neg, all_pairs, M_groups, N, inner;
  int shard, nshards; /* dataset mode, data-parallel: this shard of each batch */
  nn_pref_t pref;
  double gap, neg_lambda, rwr_temp, kl, clip, lr, grad_clip, temp;
  int64_t ref_steps, ref_batch, train_steps, eval_every, eval_prompts, step;
  double ref_lr;
  nn_gpt_t pol, ref;
  nn_rng_t rng;
  set_t cur;    /* the on-policy batch, or the offline data */
  nn_tok_t tok; /* dataset mode: the model's tokenizer */
  int text;     /* dataset mode (pairs.c) */
  nn_rm_t rm;   /* reward_run's reward model (dataset mode on-policy, or a task's proxy) */
  int has_rm;   /* rm is loaded; in task mode it replaces the task's reward in training */
  struct pairs *pairs;
  int64_t queries; /* reward queries so far */
  int64_t next_prompt;
  double rmean, rvar; /* running reward statistics (reinforce, ppo) */
  int rstats;
  /* scratch */
  float *lpt, *w, *buf;
  size_t nbuf;
} pref_t;

/* Load reward_run's reward model into p->rm (both modes). Returns 0 or a
 * code, its message set: no checkpoint, or not a reward model's. */
int pref_load_rm(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c);
/* Dataset mode: read the pairs and the init_run model, precompute pi_ref's
 * log-probabilities (valid since pi_ref is fixed). With reward_run and
 * onpolicy, the pairs give prompts only: each step samples `samples`
 * responses to `prompts` of them from the policy, ranks them with
 * reward_run's reward model and takes a DPO-family step on best vs worst. */
int pairs_create(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c);
/* One gradient step on a minibatch of pairs; evaluations on the held-out pairs. */
int pairs_step(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c);
void pairs_free(pref_t *p);
/* Data parallelism (both modes). This shard's sampling stream: the run's own
 * with one shard; with several, one seeded from the run's stream (every shard
 * draws the same value) and the shard's index, so nothing depends on timing. */
nn_rng_t *pref_shard_rng(pref_t *p, nn_rng_t *own);
/* x[0..n) (n <= 8) and the pair statistics ps summed over the shards, in
 * float (nothing to do with one shard). Returns 0 or the all-reduce's code. */
int pref_sum_stats(pref_t *p, double *x, int n, nn_pref_stats_t *ps);
/* TRL's pair metrics (means), names prefixed by pre ("", "eval/" or "test/"); nothing
 * when there were no pairs. */
void pref_report(const lathe_host_t *h, lathe_ctx_t *c, const char *pre, const nn_pref_stats_t *s);

#endif
