/* rm.c - reward models (specs/rrm.md): one implementation, two plugins.
 *
 *   rm   a Bradley-Terry or pairwise reward model (nn/rm.h) trained on a
 *        prefs dataset with the soft-target cross-entropy. A record's
 *        optional "label" is the target c that chosen beats rejected (1 when
 *        absent; 0.5 a tie). Pairwise models train on both orders.
 *   rrm  the same model trained on the originals plus RRM's augmentation:
 *        14 triplets per training example (8 contextual wins, 6 ties among
 *        the off-prompt pool; nn_rrm_augment), a random `subsample` of them,
 *        scored by a trained baseline rm run (`baseline_run`) and kept where
 *        it is wrong by at least `threshold`. The subsampled triplets, each
 *        with the baseline's P and whether it was kept, are written to the
 *        store as dataset "rrm-<run id>" (`lathe data export` shows them).
 *
 * Both hold out records by index (as sft and pref do) and evaluate on them
 * and on any number of extra test sets (`tests`, comma-separated datasets):
 * accuracy on non-tie rows (strict: P > 0.5 where c > 0.5, P < 0.5 where
 * c < 0.5), mean |P - 0.5| on tie rows (tie_dev; twice it is the artifact
 * reliance of specs/rrm.md on a set of artifact-only ties), the loss, and on
 * the held-out split the reward's mean and spread and its correlation with
 * response length in bytes (pairwise: of P - 0.5 with the length difference).
 * The checkpoint opens with the reward-model block, so any run can load the
 * model by run id (rrm's baseline_run, lathe.score, pref's reward_run). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/nn/rm.h"
#include "../textdata.h"

#define RM_OPTS                                                                                     \
  {"dataset",                                                                                       \
   LATHE_STR,                                                                                       \
   "",                                                                                              \
   0,                                                                                               \
   0,                                                                                               \
   NULL,                                                                                            \
   "the prefs dataset (optional field label: P(chosen wins))"},                                     \
      {"type", LATHE_STR, "bt", 0, 0, "bt|pairwise", "Bradley-Terry or pairwise model"},            \
      {"tests", LATHE_STR, "", 0, 0, NULL, "extra prefs datasets to evaluate on, a,b,c"},           \
      {"holdout", LATHE_NUM, "0.1", 0, 0.9, NULL, "held-out fraction (by record index, as sft)"},   \
      {"steps", LATHE_INT, "1000", 1, 1e9, NULL, "gradient steps (unless epochs)"},                 \
      {"epochs",                                                                                    \
       LATHE_NUM,                                                                                   \
       "0",                                                                                         \
       0,                                                                                           \
       1e6,                                                                                         \
       NULL,                                                                                        \
       "passes over the training pairs, augmented ones included (0: use steps)"},                   \
      {"batch", LATHE_INT, "32", 1, 4096, NULL, "pairs per step"},                                  \
      {"lr", LATHE_NUM, "1e-4", 0, 10, NULL, "Adam learning rate (TRL RewardConfig's)"},            \
      {"warmup", LATHE_INT, "0", 0, 1e9, NULL, "linear warm-up steps, then cosine to lr/10"},       \
      {"weight_decay", LATHE_NUM, "0", 0, 10, NULL, "AdamW weight decay (matrices)"},               \
      {"grad_clip", LATHE_NUM, "1", 0, 1e9, NULL, "gradient norm clip (0: off)"},                   \
      {"tokenizer",                                                                                 \
       LATHE_STR,                                                                                   \
       "bpe",                                                                                       \
       0,                                                                                           \
       0,                                                                                           \
       "bytes|bpe",                                                                                 \
       "the tokenizer (BPE trained on the training split)"},                                        \
      {"vocab", LATHE_INT, "1024", 258, 65536, NULL, "BPE vocabulary size"},                        \
      {"ctx", LATHE_INT, "128", 8, 4096, NULL, "context length (ids)"},                             \
      {"layers", LATHE_INT, "2", 1, 64, NULL, "GPT layers"},                                        \
      {"heads", LATHE_INT, "4", 1, 64, NULL, "GPT attention heads"},                                \
      {"width", LATHE_INT, "64", 4, 4096, NULL, "GPT width (a multiple of heads)"},                 \
      {"eval_every", LATHE_INT, "500", 1, 1e9, NULL, "steps between evaluations (and at the end)"}, \
  {                                                                                                 \
    "log_every", LATHE_INT, "20", 1, 1e9, NULL, "steps between training metrics"                    \
  }

static const lathe_opt_t rm_opts[] = {RM_OPTS, {NULL}};
static const lathe_opt_t rrm_opts[] = {
    RM_OPTS,
    {"baseline_run", LATHE_INT, "0", 0, 4e9, NULL,
     "the trained rm run that filters (0: no filter)"},
    {"augment", LATHE_STR, "all", 0, 0, "all|wins|ties", "which augmented triplets"},
    {"subsample", LATHE_NUM, "0.5", 0, 1, NULL, "fraction of the augmented triplets kept"},
    {"threshold", LATHE_NUM, "0.2", 0, 1, NULL,
     "keep a triplet where the baseline's |P - c| >= it"},
    {NULL}};

typedef struct {
  int *ids[2], len[2]; /* BT: (x, first), (x, second); pairwise: both orders */
  float c;             /* P(first beats second) */
  int bytes[2];        /* response lengths */
} row_t;

