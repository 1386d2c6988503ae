/* archer.c - ArCHer (Zhou et al. 2024; specs/archer.md): an off-policy,
 * utterance-level critic learned by TD from a replay buffer, and a
 * token-level language policy trained by REINFORCE with the critic's
 * advantage, on a turn-based text game (a textenv: twentyq, guesscity, guessnum).
 *
 * Policy: the GPT of another run (`init_run`, a behaviour-cloning warm
 * start, e.g. sft on `gameplay` records); an utterance is sampled (T = 1)
 * after the dialogue so far until <eos> or max_new tokens, the games'
 * utterances batched and split into AR_SHARDS shards with RNG streams of
 * their own (run on --threads threads; the result does not depend on the
 * thread count). Critic: a small GPT encoder (from scratch with the
 * policy's tokenizer, or with critic_init = policy a copy of the policy's
 * GPT, as the paper's encoder is pretrained), e(x) = its final hidden state
 * at a text's last token; s and a are encoded by separate passes (one
 * batch); Q_k = MLP_k([e_s; e_a]) and V_k = MLP_k'(e_s), k = 1, 2, each 2
 * hidden ReLU layers of the encoder's width, with one output (critic_head
 * mse, squared errors as the paper) or a categorical distribution over
 * `bins` (hl_gauss, two_hot: cross-entropy against each scalar target's
 * projection, the value its expectation); a target copy of everything,
 * Polyak tau.
 *
 * One step() is one iteration: `envs` trajectories collected with the
 * current policy into a FIFO replay buffer; `critic_steps` critic updates,
 * each over `grad_accum` minibatches of `batch` transitions drawn uniformly
 * (gradients summed, then clipped at max_grad_norm, one Adam step, one
 * Polyak update): L = sum_k mean (Q_k(s,a) - y_k)^2 + sum_k mean (V_k(s) -
 * Qbar_k(s, a^))^2, y_k = r + gamma (1 - d) Vbar_k(s'), a^ freshly sampled;
 * after `warmup` iterations, `actor_steps` actor updates alike with L_pi =
 * -mean A log pi(a^|s), A = min Q(s, a^) - min V(s) from the current
 * critic. Evaluation every eval_every iterations plays every hidden state
 * of the game greedily (the exact value of the greedy policy) and
 * eval_samples times sampled from an evaluation stream of its own (the
 * sampling policy's value up to Monte-Carlo error), and reports the
 * critic's V(s0) beside it. Rollout metrics: discounted and undiscounted
 * return, wins, turns, the share of turns the game answered "invalid";
 * perf/: utterances per second of collection, seconds of each phase.
 *
 * Baselines in the same loop (`method`): filtered_bc, online filtered BC
 * (no critic; each iteration's actor steps clone the buffer's transitions
 * of trajectories at or above the filter_percentile-th percentile of the
 * returns of the trajectories in it, -mean log pi(a|s)); chai, CHAI (the
 * policy stays the BC one; each turn samples `candidates` utterances and
 * plays the first with the largest min(Qbar1, Qbar2); the critic learns as
 * archer's); ppo, token-level PPO (on-policy: each iteration's utterances
 * as sampled, a value network of the critic's encoder with a head on the
 * state before each utterance token, GAE over each trajectory's tokens
 * with discount 1 inside an utterance and gamma between turns, the turn's
 * reward at its last token; ppo_epochs passes of clipped updates).
 *
 * The checkpoint holds both networks and the target with Adam's moments,
 * the replay buffer's text, the RNGs, the head's convention and the
 * counters; the games are reset at every iteration's start, so their state
 * between steps is nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/lathe.h"
#include "../../workbench/nn/lm.h"
#include "../../workbench/nn/nn.h"
#include "../textdata.h"

static const lathe_opt_t opts[] = {
    {"init_run", LATHE_INT, "0", 0, 4e9, NULL, "the policy's run (a BC warm start)"},
    {"method", LATHE_STR, "archer", 0, 0, "archer|filtered_bc|chai|ppo",
     "archer; online filtered BC; CHAI (frozen policy, best of `candidates` by the critic); "
     "token-level PPO"},
    {"ppo_epochs", LATHE_INT, "4", 1, 100, NULL, "ppo: passes over each iteration's utterances"},
    {"ppo_clip", LATHE_NUM, "0.2", 0, 10, NULL, "ppo: ratio and value clip"},
    {"gae_lambda", LATHE_NUM, "0.95", 0, 1, NULL, "ppo: GAE lambda over tokens"},
    {"vf_coef", LATHE_NUM, "0.5", 0, 100, NULL, "ppo: value loss coefficient"},
    {"candidates", LATHE_INT, "5", 1, 64, NULL, "chai: utterances sampled per turn"},
    {"filter_percentile", LATHE_NUM, "90", 0, 100, NULL,
     "filtered_bc: clone trajectories at or above this percentile of all returns so far"},
    {"game", LATHE_STR, "twentyq", 0, 0, NULL, "the text environment"},
    {"game_config", LATHE_STR, "", 0, 0, NULL, "its options, key=value,key=value"},
    {"iterations", LATHE_INT, "200", 1, 1e9, NULL, "iterations"},
    {"envs", LATHE_INT, "32", 1, 1024, NULL, "trajectories collected per iteration"},
    {"buffer", LATHE_INT, "100000", 1, 1e8, NULL, "replay capacity (transitions)"},
    {"batch", LATHE_INT, "8", 1, 4096, NULL, "minibatch"},
    {"grad_accum", LATHE_INT, "4", 1, 4096, NULL, "minibatches summed per update"},
    {"critic_steps", LATHE_INT, "10", 0, 1e6, NULL, "critic updates per iteration"},
    {"actor_steps", LATHE_INT, "3", 0, 1e6, NULL, "actor updates per iteration"},
    {"warmup", LATHE_INT, "5", 0, 1e9, NULL, "iterations of critic updates only"},
    {"critic_lr", LATHE_NUM, "1e-3", 0, 1, NULL, "critic Adam learning rate"},
    {"actor_lr", LATHE_NUM, "1e-4", 0, 1, NULL, "policy Adam learning rate"},
    {"gamma", LATHE_NUM, "0.95", 0, 1, NULL, "discount"},
    {"tau", LATHE_NUM, "0.1", 0, 1, NULL, "Polyak rate of the target critic"},
    {"max_grad_norm", LATHE_NUM, "1", 0, 1e6, NULL, "gradient-norm clip (0: off)"},
    {"max_new", LATHE_INT, "16", 1, 256, NULL, "tokens an utterance may take"},
    {"critic_init", LATHE_STR, "scratch", 0, 0, "scratch|policy",
     "the critic's encoder: from scratch (critic_layers, critic_width), or a copy of the "
     "policy's GPT (its layers and width; the paper's encoder is pretrained too)"},
    {"critic_layers", LATHE_INT, "1", 1, 16, NULL, "critic encoder layers (scratch)"},
    {"critic_head", LATHE_STR, "mse", 0, 0, "mse|hl_gauss|two_hot",
     "the Q and V heads: a scalar with squared error (the paper's), or a categorical "
     "distribution trained by cross-entropy (HL-Gauss, two-hot)"},
    {"bins", LATHE_INT, "51", 2, 512, NULL, "bins of a categorical head"},
    {"v_min", LATHE_NUM, "-20", -1e9, 1e9, NULL, "lower end of the value support"},
    {"v_max", LATHE_NUM, "1", -1e9, 1e9, NULL, "upper end of the value support"},
    {"sigma_ratio", LATHE_NUM, "0.75", 1e-6, 100, NULL, "hl_gauss: sigma / bin width"},
    {"critic_width", LATHE_INT, "64", 8, 1024, NULL, "critic encoder width (scratch)"},
    {"eval_every", LATHE_INT, "10", 1, 1e9, NULL, "iterations between evaluations"},
    {"eval_samples", LATHE_INT, "8", 1, 1000, NULL,
     "sampled evaluation: episodes per hidden state (greedy plays each once)"},
    {NULL}};

typedef struct {
  char *s, *a, *s2;
  float r, G;       /* reward; G: the trajectory's (undiscounted) return */
  uint64_t traj;    /* which trajectory (a counter) */
  uint8_t d, first; /* done; the trajectory's first transition */
} tr_t;

enum { M_ARCHER, M_FBC, M_CHAI, M_PPO };

#define AR_MAX_TURNS 256 /* turns of one episode archer keeps track of */
#define AR_SHARDS    2   /* sampling shards: the streams do not depend on --threads */

/* ppo: one utterance of this iteration's rollout, as sampled: the prompt's
 * and the utterance's ids, per-token old log-probabilities, old values,
 * advantages and returns; last: the trajectory's last turn. */
