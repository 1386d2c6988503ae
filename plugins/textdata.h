/* textdata.h - what the text plugins (sft, pref on a dataset, stepneg, pr2l,
 * archer, facts) share: reading a dataset's records (text, sft or prefs
 * layout), the held-out split, turning a prompt and a response (or a prompt
 * alone, its end kept) into token ids within a context, the text model of
 * another run, strings in checkpoints, and a clock for perf/ metrics. Header-only; included by the
 * plugins. */
#ifndef LATHE_TEXTDATA_H
#define LATHE_TEXTDATA_H

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../workbench/lathe.h"
#include "../workbench/nn/lm.h"
#include "../workbench/nn/nn.h"
#include "../workbench/nn/tok.h"

typedef struct {
  char *prompt, *response, *rejected; /* rejected: prefs only */
  double label;                       /* prefs: P(chosen beats rejected), 1 when absent */
  int held_out;
} tx_record_t;

/* SplitMix64 of the record index: the split depends on the index alone, so
 * an SFT run and a DPO run on one dataset hold out the same records. */
static inline int tx_held_out(int64_t i, double fraction) {
  uint64_t x = (uint64_t)i;
  return (double)(nn_splitmix64(&x) % 1000000) < fraction * 1e6;
}

static inline const char *tx_field(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : NULL;
}

static inline void tx_free(tx_record_t *r, int64_t n) {
  for (int64_t i = 0; r && i < n; i++) free(r[i].prompt), free(r[i].response), free(r[i].rejected);
  free(r);
}

/* Read dataset `name` (records with text; prompt and response; question and
 * solution (math: the prompt is the question and a newline); or prompt,
 * chosen and rejected, and an optional label in [0, 1]) into *out, at most
 * `limit` of them from the first (0: all). want_pairs: only prefs records
 * will do. Returns the count, or a negative code with the failure reported. */
static inline int64_t tx_read(const lathe_host_t *h, lathe_ctx_t *c, const char *name,
                              int want_pairs, double holdout, int64_t limit, tx_record_t **out) {
  int64_t n = h->dataset_count(c, name);
  if (n < 0) return n;
  if (limit > 0 && n > limit) n = limit;
  if (n == 0) return h->fail(c, LATHE_EDATA, "dataset '%s' is empty", name);
  tx_record_t *r = calloc((size_t)n, sizeof *r);
  if (!r) return h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    char *js = h->dataset_get(c, name, i);
    json_object *o = js ? json_tokener_parse(js) : NULL;
    free(js);
    const char *p = o ? tx_field(o, "prompt") : NULL, *t = o ? tx_field(o, "text") : NULL;
    const char *resp = o ? tx_field(o, "response") : NULL, *ch = o ? tx_field(o, "chosen") : NULL;
    const char *rj = o ? tx_field(o, "rejected") : NULL;
    const char *qu = o ? tx_field(o, "question") : NULL, *so = o ? tx_field(o, "solution") : NULL;
    char *qline = NULL;
    if (!p && !t && qu && so && (qline = malloc(strlen(qu) + 2)))
      p = strcat(strcpy(qline, qu), "\n"), resp = so;
    if (want_pairs && !(p && ch && rj)) {
      json_object_put(o), tx_free(r, n), free(qline);
      return h->fail(c, LATHE_EDATA, "dataset '%s' record %lld: want prompt, chosen and rejected",
                     name, (long long)i);
    }
    if (!want_pairs && !t && !(p && (resp || ch))) {
      json_object_put(o), tx_free(r, n), free(qline);
      return h->fail(c, LATHE_EDATA,
                     "dataset '%s' record %lld: want text, prompt and response, question and "
                     "solution, or prompt and chosen",
                     name, (long long)i);
    }
    json_object *lv = NULL;
    r[i].label = 1;
    if (o && json_object_object_get_ex(o, "label", &lv))
      r[i].label =
          json_object_is_type(lv, json_type_double) || json_object_is_type(lv, json_type_int)
              ? json_object_get_double(lv)
              : NAN;
    if (want_pairs && !(r[i].label >= 0 && r[i].label <= 1)) {
      json_object_put(o), tx_free(r, n), free(qline);
      return h->fail(c, LATHE_EDATA, "dataset '%s' record %lld: label must be a number in [0, 1]",
                     name, (long long)i);
    }
    r[i].prompt = strdup(t ? "" : p), r[i].response = strdup(t ? t : resp ? resp : ch);
    r[i].rejected = rj && want_pairs ? strdup(rj) : NULL;
    r[i].held_out = tx_held_out(i, holdout);
    json_object_put(o), free(qline);
    if (!r[i].prompt || !r[i].response || (want_pairs && !r[i].rejected)) {
      tx_free(r, n);
      return h->fail(c, LATHE_ENOMEM, "out of memory");
    }
  }
  *out = r;
  return n;
}