typedef struct {
  char name[64];
  row_t *rows;
  int n;
} set_t;

typedef struct {
  nn_rm_t m;
  nn_rng_t rng;
  uint64_t seed;
  int pw, B;
  int shard, nshards; /* data parallelism: this shard of each batch */
  int64_t steps, step, warmup, eval_every, log_every;
  double lr, wd, clip;
  set_t train, held, *tests;
  int ntests;
  int *perm;
  int64_t perm_epoch;
  int *tok, *len;
  float *out, *dout;
  /* rrm's counts, reported at the first step */
  int64_t generated, subsampled, kept[2];
  /* training metrics since the last log */
  double sum_loss, sum_acc, n_acc, sum_tie, n_tie, pairs, t_last;
} rm_t;

static void set_free(set_t *s) {
  for (int i = 0; i < s->n; i++) free(s->rows[i].ids[0]), free(s->rows[i].ids[1]);
  free(s->rows);
  memset(s, 0, sizeof *s);
}

static void destroy(void *self) {
  rm_t *r = self;
  if (!r) return;
  set_free(&r->train), set_free(&r->held);
  for (int i = 0; i < r->ntests; i++) set_free(&r->tests[i]);
  free(r->tests), free(r->perm), free(r->tok), free(r->len), free(r->out), free(r->dout);
  nn_rm_free(&r->m);
  free(r);
}

/* Append a row for (prompt, first, second, c) encoded for model m. */
static int add_row(set_t *s, int *cap, const nn_rm_t *m, const char *p, const char *a,
                   const char *b, float c) {
  if (s->n == *cap) {
    int nc = *cap ? 2 * *cap : 256;
    row_t *nr = realloc(s->rows, (size_t)nc * sizeof *nr);
    if (!nr) return LATHE_ENOMEM;
    s->rows = nr, *cap = nc;
  }
  row_t *r = &s->rows[s->n];
  int pw = m->kind == NN_RM_PAIRWISE, ctx = m->gpt.cfg.ctx;
  r->ids[0] = malloc((size_t)ctx * sizeof(int)), r->ids[1] = malloc((size_t)ctx * sizeof(int));
  if (!r->ids[0] || !r->ids[1]) {
    free(r->ids[0]), free(r->ids[1]);
    return LATHE_ENOMEM;
  }
  r->len[0] = nn_rm_encode(m, p, a, pw ? b : NULL, r->ids[0]);
  r->len[1] = nn_rm_encode(m, p, b, pw ? a : NULL, r->ids[1]);
  r->c = c, r->bytes[0] = (int)strlen(a), r->bytes[1] = (int)strlen(b);
  s->n++;
  return r->len[0] < 0 || r->len[1] < 0 ? LATHE_ENOMEM : 0;
}

/* The tokenizer of a new model: bytes, or BPE on the training split's text. */
static int make_tok(const lathe_host_t *h, lathe_ctx_t *c, tx_record_t *rec, int64_t n,
                    nn_tok_t *t) {
  if (!strcmp(h->cfg_str(c, "tokenizer"), "bytes")) return nn_tok_init_bytes(t);
  const char **texts = malloc((size_t)n * 3 * sizeof *texts);
  if (!texts) return LATHE_ENOMEM;
  int k = 0;
  for (int64_t i = 0; i < n; i++)
    if (!rec[i].held_out)
      texts[k++] = rec[i].prompt, texts[k++] = rec[i].response, texts[k++] = rec[i].rejected;
  int rc = nn_tok_train_bpe(t, texts, k, (int)h->cfg_int(c, "vocab"));
  free(texts);
  return rc;
}