typedef struct {
  int *ids, plen, olen, last;
  float r;
  float *lp, *v, *adv, *ret;
} ro_t;

typedef struct {
  nn_gpt_t enc;
  nn_mlp_t q[2], v[2];
  const float *raw[4]; /* the heads' outputs of the last heads() (Q1 Q2 V1 V2; the MLPs') */
} critic_t;

typedef struct {
  /* configuration */
  int method, K, E, B, accum, critic_steps, actor_steps, max_new, C, eval_samples;
  double pct;
  int64_t iters, warmup, eval_every, cap;
  double clr, alr, gamma, tau, clip;
  const lathe_plugin_t *gp;
  void *game[1024];
  int64_t hidden; /* the game's hidden states (set_hidden), 0 if not enumerable */
  nn_tok_t tok;
  nn_head_t hd; /* the Q and V heads' convention (mse: one output) */
  nn_gpt_t pol;
  critic_t cr, tg;
  nn_mlp_t vh; /* ppo: the value head on the critic encoder's states */
  nn_adamw_t copt, aopt;
  int ppo_epochs;
  double ppo_clip, lam, vf;
  nn_rng_t *draw; /* the streams act() samples from when set (evaluation), else srng */
  ro_t *ro;       /* ppo: this iteration's utterances, in trajectory order */
  int nro;
  /* state */
  nn_rng_t rng, srng[AR_SHARDS]; /* minibatches and games; each sampling shard's stream */
  int64_t iter, n, head;         /* replay: n transitions, ring head */
  uint64_t ntraj;                /* trajectories begun */
  tr_t *rb;
  /* scratch */
  int *ids, *len, *out, *olen;
  float *lp, *dlp;
} ar_t;

static void tr_free(tr_t *t) {
  free(t->s), free(t->a), free(t->s2);
  memset(t, 0, sizeof *t);
}

static void critic_free(critic_t *c) {
  nn_gpt_free(&c->enc);
  for (int k = 0; k < 2; k++) nn_mlp_free(&c->q[k]), nn_mlp_free(&c->v[k]);
}

static void ro_clear(ar_t *p) {
  for (int i = 0; p->ro && i < p->nro; i++)
    free(p->ro[i].ids), free(p->ro[i].lp), free(p->ro[i].v), free(p->ro[i].adv), free(p->ro[i].ret);
  free(p->ro);
  p->ro = NULL, p->nro = 0;
}

static void destroy(void *self) {
  ar_t *p = self;
  if (!p) return;
  ro_clear(p), nn_mlp_free(&p->vh);
  for (int64_t i = 0; p->rb && i < p->cap; i++) tr_free(&p->rb[i]);
  free(p->rb);
  nn_tok_free(&p->tok), nn_gpt_free(&p->pol), critic_free(&p->cr), critic_free(&p->tg);
  free(p->ids), free(p->len), free(p->out), free(p->olen), free(p->lp), free(p->dlp);
  free(p); /* the games are the host's */
}

/* The critic's parameter sets: the encoder, Q1, Q2, V1, V2. */
static nn_params_t *cset(critic_t *c, int k) {
  return k == 0 ? &c->enc.params : k < 3 ? &c->q[k - 1].params : &c->v[k - 3].params;
}

/* The critic: an encoder of configuration gc and the four heads of K
 * outputs each. */
static int critic_init(critic_t *c, nn_gpt_config_t gc, int K, nn_rng_t *r) {
  int C = gc.width;
  if (nn_gpt_init(&c->enc, gc, r)) return LATHE_ENOMEM;
  for (int k = 0; k < 2; k++)
    if (nn_mlp_init(&c->q[k], k ? "q2" : "q1", 3, (int[]){2 * C, C, C, K}, NN_RELU, 0, r) ||
        nn_mlp_init(&c->v[k], k ? "v2" : "v1", 3, (int[]){C, C, C, K}, NN_RELU, 0, r))
      return LATHE_ENOMEM;
  return 0;
}

/* Encode text into at most `max` ids, keeping its end (the latest turns). */
static int encode_tail(const nn_tok_t *t, const char *s, int *ids, int max) {
  int n = nn_tok_encode(t, s, strlen(s), NULL, 0);
  if (n <= max) return nn_tok_encode(t, s, strlen(s), ids, max);
  int *all = malloc((size_t)n * sizeof *all);
  if (!all) return -1;
  nn_tok_encode(t, s, strlen(s), all, n);
  memcpy(ids, all + (n - max), (size_t)max * sizeof *ids);
  free(all);
  return max;
}

/* Encoder states e(n, C) of texts[0..n): the final hidden state at each
 * text's last token (texts right-padded into one batch). The forward's
 * activations stay in g for enc_backward. */
static int enc_forward(ar_t *p, nn_gpt_t *g, char *const *texts, int n, float *e) {
  int ctx = g->cfg.ctx, T = 1;
  if (n < 1 || n > 65536) return LATHE_ESHAPE;
  for (int i = 0; i < n; i++) {
    int k = encode_tail(&p->tok, texts[i], p->ids + (size_t)i * ctx, ctx);
    if (k < 0) return LATHE_ENOMEM;
    p->len[i] = k < 1 ? 1 : k;
    if (k < 1) p->ids[(size_t)i * ctx] = NN_TOK_PAD;
    T = p->len[i] > T ? p->len[i] : T;
  }
  if (n < 1) return LATHE_ESHAPE;
  int *tok = calloc((size_t)n * (size_t)T, sizeof *tok);
  if (!tok) return LATHE_ENOMEM;
  for (int i = 0; i < n; i++)
    for (int t = 0; t < T; t++)
      tok[(size_t)i * T + t] = t < p->len[i] ? p->ids[(size_t)i * ctx + t] : NN_TOK_PAD;
  const float *h = nn_gpt_hidden(g, tok, n, T);
  free(tok);
  if (!h) return LATHE_ENOMEM;
  for (int i = 0; i < n; i++)
    memcpy(e + (size_t)i * p->C, h + ((size_t)i * T + p->len[i] - 1) * p->C, p->C * sizeof *e);
  return 0;
}

/* Backward of enc_forward from de(n, C). */
static int enc_backward(ar_t *p, nn_gpt_t *g, const float *de, int n) {
  int T = g->T;
  float *d = calloc((size_t)n * T * p->C, sizeof *d);
  if (!d) return LATHE_ENOMEM;
  for (int i = 0; i < n; i++)
    memcpy(d + ((size_t)i * T + p->len[i] - 1) * p->C, de + (size_t)i * p->C, p->C * sizeof *d);
  nn_gpt_backward_hidden(g, d);
  free(d);
  return 0;
}

/* Q_k(s, a) and V_k(s) of a batch from encoder states es, ea (n, C): the
 * values (a categorical head's expectation) into those of q1 q2 v1 v2 that
 * are not NULL, the raw outputs kept in c->raw. */
static void heads(const nn_head_t *hd, critic_t *c, const float *es, const float *ea, int n, int C,
                  float *q1, float *q2, float *v1, float *v2, float *cat) {
  for (int i = 0; i < n; i++) {
    memcpy(cat + (size_t)i * 2 * C, es + (size_t)i * C, C * sizeof *cat);
    memcpy(cat + (size_t)i * 2 * C + C, ea + (size_t)i * C, C * sizeof *cat);
  }
  float *o[4] = {q1, q2, v1, v2};
  for (int k = 0; k < 4; k++) {
    if (!o[k]) continue;
    const float *y = k < 2 ? nn_mlp_forward(&c->q[k], cat, n) : nn_mlp_forward(&c->v[k - 2], es, n);
    c->raw[k] = y;
    for (int i = 0; i < n; i++)
      o[k][i] = hd->bins > 1 ? nn_head_decode(hd, y + (size_t)i * hd->bins) : y[i];
  }
}

/* Sample (or greedily decode) an utterance for each of n dialogues. */
static int act(ar_t *p, char *const *dialogue, int n, int greedy, char **utt) {
  if (n < 1 || n > 65536) return LATHE_ESHAPE;
  int ctx = p->pol.cfg.ctx, room = ctx - p->max_new;
  for (int i = 0; i < n; i++) {
    int k = encode_tail(&p->tok, dialogue[i], p->ids + (size_t)i * ctx, room);
    if (k < 1) return LATHE_ENOMEM;
    p->len[i] = k;
  }
  static const int stop[1] = {NN_TOK_EOS};
  nn_gen_t o = {greedy ? 0.0f : 1.0f, 0, 1.0f, stop, 1, 0};
  int rc = nn_lm_generate_sharded(&p->pol, p->ids, p->len, n, ctx, p->max_new, &o,
                                  p->draw ? p->draw : p->srng, AR_SHARDS, nn_get_threads(), p->out,
                                  p->olen, NULL);
  if (rc) return rc;
  for (int i = 0; i < n; i++) {
    size_t cap = (size_t)p->olen[i] * 16 + 1;
    free(utt[i]);
    if (!(utt[i] = malloc(cap))) return LATHE_ENOMEM;
    nn_tok_decode(&p->tok, p->out + (size_t)i * p->max_new, p->olen[i], utt[i], cap);
  }
  return 0;
}

