/* sft.c - next-token training of a GPT on a dataset in the store: from
 * scratch (with a byte or BPE tokenizer trained on the training split) or
 * from another run's model (init_run). Records are text (every token scored),
 * prompt and response, question and solution (math), or prompt and chosen
 * (preference pairs: SFT on the chosen replies); with response_only the loss covers the response
 * and its <eos>. A held-out fraction of the records (by index, the same split the pref plugin uses)
 * gives eval/loss and eval/perplexity. The checkpoint opens with the model block (nn/lm.h),
 * tokenizer included. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/nn/lm.h"
#include "../textdata.h"

static const lathe_opt_t opts[] = {
    {"dataset", LATHE_STR, "", 0, 0, NULL, "the dataset in the store (text, sft, math or prefs)"},
    {"records", LATHE_INT, "0", 0, 1e12, NULL, "use the first N records only (0: all)"},
    {"tokenizer", LATHE_STR, "bpe", 0, 0, "bytes|bpe",
     "bytes, or BPE trained on the training split"},
    {"vocab", LATHE_INT, "512", 258, 65536, NULL, "BPE vocabulary size"},
    {"init_run", LATHE_INT, "0", 0, 4e9, NULL,
     "start from this run's model and tokenizer (0: new)"},
    {"layers", LATHE_INT, "3", 1, 64, NULL, "GPT layers"},
    {"heads", LATHE_INT, "4", 1, 64, NULL, "attention heads"},
    {"width", LATHE_INT, "96", 4, 4096, NULL, "GPT width"},
    {"ctx", LATHE_INT, "128", 8, 8192, NULL, "context length in tokens"},
    {"batch", LATHE_INT, "16", 1, 4096, NULL, "sequences per step"},
    {"steps", LATHE_INT, "1000", 1, 1e9, NULL, "training steps"},
    {"lr", LATHE_NUM, "0.001", 0, 10, NULL, "peak learning rate (AdamW)"},
    {"warmup", LATHE_INT, "50", 0, 1e9, NULL, "linear warm-up steps, then cosine decay to 10%"},
    {"weight_decay", LATHE_NUM, "0", 0, 10, NULL, "AdamW decoupled weight decay"},
    {"grad_clip", LATHE_NUM, "1", 0, 1e9, NULL, "gradient norm clip (0: off)"},
    {"response_only", LATHE_BOOL, "true", 0, 0, NULL, "score only the response (and <eos>)"},
    {"holdout", LATHE_NUM, "0.1", 0, 0.9, NULL, "fraction of records held out for evaluation"},
    {"eval_every", LATHE_INT, "100", 1, 1e9, NULL, "steps between evaluations"},
    {"log_every", LATHE_INT, "10", 1, 1e9, NULL, "steps between loss metrics"},
    {NULL}};

typedef struct {
  int *ids, len, plen;
} ex_t;

typedef struct {
  nn_tok_t tok;
  nn_gpt_t gpt;
  nn_rng_t rng;
  ex_t *train, *eval;
  int ntrain, neval;
  int64_t step, steps, warmup, eval_every, log_every;
  int B, ctx, resp_only;
  int shard, nshards; /* data parallelism: this shard of the batch */
  double lr, wd, clip;
  int *tok_buf, *tgt;
  float *mask, *dl;
  double t_last; /* for perf/tokens_per_sec */
  int64_t tokens;
} sft_t;

static void destroy(void *self) {
  sft_t *s = self;
  if (!s) return;
  for (int i = 0; i < s->ntrain; i++) free(s->train[i].ids);
  for (int i = 0; i < s->neval; i++) free(s->eval[i].ids);
  free(s->train), free(s->eval), free(s->tok_buf), free(s->tgt), free(s->mask), free(s->dl);
  nn_tok_free(&s->tok), nn_gpt_free(&s->gpt);
  free(s);
}

