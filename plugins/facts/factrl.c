/* factrl.c - long-form factuality RL in the facts world (specs/unfamiliar.md,
 * experiment 3).
 *
 * The policy (init_run: an sft run on bios, "bio of NAME :" -> sentences)
 * writes bios of the world's train entities; a True/False judge (judge_run:
 * an sft run on labelled claims, read in the form judge_form, judge.h)
 * calls each stated fact true when P(true) > 0.5 (the label it would decode
 * greedily) and false otherwise; the reward is 2 #true - 3 #false, and -15
 * for a bio that does not parse or was cut off at max_tokens (with
 * judge_reward = expected, each fact counts its expected reward under the
 * judge's label distribution, 5 P(true) - 3, instead). Each step samples
 * `samples` bios for each of `prompts` entities (a seeded shuffle of
 * the train entities, epoch after epoch; two sampling shards with streams of
 * their own, so both cores give the same samples as one) and takes one
 * REINFORCE step: the advantage of a bio is its reward minus the mean of
 * the other bios of its entity (leave-one-out), divided by the square root
 * of a running reward variance, and every response token (and the <eos>)
 * carries -(A log pi - kl_coef (log pi - log pi_ref)) (nn_pg_reinforce_token),
 * pi_ref the initial policy, frozen. The loss is the mean over bios.
 *
 * Evaluation every eval_every steps and at the end: `eval_samples` sampled
 * bios of every entity of split `eval_split`, their facts checked against
 * the world (eval/true_facts, eval/false_facts, eval/malformed per bio) and
 * judged (eval/reward_judge against eval/reward_true, the reward the world's
 * truth would give). The last evaluation is written as dataset `out`, one
 * record per entity: entity, k, n, true, false, malformed, judge_true,
 * judge_false, bios. The checkpoint opens with the policy's model block
 * (nn/lm.h), so `lathe.sample` and later runs read the policy. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../textdata.h"
#include "judge.h"
#include "world.h"

#define FR_SHARDS 2

static const lathe_opt_t opts[] = {
    {"init_run", LATHE_INT, "0", 0, 4e9, NULL, "the policy's run (sft on bios)"},
    {"judge_run", LATHE_INT, "0", 0, 4e9, NULL, "the True/False judge's run (an sft run)"},
    {"judge_form", LATHE_STR, "statement", 0, -1, "statement|negation",
     "how the judge reads a fact (judge.h): \" true\"/\" false\" after the sentence, or "
     "\" VALUE .\"/\" not VALUE .\" after the cloze"},
    {"entities", LATHE_INT, "2000", 1, FW_MAX_ENTITIES, NULL, "the world's entities"},
    {"world", LATHE_INT, "0", 0, 1e18, NULL, "the world's seed (factsworld's seed)"},
    {"judge_reward", LATHE_STR, "verdict", 0, -1, "verdict|expected",
     "a fact's reward: +2/-3 by the judge's verdict (P(true) > 0.5), or its expectation "
     "5 P(true) - 3"},
    {"steps", LATHE_INT, "200", 1, 1e9, NULL, "policy-gradient steps"},
    {"prompts", LATHE_INT, "16", 1, 4096, NULL, "entities per step"},
    {"samples", LATHE_INT, "4", 2, 256, NULL, "bios per entity (leave-one-out baseline)"},
    {"lr", LATHE_NUM, "1e-4", 0, 10, NULL, "AdamW learning rate"},
    {"kl_coef", LATHE_NUM, "0.05", 0, 1e6, NULL, "per-token KL penalty to the initial policy"},
    {"grad_clip", LATHE_NUM, "1", 0, 1e9, NULL, "gradient norm clip (0: off)"},
    {"temperature", LATHE_NUM, "1", 0.01, 10, NULL, "sampling temperature"},
    {"max_tokens", LATHE_INT, "56", 1, 4096, NULL, "tokens per bio at most"},
    {"eval_every", LATHE_INT, "50", 1, 1e9, NULL, "steps between evaluations"},
    {"eval_samples", LATHE_INT, "2", 1, 64, NULL, "bios per evaluated entity"},
    {"eval_split", LATHE_STR, "test", 0, -1, "train|val|test", "the entities evaluated"},
    {"out", LATHE_STR, "", 0, 0, NULL, "the last evaluation's dataset (default factrl-RUN)"},
    {NULL}};

typedef struct {
  nn_tok_t tok;
  nn_gpt_t pol, ref;
  fj_t judge;
  fw_world_t w;
  int G, S, max_new, eval_S, eval_split, negation, expected;
  int64_t steps, step, eval_every, pos;
  double lr, kl, clip, temp, rvar;
  int *order, ntrain; /* the train entities, in the current epoch's order */
  nn_rng_t rng[FR_SHARDS], shuffle;
} fr_t;

