/* prefworld.c - the synthetic preference world of specs/rrm.md, a generator
 * of prefs records with known ground truth.
 *
 * K topics; a prompt is "t<topic> k<topic>". A response is a sequence of L
 * content words, a fraction s of them the topic's own words ("t3w5"), the
 * rest topic-free fillers ("f12"); s is on a grid of quarters and L a
 * multiple of 4, so s is exact. The true preference is Bradley-Terry on the
 * contextual signal: P(y1 beats y2 | x) = sigmoid(slope (s1 - s2)), whatever
 * the artifacts. Artifacts, prompt-independent: the word "fmt" prepended and
 * a long length (16-24 words against 4-12), together by default.
 *
 * Sets (`set`):
 *   train, iid  two on-topic responses with different s, the label drawn from
 *               the true model, then the artifact given to the winner with
 *               probability rho, else to the loser
 *   flip        the same with 1 - rho (the artifact mostly on the loser)
 *   art         equal s, one side with the artifact: the truth is a tie
 *               (label 0.5; chosen is the artifact side)
 *   off         a short on-topic response without the artifact against a long
 *               response with it written for another topic (chosen: on-topic)
 * Records: prompt, chosen, rejected, label (1, or 0.5 for a tie), s_chosen,
 * s_rejected, artifact ("chosen" | "rejected"). Seeds differ per set, so
 * train and iid never share a stream. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../genutil.h"
#include "../../workbench/nn/nn.h"

static const lathe_opt_t opts[] = {
    {"set", LATHE_STR, "train", 0, -1, "train|iid|flip|art|off", "which set (see above)"},
    {"pairs", LATHE_INT, "20000", 1, 1e8, NULL, "records to make"},
    {"topics", LATHE_INT, "32", 2, 1000, NULL, "number of topics K"},
    {"words", LATHE_INT, "8", 1, 1000, NULL, "content words per topic"},
    {"fillers", LATHE_INT, "32", 1, 1000, NULL, "topic-free filler words"},
    {"rho", LATHE_NUM, "0.9", 0, 1, NULL, "train/iid: P(the artifact is on the winner)"},
    {"slope", LATHE_NUM, "8", 0, 1000, NULL, "true model: sigmoid(slope (s1 - s2))"},
    {"artifact", LATHE_STR, "both", 0, -1, "both|fmt|length", "the artifact: format word, length"},
    {"seed", LATHE_INT, "0", 0, 1e18, NULL, "generator seed"},
    {NULL}};

enum { S_TRAIN, S_IID, S_FLIP, S_ART, S_OFF };

typedef struct {
  nn_rng_t rng;
  int set, K, W, F, fmt, len;
  double rho, slope;
  int64_t total, made;
} world_t;

/* A response for topic t with signal q/4 (q in 1..4): L words, exactly q*L/4
 * of the topic's, in random order; "fmt" first when fmt. */
static void response(world_t *w, int t, int q, int fmt, int long_, char *out, size_t cap) {
  int L = 4 * (long_ ? 4 + (int)nn_rng_below(&w->rng, 3) : 1 + (int)nn_rng_below(&w->rng, 3));
  if (!w->len) L = 4 * (1 + (int)nn_rng_below(&w->rng, 6));
  int on[24], k = q * L / 4;
  for (int i = 0; i < L; i++) on[i] = i < k;
  for (int i = L - 1; i > 0; i--) { /* shuffle the positions */
    int j = (int)nn_rng_below(&w->rng, (uint32_t)i + 1), x = on[i];
    on[i] = on[j], on[j] = x;
  }
  size_t at = 0;
  if (fmt && w->fmt) at += (size_t)snprintf(out + at, cap - at, "fmt");
  for (int i = 0; i < L && at < cap; i++) {
    if (on[i])
      at += (size_t)snprintf(out + at, cap - at, "%st%dw%u", at ? " " : "", t,
                             nn_rng_below(&w->rng, (uint32_t)w->W));
    else
      at += (size_t)snprintf(out + at, cap - at, "%sf%u", at ? " " : "",
                             nn_rng_below(&w->rng, (uint32_t)w->F));
  }
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  world_t *w = calloc(1, sizeof *w);
  if (!w) return LATHE_ENOMEM;
  static const char *sets[] = {"train", "iid", "flip", "art", "off"};
  const char *set = h->cfg_str(c, "set"), *art = h->cfg_str(c, "artifact");
  for (int i = 0; i < 5; i++)
    if (!strcmp(set, sets[i])) w->set = i;
  w->K = (int)h->cfg_int(c, "topics"), w->W = (int)h->cfg_int(c, "words");
  w->F = (int)h->cfg_int(c, "fillers"), w->total = h->cfg_int(c, "pairs");
  w->rho = h->cfg_num(c, "rho"), w->slope = h->cfg_num(c, "slope");
  w->fmt = strcmp(art, "length") != 0, w->len = strcmp(art, "fmt") != 0;
  if (w->set == S_FLIP) w->rho = 1 - w->rho;
  nn_rng_seed(&w->rng, (uint64_t)h->cfg_int(c, "seed") * 0x9e3779b97f4a7c15ULL + 1 + w->set);
  *self = w;
  return 0;
}

static int gen_next(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *out) {
  world_t *w = self;
  if (w->made == w->total) return LATHE_DONE;
  w->made++;
  int t = (int)nn_rng_below(&w->rng, (uint32_t)w->K), qa, qb, art_on_chosen = 1;
  int tb = t; /* the topic the rejected response was written for */
  double label = 1;
  if (w->set == S_ART) {
    qa = qb = 1 + (int)nn_rng_below(&w->rng, 4), label = 0.5;
  } else if (w->set == S_OFF) {
    qa = 1 + (int)nn_rng_below(&w->rng, 4), qb = 1 + (int)nn_rng_below(&w->rng, 4);
    tb = (t + 1 + (int)nn_rng_below(&w->rng, (uint32_t)w->K - 1)) % w->K;
    art_on_chosen = 0;
  } else {
    qa = 1 + (int)nn_rng_below(&w->rng, 4);
    do qb = 1 + (int)nn_rng_below(&w->rng, 4);
    while (qb == qa);
    double p = 1 / (1 + exp(-w->slope * (qa - qb) / 4.0)); /* P(a beats b) */
    if (nn_rng_uniform_d(&w->rng) >= p) {                  /* b won: chosen is always the winner */
      int x = qa;
      qa = qb, qb = x;
    }
    art_on_chosen = nn_rng_uniform_d(&w->rng) < w->rho;
  }
  char ch[320], rj[320], line[800];
  response(w, t, qa, art_on_chosen, art_on_chosen, ch, sizeof ch);
  response(w, tb, qb, !art_on_chosen, !art_on_chosen, rj, sizeof rj);
  int n = snprintf(line, sizeof line,
                   "{\"prompt\":\"t%d k%d\",\"chosen\":\"%s\",\"rejected\":\"%s\",\"label\":%g,"
                   "\"s_chosen\":%g,\"s_rejected\":%g,\"artifact\":\"%s\"}",
                   t, t, ch, rj, label, qa / 4.0, tb == t ? qb / 4.0 : 0.0,
                   art_on_chosen ? "chosen" : "rejected");
  lathe_buf_put(out, line, (size_t)n);
  return out->err ? out->err : LATHE_CONTINUE;
}

static void destroy(void *self) {
  free(self);
}

GENERATOR_PLUGIN(
    "prefworld", "prefs",
    "the synthetic preference world of RRM: topics, a contextual signal, length and format "
    "artifacts (prefs)")