/* the model of another run, from its checkpoint's model block */
static int load_init(sft_t *s, const lathe_host_t *h, lathe_ctx_t *c, uint32_t run) {
  lathe_buf_t b = {0};
  char plugin[64];
  int rc = h->run_checkpoint(c, run, &b, plugin), has = 0;
  if (rc) return h->fail(c, rc, "init_run %u: %s", run, "no such run or no checkpoint");
  rc = nn_lm_load(&s->tok, &has, &s->gpt, &b);
  lathe_buf_free(&b);
  if (rc || !has)
    return h->fail(c, LATHE_ECONFIG, "init_run %u (%s): no text model in its checkpoint", run,
                   plugin);
  nn_params_reset_opt(&s->gpt.params); /* a fresh optimizer */
  return 0;
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  sft_t *s = calloc(1, sizeof *s);
  if (!s) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = s;
  nn_rng_seed(&s->rng, h->seed(c));
  s->B = (int)h->cfg_int(c, "batch"), s->ctx = (int)h->cfg_int(c, "ctx");
  s->steps = h->cfg_int(c, "steps"), s->warmup = h->cfg_int(c, "warmup");
  s->eval_every = h->cfg_int(c, "eval_every"), s->log_every = h->cfg_int(c, "log_every");
  s->lr = h->cfg_num(c, "lr"), s->wd = h->cfg_num(c, "weight_decay");
  s->clip = h->cfg_num(c, "grad_clip"), s->resp_only = (int)h->cfg_int(c, "response_only");
  s->shard = h->shard(c, &s->nshards);
  if (s->B % s->nshards)
    return h->fail(c, LATHE_ECONFIG, "sft: batch %d does not split over %d data-parallel shards",
                   s->B, s->nshards);
  const char *ds = h->cfg_str(c, "dataset");
  if (!*ds) return h->fail(c, LATHE_ECONFIG, "sft: no dataset given (dataset = NAME)");
  tx_record_t *rec = NULL;
  int64_t n = tx_read(h, c, ds, 0, h->cfg_num(c, "holdout"), h->cfg_int(c, "records"), &rec);
  if (n < 0) return (int)n;
  int rc = 0;
  uint32_t init = (uint32_t)h->cfg_int(c, "init_run");
  if (init) {
    rc = load_init(s, h, c, init);
    s->ctx = s->gpt.cfg.ctx;
  } else if (!strcmp(h->cfg_str(c, "tokenizer"), "bytes")) {
    rc = nn_tok_init_bytes(&s->tok);
  } else { /* BPE on the training split's text */
    const char **texts = malloc((size_t)n * 2 * sizeof *texts);
    int k = 0;
    for (int64_t i = 0; texts && i < n; i++)
      if (!rec[i].held_out) texts[k++] = rec[i].prompt, texts[k++] = rec[i].response;
    rc = texts ? nn_tok_train_bpe(&s->tok, texts, k, (int)h->cfg_int(c, "vocab")) : LATHE_ENOMEM;
    free(texts);
    if (!rc) h->log(c, "BPE: %d ids trained on %d texts", s->tok.vocab, k);
  }
  if (!rc && !init) {
    nn_gpt_config_t gc = {s->tok.vocab, s->ctx, (int)h->cfg_int(c, "layers"),
                          (int)h->cfg_int(c, "heads"), (int)h->cfg_int(c, "width")};
    if (gc.width % gc.heads)
      rc = h->fail(c, LATHE_ECONFIG, "sft: width %d is not a multiple of heads %d", gc.width,
                   gc.heads);
    else if (nn_gpt_init(&s->gpt, gc, &s->rng))
      rc = h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  /* tokenise once */
  s->train = calloc((size_t)n, sizeof *s->train), s->eval = calloc((size_t)n, sizeof *s->eval);
  int *ids = malloc((size_t)s->ctx * sizeof *ids), dropped = 0;
  if (!rc && (!s->train || !s->eval || !ids)) rc = h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n && !rc; i++) {
    int plen, len = tx_encode(&s->tok, rec[i].prompt, rec[i].response, s->ctx, ids, &plen);
    if (len < 0) rc = h->fail(c, LATHE_ENOMEM, "out of memory");
    if (rc || len < 2 || (s->resp_only && plen >= len)) {
      dropped++;
      continue;
    }
    ex_t e = {malloc((size_t)len * sizeof *ids), len, s->resp_only ? plen : 0};
    if (!e.ids)
      rc = h->fail(c, LATHE_ENOMEM, "out of memory");
    else
      memcpy(e.ids, ids, (size_t)len * sizeof *ids);
    if (rec[i].held_out)
      s->eval[s->neval++] = e;
    else
      s->train[s->ntrain++] = e;
  }
  free(ids);
  tx_free(rec, n);
  if (rc) return rc;
  if (!s->ntrain)
    return h->fail(c, LATHE_EDATA, "sft: dataset '%s' leaves no training example", ds);
  if (dropped) h->log(c, "%d records too short to score were left out", dropped);
  size_t BT = (size_t)s->B * s->ctx;
  s->tok_buf = malloc(BT * sizeof(int)), s->tgt = malloc(BT * sizeof(int));
  s->mask = malloc(BT * sizeof(float)), s->dl = malloc(BT * s->gpt.cfg.vocab * sizeof(float));
  if (!s->tok_buf || !s->tgt || !s->mask || !s->dl)
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  h->set_total(c, s->steps);
  h->log(c, "%d training and %d held-out examples, vocab %d, %zu parameters", s->ntrain, s->neval,
         s->gpt.cfg.vocab, s->gpt.params.total);
  return 0;
}