/* One batch of sampled bios, checked and judged. */
typedef struct {
  int B, T, *tok, *plen, *rlen, *ent;
  float *mask;
  int *n_true, *n_false, *yes, *no, *bad;
  double *soft; /* sum over the bio's facts of 5 P(true) - 3 */
  int expected; /* judge_reward = expected: the reward is soft, not the verdicts' */
  char **text;
} bios_t;

static void bios_free(bios_t *b) {
  for (int i = 0; b->text && i < b->B; i++) free(b->text[i]);
  free(b->tok), free(b->plen), free(b->rlen), free(b->ent), free(b->mask), free(b->n_true);
  free(b->n_false), free(b->yes), free(b->no), free(b->bad), free(b->text), free(b->soft);
  memset(b, 0, sizeof *b);
}

static void destroy(void *self) {
  fr_t *s = self;
  if (!s) return;
  nn_tok_free(&s->tok), nn_gpt_free(&s->pol), nn_gpt_free(&s->ref), fj_free(&s->judge);
  fw_free(&s->w), free(s->order);
  free(s);
}

static void shuffle(fr_t *s) {
  for (int i = s->ntrain - 1; i > 0; i--) {
    int j = (int)nn_rng_below(&s->shuffle, (uint32_t)i + 1), x = s->order[i];
    s->order[i] = s->order[j], s->order[j] = x;
  }
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  fr_t *s = calloc(1, sizeof *s);
  if (!s) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = s;
  s->G = (int)h->cfg_int(c, "prompts"), s->S = (int)h->cfg_int(c, "samples");
  s->max_new = (int)h->cfg_int(c, "max_tokens"), s->eval_S = (int)h->cfg_int(c, "eval_samples");
  s->steps = h->cfg_int(c, "steps"), s->eval_every = h->cfg_int(c, "eval_every");
  s->lr = h->cfg_num(c, "lr"), s->kl = h->cfg_num(c, "kl_coef");
  s->clip = h->cfg_num(c, "grad_clip"), s->temp = h->cfg_num(c, "temperature");
  s->negation = !strcmp(h->cfg_str(c, "judge_form"), "negation");
  s->expected = !strcmp(h->cfg_str(c, "judge_reward"), "expected");
  const char *es = h->cfg_str(c, "eval_split");
  s->eval_split = !strcmp(es, "train") ? FW_TRAIN : !strcmp(es, "val") ? FW_VAL : FW_TEST;
  if (fw_init(&s->w, (int)h->cfg_int(c, "entities"), (uint64_t)h->cfg_int(c, "world")))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  int rc = tx_model_of_run(h, c, "init_run", (uint32_t)h->cfg_int(c, "init_run"),
                           " (factrl writes bios in words)", &s->tok, &s->pol);
  if (rc) return rc;
  nn_rng_t r0; /* pi_ref: a frozen copy of the initial policy (as pref's pairs.c makes it) */
  nn_rng_seed(&r0, 0);
  if (nn_gpt_init(&s->ref, s->pol.cfg, &r0)) return h->fail(c, LATHE_ENOMEM, "out of memory");
  nn_params_copy(&s->ref.params, &s->pol.params);
  if ((rc = tx_model_of_run(h, c, "judge_run", (uint32_t)h->cfg_int(c, "judge_run"),
                            " (the judge reads statements in words)", &s->judge.tok, &s->judge.g)))
    return rc;
  if (s->max_new >= s->pol.cfg.ctx - 4)
    return h->fail(c, LATHE_ECONFIG,
                   "factrl: max_tokens %d leaves no room for a prompt in a "
                   "context of %d",
                   s->max_new, s->pol.cfg.ctx);
  if (!(s->order = malloc((size_t)s->w.n * sizeof *s->order)))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int e = 0; e < s->w.n; e++)
    if (fw_split(e) == FW_TRAIN) s->order[s->ntrain++] = e;
  if (!s->ntrain) return h->fail(c, LATHE_ECONFIG, "factrl: the world has no train entity");
  uint64_t seed = h->seed(c);
  for (int k = 0; k < FR_SHARDS; k++) nn_rng_seed(&s->rng[k], seed * 0x9e3779b97f4a7c15ULL + k);
  nn_rng_seed(&s->shuffle, seed * 0x9e3779b97f4a7c15ULL + 99);
  shuffle(s);
  h->set_total(c, s->steps);
  h->log(c, "%d train entities, %d bios each of %d per step; judge: run %lld", s->ntrain, s->S,
         s->G, (long long)h->cfg_int(c, "judge_run"));
  return 0;
}