/* Append a transition of trajectory traj (the buffer owns the strings). */
static int push(ar_t *p, const char *s, const char *a, float r, const char *s2, int d,
                uint64_t traj, int first) {
  tr_t *t = &p->rb[p->head];
  tr_free(t);
  t->s = strdup(s), t->a = strdup(a), t->s2 = strdup(s2), t->r = r, t->d = (uint8_t)d;
  t->traj = traj, t->first = (uint8_t)first, t->G = 0;
  if (!t->s || !t->a || !t->s2) return LATHE_ENOMEM;
  p->head = (p->head + 1) % p->cap;
  if (p->n < p->cap) p->n++;
  return 0;
}

/* The utterance each of n dialogues gets: archer and filtered BC sample
 * the policy (greedy: decode greedily); CHAI samples `candidates` and
 * keeps the first with the largest min(Qbar1, Qbar2) of the target critic. */
static int choose(ar_t *p, char *const *dlg, int n, int greedy, char **utt) {
  if (n < 1 || n > 65536) return LATHE_ESHAPE;
  if (p->method != M_CHAI) return act(p, dlg, n, greedy, utt);
  int K = p->K, C = p->C, rc = 0;
  char **rep = calloc((size_t)2 * n * K, sizeof *rep), **cand = calloc((size_t)n * K, sizeof *cand);
  float *e = malloc((size_t)2 * n * K * C * sizeof *e),
        *cat = malloc((size_t)n * K * 2 * C * sizeof *cat);
  float *q = malloc((size_t)2 * n * K * sizeof *q);
  double sc[64];
  if (!rep || !cand || !e || !cat || !q) rc = LATHE_ENOMEM;
  for (int i = 0; i < n * K && !rc; i++) rep[i] = dlg[i / K];
  if (!rc) rc = act(p, rep, n * K, 0, cand);
  for (int i = 0; i < n * K && !rc; i++) rep[n * K + i] = cand[i];
  if (!rc) rc = enc_forward(p, &p->tg.enc, rep, 2 * n * K, e);
  if (!rc) heads(&p->hd, &p->tg, e, e + (size_t)n * K * C, n * K, C, q, q + n * K, NULL, NULL, cat);
  for (int j = 0; j < n && !rc; j++) {
    for (int k = 0; k < K; k++) sc[k] = fmin(q[j * K + k], q[n * K + j * K + k]);
    int best = nn_argmax_first(sc, K);
    free(utt[j]);
    if (!(utt[j] = strdup(cand[j * K + best]))) rc = LATHE_ENOMEM;
  }
  for (int i = 0; cand && i < n * K; i++) free(cand[i]);
  free(rep), free(cand), free(e), free(cat), free(q);
  return rc;
}

/* What one collection did: means over its trajectories, and its counts. */
typedef struct {
  double ret, uret, win, turns; /* discounted and undiscounted return, wins, turns */
  double invalid;               /* share of turns the game answered "invalid" */
  int64_t utterances;
} roll_t;

/* Did the game answer the turn that ended dialogue o "invalid" (lathe.h's
 * convention for a malformed utterance)? */
static int answered_invalid(const char *o) {
  size_t n = strlen(o);
  return n >= 9 && !memcmp(o + n - 9, " invalid\n", 9);
}

/* One trajectory per game with the acting policy; transitions into the
 * buffer, each marked with its trajectory's return once it ends; what
 * happened into *st. */
static int collect(ar_t *p, const lathe_host_t *h, lathe_ctx_t *c, roll_t *st) {
  int E = p->E, rc = 0, live = E;
  char **dlg = calloc((size_t)E, sizeof *dlg), **sub = calloc((size_t)E, sizeof *sub);
  char **su = calloc((size_t)E, sizeof *su);
  int *alive = malloc((size_t)E * sizeof *alive), *idx = malloc((size_t)E * sizeof *idx);
  int *nt = calloc((size_t)E, sizeof *nt);
  double *disc = malloc((size_t)E * sizeof *disc), *G = calloc((size_t)E, sizeof *G);
  int64_t *at = malloc((size_t)E * AR_MAX_TURNS * sizeof *at); /* each trajectory's slots */
  uint64_t *traj = malloc((size_t)E * sizeof *traj);
  ro_t *ro =
      p->method == M_PPO ? calloc((size_t)E * AR_MAX_TURNS, sizeof *ro) : NULL; /* per game */
  if (p->method == M_PPO && !ro) rc = LATHE_ENOMEM;
  memset(st, 0, sizeof *st);
  if (!dlg || !sub || !su || !alive || !idx || !nt || !disc || !G || !at || !traj)
    rc = LATHE_ENOMEM;
  for (int e = 0; e < E && !rc; e++) {
    const char *o;
    if ((rc = p->gp->textenv->reset(p->game[e], h, c, nn_rng_u64(&p->rng) >> 1, &o))) break;
    if (!(dlg[e] = strdup(o))) rc = LATHE_ENOMEM;
    alive[e] = 1, disc[e] = 1, traj[e] = p->ntraj++;
  }
  while (!rc && live) {
    int m = 0;
    for (int e = 0; e < E; e++)
      if (alive[e]) idx[m] = e, sub[m++] = dlg[e];
    if ((rc = choose(p, sub, m, 0, su))) break;
    for (int j = 0; j < m && !rc; j++) {
      int e = idx[j], term, trunc;
      const char *o;
      double r;
      rc = p->gp->textenv->step(p->game[e], h, c, su[j], strlen(su[j]), &o, &r, &term, &trunc);
      if (rc) break;
      st->ret += disc[e] * r / E, st->uret += r / E, disc[e] *= p->gamma, G[e] += r;
      st->turns += 1.0 / E, st->invalid += answered_invalid(o), st->utterances++;
      if (nt[e] == AR_MAX_TURNS) {
        rc = h->fail(c, LATHE_EPLUGIN, "archer: an episode of '%s' went past %d turns", p->gp->name,
                     AR_MAX_TURNS);
        break;
      }
      if (ro) { /* the utterance as sampled, for ppo */
        ro_t *u = &ro[(size_t)e * AR_MAX_TURNS + nt[e]];
        int ctx = p->pol.cfg.ctx;
        u->plen = p->len[j], u->olen = p->olen[j], u->r = (float)r, u->last = term || trunc;
        if (!(u->ids = malloc((size_t)(u->plen + u->olen + 1) * sizeof *u->ids))) rc = LATHE_ENOMEM;
        if (rc) break;
        memcpy(u->ids, p->ids + (size_t)j * ctx, (size_t)u->plen * sizeof *u->ids);
        memcpy(u->ids + u->plen, p->out + (size_t)j * p->max_new, (size_t)u->olen * sizeof *u->ids);
      }
      at[(size_t)e * AR_MAX_TURNS + nt[e]++] = p->head;
      if ((rc = push(p, dlg[e], su[j], (float)r, o, term, traj[e], nt[e] == 1))) break;
      free(dlg[e]);
      if (!(dlg[e] = strdup(o))) rc = LATHE_ENOMEM;
      if (term || trunc) {
        alive[e] = 0, live--, st->win += (double)term / E;
        for (int k = 0; k < nt[e]; k++) { /* slots another trajectory took since keep theirs */
          tr_t *t = &p->rb[at[(size_t)e * AR_MAX_TURNS + k]];
          if (t->traj == traj[e]) t->G = (float)G[e];
        }
      }
    }
  }
  if (ro) { /* ppo: the utterances, trajectory by trajectory */
    ro_clear(p);
    int n = 0;
    for (int e = 0; e < E; e++) n += nt[e];
    if (!rc && !(p->ro = calloc((size_t)n + 1, sizeof *p->ro))) rc = LATHE_ENOMEM;
    for (int e = 0; e < E; e++)
      for (int k = 0; k < nt[e]; k++) {
        ro_t *u = &ro[(size_t)e * AR_MAX_TURNS + k];
        if (!rc && u->ids) p->ro[p->nro++] = *u, u->ids = NULL; /* (an utterance has >= 1 id) */
        free(u->ids);
      }
    free(ro);
  }
  for (int e = 0; dlg && e < E; e++) free(dlg[e]), free(su ? su[e] : NULL);
  free(dlg), free(sub), free(su), free(alive), free(idx), free(nt), free(disc), free(G), free(at);
  free(traj);
  if (st->utterances) st->invalid /= (double)st->utterances;
  return rc == LATHE_ENOMEM ? h->fail(c, rc, "archer: out of memory while collecting") : rc;
}

