/* stepvalue.c - Monte-Carlo step values of sampled solutions
 * (specs/per_step_negatives.md, "Monte-Carlo step values").
 *
 * From the policy of init_run (an SFT model), each step of the run takes
 * `chunk` problems of `dataset` in order, samples `samples` solutions to
 * each, verifies them, and for every negative (and every positive with
 * positives = true) estimates the value of each step prefix s_0 .. s_{T-1}
 * by `rollouts` continuations sampled to <eos> at temperature 1 (s_0, the
 * problem alone, once per problem; s_T is the solution itself: its verdict).
 * Values are the plain success rate and the best-of-K estimate; advantages
 * are differences of consecutive values; the critical step is the first
 * pit (the first prefix no rollout completes correctly), else the largest
 * drop. For the prefix-conditioned pairs it keeps the first successful
 * continuation from s_{c-1}. One record per problem accumulates in the
 * checkpoint, so a resumed run never redoes a chunk; the last step writes
 * them as dataset `out` (schema any; `lathe data export` shows it). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../textdata.h"
#include "stepneg.h"

static const lathe_opt_t opts[] = {
    {"dataset", LATHE_STR, "", 0, 0, NULL, "math problems (question, solution, answer)"},
    {"init_run", LATHE_INT, "0", 0, 4e9, NULL, "the run whose language model samples (SFT)"},
    {"problems", LATHE_INT, "0", 0, 1e9, NULL, "use the first N problems (0: all)"},
    {"samples", LATHE_INT, "4", 1, 64, NULL, "solutions sampled per problem (N)"},
    {"rollouts", LATHE_INT, "8", 1, 256, NULL, "Monte-Carlo rollouts per step prefix (M)"},
    {"bok", LATHE_INT, "4", 1, 256, NULL, "K of the best-of-K values"},
    {"positives", LATHE_BOOL, "false", 0, 0, NULL, "value the positives' steps too (for AWR)"},
    {"chunk", LATHE_INT, "16", 1, 4096, NULL, "problems per step (and per checkpointable chunk)"},
    {"batch", LATHE_INT, "512", 8, 65536, NULL, "rollouts sampled together"},
    {"mod", LATHE_INT, "97", 2, 1000, NULL, "arith's modulus (for the line check)"},
    {"out", LATHE_STR, "", 0, 0, NULL, "the dataset written (default stepvalue-RUN)"},
    {NULL}};

typedef struct {
  nn_tok_t tok;
  nn_gpt_t g;
  sn_prob_t *probs;
  int64_t n, next;
  int N, M, K, pos, chunk, batch, mod;
  nn_rng_t rng[SN_SHARDS];
  char **rec;
  int64_t nrec;
  struct { /* running totals, for the metrics (saved whole) */
    double samples, correct, neg, pit_early, adv_n, adv_sum, adv_sq, v0_sum, v0_n, agree, agree_n,
        rollouts, skipped;
  } t;
} sv_t;

static void destroy(void *self) {
  sv_t *s = self;
  if (!s) return;
  nn_tok_free(&s->tok), nn_gpt_free(&s->g);
  sn_free(s->probs, s->n);
  for (int64_t i = 0; i < s->nrec; i++) free(s->rec[i]);
  free(s->rec);
  free(s);
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  sv_t *s = calloc(1, sizeof *s);
  if (!s) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = s;
  s->N = (int)h->cfg_int(c, "samples"), s->M = (int)h->cfg_int(c, "rollouts");
  s->K = (int)h->cfg_int(c, "bok"), s->pos = (int)h->cfg_int(c, "positives");
  s->chunk = (int)h->cfg_int(c, "chunk"), s->batch = (int)h->cfg_int(c, "batch");
  s->mod = (int)h->cfg_int(c, "mod");
  const char *ds = h->cfg_str(c, "dataset");
  if (!*ds) return h->fail(c, LATHE_ECONFIG, "stepvalue: no dataset given (dataset = NAME)");
  int rc = sn_policy(h, c, "init_run", (uint32_t)h->cfg_int(c, "init_run"), &s->tok, &s->g);
  if (rc) return rc;
  s->n = sn_read(h, c, ds, h->cfg_int(c, "problems"), &s->probs);
  if (s->n < 0) {
    rc = (int)s->n;
    s->n = 0;
    return rc;
  }
  s->rec = calloc((size_t)s->n, sizeof *s->rec);
  if (!s->rec) return h->fail(c, LATHE_ENOMEM, "out of memory");
  uint64_t seed = h->seed(c);
  for (int k = 0; k < SN_SHARDS; k++) nn_rng_seed(&s->rng[k], seed * 0x9e3779b97f4a7c15ULL + k);
  h->set_total(c, (s->n + s->chunk - 1) / s->chunk);
  h->log(c, "%lld problems, %d samples each, %d rollouts per step prefix", (long long)s->n, s->N,
         s->M);
  return 0;
}