/* ---- RRM -------------------------------------------------------------------------- */

/* s as a JSON string literal (malloc'd; NULL when out of memory). */
static char *json_str(const char *s) {
  json_object *o = json_object_new_string(s);
  char *r = o ? strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) : NULL;
  json_object_put(o);
  return r;
}

/* The Bradley-Terry baseline's P(first beats second) for k triplets whose
 * texts are P, A, Bv: a triplet's responses recur across its prompt's
 * triplets (its two own and four pool responses), so each distinct (prompt,
 * response) is scored once. Triplets of one prompt are contiguous. */
static int bt_baseline(nn_rm_t *bm, const nn_rrm_triplet_t *t, const char **P, const char **A,
                       const char **Bv, int64_t k, double *p) {
  size_t n = (size_t)(k ? k : 1);
  const char **up = malloc(2 * n * sizeof *up), **uy = malloc(2 * n * sizeof *uy);
  int64_t *at = malloc(2 * n * sizeof *at), nu = 0; /* at[2i + s]: member s of triplet i */
  double *r = malloc(2 * n * sizeof *r);
  int rc = up && uy && at && r ? 0 : LATHE_ENOMEM;
  for (int64_t i = 0; i < k && !rc;) {
    int32_t ids[6];
    int64_t first[6], j = i;
    int nid = 0;
    for (; j < k && t[j].prompt == t[i].prompt; j++)
      for (int s = 0; s < 2; s++) {
        int32_t id = s ? t[j].second : t[j].first;
        int q = 0;
        while (q < nid && ids[q] != id) q++;
        if (q == nid) ids[nid] = id, first[nid++] = nu, up[nu] = P[j], uy[nu++] = s ? Bv[j] : A[j];
        at[2 * j + s] = first[q];
      }
    i = j;
  }
  if (!rc) rc = nn_rm_score(bm, up, uy, NULL, (int)nu, r);
  for (int64_t i = 0; !rc && i < k; i++) p[i] = nn_rm_bt(r[at[2 * i]] - r[at[2 * i + 1]]);
  free(up), free(uy), free(at), free(r);
  return rc;
}

/* Augment the training records (tr: indices into rec), score with the
 * baseline, record them in the store, and add the kept ones to r->train. */