/* Filtered BC: the buffer's transitions whose trajectory returned at least
 * the pct-th percentile (numpy's linear interpolation) of the returns of
 * the trajectories that begin in it; their count into *n (indices into
 * idx), the threshold into *thr. */
static int eligible(ar_t *p, int64_t *idx, int64_t *n, double *thr) {
  int64_t m = 0, k = 0;
  double *g = malloc((size_t)p->n * sizeof *g);
  if (!g) return LATHE_ENOMEM;
  for (int64_t i = 0; i < p->n; i++)
    if (p->rb[i].first) g[m++] = p->rb[i].G;
  for (int64_t i = 1; i < m; i++) /* insertion sort: once an iteration */
    for (int64_t j = i; j > 0 && g[j - 1] > g[j]; j--) {
      double t = g[j];
      g[j] = g[j - 1], g[j - 1] = t;
    }
  double pos = p->pct / 100.0 * (double)(m - 1), f = floor(pos);
  *thr =
      m ? g[(int64_t)f] + (pos - f) * (m > (int64_t)f + 1 ? g[(int64_t)f + 1] - g[(int64_t)f] : 0)
        : 0.0;
  free(g);
  for (int64_t i = 0; i < p->n; i++)
    if (p->rb[i].G >= *thr - 1e-9) idx[k++] = i;
  *n = k;
  return 0;
}

/* One filtered-BC minibatch: -mean log pi(a|s) over transitions ix. */
static int bc_batch(ar_t *p, const int64_t *ix, int B, double *loss) {
  if (B < 1 || B > 4096) return LATHE_ESHAPE;
  int ctx = p->pol.cfg.ctx, T = 1, rc = 0;
  int *tok = calloc((size_t)B * ctx, sizeof *tok), *pl = malloc((size_t)B * sizeof *pl);
  int *al = malloc((size_t)B * sizeof *al), *aid = malloc((size_t)B * p->max_new * sizeof *aid);
  float *mask = calloc((size_t)B * ctx, sizeof *mask);
  if (!tok || !pl || !al || !aid || !mask) rc = LATHE_ENOMEM;
  for (int i = 0; i < B && !rc; i++) { /* the utterance as its ids and <eos>, cut to max_new */
    const char *a = p->rb[ix[i]].a;
    int k = nn_tok_encode(&p->tok, a, strlen(a), aid + (size_t)i * p->max_new, p->max_new - 1);
    al[i] = (k < p->max_new - 1 ? k : p->max_new - 1) + 1;
    aid[(size_t)i * p->max_new + al[i] - 1] = NN_TOK_EOS;
    if ((pl[i] = encode_tail(&p->tok, p->rb[ix[i]].s, p->ids + (size_t)i * ctx, ctx - p->max_new)) <
        1)
      rc = LATHE_ENOMEM;
    T = pl[i] + al[i] > T ? pl[i] + al[i] : T;
  }
  for (int i = 0; i < B && !rc; i++)
    for (int t = 0; t < T; t++) {
      tok[(size_t)i * T + t] = t < pl[i]           ? p->ids[(size_t)i * ctx + t]
                               : t < pl[i] + al[i] ? aid[(size_t)i * p->max_new + t - pl[i]]
                                                   : NN_TOK_PAD;
      mask[(size_t)i * T + t] = t >= pl[i] && t < pl[i] + al[i];
    }
  if (!rc) {
    nn_gpt_logprobs(&p->pol, p->lp, tok, mask, B, T);
    for (int i = 0; i < B; i++) *loss -= p->lp[i] / B, p->dlp[i] = -1.0f / B;
    nn_gpt_logprobs_backward(&p->pol, p->dlp, mask);
  }
  free(tok), free(pl), free(al), free(aid), free(mask);
  return rc;
}

/* ppo: utterances ix[0..n) as one right-padded batch tok(n, T); *T. */
static int *ro_batch(ar_t *p, const int *ix, int n, int *T) {
  if (n < 1 || n > 4096) return NULL;
  int t = 1;
  for (int i = 0; i < n; i++)
    t = p->ro[ix[i]].plen + p->ro[ix[i]].olen > t ? p->ro[ix[i]].plen + p->ro[ix[i]].olen : t;
  int *tok = malloc((size_t)n * t * sizeof *tok);
  if (!tok) return NULL;
  for (int i = 0; i < n; i++) {
    const ro_t *u = &p->ro[ix[i]];
    for (int k = 0; k < t; k++)
      tok[(size_t)i * t + k] = k < u->plen + u->olen ? u->ids[k] : NN_TOK_PAD;
  }
  *T = t;
  return tok;
}

/* ppo: the value of every utterance token's state (the prefix before it)
 * for utterances ix, through the value network (critic encoder + head):
 * into v (concatenated, utterance by utterance). Keeps the activations. */
static int ro_values(ar_t *p, const int *ix, int n, const int *tok, int T, float *v) {
  if (n < 1 || n > 4096) return LATHE_ESHAPE;
  int C = p->C, rows = 0;
  const float *hs = nn_gpt_hidden(&p->cr.enc, tok, n, T);
  if (!hs) return LATHE_ENOMEM;
  for (int i = 0; i < n; i++) rows += p->ro[ix[i]].olen;
  float *x = malloc((size_t)rows * C * sizeof *x);
  if (!x) return LATHE_ENOMEM;
  for (int i = 0, r = 0; i < n; i++)
    for (int j = 0; j < p->ro[ix[i]].olen; j++, r++)
      memcpy(x + (size_t)r * C, hs + ((size_t)i * T + p->ro[ix[i]].plen + j - 1) * C,
             C * sizeof *x);
  const float *y = nn_mlp_forward(&p->vh, x, rows);
  free(x);
  if (!y) return LATHE_ENOMEM;
  memcpy(v, y, (size_t)rows * sizeof *v);
  return 0;
}

/* ppo: old log-probabilities and values of every utterance token, then GAE
 * over each trajectory's tokens (discount 1 inside an utterance, gamma
 * between turns, the turn's reward at its last token, nothing after the
 * last turn). */
static int ppo_prepare(ar_t *p) {
  int B = p->B, rc = 0;
  for (int i0 = 0; i0 < p->nro && !rc; i0 += B) {
    int n = p->nro - i0 < B ? p->nro - i0 : B, ix[4096], T, tot = 0;
    for (int i = 0; i < n; i++) ix[i] = i0 + i, tot += p->ro[i0 + i].olen;
    int *tok = ro_batch(p, ix, n, &T);
    float *lp = tok ? malloc((size_t)n * T * sizeof *lp) : NULL,
          *v = malloc((size_t)tot * sizeof *v);
    if (!tok || !lp || !v || nn_gpt_token_logprobs(&p->pol, tok, n, T, lp) ||
        ro_values(p, ix, n, tok, T, v))
      rc = LATHE_ENOMEM;
    for (int i = 0, r = 0; i < n && !rc; i++) {
      ro_t *u = &p->ro[i0 + i];
      size_t m = (size_t)u->olen;
      u->lp = malloc(m * sizeof *u->lp), u->v = malloc(m * sizeof *u->v);
      u->adv = malloc(m * sizeof *u->adv), u->ret = malloc(m * sizeof *u->ret);
      if (!u->lp || !u->v || !u->adv || !u->ret) {
        rc = LATHE_ENOMEM;
        break;
      }
      for (int j = 0; j < u->olen; j++, r++)
        u->lp[j] = lp[(size_t)i * T + u->plen + j], u->v[j] = v[r];
    }
    free(tok), free(lp), free(v);
  }
  double last = 0, vnext = 0;
  for (int k = p->nro - 1; k >= 0 && !rc; k--) { /* backwards through the trajectories */
    ro_t *u = &p->ro[k];
    if (u->last) last = 0, vnext = 0;
    for (int j = u->olen - 1; j >= 0; j--) {
      int end = j == u->olen - 1;
      double g = end ? p->gamma : 1.0, r = end ? u->r : 0.0;
      if (end && u->last) g = 0.0;
      double delta = r + g * vnext - u->v[j];
      last = delta + g * p->lam * last;
      u->adv[j] = (float)last, u->ret[j] = (float)(last + u->v[j]), vnext = u->v[j];
    }
  }
  return rc;
}