/* One prefix to roll out from: ids in a row of the job table. */
typedef struct {
  int sample; /* index into the chunk's samples; -1: s_0 of problem `prob` */
  int prob, step, S;
  size_t off;     /* the prefix's length in the sample's text */
  char *first_ok; /* the first successful continuation (text) */
} job_t;

static json_object *num_array(const double *v, int n) {
  json_object *a = json_object_new_array();
  for (int i = 0; i < n; i++) json_object_array_add(a, json_object_new_double(v[i]));
  return a;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  sv_t *s = self;
  int C = s->g.cfg.ctx, N = s->N, M = s->M, rc = 0;
  int P = (int)(s->n - s->next < s->chunk ? s->n - s->next : s->chunk), SN = P * N;
  int threads = nn_get_threads();
  double t0 = tx_now();
  /* 1. sample N solutions per problem */
  int *pr = malloc((size_t)SN * C * sizeof *pr), *pl = malloc((size_t)SN * sizeof *pl);
  int *out = malloc((size_t)SN * C * sizeof *out), *ol = malloc((size_t)SN * sizeof *ol);
  char **text = calloc((size_t)SN, sizeof *text);
  int *ok = calloc((size_t)SN, sizeof *ok), *T = calloc((size_t)SN, sizeof *T);
  int *val = calloc((size_t)SN, sizeof *val); /* 1: sample i's steps are valued */
  int *qlen = calloc((size_t)P, sizeof *qlen), *skip = calloc((size_t)P, sizeof *skip);
  job_t *jobs = NULL;
  int njobs = 0;
  int *jr = NULL, *jl = NULL, *jo = NULL, *jol = NULL;
  if (!pr || !pl || !out || !ol || !text || !ok || !T || !val || !qlen || !skip) rc = LATHE_ENOMEM;
  for (int p = 0; p < P && !rc; p++) {
    qlen[p] = sn_prompt(&s->tok, s->probs[s->next + p].q, pr + (size_t)p * N * C, C - 2);
    if (qlen[p] < 1) /* too long: sampled from a stand-in, recorded as skipped */
      qlen[p] = 1, pr[(size_t)p * N * C] = NN_TOK_EOS, skip[p] = 1, s->t.skipped++;
    for (int k = 0; k < N; k++) {
      memcpy(pr + ((size_t)p * N + k) * C, pr + (size_t)p * N * C, (size_t)qlen[p] * sizeof *pr);
      pl[p * N + k] = qlen[p];
    }
  }
  if (!rc) rc = sn_sample(&s->g, pr, pl, SN, C, C - 1, 1.0f, s->rng, threads, out, ol);
  int *ids = malloc((size_t)C * sizeof *ids), end[SN_MAX_STEPS], ns;
  if (!rc && !ids) rc = LATHE_ENOMEM;
  for (int i = 0; i < SN && !rc; i++) {
    if (!(text[i] = sn_text(&s->tok, out + (size_t)i * (C - 1), ol[i])))
      rc = LATHE_ENOMEM;
    else {
      int st[SN_MAX_STEPS];
      ok[i] = mt_verify(text[i], s->probs[s->next + i / N].ans);
      T[i] = skip[i / N] ? 0 : mt_steps(text[i], st, SN_MAX_STEPS);
      /* valued: a negative (or any, with positives) whose longest prefix
       * rolled out, s_{T-1} encoded step by step, fits after its question (a
       * BPE re-encoding may be longer than the ids sampled) */
      val[i] = T[i] > 0 && (!ok[i] || s->pos) &&
               sn_solution(&s->tok, text[i], T[i] - 1, 0, ids, C - 2 - qlen[i / N], end, &ns) >= 0;
    }
  }
  free(ids);
  /* 2. the prefixes to value: s_0 of each problem with a sample to value, and
   * s_1 .. s_{T-1} of each such sample */
  int maxjobs = P;
  for (int i = 0; i < SN; i++) maxjobs += T[i] > 0 ? T[i] : 0;
  jobs = rc ? NULL : calloc((size_t)maxjobs, sizeof *jobs);
  if (!rc && !jobs) rc = LATHE_ENOMEM;
  int *s0 = calloc((size_t)P, sizeof *s0); /* the job of problem p's s_0, -1: none */
  if (!rc && !s0) rc = LATHE_ENOMEM;
  int *first = calloc((size_t)SN + 1, sizeof *first); /* sample i's jobs for s_1.. start here */
  if (!rc && !first) rc = LATHE_ENOMEM;
  for (int p = 0; p < P && !rc; p++) {
    int want = 0;
    for (int k = 0; k < N; k++) want |= val[p * N + k];
    s0[p] = want ? njobs : -1;
    if (want) jobs[njobs++] = (job_t){-1, p, 0, 0, 0, NULL};
    for (int k = 0; k < N; k++) {
      int i = p * N + k, st[SN_MAX_STEPS];
      first[i] = njobs;
      if (val[i]) mt_steps(text[i], st, SN_MAX_STEPS);
      for (int t = 1; val[i] && t < T[i]; t++)
        jobs[njobs++] = (job_t){i, p, t, 0, (size_t)st[t], NULL};
    }
  }
  /* 3. roll out: M continuations of every prefix, `batch` sequences at a time */
  int64_t total = (int64_t)njobs * M;
  int RB = s->batch;
  jr = malloc((size_t)RB * C * sizeof *jr), jl = malloc((size_t)RB * sizeof *jl);
  jo = malloc((size_t)RB * C * sizeof *jo), jol = malloc((size_t)RB * sizeof *jol);
  int *jof = malloc((size_t)RB * sizeof *jof); /* each row's job */
  if (!rc && (!jr || !jl || !jo || !jol || !jof)) rc = LATHE_ENOMEM;
  for (int64_t r0 = 0; r0 < total && !rc; r0 += RB) {
    int B = (int)(total - r0 < RB ? total - r0 : RB);
    for (int b = 0; b < B && !rc; b++) {
      job_t *j = &jobs[(r0 + b) / M];
      jof[b] = (int)((r0 + b) / M);
      int *row = jr + (size_t)b * C, q = qlen[j->prob];
      memcpy(row, pr + (size_t)j->prob * N * C, (size_t)q * sizeof *row);
      /* (fits: the whole sample did, see val) */
      jl[b] = q + (j->sample < 0 ? 0
                                 : sn_solution(&s->tok, text[j->sample], j->step, 0, row + q,
                                               C - 2 - q, end, &ns));
    }
    if (!rc) rc = sn_sample(&s->g, jr, jl, B, C, C - 1, 1.0f, s->rng, threads, jo, jol);
    for (int b = 0; b < B && !rc; b++) {
      job_t *j = &jobs[jof[b]];
      char *cont = sn_text(&s->tok, jo + (size_t)b * (C - 1), jol[b]);
      const char *pre = j->sample < 0 ? "" : text[j->sample];
      size_t plen_b = j->off;
      char *full = cont ? malloc(plen_b + strlen(cont) + 1) : NULL;
      if (!full) {
        free(cont);
        rc = LATHE_ENOMEM;
        break;
      }
      memcpy(full, pre, plen_b), strcpy(full + plen_b, cont);
      int win = mt_verify(full, s->probs[s->next + j->prob].ans);
      j->S += win;
      if (win && !j->first_ok)
        j->first_ok = cont;
      else
        free(cont);
      free(full);
    }
  }
  /* 4. values, advantages, critical steps; one record per problem */
  for (int p = 0; p < P && !rc; p++) {
    const sn_prob_t *pb = &s->probs[s->next + p];
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(o, "problem", json_object_new_int64(s->next + p));
    json_object_object_add(o, "question", json_object_new_string(pb->q));
    json_object_object_add(o, "solution", json_object_new_string(pb->sol));
    json_object_object_add(o, "answer", json_object_new_string(pb->ans));
    json_object_object_add(o, "rollouts", json_object_new_int(M));
    json_object_object_add(o, "bok", json_object_new_int(s->K));
    if (skip[p]) {
      json_object_object_add(o, "skipped", json_object_new_string("the question does not fit"));
      goto done;
    }
    if (s0[p] >= 0) {
      json_object_object_add(o, "s0_successes", json_object_new_int(jobs[s0[p]].S));
      s->t.v0_sum += (double)jobs[s0[p]].S / M, s->t.v0_n++;
    }
    for (int k = 0; k < N; k++) {
      int i = p * N + k, Ti = T[i];
      json_object *e = json_object_new_object();
      json_object_object_add(e, "text", json_object_new_string(text[i]));
      json_object_object_add(e, "correct", json_object_new_boolean(ok[i]));
      json_object_object_add(e, "steps", json_object_new_int(Ti));
      int fw = mt_arith_first_wrong(pb->q, text[i], s->mod);
      if (fw >= 0) json_object_object_add(e, "first_wrong", json_object_new_int(fw));
      s->t.samples++, s->t.correct += ok[i], s->t.neg += !ok[i];
      if (val[i]) {
        int S[SN_MAX_STEPS];
        double v[SN_MAX_STEPS + 1], a[SN_MAX_STEPS], vb[SN_MAX_STEPS + 1], ab[SN_MAX_STEPS];
        S[0] = jobs[s0[p]].S;
        for (int t = 1; t < Ti; t++) S[t] = jobs[first[i] + t - 1].S;
        nn_step_values(S, Ti, M, 1, ok[i], v, a);
        nn_step_values(S, Ti, M, s->K, ok[i], vb, ab);
        int cs = nn_first_pit(v, a, Ti);
        json_object *sa = json_object_new_array();
        for (int t = 0; t < Ti; t++) json_object_array_add(sa, json_object_new_int(S[t]));
        json_object_object_add(e, "successes", sa);
        json_object_object_add(e, "values", num_array(v, Ti + 1));
        json_object_object_add(e, "values_bok", num_array(vb, Ti + 1));
        json_object_object_add(e, "advantages", num_array(a, Ti));
        json_object_object_add(e, "advantages_bok", num_array(ab, Ti));
        json_object_object_add(e, "critical", json_object_new_int(cs));
        /* the prefix-conditioned pair's chosen: a success from s_{c-1} */
        const char *win = cs == 1 ? jobs[s0[p]].first_ok : jobs[first[i] + cs - 2].first_ok;
        if (win) json_object_object_add(e, "chosen_continuation", json_object_new_string(win));
        for (int t = 0; t < Ti; t++) s->t.adv_n++, s->t.adv_sum += a[t], s->t.adv_sq += a[t] * a[t];
        if (!ok[i]) {
          s->t.pit_early += cs < Ti;
          if (fw > 0) s->t.agree_n++, s->t.agree += cs == fw;
        }
      }
      json_object_array_add(arr, e);
    }
    json_object_object_add(o, "samples", arr);
  done:
    s->rec[s->nrec] = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (!s->rec[s->nrec])
      rc = LATHE_ENOMEM;
    else
      s->nrec++;
  }
  for (int j = 0; j < njobs; j++) free(jobs[j].first_ok);
  for (int i = 0; text && i < SN; i++) free(text[i]);
  free(pr), free(pl), free(out), free(ol), free(text), free(ok), free(T), free(val), free(qlen),
      free(skip), free(jobs);
  free(jr), free(jl), free(jo), free(jol), free(jof), free(s0), free(first);
  if (rc) return rc == LATHE_ENOMEM ? h->fail(c, rc, "out of memory") : rc;
  s->next += P;
  s->t.rollouts += (double)total;
  double dt = tx_now() - t0;
  h->metric(c, "perf/rollouts_per_sec", dt > 0 ? total / dt : 0);
  h->metric(c, "pass1_sampled", s->t.correct / s->t.samples);
  h->metric(c, "negatives", s->t.neg / s->t.samples);
  if (s->t.v0_n) h->metric(c, "v0", s->t.v0_sum / s->t.v0_n);
  if (s->t.neg) h->metric(c, "critical_before_end", s->t.pit_early / s->t.neg);
  if (s->t.adv_n) {
    double m = s->t.adv_sum / s->t.adv_n;
    h->metric(c, "adv_mean", m);
    h->metric(c, "adv_std", sqrt(fmax(0, s->t.adv_sq / s->t.adv_n - m * m)));
  }
  if (s->t.agree_n) h->metric(c, "critical_agreement", s->t.agree / s->t.agree_n);
  h->metric(c, "rollouts", s->t.rollouts);
  if (s->t.skipped) h->metric(c, "skipped_problems", s->t.skipped);
  if (s->next < s->n) return LATHE_CONTINUE;
  char name[96];
  const char *o = h->cfg_str(c, "out");
  if (!*o) snprintf(name, sizeof name, "stepvalue-%u", h->run_id(c)), o = name;
  rc = h->dataset_create(c, o, "any", (const char *const *)s->rec, s->nrec);
  if (rc) return rc;
  h->log(c, "wrote %lld problems to dataset '%s'", (long long)s->nrec, o);
  return LATHE_DONE;
}