static int augment(rm_t *r, const lathe_host_t *h, lathe_ctx_t *c, tx_record_t *rec,
                   const int64_t *tr, int64_t ntr, int *cap) {
  const char *kind = h->cfg_str(c, "augment");
  int kinds = !strcmp(kind, "wins")   ? NN_RRM_WINS
              : !strcmp(kind, "ties") ? NN_RRM_TIES
                                      : NN_RRM_WINS | NN_RRM_TIES;
  uint32_t base = (uint32_t)h->cfg_int(c, "baseline_run");
  double thr = h->cfg_num(c, "threshold");
  nn_rng_t ar;
  nn_rng_seed(&ar, r->seed ^ 0x5252u); /* its own stream: the model's init stays RM's */
  nn_rrm_triplet_t *t;
  int64_t k = nn_rrm_augment(ntr, kinds, h->cfg_num(c, "subsample"), &ar, &t, &r->generated);
  if (k < 0) return h->fail(c, LATHE_EDATA, "rrm: augmentation needs at least 3 training pairs");
  r->subsampled = k;
  /* the texts of every triplet */
  const char **P = malloc((size_t)(k ? k : 1) * 3 * sizeof *P), **A = P + k, **Bv = P + 2 * k;
  double *p = malloc((size_t)(k ? k : 1) * sizeof *p);
  int rc = P && p ? 0 : h->fail(c, LATHE_ENOMEM, "out of memory");
#define RESP(id) ((id) % 2 ? rec[tr[(id) / 2]].rejected : rec[tr[(id) / 2]].response)
  for (int64_t i = 0; i < k && !rc; i++)
    P[i] = rec[tr[t[i].prompt]].prompt, A[i] = RESP(t[i].first), Bv[i] = RESP(t[i].second);
  if (!rc && base) { /* the baseline's P(first beats second) */
    lathe_buf_t b = {0};
    char plugin[64];
    nn_rm_t bm;
    if ((rc = h->run_checkpoint(c, base, &b, plugin)))
      rc = h->fail(c, rc, "rrm: baseline_run %u: no such run or no checkpoint", base);
    else if (nn_rm_load(&bm, &b))
      rc = h->fail(c, LATHE_ECONFIG, "rrm: baseline_run %u (%s) holds no reward model", base,
                   plugin);
    lathe_buf_free(&b);
    if (!rc) {
      if (bm.kind == NN_RM_PAIRWISE) {
        rc = nn_rm_score(&bm, P, A, Bv, (int)k, p);
      } else { /* sigmoid(r(x, first) - r(x, second)), each r once per prompt and response */
        rc = bt_baseline(&bm, t, P, A, Bv, k, p);
      }
      nn_rm_free(&bm);
      if (rc) rc = h->fail(c, rc, "rrm: scoring with the baseline: %s", "out of memory");
    }
  }
  /* keep, and record every triplet with its verdict */
  char **js = rc ? NULL : calloc((size_t)(k ? k : 1), sizeof *js);
  if (!rc && !js) rc = h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int64_t i = 0; i < k && !rc; i++) {
    int keep = !base || nn_rrm_keep(p[i], t[i].label, thr), tie = t[i].label != 1.0f;
    if (keep) r->kept[tie]++, rc = add_row(&r->train, cap, &r->m, P[i], A[i], Bv[i], t[i].label);
    char *jp = json_str(P[i]), *ja = json_str(A[i]), *jb = json_str(Bv[i]), pv[32] = "null";
    if (base) snprintf(pv, sizeof pv, "%.6g", p[i]);
    size_t len = jp && ja && jb ? strlen(jp) + strlen(ja) + strlen(jb) + 200 : 0;
    if (len && (js[i] = malloc(len)))
      snprintf(js[i], len,
               "{\"prompt\":%s,\"chosen\":%s,\"rejected\":%s,\"label\":%g,\"kind\":\"%s\","
               "\"example\":%lld,\"baseline_p\":%s,\"kept\":%s}",
               jp, ja, jb, t[i].label, tie ? "tie" : "win", (long long)tr[t[i].prompt], pv,
               keep ? "true" : "false");
    free(jp), free(ja), free(jb);
    if (!js[i] && !rc) rc = h->fail(c, LATHE_ENOMEM, "out of memory");
  }
#undef RESP
  char name[64];
  snprintf(name, sizeof name, "rrm-%u", h->run_id(c));
  if (!rc && h->run_id(c) && h->dataset_count(c, name) < 0) /* a resume finds it written */
    rc = h->dataset_create(c, name, "prefs", (const char *const *)js, k);
  for (int64_t i = 0; js && i < k; i++) free(js[i]);
  free(js), free(P), free(p), free(t);
  if (!rc)
    h->log(c,
           "rrm: %lld triplets generated, %lld after the subsample, kept %lld wins and %lld ties "
           "(dataset %s)",
           (long long)r->generated, (long long)k, (long long)r->kept[0], (long long)r->kept[1],
           name);
  return rc;
}

/* ---- create ----------------------------------------------------------------------- */