/* Pack examples into (n, T) with targets and the loss mask; returns T. */
static int pack(sft_t *s, ex_t **ex, int n) {
  int T = 2;
  for (int b = 0; b < n; b++) T = ex[b]->len > T ? ex[b]->len : T;
  for (int b = 0; b < n; b++)
    for (int t = 0; t < T; t++) {
      size_t i = (size_t)b * T + t;
      s->tok_buf[i] = t < ex[b]->len ? ex[b]->ids[t] : NN_TOK_PAD;
      s->tgt[i] = t + 1 < ex[b]->len ? ex[b]->ids[t + 1] : NN_TOK_PAD;
      s->mask[i] = t + 1 < ex[b]->len && t + 1 >= ex[b]->plen && t + 1 >= 1 ? 1.0f : 0.0f;
    }
  return T;
}

/* The tokens example e's loss scores (pack's mask). */
static int scored(const sft_t *s, const ex_t *e) {
  int from = e->plen > 1 ? e->plen : 1;
  return e->len > from ? e->len - from : 0;
}

static double eval_loss(sft_t *s) {
  double sum = 0, cnt = 0;
  ex_t *ex[4096];
  for (int i = 0; i < s->neval; i += s->B) {
    int n = s->neval - i < s->B ? s->neval - i : s->B;
    for (int b = 0; b < n; b++) ex[b] = &s->eval[i + b];
    int T = pack(s, ex, n);
    float *logits = nn_gpt_forward(&s->gpt, s->tok_buf, n, T);
    if (!logits) return NAN;
    double m = 0;
    for (size_t k = 0; k < (size_t)n * T; k++) m += s->mask[k];
    sum += nn_token_ce_loss(s->dl, logits, s->tgt, s->mask, n, T, s->gpt.cfg.vocab) * m, cnt += m;
  }
  return cnt ? sum / cnt : NAN;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  sft_t *s = self;
  if (s->step % s->eval_every == 0 && s->neval && !s->shard) {
    double l = eval_loss(s);
    h->metric(c, "eval/loss", l), h->metric(c, "eval/perplexity", exp(l));
  }
  ex_t *ex[4096];
  for (int b = 0; b < s->B; b++) ex[b] = &s->train[nn_rng_below(&s->rng, (uint32_t)s->ntrain)];
  /* data-parallel: this shard's rows of the batch, its loss weighted by its
   * share of the batch's scored tokens, so the shards' sum is the batch mean */
  int nb = s->B / s->nshards, b0 = s->shard * nb;
  int T = pack(s, ex + b0, nb), V = s->gpt.cfg.vocab;
  float *logits = nn_gpt_forward(&s->gpt, s->tok_buf, nb, T);
  if (!logits) return h->fail(c, LATHE_ENOMEM, "out of memory");
  float loss = nn_token_ce_loss(s->dl, logits, s->tgt, s->mask, nb, T, V);
  if (s->nshards > 1) {
    double all = 0, mine = 0;
    for (int b = 0; b < s->B; b++) all += scored(s, ex[b]);
    for (int b = b0; b < b0 + nb; b++) mine += scored(s, ex[b]);
    float w = all > 0 ? (float)(mine / all) : 0;
    for (size_t i = 0; i < (size_t)nb * T * V; i++) s->dl[i] *= w;
    loss *= w;
  }
  nn_params_zero_grad(&s->gpt.params);
  nn_gpt_backward(&s->gpt, s->dl);
  int rc = h->allreduce(c, s->gpt.params.g, s->gpt.params.total);
  if (!rc) rc = h->allreduce(c, &loss, 1);
  if (rc) return rc;
  double gn = nn_clip_grad_norm(&s->gpt.params, s->clip > 0 ? (float)s->clip : 0);
  nn_adamw_t o = nn_adamw_default();
  o.weight_decay = (float)s->wd;
  float lr = nn_lr_at(NN_SCHED_COSINE, (float)s->lr, s->step, s->warmup, s->steps, 0.1f);
  if (nn_adamw_step(&s->gpt.params, &o, lr)) return h->fail(c, LATHE_ENOMEM, "out of memory");
  s->tokens += (int64_t)nb * T * s->nshards; /* (the shards' T as this one's) */
  s->step++;
  if (s->step % s->log_every == 0) {
    h->metric(c, "loss", loss), h->metric(c, "grad_norm", gn), h->metric(c, "lr", lr);
    double t = tx_now();
    if (s->t_last > 0) h->metric(c, "perf/tokens_per_sec", s->tokens / (t - s->t_last));
    s->t_last = t, s->tokens = 0;
  }
  if (s->step == s->steps) {
    if (s->neval && !s->shard) {
      double l = eval_loss(s);
      h->metric(c, "eval/loss", l), h->metric(c, "eval/perplexity", exp(l));
    }
    return LATHE_DONE;
  }
  return LATHE_CONTINUE;
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  sft_t *s = self;
  nn_lm_save(&s->tok, &s->gpt, b, 1);
  uint32_t version = 1;
  LATHE_PUT(b, version), LATHE_PUT(b, s->step), LATHE_PUT(b, s->rng);
  return 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  sft_t *s = self;
  int rc = nn_lm_restore(&s->tok, &s->gpt, b);
  if (rc) return h->fail(c, LATHE_ECKPT, "sft: %s", nn_lm_restore_error(rc));
  uint32_t version;
  LATHE_GET(b, version), LATHE_GET(b, s->step), LATHE_GET(b, s->rng);
  s->t_last = 0, s->tokens = 0;
  if (b->err || version != 1) return h->fail(c, LATHE_ECKPT, "sft: truncated checkpoint");
  if (s->step < 0 || s->step > s->steps)
    return h->fail(c, LATHE_ECKPT, "sft: checkpoint field 'step' = %lld is outside [0, %lld]",
                   (long long)s->step, (long long)s->steps);
  return 0;
}

/* Rules across keys, checked before any run starts. */
static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  if (!*h->cfg_str(c, "dataset"))
    return h->fail(c, LATHE_ECONFIG, "sft: no dataset given (dataset = NAME)");
  if (!h->cfg_int(c, "init_run") && h->cfg_int(c, "width") % h->cfg_int(c, "heads"))
    return h->fail(c, LATHE_ECONFIG, "sft: width %lld is not a multiple of heads %lld",
                   (long long)h->cfg_int(c, "width"), (long long)h->cfg_int(c, "heads"));
  return 0;
}

static const lathe_algorithm_t algorithm = {
    .step = step, .main_metric = "eval/loss", .main_lower_better = 1, .data_parallel = 1};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "sft",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "next-token training of a GPT on a text, sft, math or prefs dataset (BPE or bytes)",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .validate = validate,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY(plugin)