/* Sample S bios of each of the n entities ent[], check and judge them;
 * rngs: the shards' streams. */
static int sample_bios(fr_t *s, const int *ent, int n, int S, nn_rng_t *rngs, bios_t *b) {
  int C = s->pol.cfg.ctx, M = s->max_new, P = C - M, B = n * S, rc = 0;
  memset(b, 0, sizeof *b);
  b->B = B;
  int *pr = malloc((size_t)B * P * sizeof *pr), *out = malloc((size_t)B * M * sizeof *out);
  b->plen = calloc((size_t)B, sizeof *b->plen), b->rlen = calloc((size_t)B, sizeof *b->rlen);
  b->ent = calloc((size_t)B, sizeof *b->ent), b->bad = calloc((size_t)B, sizeof *b->bad);
  b->n_true = calloc((size_t)B, sizeof *b->n_true),
  b->n_false = calloc((size_t)B, sizeof *b->n_false);
  b->yes = calloc((size_t)B, sizeof *b->yes), b->no = calloc((size_t)B, sizeof *b->no);
  b->text = calloc((size_t)B, sizeof *b->text), b->soft = calloc((size_t)B, sizeof *b->soft);
  b->expected = s->expected;
  char *text = malloc((size_t)M * 64 + 1), prompt[96], nm[FW_NAME_MAX];
  if (!pr || !out || !b->plen || !b->rlen || !b->ent || !b->bad || !b->n_true || !b->n_false ||
      !b->yes || !b->no || !b->text || !b->soft || !text)
    rc = LATHE_ENOMEM;
  for (int i = 0; i < n && !rc; i++) {
    snprintf(prompt, sizeof prompt, "bio of %s :", fw_name(&s->w, ent[i], nm));
    int len = nn_tok_encode(&s->tok, prompt, strlen(prompt), pr + (size_t)i * S * P, P);
    if (len > P) rc = LATHE_ESHAPE;
    for (int j = 0; j < S && !rc; j++) {
      if (j) memcpy(pr + ((size_t)i * S + j) * P, pr + (size_t)i * S * P, len * sizeof *pr);
      b->plen[i * S + j] = len, b->ent[i * S + j] = ent[i];
    }
  }
  static const int stop[] = {NN_TOK_EOS};
  nn_gen_t o = {(float)s->temp, 0, 1.0f, stop, 1, 0, 0};
  if (!rc)
    rc = nn_lm_generate_sharded(&s->pol, pr, b->plen, B, P, M, &o, rngs, FR_SHARDS,
                                nn_get_threads(), out, b->rlen, NULL);
  /* the facts, checked; the statements to judge */
  int nst = 0, cap = B * 8;
  char **st = malloc((size_t)cap * sizeof *st);
  const char **val = malloc((size_t)cap * sizeof *val);
  int *owner = malloc((size_t)cap * sizeof *owner);
  if (!rc && (!st || !owner || !val)) rc = LATHE_ENOMEM;
  for (int i = 0; i < B && !rc; i++) {
    nn_tok_decode(&s->tok, out + (size_t)i * M, b->rlen[i], text, (size_t)M * 64 + 1);
    if (!(b->text[i] = strdup(text))) rc = LATHE_ENOMEM;
    fw_fact_t f[FW_MAX_FACTS];
    int nf;
    b->bad[i] = fw_bio_facts(&s->w, b->ent[i], text, f, FW_MAX_FACTS, &nf) != 0 ||
                b->rlen[i] == 0 || out[(size_t)i * M + b->rlen[i] - 1] != NN_TOK_EOS;
    for (int k = 0; k < nf && k < FW_MAX_FACTS && !b->bad[i] && !rc; k++) {
      f[k].truth ? b->n_true[i]++ : b->n_false[i]++;
      char line[256];
      if ((s->negation
               ? fw_cloze(&s->w, b->ent[i], f[k].attr, line, sizeof line)
               : fw_sentence(&s->w, b->ent[i], f[k].attr, f[k].value, line, sizeof line)) < 0)
        continue;
      if (nst == cap) {
        char **ns = realloc(st, (size_t)cap * 2 * sizeof *st);
        int *no = ns ? realloc(owner, (size_t)cap * 2 * sizeof *owner) : NULL;
        const char **nv = no ? realloc(val, (size_t)cap * 2 * sizeof *val) : NULL;
        if (ns) st = ns;
        if (no) owner = no;
        if (nv) val = nv, cap *= 2;
        if (!ns || !no || !nv) rc = LATHE_ENOMEM;
      }
      if (!rc && !(st[nst] = strdup(line))) rc = LATHE_ENOMEM;
      if (!rc) val[nst] = fw_value(f[k].attr, f[k].value), owner[nst++] = i;
    }
  }
  double *pt = rc ? NULL : malloc(((size_t)nst + 1) * sizeof *pt);
  if (!rc && !pt) rc = LATHE_ENOMEM;
  for (int k0 = 0; k0 < nst && !rc; k0 += 256) /* the judge, 256 statements at a time */
    rc = fj_ptrue(&s->judge, (const char *const *)st + k0, s->negation ? val + k0 : NULL,
                  nst - k0 < 256 ? nst - k0 : 256, pt + k0);
  for (int k = 0; k < nst && !rc; k++) {
    pt[k] > 0.5 ? b->yes[owner[k]]++ : b->no[owner[k]]++;
    b->soft[owner[k]] += fw_fact_value(pt[k]);
  }
  for (int k = 0; k < nst; k++) free(st[k]);
  free(st), free(owner), free(val), free(pt);
  /* prompt ++ response as training rows, the response tokens masked in */
  b->T = 2;
  for (int i = 0; i < B; i++)
    b->T = b->plen[i] + b->rlen[i] > b->T ? b->plen[i] + b->rlen[i] : b->T;
  if (!rc) {
    b->tok = calloc((size_t)B * b->T, sizeof *b->tok);
    b->mask = calloc((size_t)B * b->T, sizeof *b->mask);
    if (!b->tok || !b->mask) rc = LATHE_ENOMEM;
  }
  for (int i = 0; i < B && !rc; i++) {
    int *row = b->tok + (size_t)i * b->T;
    memcpy(row, pr + (size_t)i * P, (size_t)b->plen[i] * sizeof *row);
    memcpy(row + b->plen[i], out + (size_t)i * M, (size_t)b->rlen[i] * sizeof *row);
    for (int t = b->plen[i]; t < b->plen[i] + b->rlen[i]; t++) b->mask[(size_t)i * b->T + t] = 1;
  }
  free(pr), free(out), free(text);
  return rc;
}

