/* fuzz_ckpt.c - libFuzzer target: every checkpoint loader, through the plugin
 * ABI exactly as `lathe resume` calls it. The first byte picks a plugin
 * instance (dqn, cql, pref on a task, regress, the five environments, pr2l on
 * the raw grid, the three text games, created once with small configs); the rest is what its save()
 * wrote. A load that succeeds is followed by two steps (an environment: one env step), so a state
 * load() accepts must also be one the plugin can run from. The seed corpus is what save() writes,
 * fresh and after a short run of each (LATHE_FUZZ_SEEDS=DIR writes it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lua/l_lathe.h"
#include "../../workbench/error.h"
#include "../../workbench/run.h"

static const struct {
  const char *plugin;
  const char *kv[16];
  int warm; /* steps of the short run the second seed is taken after */
} inst[] = {
    {"dqn",
     {"critic_head=hl_gauss", "bins=11", "buffer_size=200", "learning_starts=50",
      "total_timesteps=100000", "train_frequency=1", "batch_size=16", "eval_every=1000000",
      "hidden=16,16", NULL},
     150},
    {"cql",
     {"offline_steps=0", "online_steps=100000", "learning_starts=50", "replay_buffer_size=200",
      "batch_size=8", "policy_arch=16-16", "qf_arch=16-16", "eval_every=1000000", NULL},
     120},
    {"pref",
     {"queries=100000", "ref_steps=5", "samples=2", "prompts=2", "inner_steps=1", "layers=1",
      "heads=1", "width=8", "ref_batch=4", "eval_every=1000000", "eval_prompts=2", NULL},
     8},
    {"regress", {"steps=1000000", "hidden=8", "batch=4", "data=16", NULL}, 20},
    {"cartpole", {NULL}, 0},
    {"acrobot", {NULL}, 0},
    {"mountaincar", {NULL}, 0},
    {"pendulum", {NULL}, 0},
    {"pointmaze", {"maze=umaze", NULL}, 0},
    {"pr2l",
     {"repr=raw", "size=3", "dim=4", "pool_heads=1", "hidden=4", "num_envs=2", "num_steps=8",
      "num_minibatches=2", "update_epochs=1", "layouts=4", "heldout_layouts=2",
      "eval_every=1000000", "eval_episodes=2", "total_timesteps=100000000", NULL},
     3},
    {"twentyq", {"objects=64", "attributes=6", NULL}, 0},
    {"guessnum", {NULL}, 0},
    {"guesscity", {NULL}, 0},
};
#define N (int)(sizeof inst / sizeof *inst)
static lathe_child_t *ch[N];

static int nkv(int i) {
  int n = 0;
  while (inst[i].kv[n]) n++;
  return n;
}

static void write_seed(const char *dir, int i, const char *tag) {
  lathe_buf_t b = {0};
  uint8_t sel = (uint8_t)i;
  lathe_buf_put(&b, &sel, 1);
  if (ch[i]->p->save(ch[i]->self, lathe_host(), &ch[i]->ctx, &b) || b.err) return;
  char path[4200];
  snprintf(path, sizeof path, "%s/%s-%s", dir, inst[i].plugin, tag);
  FILE *f = fopen(path, "wb");
  if (f) fwrite(b.p, 1, b.n, f), fclose(f);
  lathe_buf_free(&b);
}

static void step(int i, int n) {
  const lathe_plugin_t *p = ch[i]->p;
  for (int k = 0; k < n; k++) {
    if (p->kind == LATHE_TEXTENV) {
      const char *obs;
      double r;
      int term, trunc;
      const lathe_host_t *h = lathe_host();
      if (p->textenv->step(ch[i]->self, h, &ch[i]->ctx, "guess 3 .", 9, &obs, &r, &term, &trunc) ||
          term || trunc)
        p->textenv->reset(ch[i]->self, h, &ch[i]->ctx, LATHE_NO_SEED, &obs);
    } else if (p->kind == LATHE_ENVIRONMENT) {
      float a[LATHE_SPACE_MAX] = {0}, obs[LATHE_SPACE_MAX];
      double r;
      int term, trunc;
      const lathe_host_t *h = lathe_host();
      if (p->env->step(ch[i]->self, h, &ch[i]->ctx, a, obs, &r, &term, &trunc) || term || trunc)
        p->env->reset(ch[i]->self, h, &ch[i]->ctx, LATHE_NO_SEED, obs);
    } else if (p->algorithm->step(ch[i]->self, lathe_host(), &ch[i]->ctx) < 0)
      break;
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  if (lathe_declare_builtins()) {
    fprintf(stderr, "fuzz_ckpt: %s\n", lathe_lasterr());
    exit(1);
  }
  const char *seeds = getenv("LATHE_FUZZ_SEEDS");
  for (int i = 0; i < N; i++) {
    if (lathe_instance_new(inst[i].plugin, inst[i].kv, nkv(i), NULL, &ch[i])) {
      fprintf(stderr, "fuzz_ckpt: %s: %s\n", inst[i].plugin, lathe_lasterr());
      exit(1);
    }
    if (ch[i]->p->kind == LATHE_ENVIRONMENT) {
      float obs[LATHE_SPACE_MAX];
      ch[i]->p->env->reset(ch[i]->self, lathe_host(), &ch[i]->ctx, 1, obs);
    }
    if (ch[i]->p->kind == LATHE_TEXTENV) {
      const char *obs;
      ch[i]->p->textenv->reset(ch[i]->self, lathe_host(), &ch[i]->ctx, 1, &obs);
    }
    if (seeds) write_seed(seeds, i, "fresh");
    step(i, inst[i].warm ? inst[i].warm : 7);
    if (seeds) write_seed(seeds, i, "run");
  }
  if (seeds) exit(0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int i = data[0] % N;
  lathe_buf_t b = {(uint8_t *)data + 1, size - 1, 0, 0, 0};
  lathe_clearerr();
  if (!ch[i]->p->load(ch[i]->self, lathe_host(), &ch[i]->ctx, &b)) step(i, 2);
  return 0;
}