static int read_tests(rm_t *r, const lathe_host_t *h, lathe_ctx_t *c) {
  char list[1024];
  snprintf(list, sizeof list, "%s", h->cfg_str(c, "tests"));
  for (char *save = NULL, *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
    set_t *nt = realloc(r->tests, (size_t)(r->ntests + 1) * sizeof *nt);
    if (!nt) return h->fail(c, LATHE_ENOMEM, "out of memory");
    r->tests = nt;
    set_t *t = &r->tests[r->ntests++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", s);
    tx_record_t *rec;
    int64_t n = tx_read(h, c, s, 1, 0, 0, &rec);
    if (n < 0) return (int)n;
    int cap = 0, rc = 0;
    for (int64_t i = 0; i < n && !rc; i++)
      rc = add_row(t, &cap, &r->m, rec[i].prompt, rec[i].response, rec[i].rejected,
                   (float)rec[i].label);
    tx_free(rec, n);
    if (rc) return h->fail(c, rc, "out of memory");
  }
  return 0;
}

static int create_any(const lathe_host_t *h, lathe_ctx_t *c, void **self, int rrm) {
  rm_t *r = calloc(1, sizeof *r);
  if (!r) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = r;
  r->seed = h->seed(c);
  nn_rng_seed(&r->rng, r->seed);
  r->pw = nn_rm_parse(h->cfg_str(c, "type")) == NN_RM_PAIRWISE;
  r->B = (int)h->cfg_int(c, "batch"), r->steps = h->cfg_int(c, "steps");
  r->warmup = h->cfg_int(c, "warmup"), r->eval_every = h->cfg_int(c, "eval_every");
  r->log_every = h->cfg_int(c, "log_every");
  r->lr = h->cfg_num(c, "lr"), r->wd = h->cfg_num(c, "weight_decay");
  r->clip = h->cfg_num(c, "grad_clip");
  r->shard = h->shard(c, &r->nshards);
  if (r->B % r->nshards)
    return h->fail(c, LATHE_ECONFIG, "%s: batch %d does not split over %d data-parallel shards",
                   rrm ? "rrm" : "rm", r->B, r->nshards);
  const char *ds = h->cfg_str(c, "dataset");
  if (!*ds)
    return h->fail(c, LATHE_ECONFIG, "%s: no dataset given (dataset = NAME)", rrm ? "rrm" : "rm");
  tx_record_t *rec;
  int64_t n = tx_read(h, c, ds, 1, h->cfg_num(c, "holdout"), 0, &rec);
  if (n < 0) return (int)n;
  nn_tok_t tok;
  int rc = make_tok(h, c, rec, n, &tok);
  nn_gpt_config_t gc = {0, (int)h->cfg_int(c, "ctx"), (int)h->cfg_int(c, "layers"),
                        (int)h->cfg_int(c, "heads"), (int)h->cfg_int(c, "width")};
  if (!rc && gc.width % gc.heads) {
    nn_tok_free(&tok);
    rc = h->fail(c, LATHE_ECONFIG, "width %d is not a multiple of heads %d", gc.width, gc.heads);
  } else if (!rc && nn_rm_init(&r->m, r->pw ? NN_RM_PAIRWISE : NN_RM_BT, &tok, gc, &r->rng)) {
    rc = h->fail(c, LATHE_ENOMEM, "out of memory");
  } else if (rc) {
    rc = h->fail(c, rc, "out of memory");
  }
  int tcap = 0, hcap = 0;
  int64_t *tr = malloc((size_t)n * sizeof *tr), ntr = 0;
  if (!rc && !tr) rc = h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n && !rc; i++) {
    if (!rec[i].held_out) tr[ntr++] = i;
    if ((rc = add_row(rec[i].held_out ? &r->held : &r->train, rec[i].held_out ? &hcap : &tcap,
                      &r->m, rec[i].prompt, rec[i].response, rec[i].rejected, (float)rec[i].label)))
      rc = h->fail(c, rc, "out of memory");
  }
  if (!rc && rrm) rc = augment(r, h, c, rec, tr, ntr, &tcap);
  free(tr), tx_free(rec, n);
  if (!rc) rc = read_tests(r, h, c);
  if (rc) return rc;
  if (!r->train.n) return h->fail(c, LATHE_EDATA, "dataset '%s' leaves no training pair", ds);
  double epochs = h->cfg_num(c, "epochs");
  if (epochs > 0) r->steps = (int64_t)ceil(epochs * r->train.n / r->B);
  if (r->steps < 1) r->steps = 1;
  size_t ctx = (size_t)r->m.gpt.cfg.ctx;
  r->tok = malloc(2 * r->B * ctx * sizeof *r->tok), r->len = malloc(2 * r->B * sizeof *r->len);
  r->out = malloc(2 * r->B * sizeof *r->out), r->dout = malloc(2 * r->B * sizeof *r->dout);
  r->perm = malloc((size_t)r->train.n * sizeof *r->perm), r->perm_epoch = -1;
  if (!r->tok || !r->len || !r->out || !r->dout || !r->perm)
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  h->set_total(c, r->steps);
  h->log(c, "%d training and %d held-out pairs, %d test sets, vocab %d, %zu parameters", r->train.n,
         r->held.n, r->ntests, r->m.gpt.cfg.vocab, r->m.gpt.params.total + r->m.head.total);
  return 0;
}

static int create_rm(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  return create_any(h, c, self, 0);
}
static int create_rrm(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  return create_any(h, c, self, 1);
}

/* ---- training and evaluation -------------------------------------------------------- */