static double reward_judge(const bios_t *b, int i) {
  if (b->expected) return b->bad[i] ? fw_bio_reward(0, 0, 1) : b->soft[i];
  return fw_bio_reward(b->yes[i], b->no[i], b->bad[i]);
}
static double reward_true(const bios_t *b, int i) {
  return fw_bio_reward(b->n_true[i], b->n_false[i], b->bad[i]);
}

/* The REINFORCE step on batch b (groups of S bios per entity): token
 * weights w = dL/dlog pi; returns 0 or a code, the loss and the mean
 * summed KL estimate in *loss, *kl. */
static int update(fr_t *s, const bios_t *b, double *loss, double *kl, double *gnorm) {
  int B = b->B, T = b->T, S = s->S, rc = 0;
  float *lref = malloc((size_t)B * T * sizeof *lref), *lp = malloc((size_t)B * T * sizeof *lp);
  float *w = calloc((size_t)B * T, sizeof *w), *ones = malloc((size_t)B * sizeof *ones);
  double *adv = malloc((size_t)B * sizeof *adv);
  if (!lref || !lp || !w || !ones || !adv) rc = LATHE_ENOMEM;
  /* leave-one-out advantages, scaled by a running reward std */
  double mean = 0, var = 0;
  for (int i = 0; i < B && !rc; i++) mean += reward_judge(b, i) / B;
  for (int i = 0; i < B && !rc; i++) var += pow(reward_judge(b, i) - mean, 2) / B;
  s->rvar = s->rvar > 0 ? 0.9 * s->rvar + 0.1 * var : var;
  for (int g = 0; g < B / S && !rc; g++) {
    double sum = 0;
    for (int j = 0; j < S; j++) sum += reward_judge(b, g * S + j);
    for (int j = 0; j < S; j++) {
      double r = reward_judge(b, g * S + j);
      adv[g * S + j] = (r - (sum - r) / (S - 1)) / sqrt(s->rvar + 1e-8);
    }
  }
  if (!rc) rc = nn_gpt_token_logprobs(&s->ref, b->tok, B, T, lref);
  if (!rc) rc = nn_gpt_token_logprobs(&s->pol, b->tok, B, T, lp); /* last: its cache is used */
  *loss = *kl = 0;
  for (int i = 0; i < B && !rc; i++) {
    for (int t = 0; t < T; t++) {
      size_t k = (size_t)i * T + t;
      if (!b->mask[k]) continue;
      double g;
      *loss += nn_pg_reinforce_token(lp[k], lref[k], adv[i], s->kl, &g) / B;
      *kl += (lp[k] - lref[k]) / (double)B;
      w[k] = (float)(g / B);
    }
    ones[i] = 1;
  }
  if (!rc) {
    nn_params_zero_grad(&s->pol.params);
    nn_gpt_logprobs_backward(&s->pol, ones, w);
    *gnorm = nn_clip_grad_norm(&s->pol.params, s->clip > 0 ? (float)s->clip : 0);
    nn_adamw_t o = nn_adamw_default();
    rc = nn_adamw_step(&s->pol.params, &o, (float)s->lr);
  }
  free(lref), free(lp), free(w), free(ones), free(adv);
  return rc;
}