/* ppo: one minibatch of utterances ix: the clipped objective per token
 * (advantages normalised over the minibatch's tokens) into the policy's
 * gradients, vf_coef times the halved clipped value error into the value
 * network's; the losses added to *pl and *vl. */
static int ppo_batch(ar_t *p, const int *ix, int n, double *pl, double *vl) {
  if (n < 1 || n > 4096) return LATHE_ESHAPE;
  int T, rc = 0, tot = 0;
  for (int i = 0; i < n; i++) tot += p->ro[ix[i]].olen;
  int *tok = ro_batch(p, ix, n, &T);
  float *lp = tok ? malloc((size_t)n * T * sizeof *lp) : NULL,
        *w = calloc((size_t)n * T, sizeof *w);
  float *v = malloc((size_t)tot * sizeof *v), *dv = malloc((size_t)tot * sizeof *dv);
  float *ones = malloc((size_t)n * sizeof *ones), *dh = NULL;
  if (!tok || !lp || !w || !v || !dv || !ones || nn_gpt_token_logprobs(&p->pol, tok, n, T, lp)) {
    rc = LATHE_ENOMEM;
    goto out;
  }
  double am = 0, as = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < p->ro[ix[i]].olen; j++) am += p->ro[ix[i]].adv[j] / tot;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < p->ro[ix[i]].olen; j++) as += pow(p->ro[ix[i]].adv[j] - am, 2);
  as = tot > 1 ? sqrt(as / (tot - 1)) : 0.0;
  for (int i = 0; i < n; i++) {
    const ro_t *u = &p->ro[ix[i]];
    ones[i] = 1.0f;
    for (int j = 0; j < u->olen; j++) {
      double g, A = (u->adv[j] - am) / (as + 1e-8);
      *pl += nn_pg_ppo_token(lp[(size_t)i * T + u->plen + j], u->lp[j], 0, A, p->ppo_clip, 0, &g) /
             tot;
      w[(size_t)i * T + u->plen + j] = (float)(g / tot);
    }
  }
  nn_gpt_logprobs_backward(&p->pol, ones, w);
  if ((rc = ro_values(p, ix, n, tok, T, v))) goto out;
  for (int i = 0, r = 0; i < n; i++) { /* the clipped value loss, as CleanRL's */
    const ro_t *u = &p->ro[ix[i]];
    for (int j = 0; j < u->olen; j++, r++) {
      double d = v[r] - u->ret[j],
             vc = u->v[j] + fmin(fmax(v[r] - u->v[j], -p->ppo_clip), p->ppo_clip);
      double dc = vc - u->ret[j], l = d * d, gr = d;
      if (dc * dc > l) l = dc * dc, gr = fabs(v[r] - u->v[j]) < p->ppo_clip ? dc : 0.0;
      *vl += 0.5 * l / tot;
      dv[r] = (float)(p->vf * gr / tot);
    }
  }
  int C = p->C;
  float *dx = calloc((size_t)tot * C, sizeof *dx);
  dh = calloc((size_t)n * T * C, sizeof *dh);
  if (!dx || !dh) {
    free(dx);
    rc = LATHE_ENOMEM;
    goto out;
  }
  nn_mlp_backward(&p->vh, dv, dx);
  for (int i = 0, r = 0; i < n; i++)
    for (int j = 0; j < p->ro[ix[i]].olen; j++, r++)
      memcpy(dh + ((size_t)i * T + p->ro[ix[i]].plen + j - 1) * C, dx + (size_t)r * C,
             C * sizeof *dh);
  nn_gpt_backward_hidden(&p->cr.enc, dh);
  free(dx);
out:
  free(tok), free(lp), free(w), free(v), free(dv), free(ones), free(dh);
  return rc;
}

/* One critic minibatch of B transitions ix: gradients accumulate. */
static int critic_batch(ar_t *p, const int64_t *ix, int B, double *loss) {
  if (B < 1 || B > 4096) return LATHE_ESHAPE;
  int C = p->C, rc;
  char **txt = calloc((size_t)2 * B, sizeof *txt), **ah = calloc((size_t)B, sizeof *ah);
  float *f = malloc((size_t)B * (4 * 2 * C + 16) * sizeof *f);
  if (!txt || !ah || !f) {
    free(txt), free(ah), free(f);
    return LATHE_ENOMEM;
  }
  float *es = f, *ea = es + (size_t)B * C, *cat = ea + (size_t)B * C, *q1 = cat + (size_t)B * 2 * C;
  float *q2 = q1 + B, *v1 = q2 + B, *v2 = v1 + B, *y1 = v2 + B, *y2 = y1 + B, *z1 = y2 + B;
  float *z2 = z1 + B, *d1 = z2 + B, *d2 = d1 + B;
  /* targets: y_k = r + gamma (1 - d) Vbar_k(s'); z_k = Qbar_k(s, a^), a^ ~ pi(s) */
  for (int i = 0; i < B; i++) txt[i] = p->rb[ix[i]].s2;
  if ((rc = enc_forward(p, &p->tg.enc, txt, B, es))) goto out;
  heads(&p->hd, &p->tg, es, es, B, C, NULL, NULL, y1, y2, cat);
  for (int i = 0; i < B; i++) {
    y1[i] = (float)nn_archer_target(p->rb[ix[i]].r, p->rb[ix[i]].d, p->gamma, y1[i]);
    y2[i] = (float)nn_archer_target(p->rb[ix[i]].r, p->rb[ix[i]].d, p->gamma, y2[i]);
    txt[i] = p->rb[ix[i]].s;
  }
  if ((rc = act(p, txt, B, 0, ah))) goto out;
  for (int i = 0; i < B; i++) txt[B + i] = ah[i];
  /* es and ea are contiguous: 2B rows, the states then the utterances */
  if ((rc = enc_forward(p, &p->tg.enc, txt, 2 * B, es))) goto out;
  heads(&p->hd, &p->tg, es, es + (size_t)B * C, B, C, z1, z2, NULL, NULL, cat);
  /* the current critic on (s, a) */
  for (int i = 0; i < B; i++) txt[B + i] = p->rb[ix[i]].a;
  if ((rc = enc_forward(p, &p->cr.enc, txt, 2 * B, es))) goto out;
  heads(&p->hd, &p->cr, es, es + (size_t)B * C, B, C, q1, q2, v1, v2, cat);
  int K = p->hd.bins;
  float *dcat = calloc((size_t)B * 2 * C, sizeof *dcat),
        *de = calloc((size_t)2 * B * C, sizeof *de);
  float *pt = K > 1 ? malloc((size_t)B * K * sizeof *pt) : NULL,
        *dk = K > 1 ? malloc((size_t)4 * B * K * sizeof *dk) : NULL;
  if (!dcat || !de || (K > 1 && (!pt || !dk))) {
    free(dcat), free(de), free(pt), free(dk);
    rc = LATHE_ENOMEM;
    goto out;
  }
  float *dq[4] = {d1, d2, d1, d2}, *yk[4] = {y1, y2, z1, z2};
  if (K <= 1) { /* the paper's: squared errors */
    *loss += nn_archer_pair_mse(q1, q2, y1, y2, B, d1, d2);
    for (int k = 0; k < 2; k++) nn_mlp_backward(&p->cr.q[k], dq[k], dcat);
  } else { /* cross-entropy against each scalar target's categorical projection */
    for (int k = 0; k < 4; k++) {
      for (int i = 0; i < B; i++) nn_head_target(&p->hd, yk[k][i], pt + (size_t)i * K);
      dq[k] = dk + (size_t)k * B * K;
      *loss += nn_head_loss(&p->hd, p->cr.raw[k], pt, B, dq[k]);
    }
    for (int k = 0; k < 2; k++) nn_mlp_backward(&p->cr.q[k], dq[k], dcat);
  }
  for (int i = 0; i < B; i++)
    for (int j = 0; j < C; j++)
      de[(size_t)i * C + j] += dcat[(size_t)i * 2 * C + j],
          de[(size_t)(B + i) * C + j] += dcat[(size_t)i * 2 * C + C + j];
  if (K <= 1) *loss += nn_archer_pair_mse(v1, v2, z1, z2, B, d1, d2);
  for (int k = 0; k < 2; k++) nn_mlp_backward(&p->cr.v[k], dq[2 + k], de);
  rc = enc_backward(p, &p->cr.enc, de, 2 * B);
  free(dcat), free(de), free(pt), free(dk);
out:
  for (int i = 0; i < B; i++) free(ah[i]);
  free(txt), free(ah), free(f);
  return rc;
}

/* One actor minibatch over states ix: a^ ~ pi(s), A from the current
 * critic, gradients of -mean A log pi(a^|s) accumulate into the policy. */