/* Forward rows[0..n) (both sequences each): out(2n). */
static int forward_rows(rm_t *r, row_t *const *rows, int n) {
  int T = 1;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 2; k++) T = rows[i]->len[k] > T ? rows[i]->len[k] : T;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 2; k++) {
      int *dst = r->tok + (size_t)(2 * i + k) * T, L = rows[i]->len[k];
      memcpy(dst, rows[i]->ids[k], (size_t)L * sizeof *dst);
      for (int t = L; t < T; t++) dst[t] = NN_TOK_PAD;
      r->len[2 * i + k] = L;
    }
  return nn_rm_forward(&r->m, r->tok, r->len, 2 * n, T, r->out);
}

/* P(first beats second) from a row's two outputs. */
static double row_p(const rm_t *r, const float *o) {
  return r->pw ? nn_rm_sym(o[0], o[1]) : nn_rm_bt((double)o[0] - o[1]);
}

/* The row's loss and d loss / d outputs (unscaled). */
static double row_loss(const rm_t *r, const row_t *w, const float *o, float *d) {
  double dz, dz2, l;
  if (r->pw) { /* both orders, each with its own target */
    l = 0.5 * (nn_rm_soft_ce(o[0], w->c, &dz) + nn_rm_soft_ce(o[1], 1 - w->c, &dz2));
    d[0] = (float)(0.5 * dz), d[1] = (float)(0.5 * dz2);
  } else {
    l = nn_rm_soft_ce((double)o[0] - o[1], w->c, &dz);
    d[0] = (float)dz, d[1] = (float)-dz;
  }
  return l;
}

/* Accuracy and tie counters of one row given P. */
static void tally(const row_t *w, double p, double *acc, double *nacc, double *tie, double *ntie) {
  if (w->c > 0.5f)
    *acc += p > 0.5, ++*nacc;
  else if (w->c < 0.5f)
    *acc += p < 0.5, ++*nacc;
  else
    *tie += fabs(p - 0.5), ++*ntie;
}

static double pearson(const double *x, const double *y, int n) {
  double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
  for (int i = 0; i < n; i++) mx += x[i], my += y[i];
  mx /= n, my /= n;
  for (int i = 0; i < n; i++)
    sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx),
        syy += (y[i] - my) * (y[i] - my);
  return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

/* Evaluate on set s; metrics named pre + "accuracy" etc. held: also the
 * reward statistics and the length correlation. */