/* Every eval_split entity, eval_samples bios each, with streams of their own
 * derived from the seed and the step (training's streams untouched). */
static int evaluate(fr_t *s, const lathe_host_t *h, lathe_ctx_t *c, int write) {
  int n = 0, rc;
  int *ent = malloc((size_t)s->w.n * sizeof *ent);
  if (!ent) return h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int e = 0; e < s->w.n; e++)
    if (fw_split(e) == s->eval_split) ent[n++] = e;
  nn_rng_t r[FR_SHARDS];
  for (int k = 0; k < FR_SHARDS; k++)
    nn_rng_seed(&r[k], h->seed(c) * 0x9e3779b97f4a7c15ULL + 1000003ULL * (uint64_t)s->step + 7 + k);
  bios_t b;
  double t[6] = {0};
  char **rec = write ? calloc((size_t)n, sizeof *rec) : NULL;
  rc = n ? sample_bios(s, ent, n, s->eval_S, r, &b) : LATHE_ECONFIG;
  if (!rc && write && !rec) rc = LATHE_ENOMEM;
  for (int i = 0; i < n && !rc; i++) {
    int k[6] = {0};
    json_object *bios = json_object_new_array();
    for (int j = 0; j < s->eval_S; j++) {
      int x = i * s->eval_S + j;
      k[0] += b.n_true[x], k[1] += b.n_false[x], k[2] += b.bad[x], k[3] += b.yes[x];
      k[4] += b.no[x];
      t[4] += reward_judge(&b, x), t[5] += reward_true(&b, x);
      json_object_array_add(bios, json_object_new_string(b.text[x]));
    }
    for (int q = 0; q < 4; q++) t[q] += k[q];
    if (write) {
      json_object *o = json_object_new_object();
      json_object_object_add(o, "entity", json_object_new_int(ent[i]));
      json_object_object_add(o, "k", json_object_new_int(s->w.e[ent[i]].k));
      json_object_object_add(o, "n", json_object_new_int(s->eval_S));
      json_object_object_add(o, "true", json_object_new_int(k[0]));
      json_object_object_add(o, "false", json_object_new_int(k[1]));
      json_object_object_add(o, "malformed", json_object_new_int(k[2]));
      json_object_object_add(o, "judge_true", json_object_new_int(k[3]));
      json_object_object_add(o, "judge_false", json_object_new_int(k[4]));
      json_object_object_add(o, "bios", bios);
      if (!(rec[i] = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN))))
        rc = LATHE_ENOMEM;
      json_object_put(o);
    } else {
      json_object_put(bios);
    }
  }
  if (!rc) {
    double nb = (double)n * s->eval_S;
    h->metric(c, "eval/true_facts", t[0] / nb), h->metric(c, "eval/false_facts", t[1] / nb);
    h->metric(c, "eval/malformed", t[2] / nb), h->metric(c, "eval/reward_judge", t[4] / nb);
    h->metric(c, "eval/reward_true", t[5] / nb);
  }
  if (n) bios_free(&b);
  if (!rc && write) {
    char name[96];
    const char *o = h->cfg_str(c, "out");
    if (!*o) snprintf(name, sizeof name, "factrl-%u", h->run_id(c)), o = name;
    if (!(rc = h->dataset_create(c, o, "any", (const char *const *)rec, n)))
      h->log(c, "wrote %d entities' bios to dataset '%s'", n, o);
  }
  for (int i = 0; rec && i < n; i++) free(rec[i]);
  free(rec), free(ent);
  if (rc == LATHE_ENOMEM) return h->fail(c, rc, "out of memory");
  if (rc == LATHE_ECONFIG) return h->fail(c, rc, "factrl: split %d has no entity", s->eval_split);
  return rc;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  fr_t *s = self;
  if (s->step == 0) { /* the initial policy, for the curve's start */
    int rc = evaluate(s, h, c, 0);
    if (rc) return rc;
  }
  double t0 = tx_now();
  int *ent = malloc((size_t)s->G * sizeof *ent);
  if (!ent) return h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int i = 0; i < s->G; i++) {
    if (s->pos == s->ntrain) shuffle(s), s->pos = 0;
    ent[i] = s->order[s->pos++];
  }
  bios_t b;
  int rc = sample_bios(s, ent, s->G, s->S, s->rng, &b);
  free(ent);
  double loss = 0, kl = 0, gn = 0;
  if (!rc) rc = update(s, &b, &loss, &kl, &gn);
  if (rc) {
    bios_free(&b);
    return h->fail(
        c, rc, rc == LATHE_ESHAPE ? "factrl: a prompt does not fit the context" : "out of memory");
  }
  double t[6] = {0};
  for (int i = 0; i < b.B; i++)
    t[0] += b.n_true[i], t[1] += b.n_false[i], t[2] += b.bad[i], t[3] += reward_judge(&b, i),
        t[4] += reward_true(&b, i), t[5] += b.rlen[i];
  h->metric(c, "loss", loss), h->metric(c, "grad_norm", gn), h->metric(c, "kl", kl);
  h->metric(c, "reward_judge", t[3] / b.B), h->metric(c, "reward_true", t[4] / b.B);
  h->metric(c, "true_facts", t[0] / b.B), h->metric(c, "false_facts", t[1] / b.B);
  h->metric(c, "malformed", t[2] / b.B), h->metric(c, "length", t[5] / b.B);
  h->metric(c, "perf/step_s", tx_now() - t0);
  bios_free(&b);
  s->step++;
  int last = s->step == s->steps;
  if (last || s->step % s->eval_every == 0)
    if ((rc = evaluate(s, h, c, last))) return rc;
  return last ? LATHE_DONE : LATHE_CONTINUE;
}