static int actor_batch(ar_t *p, const int64_t *ix, int B, double *adv_mean) {
  if (B < 1 || B > 4096) return LATHE_ESHAPE;
  int C = p->C, ctx = p->pol.cfg.ctx, rc = 0, T = 1;
  char **txt = calloc((size_t)2 * B, sizeof *txt), **ah = calloc((size_t)B, sizeof *ah);
  int *tok = malloc((size_t)B * ctx * sizeof *tok);
  float *mask = calloc((size_t)B * ctx, sizeof *mask),
        *f = malloc((size_t)B * (4 * C + 8) * sizeof *f);
  if (!txt || !ah || !tok || !mask || !f) {
    rc = LATHE_ENOMEM;
    goto out;
  }
  for (int i = 0; i < B; i++) txt[i] = p->rb[ix[i]].s;
  if ((rc = act(p, txt, B, 0, ah))) goto out;
  for (int i = 0; i < B; i++) T = p->len[i] + p->olen[i] > T ? p->len[i] + p->olen[i] : T;
  for (int i = 0; i < B; i++) /* dialogue ++ utterance, the utterance's tokens scored */
    for (int t = 0; t < T; t++) {
      int pl = p->len[i], ol = p->olen[i];
      tok[(size_t)i * T + t] = t < pl        ? p->ids[(size_t)i * ctx + t]
                               : t < pl + ol ? p->out[(size_t)i * p->max_new + t - pl]
                                             : NN_TOK_PAD;
      mask[(size_t)i * T + t] = t >= pl && t < pl + ol;
    }
  float *es = f, *cat = es + (size_t)2 * B * C, *q1 = cat + 0, *q2, *v1, *v2;
  (void)q1;
  for (int i = 0; i < B; i++) txt[B + i] = ah[i];
  if ((rc = enc_forward(p, &p->cr.enc, txt, 2 * B, es))) goto out;
  q1 = malloc((size_t)B * 4 * sizeof *q1);
  if (!q1) {
    rc = LATHE_ENOMEM;
    goto out;
  }
  q2 = q1 + B, v1 = q2 + B, v2 = v1 + B;
  heads(&p->hd, &p->cr, es, es + (size_t)B * C, B, C, q1, q2, v1, v2, cat);
  for (int i = 0; i < B; i++) {
    double A = nn_archer_advantage(q1[i], q2[i], v1[i], v2[i]);
    p->dlp[i] = (float)(-A / B), *adv_mean += A / B;
  }
  free(q1);
  nn_gpt_logprobs(&p->pol, p->lp, tok, mask, B, T);
  nn_gpt_logprobs_backward(&p->pol, p->dlp, mask);
out:
  for (int i = 0; ah && i < B; i++) free(ah[i]);
  free(txt), free(ah), free(tok), free(mask), free(f);
  return rc;
}

/* The policy played once on every hidden state, greedily or sampling
 * (from p->draw when set): its mean discounted return (for the greedy
 * policy its exact value) and its win rate. */
static int play_all(ar_t *p, const lathe_host_t *h, lathe_ctx_t *c, int greedy, double *ret,
                    double *win) {
  const lathe_textenv_t *t = p->gp->textenv;
  int64_t n = p->hidden;
  int E = p->E, rc = 0;
  char **dlg = calloc((size_t)E, sizeof *dlg), **su = calloc((size_t)E, sizeof *su);
  char **sub = calloc((size_t)E, sizeof *sub);
  int *idx = malloc((size_t)E * sizeof *idx), *alive = malloc((size_t)E * sizeof *alive);
  double *disc = malloc((size_t)E * sizeof *disc);
  *ret = *win = 0;
  if (!dlg || !su || !sub || !idx || !alive || !disc) rc = LATHE_ENOMEM;
  for (int64_t i0 = 0; i0 < n && !rc; i0 += E) {
    int m = (int)(n - i0 < E ? n - i0 : E), live = m;
    for (int e = 0; e < m && !rc; e++) {
      const char *o;
      int64_t cnt;
      if ((rc = t->set_hidden(p->game[e], h, c, i0 + e, &cnt, &o))) break;
      free(dlg[e]);
      if (!(dlg[e] = strdup(o))) rc = LATHE_ENOMEM;
      alive[e] = 1, disc[e] = 1;
    }
    while (!rc && live) {
      int k = 0;
      for (int e = 0; e < m; e++)
        if (alive[e]) idx[k] = e, sub[k++] = dlg[e];
      if ((rc = choose(p, sub, k, greedy, su))) break;
      for (int j = 0; j < k && !rc; j++) {
        int e = idx[j], term, trunc;
        const char *o;
        double r;
        if ((rc = t->step(p->game[e], h, c, su[j], strlen(su[j]), &o, &r, &term, &trunc))) break;
        *ret += disc[e] * r / n, disc[e] *= p->gamma;
        free(dlg[e]);
        if (!(dlg[e] = strdup(o))) rc = LATHE_ENOMEM;
        if (term || trunc) alive[e] = 0, live--, *win += (double)term / n;
      }
    }
  }
  for (int e = 0; dlg && e < E; e++) free(dlg[e]), free(su ? su[e] : NULL);
  free(dlg), free(su), free(sub), free(idx), free(alive), free(disc);
  return rc;
}

/* Every hidden state played greedily (the exact value of the greedy
 * policy: *ret, *win) and eval_samples times with sampling from fixed
 * streams of its own (*sret, *swin: an unbiased estimate of the sampling
 * policy's value that leaves the training streams alone); the critic's min
 * V(s0). */