/* prompt ++ response ++ <eos> in at most ctx ids. The response keeps at most
 * ctx/2 ids (its start); the prompt keeps its end, so the turn being answered
 * survives. *plen gets the prompt's share. Returns the length, or -1 (no memory). */
static inline int tx_encode(const nn_tok_t *t, const char *prompt, const char *resp, int ctx,
                            int *ids, int *plen) {
  int np = nn_tok_encode(t, prompt, strlen(prompt), NULL, 0);
  int nr = nn_tok_encode(t, resp, strlen(resp), NULL, 0);
  if (np < 0 || nr < 0) return -1;
  int *pp = malloc(((size_t)np + 1) * sizeof *pp), *rr = malloc(((size_t)nr + 2) * sizeof *rr);
  if (!pp || !rr) {
    free(pp), free(rr);
    return -1;
  }
  nn_tok_encode(t, prompt, strlen(prompt), pp, np);
  nn_tok_encode(t, resp, strlen(resp), rr, nr);
  rr[nr++] = NN_TOK_EOS;
  int keep_r = nr < ctx / 2 ? nr : ctx / 2, keep_p = np < ctx - keep_r ? np : ctx - keep_r;
  if (np + nr <= ctx) keep_p = np, keep_r = nr;
  memcpy(ids, pp + (np - keep_p), (size_t)keep_p * sizeof *ids);
  memcpy(ids + keep_p, rr, (size_t)keep_r * sizeof *ids);
  free(pp), free(rr);
  *plen = keep_p;
  return keep_p + keep_r;
}

/* The ids of text into ids, its end kept when it takes more than max ids
 * (a prompt whose last words must stay next to what follows). Returns how
 * many were written, or -1 (no memory). */
static inline int tx_encode_end(const nn_tok_t *t, const char *text, int *ids, int max) {
  int n = nn_tok_encode(t, text, strlen(text), NULL, 0);
  int *all = malloc(((size_t)n + 1) * sizeof *all);
  if (!all) return -1;
  nn_tok_encode(t, text, strlen(text), all, n);
  int keep = n < max ? n : max;
  memcpy(ids, all + (n - keep), (size_t)keep * sizeof *ids);
  free(all);
  return keep;
}

/* The text model of run `run` (its newest checkpoint) into empty tok and g,
 * with a fresh optimizer; refuses in one line (LATHE_ECONFIG, naming option
 * `key`): no run, no checkpoint, not a language model, or no tokenizer
 * (`notok` ends that message: what the caller needs the words for). */
static inline int tx_model_of_run(const lathe_host_t *h, lathe_ctx_t *c, const char *key,
                                  uint32_t run, const char *notok, nn_tok_t *tok, nn_gpt_t *g) {
  lathe_buf_t b = {0};
  char owner[64] = "";
  int has = 0;
  if (!run) return h->fail(c, LATHE_ECONFIG, "%s: no run given (%s = RUN)", key, key);
  if (h->run_checkpoint(c, run, &b, owner))
    return h->fail(c, LATHE_ECONFIG, "%s %u: no such run or no checkpoint", key, run);
  int rc = nn_lm_load(tok, &has, g, &b);
  lathe_buf_free(&b);
  if (rc)
    return h->fail(c, LATHE_ECONFIG,
                   "%s %u (%s): not a language model (no text model in its checkpoint)", key, run,
                   owner);
  if (!has) {
    nn_gpt_free(g);
    return h->fail(c, LATHE_ECONFIG, "%s %u (%s): its model has no tokenizer%s", key, run, owner,
                   notok);
  }
  nn_params_reset_opt(&g->params);
  return 0;
}

/* Seconds on a monotonic clock (differences only: the perf/ metrics). */
/* A string in a checkpoint: u32 length, then its bytes (NULL writes ""). */
static inline void tx_put_str(lathe_buf_t *b, const char *s) {
  uint32_t len = s ? (uint32_t)strlen(s) : 0;
  LATHE_PUT(b, len), lathe_buf_put(b, s, len);
}

/* Read one back into *out (malloc'd, NUL-terminated; NULL on failure):
 * 0, LATHE_ECKPT when the length runs past the bytes left, LATHE_ENOMEM. */
static inline int tx_get_str(lathe_buf_t *b, char **out) {
  uint32_t len;
  *out = NULL;
  LATHE_GET(b, len);
  if (b->err || len > lathe_buf_left(b)) return LATHE_ECKPT;
  if (!(*out = (char *)malloc((size_t)len + 1))) return LATHE_ENOMEM;
  lathe_buf_get(b, *out, len), (*out)[len] = 0;
  return 0;
}

static inline double tx_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