#define SV_VERSION 1

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  sv_t *s = self;
  nn_lm_save(&s->tok, &s->g, b, 0);
  uint32_t v = SV_VERSION;
  LATHE_PUT(b, v), LATHE_PUT(b, s->next), LATHE_PUT(b, s->rng), LATHE_PUT(b, s->nrec);
  LATHE_PUT(b, s->t);
  for (int64_t i = 0; i < s->nrec; i++) tx_put_str(b, s->rec[i]);
  return b->err ? h->fail(c, LATHE_ENOMEM, "out of memory") : 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  sv_t *s = self;
  int rc = nn_lm_restore(&s->tok, &s->g, b);
  if (rc) return h->fail(c, LATHE_ECKPT, "stepvalue: %s", nn_lm_restore_error(rc));
  uint32_t v;
  int64_t next, nrec;
  LATHE_GET(b, v), LATHE_GET(b, next), LATHE_GET(b, s->rng), LATHE_GET(b, nrec), LATHE_GET(b, s->t);
  if (b->err || v != SV_VERSION) return h->fail(c, LATHE_ECKPT, "stepvalue: truncated checkpoint");
  if (next < 0 || next > s->n || nrec != next)
    return h->fail(c, LATHE_ECKPT,
                   "stepvalue: checkpoint field 'next' = %lld is outside [0, %lld]"
                   " or disagrees with its %lld records",
                   (long long)next, (long long)s->n, (long long)nrec);
  for (int64_t i = 0; i < s->nrec; i++) free(s->rec[i]);
  s->nrec = 0;
  for (int64_t i = 0; i < nrec; i++) {
    rc = tx_get_str(b, &s->rec[i]);
    if (rc == LATHE_ENOMEM) return h->fail(c, rc, "out of memory");
    if (rc) return h->fail(c, rc, "stepvalue: record %lld is truncated", (long long)i);
    s->nrec++;
  }
  s->next = next;
  return 0;
}

static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  if (!*h->cfg_str(c, "dataset"))
    return h->fail(c, LATHE_ECONFIG, "stepvalue: no dataset given (dataset = NAME)");
  if (!h->cfg_int(c, "init_run"))
    return h->fail(c, LATHE_ECONFIG, "stepvalue: no policy given (init_run = RUN of an sft run)");
  return 0;
}

static const lathe_algorithm_t algorithm = {
    .step = step, .main_metric = "critical_agreement", .main_lower_better = 0};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "stepvalue",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "Monte-Carlo step values and critical steps of sampled math solutions (a dataset)",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .validate = validate,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_stepvalue, plugin)