static int evaluate(rm_t *r, const lathe_host_t *h, lathe_ctx_t *c, const set_t *s, const char *pre,
                    int held) {
  if (!s->n) return 0;
  double loss = 0, acc = 0, nacc = 0, tie = 0, ntie = 0;
  int n2 = 2 * s->n;
  double *x = held ? malloc((size_t)n2 * sizeof *x) : NULL,
         *y = held ? malloc((size_t)n2 * sizeof *y) : NULL;
  if (held && (!x || !y)) {
    free(x), free(y);
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  int m = 0;
  for (int i0 = 0; i0 < s->n; i0 += r->B) {
    int n = s->n - i0 < r->B ? s->n - i0 : r->B;
    row_t *rows[4096];
    for (int i = 0; i < n; i++) rows[i] = &s->rows[i0 + i];
    int rc = forward_rows(r, rows, n);
    if (rc) {
      free(x), free(y);
      return h->fail(c, rc, "evaluation: %s", "out of memory");
    }
    for (int i = 0; i < n; i++) {
      float d[2];
      const float *o = r->out + 2 * i;
      double p = row_p(r, o);
      loss += row_loss(r, rows[i], o, d);
      tally(rows[i], p, &acc, &nacc, &tie, &ntie);
      if (!held) continue;
      if (r->pw)
        x[m] = p - 0.5, y[m++] = rows[i]->bytes[0] - rows[i]->bytes[1];
      else
        for (int k = 0; k < 2; k++) x[m] = o[k], y[m++] = rows[i]->bytes[k];
    }
  }
  char name[160];
#define MET(k, v) (snprintf(name, sizeof name, "%s%s", pre, k), h->metric(c, name, v))
  MET("loss", loss / s->n);
  if (nacc) MET("accuracy", acc / nacc);
  if (ntie) MET("tie_dev", tie / ntie);
  if (held) {
    if (!r->pw) {
      double mean = 0, var = 0;
      for (int i = 0; i < m; i++) mean += x[i];
      mean /= m;
      for (int i = 0; i < m; i++) var += (x[i] - mean) * (x[i] - mean);
      MET("reward_mean", mean), MET("reward_std", sqrt(var / m));
    }
    MET("length_corr", pearson(x, y, m));
  }
#undef MET
  free(x), free(y);
  return 0;
}

static int evaluate_all(rm_t *r, const lathe_host_t *h, lathe_ctx_t *c) {
  if (r->shard) return 0; /* shard 0 reports */
  int rc = evaluate(r, h, c, &r->held, "eval/", 1);
  for (int i = 0; i < r->ntests && !rc; i++) {
    char pre[96];
    snprintf(pre, sizeof pre, "test/%s/", r->tests[i].name);
    rc = evaluate(r, h, c, &r->tests[i], pre, 0);
  }
  return rc;
}

/* Row k of the training stream: epoch k / n walks a permutation drawn from
 * (seed, epoch) alone, so a resume needs nothing but the step. */
static row_t *stream_row(rm_t *r, int64_t k) {
  int n = r->train.n;
  int64_t e = k / n;
  if (e != r->perm_epoch) {
    nn_rng_t pr;
    nn_rng_seed(&pr, r->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)e + 1);
    for (int i = 0; i < n; i++) r->perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
      int j = (int)nn_rng_below(&pr, (uint32_t)i + 1), t = r->perm[i];
      r->perm[i] = r->perm[j], r->perm[j] = t;
    }
    r->perm_epoch = e;
  }
  return &r->train.rows[r->perm[k % n]];
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  rm_t *r = self;
  int rc;
  if (r->step == 0 && r->generated) {
    h->metric(c, "rrm/generated", (double)r->generated);
    h->metric(c, "rrm/subsampled", (double)r->subsampled);
    h->metric(c, "rrm/kept_wins", (double)r->kept[0]),
        h->metric(c, "rrm/kept_ties", (double)r->kept[1]);
    h->metric(c, "rrm/train_pairs", (double)r->train.n);
  }
  if (r->step % r->eval_every == 0 && r->step && (rc = evaluate_all(r, h, c))) return rc;
  if (r->t_last == 0) r->t_last = tx_now();
  /* data-parallel: this shard's rows of the batch; gradients and tallies summed */
  row_t *rows[4096] = {NULL};
  int nb = r->B / r->nshards, b0 = r->shard * nb;
  for (int i = 0; i < nb; i++) rows[i] = stream_row(r, r->step * r->B + b0 + i);
  if ((rc = forward_rows(r, rows, nb))) return h->fail(c, rc, "forward: %s", "out of memory");
  double add[5] = {0}, *one = r->nshards > 1 ? add + 0 : &r->sum_loss;
  for (int i = 0; i < nb; i++) { /* (one shard: into the running sums, as always) */
    *one += row_loss(r, rows[i], r->out + 2 * i, r->dout + 2 * i);
    if (r->nshards > 1)
      tally(rows[i], row_p(r, r->out + 2 * i), &add[1], &add[2], &add[3], &add[4]);
    else
      tally(rows[i], row_p(r, r->out + 2 * i), &r->sum_acc, &r->n_acc, &r->sum_tie, &r->n_tie);
  }
  for (int i = 0; i < 2 * nb; i++) r->dout[i] /= (float)r->B;
  nn_params_zero_grad(&r->m.gpt.params), nn_params_zero_grad(&r->m.head);
  nn_rm_backward(&r->m, r->dout);
  if (r->nshards > 1) {
    float v[5];
    for (int i = 0; i < 5; i++) v[i] = (float)add[i];
    if ((rc = h->allreduce(c, r->m.gpt.params.g, r->m.gpt.params.total)) ||
        (rc = h->allreduce(c, r->m.head.g, r->m.head.total)) || (rc = h->allreduce(c, v, 5)))
      return rc;
    r->sum_loss += v[0], r->sum_acc += v[1], r->n_acc += v[2], r->sum_tie += v[3];
    r->n_tie += v[4];
  }
  double gn = nn_rm_clip(&r->m, (float)r->clip);
  nn_adamw_t o = nn_adamw_default();
  o.weight_decay = (float)r->wd;
  float lr = nn_lr_at(NN_SCHED_COSINE, (float)r->lr, r->step, r->warmup, r->steps, 0.1f);
  if (nn_adamw_step(&r->m.gpt.params, &o, lr) || nn_adamw_step(&r->m.head, &o, lr))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  r->step++, r->pairs += r->B;
  if (r->step % r->log_every == 0) {
    double k = (double)(r->pairs);
    h->metric(c, "train/loss", r->sum_loss / k);
    if (r->n_acc) h->metric(c, "train/accuracy", r->sum_acc / r->n_acc);
    if (r->n_tie) h->metric(c, "train/tie_dev", r->sum_tie / r->n_tie);
    h->metric(c, "grad_norm", gn), h->metric(c, "lr", lr);
    double t = tx_now();
    h->metric(c, "perf/pairs_per_sec", k / (t - r->t_last));
    r->t_last = t, r->pairs = r->sum_loss = r->sum_acc = r->n_acc = r->sum_tie = r->n_tie = 0;
  }
  if (r->step == r->steps) return (rc = evaluate_all(r, h, c)) ? rc : LATHE_DONE;
  return LATHE_CONTINUE;
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  rm_t *r = self;
  nn_rm_save(&r->m, b, 1);
  uint32_t version = 1;
  LATHE_PUT(b, version), LATHE_PUT(b, r->step), LATHE_PUT(b, r->rng);
  double acc[6] = {r->sum_loss, r->sum_acc, r->n_acc, r->sum_tie, r->n_tie, r->pairs};
  lathe_buf_put(b, acc, sizeof acc);
  return b->err;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  rm_t *r = self;
  int rc = nn_rm_restore(&r->m, b);
  if (rc)
    return h->fail(c, LATHE_ECKPT, "rm: %s",
                   rc == LATHE_ESHAPE ? "the checkpoint's model has another shape"
                                      : "bad reward-model block");
  uint32_t version;
  LATHE_GET(b, version), LATHE_GET(b, r->step), LATHE_GET(b, r->rng);
  double acc[6];
  lathe_buf_get(b, acc, sizeof acc);
  r->sum_loss = acc[0], r->sum_acc = acc[1], r->n_acc = acc[2], r->sum_tie = acc[3];
  r->n_tie = acc[4], r->pairs = acc[5], r->t_last = 0;
  if (b->err || version != 1) return h->fail(c, LATHE_ECKPT, "rm: truncated checkpoint");
  if (r->step < 0 || r->step > r->steps)
    return h->fail(c, LATHE_ECKPT, "rm: checkpoint field 'step' = %lld is outside [0, %lld]",
                   (long long)r->step, (long long)r->steps);
  return 0;
}