#define FR_VERSION 1

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  fr_t *s = self;
  nn_lm_save(&s->tok, &s->pol, b, 1);
  uint32_t v = FR_VERSION;
  LATHE_PUT(b, v), LATHE_PUT(b, s->step), LATHE_PUT(b, s->pos), LATHE_PUT(b, s->rvar);
  LATHE_PUT(b, s->rng), LATHE_PUT(b, s->shuffle), LATHE_PUT(b, s->ntrain);
  lathe_buf_put(b, s->order, (size_t)s->ntrain * sizeof *s->order);
  return b->err ? h->fail(c, LATHE_ENOMEM, "out of memory") : 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  fr_t *s = self;
  int rc = nn_lm_restore(&s->tok, &s->pol, b);
  if (rc) return h->fail(c, LATHE_ECKPT, "factrl: %s", nn_lm_restore_error(rc));
  uint32_t v;
  int64_t step, pos;
  int ntrain;
  double rvar;
  LATHE_GET(b, v), LATHE_GET(b, step), LATHE_GET(b, pos), LATHE_GET(b, rvar);
  LATHE_GET(b, s->rng), LATHE_GET(b, s->shuffle), LATHE_GET(b, ntrain);
  if (b->err || v != FR_VERSION) return h->fail(c, LATHE_ECKPT, "factrl: truncated checkpoint");
  if (step < 0 || step > s->steps || pos < 0 || pos > s->ntrain || ntrain != s->ntrain ||
      !(rvar >= 0 && rvar < 1e12) || lathe_buf_left(b) != (size_t)ntrain * sizeof *s->order)
    return h->fail(c, LATHE_ECKPT,
                   "factrl: checkpoint at step %lld (position %lld of %d entities) does not fit "
                   "this run (%lld steps, %d train entities)",
                   (long long)step, (long long)pos, ntrain, (long long)s->steps, s->ntrain);
  int *order = malloc((size_t)ntrain * sizeof *order), *seen = calloc((size_t)s->w.n, sizeof *seen);
  if (!order || !seen) {
    free(order), free(seen);
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  lathe_buf_get(b, order, (size_t)ntrain * sizeof *order);
  for (int i = 0; i < ntrain && !rc; i++) /* a permutation of the train entities */
    rc = order[i] < 0 || order[i] >= s->w.n || fw_split(order[i]) != FW_TRAIN || seen[order[i]]++;
  free(seen);
  if (rc) {
    free(order);
    return h->fail(c, LATHE_ECKPT, "factrl: checkpoint's entity order is not the train entities");
  }
  free(s->order);
  s->order = order, s->step = step, s->pos = pos, s->rvar = rvar;
  return 0;
}

static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  if (!h->cfg_int(c, "init_run"))
    return h->fail(c, LATHE_ECONFIG, "factrl: no policy given (init_run = RUN of an sft run)");
  if (!h->cfg_int(c, "judge_run"))
    return h->fail(c, LATHE_ECONFIG, "factrl: no judge given (judge_run = RUN of an sft run)");
  return 0;
}

static const lathe_algorithm_t algorithm = {
    .step = step, .main_metric = "eval/reward_true", .main_lower_better = 0};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "factrl",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "long-form factuality RL in the facts world: REINFORCE with a KL penalty on bios, "
           "each fact rewarded +2/-3 by a True/False judge's verdict",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .validate = validate,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_factrl, plugin)