static int evaluate(ar_t *p, const lathe_host_t *h, lathe_ctx_t *c, double *ret, double *win,
                    double *sret, double *swin, double *v0) {
  const lathe_textenv_t *t = p->gp->textenv;
  nn_rng_t er[AR_SHARDS];
  for (int s = 0; s < AR_SHARDS; s++) nn_rng_seed(&er[s], 0x65766131ULL + (uint64_t)s);
  int rc = play_all(p, h, c, 1, ret, win);
  p->draw = er;
  *sret = *swin = 0;
  for (int k = 0; k < p->eval_samples && !rc; k++) {
    double r, w;
    if (!(rc = play_all(p, h, c, 0, &r, &w)))
      *sret += r / p->eval_samples, *swin += w / p->eval_samples;
  }
  p->draw = NULL;
  if (!rc && (p->method == M_ARCHER || p->method == M_CHAI)) { /* V(s0) of the first dialogue */
    const char *o;
    float e0[1024], v1, v2, cat[2048];
    char *s0;
    rc = t->reset(p->game[0], h, c, 0, &o);
    s0 = rc ? NULL : strdup(o);
    if (!rc && !s0) rc = LATHE_ENOMEM;
    if (!rc && !(rc = enc_forward(p, &p->cr.enc, &s0, 1, e0))) {
      heads(&p->hd, &p->cr, e0, e0, 1, p->C, NULL, NULL, &v1, &v2, cat);
      *v0 = fmin(v1, v2);
    }
    free(s0);
  }
  return rc == LATHE_ENOMEM ? h->fail(c, rc, "archer: out of memory while evaluating") : rc;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  ar_t *p = self;
  double closs = 0, adv = 0, cgn = 0, agn = 0, t0 = tx_now();
  roll_t st;
  int rc = collect(p, h, c, &st);
  if (rc) return rc;
  double t1 = tx_now(), t2;
  int64_t ix[4096], nel = 0, *el = NULL;
  double thr = NAN, bcl = 0;
  int csteps = p->method == M_FBC || p->method == M_PPO ? 0 : p->critic_steps;
  double ppl = 0, pvl = 0;
  int pmb = 0;
  if (p->method == M_PPO) { /* on-policy: every utterance of this iteration, ppo_epochs times */
    int *perm = malloc((size_t)(p->nro + 1) * sizeof *perm);
    if (!perm || ppo_prepare(p)) return free(perm), h->fail(c, LATHE_ENOMEM, "out of memory");
    for (int i = 0; i < p->nro; i++) perm[i] = i;
    for (int ep = 0; ep < p->ppo_epochs; ep++) {
      for (int i = p->nro - 1; i > 0; i--) {
        int j = (int)nn_rng_below(&p->rng, (uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
      }
      for (int b0 = 0; b0 < p->nro; b0 += p->B) {
        int n = p->nro - b0 < p->B ? p->nro - b0 : p->B;
        nn_params_zero_grad(&p->pol.params), nn_params_zero_grad(&p->cr.enc.params);
        nn_params_zero_grad(&p->vh.params);
        if ((rc = ppo_batch(p, perm + b0, n, &ppl, &pvl)))
          return free(perm), h->fail(c, rc, "out of memory");
        nn_params_t *pp[1] = {&p->pol.params}, *vp[2] = {&p->cr.enc.params, &p->vh.params};
        agn += nn_clip_grad_norm_sets(pp, 1, p->clip),
            cgn += nn_clip_grad_norm_sets(vp, 2, p->clip), pmb++;
        if (nn_adamw_step(&p->pol.params, &p->aopt, (float)p->alr) ||
            nn_adamw_step(vp[0], &p->copt, (float)p->clr) ||
            nn_adamw_step(vp[1], &p->copt, (float)p->clr))
          return free(perm), h->fail(c, LATHE_ENOMEM, "out of memory");
      }
    }
    free(perm);
  }
  for (int s = 0; s < csteps; s++) {
    for (int k = 0; k < 5; k++) nn_params_zero_grad(cset(&p->cr, k));
    for (int a = 0; a < p->accum; a++) {
      for (int i = 0; i < p->B; i++) ix[i] = (int64_t)(nn_rng_u64(&p->rng) % (uint64_t)p->n);
      if ((rc = critic_batch(p, ix, p->B, &closs))) return h->fail(c, rc, "archer: out of memory");
    }
    nn_params_t *ps[5];
    for (int k = 0; k < 5; k++) ps[k] = cset(&p->cr, k);
    cgn += nn_clip_grad_norm_sets(ps, 5, p->clip) / p->critic_steps;
    for (int k = 0; k < 5; k++) {
      if (nn_adamw_step(ps[k], &p->copt, (float)p->clr))
        return h->fail(c, LATHE_ENOMEM, "out of memory");
      nn_params_polyak(cset(&p->tg, k), ps[k], (float)p->tau);
    }
  }
  t2 = tx_now();
  if (p->method == M_FBC) { /* behaviour-clone the best trajectories so far */
    if (!(el = malloc((size_t)p->n * sizeof *el)) || eligible(p, el, &nel, &thr))
      return free(el), h->fail(c, LATHE_ENOMEM, "out of memory");
    for (int s = 0; s < p->actor_steps && nel; s++) {
      nn_params_zero_grad(&p->pol.params);
      for (int a = 0; a < p->accum; a++) {
        for (int i = 0; i < p->B; i++) ix[i] = el[nn_rng_u64(&p->rng) % (uint64_t)nel];
        if ((rc = bc_batch(p, ix, p->B, &bcl))) return free(el), h->fail(c, rc, "out of memory");
      }
      nn_params_t *ps[1] = {&p->pol.params};
      agn += nn_clip_grad_norm_sets(ps, 1, p->clip) / p->actor_steps;
      if (nn_adamw_step(&p->pol.params, &p->aopt, (float)p->alr))
        return free(el), h->fail(c, LATHE_ENOMEM, "out of memory");
    }
    free(el);
  }
  if (p->method == M_ARCHER && p->iter >= p->warmup)
    for (int s = 0; s < p->actor_steps; s++) {
      nn_params_zero_grad(&p->pol.params);
      for (int a = 0; a < p->accum; a++) {
        for (int i = 0; i < p->B; i++) ix[i] = (int64_t)(nn_rng_u64(&p->rng) % (uint64_t)p->n);
        if ((rc = actor_batch(p, ix, p->B, &adv))) return h->fail(c, rc, "archer: out of memory");
      }
      nn_params_t *ps[1] = {&p->pol.params};
      agn += nn_clip_grad_norm_sets(ps, 1, p->clip) / p->actor_steps;
      if (nn_adamw_step(&p->pol.params, &p->aopt, (float)p->alr))
        return h->fail(c, LATHE_ENOMEM, "out of memory");
    }
  p->iter++;
  double t3 = tx_now();
  h->metric(c, "charts/trajectories", (double)p->iter * p->E);
  h->metric(c, "rollout/return", st.ret), h->metric(c, "rollout/win_rate", st.win);
  h->metric(c, "rollout/return_undiscounted", st.uret), h->metric(c, "rollout/turns", st.turns);
  h->metric(c, "rollout/invalid_rate", st.invalid);
  h->metric(c, "perf/utterances_per_sec", (double)st.utterances / (t1 - t0 + 1e-9));
  h->metric(c, "perf/collect_s", t1 - t0), h->metric(c, "perf/critic_s", t2 - t1);
  h->metric(c, "perf/actor_s", t3 - t2);
  if (csteps) {
    h->metric(c, "critic/loss", closs / csteps / p->accum);
    h->metric(c, "critic/grad_norm", cgn);
  }
  if (p->method == M_PPO && pmb) {
    h->metric(c, "ppo/policy_loss", ppl / pmb), h->metric(c, "ppo/value_loss", pvl / pmb);
    h->metric(c, "actor/grad_norm", agn / pmb), h->metric(c, "ppo/value_grad_norm", cgn / pmb);
    h->metric(c, "ppo/utterances", p->nro);
  }
  if (p->method == M_FBC) {
    h->metric(c, "filter/threshold", thr), h->metric(c, "filter/transitions", (double)nel);
    if (nel && p->actor_steps) {
      h->metric(c, "actor/bc_loss", bcl / p->actor_steps / p->accum);
      h->metric(c, "actor/grad_norm", agn);
    }
  }
  if (p->method == M_ARCHER && p->iter > p->warmup && p->actor_steps) {
    h->metric(c, "actor/advantage", adv / p->actor_steps / p->accum);
    h->metric(c, "actor/grad_norm", agn);
  }
  h->metric(c, "buffer/transitions", (double)p->n);
  if (p->hidden && (p->iter % p->eval_every == 0 || p->iter == p->iters)) {
    double r, w, sr, sw, v0 = NAN;
    if ((rc = evaluate(p, h, c, &r, &w, &sr, &sw, &v0))) return rc;
    h->metric(c, "eval/return", r), h->metric(c, "eval/win_rate", w);
    h->metric(c, "eval/sampled_return", sr), h->metric(c, "eval/sampled_win_rate", sw);
    if (p->method == M_ARCHER || p->method == M_CHAI) h->metric(c, "critic/v_s0", v0);
  }
  return p->iter >= p->iters ? LATHE_DONE : LATHE_CONTINUE;
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  ar_t *p = calloc(1, sizeof *p);
  if (!p) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = p;
  const char *m = h->cfg_str(c, "method");
  p->method = !strcmp(m, "chai")          ? M_CHAI
              : !strcmp(m, "filtered_bc") ? M_FBC
              : !strcmp(m, "ppo")         ? M_PPO
                                          : M_ARCHER;
  p->ppo_epochs = (int)h->cfg_int(c, "ppo_epochs"), p->ppo_clip = h->cfg_num(c, "ppo_clip");
  p->lam = h->cfg_num(c, "gae_lambda"), p->vf = h->cfg_num(c, "vf_coef");
  p->K = (int)h->cfg_int(c, "candidates"), p->pct = h->cfg_num(c, "filter_percentile");
  p->E = (int)h->cfg_int(c, "envs"), p->B = (int)h->cfg_int(c, "batch");
  p->accum = (int)h->cfg_int(c, "grad_accum"), p->critic_steps = (int)h->cfg_int(c, "critic_steps");
  p->actor_steps = (int)h->cfg_int(c, "actor_steps"), p->max_new = (int)h->cfg_int(c, "max_new");
  p->iters = h->cfg_int(c, "iterations"), p->warmup = h->cfg_int(c, "warmup");
  p->eval_samples = (int)h->cfg_int(c, "eval_samples");
  p->eval_every = h->cfg_int(c, "eval_every"), p->cap = h->cfg_int(c, "buffer");
  p->clr = h->cfg_num(c, "critic_lr"), p->alr = h->cfg_num(c, "actor_lr");
  p->gamma = h->cfg_num(c, "gamma"), p->tau = h->cfg_num(c, "tau");
  p->clip = h->cfg_num(c, "max_grad_norm"), p->C = (int)h->cfg_int(c, "critic_width");
  p->copt = (nn_adamw_t){(float)p->clr, 0.9f, 0.999f, 1e-8f, 0.0f};
  p->aopt = (nn_adamw_t){(float)p->alr, 0.9f, 0.999f, 1e-8f, 0.0f};
  nn_rng_seed(&p->rng, h->seed(c));
  for (int s = 0; s < AR_SHARDS; s++)
    nn_rng_seed(&p->srng[s], h->seed(c) ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(s + 1)));
  if (p->B > 4096) return h->fail(c, LATHE_ECONFIG, "archer: batch above 4096");
  /* the policy */
  int rc = tx_model_of_run(h, c, "init_run", (uint32_t)h->cfg_int(c, "init_run"),
                           ", so it cannot write the game's words", &p->tok, &p->pol);
  if (rc) return rc;
  int ctx = p->pol.cfg.ctx;
  if (p->max_new >= ctx)
    return h->fail(c, LATHE_ECONFIG, "archer: max_new %d leaves no room in the policy's context %d",
                   p->max_new, ctx);
  /* the games */
  const char *game = h->cfg_str(c, "game"), *gc = h->cfg_str(c, "game_config");
  for (int e = 0; e < p->E; e++) {
    if ((rc = lathe_plugin_create_list(h, c, game, gc, &p->gp, &p->game[e]))) return rc;
    if (p->gp->kind != LATHE_TEXTENV)
      return h->fail(c, LATHE_ECONFIG, "archer: game '%s' is a%s %s, not a text environment", game,
                     p->gp->kind == LATHE_ALGORITHM || p->gp->kind == LATHE_ENVIRONMENT ? "n" : "",
                     lathe_kind_name(p->gp->kind));
  }
  if (p->gp->textenv->set_hidden) {
    const char *o;
    if ((rc = p->gp->textenv->set_hidden(p->game[0], h, c, -1, &p->hidden, &o))) return rc;
  }
  /* the critic and its target */
  int from_policy = !strcmp(h->cfg_str(c, "critic_init"), "policy");
  nn_gpt_config_t ec = {p->tok.vocab, ctx, (int)h->cfg_int(c, "critic_layers"), 4, p->C};
  if (from_policy) ec = p->pol.cfg, p->C = ec.width;
  if (p->C > 1024)
    return h->fail(c, LATHE_ECONFIG, "archer: a critic of width %d (the policy's) is above 1024",
                   p->C);
  int kind = nn_head_parse(h->cfg_str(c, "critic_head"));
  if (nn_head_init(&p->hd, (nn_head_kind_t)kind, (int)h->cfg_int(c, "bins"),
                   (float)h->cfg_num(c, "v_min"), (float)h->cfg_num(c, "v_max"),
                   (float)h->cfg_num(c, "sigma_ratio")))
    return h->fail(c, LATHE_ECONFIG, "archer: critic_head %s: v_min = %g must be below v_max = %g",
                   h->cfg_str(c, "critic_head"), h->cfg_num(c, "v_min"), h->cfg_num(c, "v_max"));
  if (critic_init(&p->cr, ec, p->hd.bins, &p->rng) || critic_init(&p->tg, ec, p->hd.bins, &p->rng))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  if (from_policy) nn_params_copy(&p->cr.enc.params, &p->pol.params);
  for (int k = 0; k < 5; k++) nn_params_copy(cset(&p->tg, k), cset(&p->cr, k));
  if (nn_mlp_init(&p->vh, "vh", 2, (int[]){p->C, p->C, 1}, NN_TANH, 0, &p->rng))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  int rows = 2 * p->B > p->E ? 2 * p->B : p->E;
  if (p->method == M_CHAI && 2 * p->E * p->K > rows) rows = 2 * p->E * p->K;
  p->rb = calloc((size_t)p->cap, sizeof *p->rb);
  p->ids = malloc((size_t)rows * ctx * sizeof *p->ids),
  p->len = malloc((size_t)rows * sizeof *p->len);
  p->out = malloc((size_t)rows * p->max_new * sizeof *p->out);
  p->olen = malloc((size_t)rows * sizeof *p->olen);
  p->lp = malloc((size_t)p->B * sizeof *p->lp), p->dlp = malloc((size_t)p->B * sizeof *p->dlp);
  if (!p->rb || !p->ids || !p->len || !p->out || !p->olen || !p->lp || !p->dlp)
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  h->set_total(c, p->iters);
  return 0;
}

#define ARCHER_STATE_VERSION 4u /* 2: trajectories, method; 3: ppo's value head; 4: shards */

static void put_str(lathe_buf_t *b, const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  LATHE_PUT(b, n);
  lathe_buf_put(b, s, n);
}

static char *get_str(lathe_buf_t *b) {
  uint32_t n;
  LATHE_GET(b, n);
  if (b->err || n > lathe_buf_left(b) || n > (1u << 20)) return b->err = LATHE_ECKPT, NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return b->err = LATHE_ENOMEM, NULL;
  lathe_buf_get(b, s, n), s[n] = 0;
  if (memchr(s, 0, n)) return free(s), b->err = LATHE_ECKPT, NULL;
  return s;
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  (void)h, (void)c;
  ar_t *p = self;
  uint32_t v = ARCHER_STATE_VERSION;
  int32_t method = p->method;
  LATHE_PUT(b, v), LATHE_PUT(b, method), LATHE_PUT(b, p->rng), LATHE_PUT(b, p->srng),
      LATHE_PUT(b, p->iter);
  LATHE_PUT(b, p->cap), LATHE_PUT(b, p->n), LATHE_PUT(b, p->head), LATHE_PUT(b, p->ntraj);
  for (int64_t i = 0; i < p->n; i++) {
    tr_t *t = &p->rb[i];
    put_str(b, t->s), put_str(b, t->a), put_str(b, t->s2);
    LATHE_PUT(b, t->r), LATHE_PUT(b, t->G), LATHE_PUT(b, t->traj), LATHE_PUT(b, t->d);
    LATHE_PUT(b, t->first);
  }
  nn_params_save(&p->pol.params, b, 1);
  for (int k = 0; k < 5; k++)
    nn_params_save(cset(&p->cr, k), b, 1), nn_params_save(cset(&p->tg, k), b, 0);
  nn_params_save(&p->vh.params, b, 1);
  nn_head_save(&p->hd, b);
  return b->err;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  ar_t *p = self;
  uint32_t v;
  int64_t cap, n, head, iter;
  int32_t method;
  LATHE_GET(b, v);
  if (v != ARCHER_STATE_VERSION) return h->fail(c, LATHE_ECKPT, "archer: checkpoint version %u", v);
  LATHE_GET(b, method), LATHE_GET(b, p->rng), LATHE_GET(b, p->srng), LATHE_GET(b, iter),
      LATHE_GET(b, cap);
  LATHE_GET(b, n), LATHE_GET(b, head), LATHE_GET(b, p->ntraj);
  if (b->err) return h->fail(c, LATHE_ECKPT, "archer: truncated checkpoint (counters)");
  if (method != p->method)
    return h->fail(c, LATHE_ECKPT, "archer: checkpoint of method %d, this run's is %d", method,
                   p->method);
  if (cap != p->cap || n < 0 || n > cap || head < 0 || head >= cap || (n < cap && head != n) ||
      iter < 0 || iter > p->iters)
    return h->fail(c, LATHE_ECKPT,
                   "archer: checkpoint buffer of %lld/%lld at %lld, iteration %lld: out of range",
                   (long long)n, (long long)cap, (long long)head, (long long)iter);
  for (int64_t i = 0; i < p->cap; i++) tr_free(&p->rb[i]);
  for (int64_t i = 0; i < n; i++) {
    tr_t *t = &p->rb[i];
    t->s = get_str(b), t->a = get_str(b), t->s2 = get_str(b);
    LATHE_GET(b, t->r), LATHE_GET(b, t->G), LATHE_GET(b, t->traj), LATHE_GET(b, t->d);
    LATHE_GET(b, t->first);
    if (b->err || !isfinite(t->r) || !isfinite(t->G) || t->d > 1 || t->first > 1 ||
        t->traj >= p->ntraj) {
      p->n = i + 1; /* freed by destroy or the next load */
      return h->fail(c, LATHE_ECKPT, "archer: checkpoint transition %lld is damaged", (long long)i);
    }
  }
  p->n = n, p->head = head, p->iter = iter;
  if (nn_params_load(&p->pol.params, b))
    return h->fail(c, LATHE_ECKPT, "archer: checkpoint policy does not match init_run's model");
  for (int k = 0; k < 5; k++)
    if (nn_params_load(cset(&p->cr, k), b) || nn_params_load(cset(&p->tg, k), b))
      return h->fail(c, LATHE_ECKPT, "archer: checkpoint critic does not match this configuration");
  if (nn_params_load(&p->vh.params, b))
    return h->fail(c, LATHE_ECKPT,
                   "archer: checkpoint value head does not match this configuration");
  if (nn_head_check(&p->hd, b))
    return h->fail(c, LATHE_ECKPT, "archer: checkpoint critic_head, bins or support differ");
  return 0;
}

static const lathe_algorithm_t algorithm = {.step = step, .main_metric = "eval/return"};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "archer",
    .kind = LATHE_ALGORITHM,
    .version = "0.1.0",
    .doc = "ArCHer: an utterance-level off-policy critic (twin Q and V, TD from a replay buffer) "
           "and a token-level policy gradient, on a text game",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY(plugin)