/* Rules across keys, checked before any run starts. */
static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  if (!*h->cfg_str(c, "dataset"))
    return h->fail(c, LATHE_ECONFIG, "no dataset given (dataset = NAME)");
  if (h->cfg_int(c, "width") % h->cfg_int(c, "heads"))
    return h->fail(c, LATHE_ECONFIG, "width %lld is not a multiple of heads %lld",
                   (long long)h->cfg_int(c, "width"), (long long)h->cfg_int(c, "heads"));
  return 0;
}

#define RM_PLUGIN(VAR, NAME, OPTS, CREATE, DOC)                                                    \
  static const lathe_algorithm_t VAR##_if = {                                                      \
      .step = step, .main_metric = "eval/accuracy", .data_parallel = 1};                           \
  static const lathe_plugin_t VAR = {.major = LATHE_API_MAJOR,                                     \
                                     .minor = LATHE_API_TARGET,                                    \
                                     .name = NAME,                                                 \
                                     .kind = LATHE_ALGORITHM,                                      \
                                     .version = "1.0.0",                                           \
                                     .doc = DOC,                                                   \
                                     .opts = OPTS,                                                 \
                                     .nn_abi = NN_ABI,                                             \
                                     .create = CREATE,                                             \
                                     .destroy = destroy,                                           \
                                     .save = save,                                                 \
                                     .load = load,                                                 \
                                     .validate = validate,                                         \
                                     .algorithm = &VAR##_if};                                      \
  LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_##VAR, VAR)
RM_PLUGIN(rm, "rm", rm_opts, create_rm,
          "a Bradley-Terry or pairwise reward model (GPT, scalar head) on a prefs dataset")
RM_PLUGIN(rrm, "rrm", rrm_opts, create_rrm,
          "RRM: a reward model trained with causal augmentation filtered by a baseline rm run")
LATHE_PLUGIN_ENTRY(rm)
