/* test_tasks.c - the task plugins (bandit, length) against onpolicy_pref.md:
 * the reward test vectors, the reference histogram's exact bin masses, and
 * the length reference's shape; task_text and the taskprefs generator. */
#include <math.h>
#include <string.h>

#include <json-c/json.h>

#include "../plugins/taskutil.h"
#include "../workbench/error.h"
#include "../workbench/registry.h"
#include "../workbench/run.h"
#include "test.h"

TEST(task_bandit_rewards_and_reference) {
  const char *r1[] = {"reward=r1"}, *r2[] = {"reward=r2"},
             *seq[] = {"reward=r2", "reward_over=sequence"};
  lathe_child_t *a = test_instance("bandit", r1, 1), *b = test_instance("bandit", r2, 1);
  lathe_child_t *s = test_instance("bandit", seq, 2);
  int y[3] = {20, 25, 70}, prompt[1] = {20};
  ASSERT_NEAR(a->p->task->reward(a->self, prompt, y, 3), 0.333333, 1e-6);
  ASSERT_NEAR(b->p->task->reward(b->self, prompt, y, 3), 0.592934, 1e-6);
  /* the reference code's form: the prompt token [20] counts too */
  ASSERT_NEAR(s->p->task->reward(s->self, prompt, y + 1, 2), 0.592934, 1e-6);
  lathe_task_spec_t sp;
  b->p->task->spec(b->self, &sp);
  ASSERT_EQ(sp.vocab, 100);
  ASSERT_EQ(sp.prompt_len, 1);
  ASSERT_EQ(sp.max_response, 9);
  ASSERT_EQ(sp.eos, -1);
  float p[100];
  a->p->task->reference(a->self, lathe_host(), &a->ctx, prompt, y, 0, p);
  double sum = 0, band = 0, r1mean = 0, r2mean = 0;
  for (int i = 0; i < 100; i++) {
    sum += p[i];
    if (i >= 60 && i < 80) band += p[i];
    /* the task's own reward of the one-token response i, under pi_ref = p_data */
    r1mean += p[i] * a->p->task->reward(a->self, prompt, &i, 1);
    r2mean += p[i] * b->p->task->reward(b->self, prompt, &i, 1);
  }
  ASSERT_NEAR(sum, 1, 1e-6);
  ASSERT_NEAR(p[0], 0.0781, 5e-5);
  ASSERT_NEAR(p[16], 0.0268, 5e-5);
  ASSERT_NEAR(p[70], 0.00211, 5e-6);
  ASSERT_NEAR(p[99], 0.0422, 5e-5);
  ASSERT_NEAR(band, 0.0438, 5e-5);
  ASSERT_NEAR(r2mean, 0.377, 1e-3); /* the start of R2 under pi_ref = p_data */
  ASSERT_NEAR(r1mean, 0.039, 1e-3);
  /* prompts: a function of the index, spread over the vocabulary */
  int seen[100] = {0}, q[1], q2[1];
  for (int i = 0; i < 1000; i++)
    a->p->task->prompt(a->self, lathe_host(), &a->ctx, (uint64_t)i, q), seen[q[0]] = 1;
  int distinct = 0;
  for (int i = 0; i < 100; i++) distinct += seen[i];
  ASSERT(distinct > 95);
  a->p->task->prompt(a->self, lathe_host(), &a->ctx, 7, q),
      b->p->task->prompt(b->self, lathe_host(), &b->ctx, 7, q2);
  ASSERT_EQ(q[0], q2[0]);
  lathe_instance_free(a), lathe_instance_free(b), lathe_instance_free(s);
}

TEST(task_length_rewards_and_reference) {
  const char *mn[] = {"variant=min"}, *md[] = {"variant=mode"}, *sk[] = {"variant=skew"};
  lathe_child_t *a = test_instance("length", mn, 1), *b = test_instance("length", md, 1);
  lathe_child_t *c = test_instance("length", sk, 1);
  int prompt[4], resp[64];
  a->p->task->prompt(a->self, lathe_host(), &a->ctx, 3, prompt);
  for (int i = 0; i < 4; i++) ASSERT(prompt[i] >= 1 && prompt[i] < 32);
  for (int i = 0; i < 64; i++) resp[i] = 5;
  resp[20] = 0; /* 20 words, then EOS */
  ASSERT_NEAR(a->p->task->reward(a->self, prompt, resp, 21), -20, 0);
  ASSERT_NEAR(b->p->task->reward(b->self, prompt, resp, 21), -12, 0);
  resp[20] = 5;
  ASSERT_NEAR(a->p->task->reward(a->self, prompt, resp, 64), -64, 0); /* cut: 64 words, no EOS */
  resp[20] = 0;
  ASSERT_EQ(c->p->task->offline_ok(c->self, prompt, resp, 21), 0); /* skew: under 32 words */
  ASSERT_EQ(a->p->task->offline_ok(a->self, prompt, resp, 21), 1);
  /* the reference's length distribution: P(L = n) from the hazards; mode 32, range 8..63 */
  float p[32];
  double alive = 1, pl[65] = {0}, best = 0;
  int mode = 0;
  for (int t = 0; t < 64; t++) {
    a->p->task->reference(a->self, lathe_host(), &a->ctx, prompt, resp, t, p);
    double s = 0;
    for (int k = 0; k < 32; k++) s += p[k];
    ASSERT_NEAR(s, 1, 1e-5);
    pl[t] = alive * p[0], alive *= 1 - p[0];
    if (pl[t] > best) best = pl[t], mode = t;
  }
  ASSERT_NEAR(alive, 0, 1e-9);
  ASSERT_EQ(mode, 32);
  ASSERT_NEAR(pl[7], 0, 0);
  ASSERT(pl[8] > 0 && pl[63] > 0);
  lathe_instance_free(a), lathe_instance_free(b), lathe_instance_free(c);
}

TEST(task_text_words_and_bounds) {
  int tok[5] = {3, 17, 0, 9, 9};
  char out[64];
  ASSERT_EQ((int)task_text(tok, 5, 0, out, sizeof out), 6); /* stops at eos */
  ASSERT(!strcmp(out, "w3 w17"));
  ASSERT_EQ((int)task_text(tok, 5, -1, out, sizeof out), 15); /* no eos: every token */
  ASSERT(!strcmp(out, "w3 w17 w0 w9 w9"));
  ASSERT_EQ((int)task_text(tok, 5, -1, out, 7), 6); /* "w3 w17" fits in 7, " w0" does not */
  ASSERT(!strcmp(out, "w3 w17"));
  ASSERT_EQ((int)task_text(tok, 5, -1, out, 2), 0); /* not even "w3" */
  ASSERT(!strcmp(out, ""));
}

/* taskprefs on Skew Length: every response the skew admits (32 words or
 * more), the shorter chosen (label 1) or a tie (0.5), r_chosen = -words. */
TEST(taskprefs_gold_choice_and_skew) {
  const char *kv[] = {"task=length", "task_args=variant=skew", "pairs=40", "seed=3"};
  lathe_registry_add("length", "length.so", "tests"); /* the task it instantiates */
  lathe_child_t *g = test_instance("taskprefs", kv, 4);
  ASSERT(g != NULL);
  int n = 0, rc;
  lathe_buf_t b = {0};
  while ((rc = g->p->generator->next(g->self, lathe_host(), &g->ctx, &b)) == LATHE_CONTINUE) {
    lathe_buf_put(&b, "", 1);
    json_object *o = json_tokener_parse((const char *)b.p), *v;
    ASSERT(o != NULL);
    int w[2];
    const char *f[2] = {"chosen", "rejected"};
    for (int k = 0; k < 2; k++) {
      ASSERT(json_object_object_get_ex(o, f[k], &v));
      const char *s = json_object_get_string(v);
      w[k] = *s != 0;
      for (; *s; s++) w[k] += *s == ' ';
      ASSERT(w[k] >= 32);
    }
    ASSERT(json_object_object_get_ex(o, "label", &v));
    double label = json_object_get_double(v);
    ASSERT(label == 1 ? w[0] < w[1] : label == 0.5 && w[0] == w[1]);
    ASSERT(json_object_object_get_ex(o, "r_chosen", &v));
    ASSERT_NEAR(json_object_get_double(v), -w[0], 0);
    json_object_put(o);
    b.n = 0, n++;
  }
  ASSERT_EQ(rc, LATHE_DONE);
  ASSERT_EQ(n, 40);
  lathe_buf_free(&b);
  lathe_instance_free(g);
}
