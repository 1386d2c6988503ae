/* nn.h - lathe's float32 numerical core on OpenBLAS.
 *
 * In the spirit of llm.c: plain C, explicit forward and backward per layer, every
 * matrix product through nn_matmul_* (cblas_sgemm), no graph interpreter.
 *
 * Dimension letters used in shape comments: N rows (batch, or B*T), B batch,
 * T time, C channels, IC/OC in/out channels, H heads, V vocabulary, K classes.
 * All arrays are contiguous row-major float32.
 *
 * Conventions.
 *  - Forward functions overwrite their outputs.
 *  - Backward functions ACCUMULATE (+=) into parameter gradients and into the
 *    input gradient, so a caller zeroes gradients once per step (nn_params_zero_grad)
 *    and branches sum naturally. The one exception is noted where it occurs.
 *  - Nothing here allocates on a hot path except the model arenas, which grow
 *    when a larger batch than ever before arrives.
 *  - Everything random takes an explicit nn_rng_t, so runs are reproducible and
 *    resumable bit for bit. Results do not depend on the thread count: the
 *    parallel loops keep each value's arithmetic what one thread's would be
 *    (par.c's contract), and OpenBLAS's threads split a product by output
 *    blocks (tested: the GPT's steps at 1, 2 and 3 threads, test_nn.c).
 *
 * Ownership: nn_params_t owns its values, gradients and optimizer moments (one
 * block each). Models own their nn_params_t and activation arena; *_free releases all.
 *
 * The library (liblathe-nn.so, one copy per process) by file. Generic pieces
 * any method uses: params.c (RNG, parameters, initialisers, AdamW and
 * schedules), par.c (the numeric threads: their floating-point mode, OpenBLAS's setup, the parallel
 * loops), layers.c (linear, activations, LayerNorm, embeddings, attention, dropout, softmax, the
 * generic losses), mlp.c, gpt.c (a GPT with a KV cache and sequence log-probabilities), heads.c
 * (critic heads: mse, huber, two_hot, HL-Gauss, C51), replay.c (the replay buffer), tok.c
 * (tokenizers, tok.h), lm.c (a text model and batched sampling, lm.h).
 * The losses of one method, each next to its backward and checked against
 * its spec's test vectors: pref.c (the DPO family and the on-policy
 * baselines: specs/dpo.md, onpolicy_pref.md), rl.c (SAC's tanh-Gaussian,
 * CQL's term with Cal-QL's bound, Monte-Carlo returns: specs/calql.md),
 * rm.c (reward models and RRM's augmentation: specs/rrm.md, rm.h), steps.c
 * (per-step credit from Monte-Carlo rollouts: specs/per_step_negatives.md).
 */
#ifndef LATHE_NN_H
#define LATHE_NN_H

#include <stddef.h>
#include <stdint.h>
#include "../lathe.h"

/* The library's ABI: raised whenever a struct below or a function's meaning
 * changes. A plugin records the NN_ABI it was built against in its
 * descriptor (lathe.h nn_abi); the host refuses it unless it equals
 * nn_abi_version() of the library loaded (liblathe-nn.so, one per process). */
#define NN_ABI 3
int nn_abi_version(void);

/* SplitMix64: the next value of the sequence whose state is *x (a stateless
 * hash when the state is a copy). Seeds every generator below. */
static inline uint64_t nn_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* ======================================================================== */
/* Random numbers: xoshiro256** whose whole state is the four words below.  */

typedef struct nn_rng {
  uint64_t s[4];
} nn_rng_t;

/* Seed from one 64-bit value (splitmix64 expansion). Any seed is valid. */
void nn_rng_seed(nn_rng_t *r, uint64_t seed);
uint64_t nn_rng_u64(nn_rng_t *r);
/* Uniform in [0, 1) with 24 bits (float) or 53 bits (double). */
float nn_rng_uniform(nn_rng_t *r);
double nn_rng_uniform_d(nn_rng_t *r);
/* Standard normal by Box-Muller (one draw consumes two uniforms; no cached spare,
 * so the state is exactly s[]). */
float nn_rng_normal(nn_rng_t *r);
/* Uniform integer in [0, n). */
uint32_t nn_rng_below(nn_rng_t *r, uint32_t n);

/* ======================================================================== */
/* Threads and matrix products.                                             */

/* Make the calling thread flush denormals to zero (x86 FTZ and DAZ). Every
 * thread that runs the core calls it first: results stay deterministic, and
 * values below 1.2e-38 never matter to training. */
void nn_thread_init(void);
/* OpenBLAS's idle threads poll for work for 2^28 cycles (about 0.1 s) after
 * each product unless OPENBLAS_THREAD_TIMEOUT says otherwise; polling
 * threads take the cores from the elementwise passes between products. With
 * 2^18 instead, the GPT-128 step at 2 threads ran 1.30x faster on the
 * project's machine and batch-32 sampling 1.15x (medians of 6 interleaved
 * pairs; bench/README.md). Unless the user has set the variable,
 * nn_blas_setup sets it to 18 (2^18 cycles, about 0.1 ms) and restarts
 * OpenBLAS's threads so they read it. Call it once, first thing in main
 * (setenv is not thread-safe). */
void nn_blas_setup(void);

/* The numeric thread count (clamped to 1..64): OpenBLAS's, and the
 * parallel loops' below (par.c). Process-wide. */
void nn_set_threads(int n);
int nn_get_threads(void);

/* Parallel loops. fn(ctx, lo, hi) is called on disjoint ranges that cover
 * [0, n), at most one per numeric thread (the caller runs one), none shorter
 * than about grain items, and nn_parallel returns when all are done. The
 * contract that keeps results bit-identical at every thread count: what fn
 * computes for an item depends on that item alone (no sum across items in a
 * range; reduce by columns, or afterwards in item order). The loop runs
 * inline, as one range, with one thread, under 2 grains of work, while
 * another thread's loop holds the pool, and when called from inside a loop.
 * NN_PAR_BLAS1: fn calls nn_sgemm, so OpenBLAS runs on one thread meanwhile. */
typedef void (*nn_range_fn)(void *ctx, size_t lo, size_t hi);
#define NN_PAR_BLAS1 1
void nn_parallel(size_t n, size_t grain, int flags, nn_range_fn fn, void *ctx);
/* OpenBLAS picks its kernels by CPU model, and falls back to old ones on a
 * model it does not know (a virtual machine's: a 16-core AVX-512 Xeon VM got
 * "Prescott", its sgemm 5.9x slower than with SkylakeX's). Given the core
 * OpenBLAS chose and what the CPU supports, the core it should use instead
 * ("SkylakeX" or "Haswell"), or NULL when its choice is fine. */
const char *nn_blas_core_for(const char *chosen, int avx2_fma, int avx512);
/* nn_blas_core_for this process's OpenBLAS and CPU; NULL also when
 * OPENBLAS_CORETYPE is set (the user's choice stands). A program that wants
 * it sets OPENBLAS_CORETYPE and executes itself again (OpenBLAS reads it
 * once, at load). */
const char *nn_blas_better_core(void);

/* C(M,N) = alpha * op(A) op(B) + beta * C, row-major; op transposes when ta/tb.
 * Every matrix product of the core goes through here (cblas_sgemm). */
void nn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
/* Shape of one recorded product, for measuring what OpenBLAS alone would take. */
typedef struct nn_gemm {
  int ta, tb, M, N, K, lda, ldb, ldc;
  float beta;
} nn_gemm_t;
/* Start (clearing) or stop recording the shapes of nn_sgemm calls, from every
 * thread (for benchmarks; call it between steps). nn_gemm_traced returns the
 * record, valid until the next start. */
void nn_gemm_trace(int on);
int nn_gemm_traced(const nn_gemm_t **out);

/* out(N,OC) = inp(N,IC) @ w(OC,IC)^T (+ b(OC) if b). Overwrites out. */
void nn_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int IC,
                       int OC);
/* Given dout(N,OC): dinp(N,IC) += dout @ w (skipped if dinp NULL);
 * dw(OC,IC) += dout^T @ inp; db(OC) += column sums of dout (skipped if NULL). */
void nn_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int IC, int OC);

/* ======================================================================== */
/* Elementwise activations. forward: out = f(inp) over n values.             */
/* backward: dinp += dout * f'(.) computed from inp (or out where noted).    */

typedef enum { NN_RELU, NN_GELU, NN_TANH, NN_SILU, NN_IDENTITY } nn_act_t;

/* exp(x) within 2 ulp of expf on [-87, 88] (clamped outside), written so loops
 * calling it vectorise; the core's softmaxes and GELU use it. */
float nn_expf(float x);

/* Parse "relu" | "gelu" | "tanh" | "silu" | "identity"; -1 if unknown. */
int nn_act_parse(const char *name);
void nn_act_forward(nn_act_t a, float *out, const float *inp, size_t n);
void nn_act_backward(nn_act_t a, float *dinp, const float *dout, const float *inp, size_t n);

/* LayerNorm over the last dim C of inp(N,C): out = (x-mean)*rstd*w + b.
 * Saves mean(N) and rstd(N) for backward. eps = 1e-5. */
void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C);
void nn_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, int N, int C);

/* out(B,T,C) = wte[tok[b,t]] + wpe[t]. */
void nn_embed_forward(float *out, const int *tok, const float *wte, const float *wpe, int B, int T,
                      int C);
void nn_embed_backward(float *dwte, float *dwpe, const float *dout, const int *tok, int B, int T,
                       int C);

/* Causal multi-head self-attention. qkv(B,T,3C) packs q,k,v; out(B,T,C).
 * att(B,H,T,T) holds the softmax weights (kept for backward). The (b, h)
 * pairs run in parallel. */
void nn_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H);
/* dqkv(B,T,3C) += ..., using scratch datt of B*H*T*T floats (overwritten). */
void nn_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                           const float *att, int B, int T, int C, int H);

/* Inverted dropout with keep-probability 1-p: mask(n) in {0, 1/(1-p)}, out = inp*mask.
 * p = 0 copies. Draws n uniforms from r when p > 0. */
void nn_dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, nn_rng_t *r);
/* dinp += dout * mask (mask NULL: dinp += dout). */
void nn_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n, float p);

/* y += x over n values (residual add forward); its backward is the same call. */
void nn_add(float *y, const float *x, size_t n);
/* out = a + b over n values (out may be a or b). */
void nn_sum(float *out, const float *a, const float *b, size_t n);

/* Row-wise softmax / log-softmax of x(N,K), numerically stable; out must not
 * overlap x. */
void nn_softmax(float *out, const float *x, int N, int K);
void nn_log_softmax(float *out, const float *x, int N, int K);
/* Backward from the forward's output y(N,K): dx += y * (dy - rowsum(dy * y)). */
void nn_softmax_backward(float *dx, const float *dy, const float *y, int N, int K);
/* Backward from the forward's output y(N,K): dx += dy - exp(y) * rowsum(dy). */
void nn_log_softmax_backward(float *dx, const float *dy, const float *y, int N, int K);

/* ======================================================================== */
/* Losses. Each returns the mean loss over rows and OVERWRITES dpred/dlogits  */
/* with d(mean loss)/d(input) (pass NULL to skip). Scale by w for weighting. */

/* Mean squared error: mean over N of (pred-target)^2; gradient 2(pred-target)/N. */
float nn_mse_loss(float *dpred, const float *pred, const float *target, int N);
/* Huber with threshold delta (smooth L1 times delta): mean over N. */
float nn_huber_loss(float *dpred, const float *pred, const float *target, int N, float delta);
/* Cross-entropy of logits(N,K) against soft targets(N,K) (rows sum to 1):
 * mean_n -sum_k t_nk log softmax(x_n)_k. Gradient (softmax - t)/N. */
float nn_soft_ce_loss(float *dlogits, const float *logits, const float *target, int N, int K);
/* Token cross-entropy: logits(B,T,V) predict tgt(B,T); positions with mask 0
 * are excluded (mask NULL: all count). Mean over counted positions. */
float nn_token_ce_loss(float *dlogits, const float *logits, const int *tgt, const float *mask,
                       int B, int T, int V);
/* Sequence log-probabilities: lp[b] = sum_t mask[b,t] * log softmax(logits[b,t])[tgt[b,t]].
 * No gradient here; see nn_seq_logprob_backward. */
void nn_seq_logprob(float *lp, const float *logits, const int *tgt, const float *mask, int B, int T,
                    int V);
/* dlogits(B,T,V) += dlp[b] * mask[b,t] * (onehot(tgt) - softmax(logits)). */
void nn_seq_logprob_backward(float *dlogits, const float *dlp, const float *logits, const int *tgt,
                             const float *mask, int B, int T, int V);

/* ======================================================================== */
/* Preference losses (pref.c), on summed completion log-probabilities.      */
/* dpo.md and onpolicy_pref.md give the math and the test vectors.          */

typedef enum {
  NN_PREF_DPO,
  NN_PREF_CDPO,
  NN_PREF_ROBUST,
  NN_PREF_HINGE,
  NN_PREF_IPO
} nn_pref_loss_t;

typedef struct nn_pref {
  nn_pref_loss_t loss;
  double beta; /* DPO's beta; for IPO tau, the target margin being 1 / (2 tau) */
  double eps;  /* label smoothing of cdpo and robust */
  int ipo_avg; /* IPO on per-token averages (TRL) instead of sums (the paper) */
} nn_pref_t;

/* "dpo" | "cdpo" | "robust" | "hinge" | "ipo" -> nn_pref_loss_t, -1 if unknown. */
int nn_pref_parse(const char *name);
/* The loss of one pair from logpi and logpi_ref of the chosen (pw, rw) and the
 * rejected (pl, rl) completions, with their token counts nw, nl (IPO
 * averaging; clamped to >= 1). With h = (pw - rw) - (pl - rl):
 *   dpo  -log sig(beta h)          cdpo  -(1-eps) log sig(beta h) - eps log sig(-beta h)
 *   robust ((1-eps)(-log sig(beta h)) + eps log sig(-beta h)) / (1 - 2 eps)
 *   hinge max(0, 1 - beta h)       ipo   (h - 1/(2 beta))^2
 * *dw, *dl (if not NULL) receive dL/dpw and dL/dpl. */
double nn_pref_pair(const nn_pref_t *o, double pw, double pl, double rw, double rl, int nw, int nl,
                    double *dw, double *dl);
/* TRL's pair metrics, summed over pairs (divide by pairs for the means):
 * rewards = beta (logpi - logpi_ref) of chosen and rejected, their margin,
 * accuracy (strict >: a tie counts as wrong), and the log-probabilities. */
typedef struct nn_pref_stats {
  double chosen, rejected, margins, accuracies, logps_chosen, logps_rejected;
  int pairs;
} nn_pref_stats_t;
void nn_pref_stats_add(nn_pref_stats_t *s, double beta, double pw, double pl, double rw, double rl);
/* Best-of-N fine-tuning on one group: -lp_best + lambda lp_worst (lambda 0:
 * no push-down); *gb, *gw = dL/dlp of each. */
double nn_bon_loss(double lp_best, double lp_worst, double lambda, double *gb, double *gw);
/* RWR's weight of a response with (normalised) reward r: exp(r / temp). */
double nn_rwr_weight(double r, double temp);
/* REINFORCE for one token: -(lp adv - kl (lp - lp_ref)); *grad = dL/dlp. */
double nn_pg_reinforce_token(double lp, double lp_ref, double adv, double kl, double *grad);
/* PPO's clipped objective for one token with ratio exp(lp - lp_old):
 * max(-adv rho, -adv clip(rho, 1-clip, 1+clip)) + kl (lp - lp_ref); *grad = dL/dlp. */
double nn_pg_ppo_token(double lp, double lp_old, double lp_ref, double adv, double clip, double kl,
                       double *grad);

/* ======================================================================== */
/* Per-step credit from Monte-Carlo rollouts (steps.c;                      */
/* specs/per_step_negatives.md). A solution of T steps has prefixes s_0 (the */
/* problem alone) .. s_T (the whole solution).                               */

/* The best-of-K value from S successes in M rollouts: 1 - C(M-S, K)/C(M, K),
 * unbiased for M >= K (M = K: 1[S > 0]); K > M falls back to the plug-in
 * 1 - (1 - S/M)^K; K <= 1 is the plain S/M. NaN when M <= 0. */
double nn_bok_value(int S, int M, int K);
/* The plug-in best-of-K value 1 - (1 - p)^K of a success rate p. */
double nn_bok_plugin(double p, int K);
/* v(T+1): v[i] from S[i] successes of M rollouts from prefix s_i (i < T,
 * with estimator K as nn_bok_value), v[T] = final (the verifier on the whole
 * solution); adv(T): adv[i-1] = v[i] - v[i-1], the advantage of step i. */
void nn_step_values(const int *S, int T, int M, int K, double final, double *v, double *adv);
/* The critical step (1..T) of a solution: the first i with v[i] <= 0 (the
 * "first pit": no rollout from s_i succeeds), else the first step with the
 * smallest advantage. T >= 1. */
int nn_first_pit(const double *v, const double *adv, int T);
/* AWR's weight of a step: exp(adv / beta) clipped to w_max (never negative). */
double nn_awr_weight(double adv, double beta, double w_max);
/* AWR's loss over n steps of a batch, the mean of -w_i lp_i (lp_i: the summed
 * log-probability of step i's tokens); dlp (if not NULL) gets dL/dlp_i. */
double nn_awr_loss(const double *lp, const double *w, int n, double *dlp);

/* ======================================================================== */
/* Soft actor-critic, CQL and Cal-QL (rl.c; specs/calql.md).                */

/* One row of a tanh-Gaussian policy with SAC's learnable log-std affine:
 * l' = clip(m l + o, -20, 2), u = mu + exp(l') eps, a = tanh(u) written to a(A);
 * returns log pi(a) = sum_j log N(u_j; mu_j, exp(l'_j)) - log(1 - tanh(u_j)^2),
 * the correction in its stable form 2 (ln 2 - u - softplus(-2u)). */
double nn_tanh_gauss(const float *mu, const float *l, float m, float o, const float *eps, int A,
                     float *a);
/* Its backward with eps held fixed (reparameterised): given dL/da (NULL: none)
 * and dL/dlogp, writes dmu(A), dl(A) and adds dL/dm, dL/do to *dm, *doff.
 * No gradient flows through l where the clip is active. */
void nn_tanh_gauss_backward(const float *mu, const float *l, float m, float o, const float *eps,
                            int A, const float *da, float dlogp, float *dmu, float *dl, float *dm,
                            float *doff);

/* SAC's temperature loss -log_alpha mean(logp + target_entropy): its gradient
 * with respect to log_alpha over B log-probabilities. */
double nn_sac_temperature_grad(const float *logp, int B, double target_entropy);

#define NN_CQL_MAX_N 64
/* One state's values for one critic, N actions per source, all scored at s:
 * uniform actions, current-state policy actions (with log-probs), next-state
 * policy actions (with log-probs), and the data action. */
typedef struct nn_cql_in {
  const float *q_rand, *q_cur, *lp_cur, *q_next, *lp_next;
  float q_data;
  float G;        /* Cal-QL's bound (the transition's return-to-go); -INFINITY for CQL */
  int N, A;       /* actions per source (<= NN_CQL_MAX_N), action dimension */
  int importance; /* 1: X = [q_rand + A ln 2 ; q_next - lp_next ; q_cur - lp_cur] */
  float temp;     /* CQL temperature T */
} nn_cql_in_t;
/* CQL's difference T logsumexp(X / T) - q_data for one state (without
 * importance sampling X = [q_rand ; q_next ; q_cur ; q_data]). Policy-action
 * values below G count as G. Writes d(diff)/dQ for every raw value (N each;
 * zero where G was taken) and *g_data; *lifted (may be NULL) = how many of
 * the 2N policy-action values the bound raised. The caller clips and weights. */
double nn_cql_diff(const nn_cql_in_t *in, float *g_rand, float *g_cur, float *g_next, float *g_data,
                   int *lifted);
/* Monte-Carlo return-to-go of one trajectory of T (transformed) rewards:
 * G_t = r_t + gamma (1 - term_t) G_{t+1} with nothing beyond the last step (a
 * timeout is not a terminal). With sparse set, a trajectory whose every reward
 * equals r_fail gets r_fail / (1 - gamma) at every step. */
void nn_mc_returns(const float *r, const uint8_t *term, int T, double gamma, int sparse,
                   double r_fail, float *G);

/* Generalised advantage estimation over a rollout of T steps of E
 * environments, laid out (T, E): r, v (the value of each step's observation)
 * and done (1: the episode ended after step t, so step t+1 of that
 * environment starts a new one); v_last(E) values the observation after the
 * last step. A truncated episode is bootstrapped by the caller (r += gamma
 * V(final observation)) and marked done. adv(T, E) and ret = adv + v. */
void nn_gae(const float *r, const float *v, const uint8_t *done, const float *v_last, int T, int E,
            double gamma, double lambda, float *adv, float *ret);
/* log softmax(z)[a] of K logits, the entropy H of softmax(z), and, when
 * dz is not NULL, dz += g_lp d lp / dz + g_h d H / dz. */
double nn_categorical(const float *z, int K, int a, double g_lp, double g_h, float *dz, double *H);

/* ArCHer's utterance-level critic (specs/archer.md): twin heads Q_k(s, a)
 * and V_k(s), k = 1, 2, with a Polyak target copy (nn_params_polyak).
 * TD target of one head: y = r + gamma (1 - done) Vbar_k(s'), head-matched
 * (Q1 bootstraps from Vbar1, Q2 from Vbar2; no min). */
double nn_archer_target(double r, int done, double gamma, double vbar);
/* The sum over the two heads of the mean squared error over B rows, L =
 * mean (p1 - y1)^2 + mean (p2 - y2)^2: L_Q with predictions Q_k(s, a) and
 * targets y_k; L_V with V_k(s) and Qbar_k(s, a^) at a fresh policy
 * utterance. d1, d2 (if not NULL) get dL/dp. */
double nn_archer_pair_mse(const float *p1, const float *p2, const float *y1, const float *y2, int B,
                          float *d1, float *d2);
/* The actor's advantage, from the current critic: min(Q1, Q2)(s, a^) -
 * min(V1, V2)(s). */
double nn_archer_advantage(double q1, double q2, double v1, double v2);
/* The first index of the largest of v[0..n) (CHAI: the candidate with the
 * highest min(Qbar1, Qbar2)); -1 for n < 1. */
int nn_argmax_first(const double *v, int n);

/* ======================================================================== */
/* Replay buffer (replay.c): a ring of transitions for off-policy RL.        */

typedef struct nn_replay {
  int64_t cap, size, pos;            /* capacity; rows held; the row written next */
  int O, A;                          /* floats per observation and per action */
  float *obs, *act, *rew, *next, *G; /* G: a per-row value (a Monte-Carlo return) or NULL */
  uint8_t *term;                     /* 1: the transition ended the episode (terminated) */
} nn_replay_t;

/* Allocate cap rows (G too when with_G); LATHE_ENOMEM on failure, after which
 * nn_replay_free is still safe. A discrete action is stored as one float. */
int nn_replay_init(nn_replay_t *b, int64_t cap, int O, int A, int with_G);
void nn_replay_free(nn_replay_t *b);
/* Write one transition at pos (overwriting the oldest once full). */
void nn_replay_add(nn_replay_t *b, const float *o, const float *a, float r, const float *next,
                   int term, float G);
/* Append size, pos and the rows held to out / read them back into a buffer of
 * the same cap, O, A and G: NULL, or what does not fit (a fixed message; the
 * rows are then undefined). Counts are checked against cap and the bytes
 * present before any row is read; terminal flags must be 0 or 1. */
void nn_replay_save(const nn_replay_t *b, lathe_buf_t *out);
const char *nn_replay_load(nn_replay_t *b, lathe_buf_t *in);

/* Episodes (rollout.c): one episode of environment env (an instance of
 * envp, kind environment) from reset(seed) with actions from policy (which
 * writes an action for obs as the environment takes it), ended by
 * termination, truncation or max_len steps (0: no bound of its own). rew
 * (may be NULL; else max_len > 0 and room for max_len values) gets each
 * step's reward. Returns 0, or the environment's error (its message set
 * through h->fail). */
typedef void (*nn_policy_fn)(void *ud, const float *obs, float *action);
typedef struct nn_episode {
  double ret;     /* undiscounted return */
  int64_t len;    /* steps */
  int terminated; /* 1: ended by termination (with env info's goal: a success) */
  int cut;        /* 1: ended by max_len, not by the environment */
} nn_episode_t;
int nn_episode(const lathe_plugin_t *envp, void *env, const lathe_host_t *h, lathe_ctx_t *c,
               uint64_t seed, int64_t max_len, nn_policy_fn policy, void *ud, double *rew,
               nn_episode_t *out);

/* ======================================================================== */
/* Critic heads (heads.c): a network output -> value and loss. K = bins.    */

typedef enum {
  NN_HEAD_MSE,
  NN_HEAD_HUBER,
  NN_HEAD_TWO_HOT,
  NN_HEAD_HL_GAUSS,
  NN_HEAD_C51
} nn_head_kind_t;
#define NN_HEAD_MAX_BINS 512

typedef struct nn_head {
  nn_head_kind_t kind;
  int bins;                 /* outputs per value: 1 for mse/huber, else K */
  float v_min, v_max;       /* the support */
  float sigma_ratio, sigma; /* hl_gauss: sigma = sigma_ratio * bin width */
  float centers[NN_HEAD_MAX_BINS];
} nn_head_t;

/* "mse" | "huber" | "two_hot" | "hl_gauss" | "c51" -> kind, -1 if unknown. */
int nn_head_parse(const char *name);
/* Set up a head (bins, support and sigma ratio are ignored for mse/huber).
 * hl_gauss uses the paper's bins (edges v_min + k z), two_hot and c51 atoms at
 * linspace(v_min, v_max, K). LATHE_ESHAPE for K < 2, K > 512 or an empty support. */
int nn_head_init(nn_head_t *h, nn_head_kind_t kind, int bins, float v_min, float v_max,
                 float sigma_ratio);
/* The value of one output row out(K): expectation of softmax over centres (K > 1). */
float nn_head_decode(const nn_head_t *h, const float *out);
/* Backward of nn_head_decode: dout(K) = dv * dvalue/dout (softmax weight times
 * (centre - value) for categorical heads; dv for scalar ones). */
void nn_head_decode_backward(const nn_head_t *h, const float *out, float dv, float *dout);
/* Categorical target p(K) of scalar y, clipped into the support (hl_gauss, two_hot). */
void nn_head_target(const nn_head_t *h, float y, float *p);
/* C51: project the distribution next_p(K) on the atoms through r + discount * z
 * (discount = gamma * (1 - terminated)) back onto the atoms; writes p(K). */
void nn_head_c51_project(const nn_head_t *h, const float *next_p, float r, float discount,
                         float *p);
/* Mean loss of out(N,K) against targets: scalars target(N) for mse/huber,
 * probabilities target(N,K) otherwise. OVERWRITES dout(N,K) with the gradient
 * (for categorical heads (softmax - p)/N). */
float nn_head_loss(const nn_head_t *h, const float *out, const float *target, int N, float *dout);
/* Write the head's convention into a checkpoint / check one matches (LATHE_ESHAPE if not). */
void nn_head_save(const nn_head_t *h, lathe_buf_t *b);
int nn_head_check(const nn_head_t *h, lathe_buf_t *b);

/* ======================================================================== */
/* Named parameters.                                                        */

#define NN_NAME_MAX 48

typedef struct nn_param {
  char name[NN_NAME_MAX]; /* e.g. "h.2.attn.qkv.w" */
  int ndim, shape[4];
  size_t off, n; /* offset into the value block, element count */
  int decay;     /* 1 if AdamW weight decay applies (matrices), 0 (biases, norms) */
} nn_param_t;

typedef struct nn_params {
  nn_param_t *p;
  int np, cap;
  size_t total; /* number of floats */
  float *w, *g; /* values, gradients (total each) */
  float *m, *v; /* Adam moments, allocated by the optimizer on first step */
  int64_t t;    /* Adam step count */
} nn_params_t;

/* Declare a parameter; returns its index. Call before nn_params_alloc. */
int nn_params_add(nn_params_t *ps, const char *name, int decay, int ndim, const int *shape);
/* Allocate values and gradients (zeroed). Returns 0 or LATHE_ENOMEM. */
int nn_params_alloc(nn_params_t *ps);
void nn_params_free(nn_params_t *ps);
/* Pointers into the blocks for parameter index i. Valid until nn_params_free. */
static inline float *nn_w(nn_params_t *ps, int i) {
  return ps->w + ps->p[i].off;
}
static inline float *nn_g(nn_params_t *ps, int i) {
  return ps->g + ps->p[i].off;
}
/* Index of a parameter by name, -1 if none. */
int nn_params_find(const nn_params_t *ps, const char *name);
void nn_params_zero_grad(nn_params_t *ps);
/* Forget the optimizer's moments and step count: the next step starts a fresh
 * optimizer (fine-tuning from another run's weights, a frozen reference copied). */
void nn_params_reset_opt(nn_params_t *ps);
/* Copy values of src into dst (same layout). */
void nn_params_copy(nn_params_t *dst, const nn_params_t *src);
/* Polyak averaging: dst = (1-tau)*dst + tau*src. */
void nn_params_polyak(nn_params_t *dst, const nn_params_t *src, float tau);
/* Global L2 norm of the gradients; if max_norm > 0 and the norm exceeds it,
 * scale all gradients by max_norm/norm. Returns the norm before clipping. */
float nn_clip_grad_norm(nn_params_t *ps, float max_norm);
/* The same over n parameter sets taken as one (the norm in double; the
 * scale max_norm / (norm + 1e-6)): for networks kept in several sets. */
double nn_clip_grad_norm_sets(nn_params_t *const *ps, int n, double max_norm);

/* Serialize values (+ optimizer moments and step when with_opt) into b.
 * Format (little-endian, version 1): "LNNP" u32 version u32 count u8 with_opt
 * u64 t; per param: u16 namelen, name, u8 ndim, i32 shape[ndim], f32 data[n];
 * then if with_opt and moments exist, f32 m[total], f32 v[total]. */
void nn_params_save(const nn_params_t *ps, lathe_buf_t *b, int with_opt);
/* Restore into an already-declared, allocated set with the same names and
 * shapes. Returns 0, LATHE_ECKPT (format/version) or LATHE_ESHAPE (layout). */
int nn_params_load(nn_params_t *ps, lathe_buf_t *b);

/* Initialise parameter i: normal(0, std), uniform(-a, a), or constant c. */
void nn_init_normal(nn_params_t *ps, int i, float std, nn_rng_t *r);
void nn_init_uniform(nn_params_t *ps, int i, float a, nn_rng_t *r);
void nn_init_const(nn_params_t *ps, int i, float c);
/* A (semi-)orthogonal matrix times gain for 2-D param i, as torch.nn.init.orthogonal_
 * (Gram-Schmidt of a Gaussian matrix, signs making R's diagonal positive). */
void nn_init_orthogonal(nn_params_t *ps, int i, float gain, nn_rng_t *r);

/* ======================================================================== */
/* Optimizers and schedules.                                                */

typedef struct nn_adamw {
  float lr, beta1, beta2, eps, weight_decay; /* weight_decay 0: plain Adam */
} nn_adamw_t;

/* PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0. */
nn_adamw_t nn_adamw_default(void);
/* One AdamW step with bias correction and decoupled weight decay applied only
 * to params with decay = 1, using learning rate lr (pass o->lr for constant).
 * Allocates moments on the first call. Returns 0 or LATHE_ENOMEM. */
int nn_adamw_step(nn_params_t *ps, const nn_adamw_t *o, float lr);

typedef enum { NN_SCHED_CONSTANT, NN_SCHED_LINEAR, NN_SCHED_COSINE } nn_sched_t;
/* Learning rate at step t of total: linear warm-up over warmup steps, then constant,
 * linear decay to min_ratio*lr, or cosine decay to min_ratio*lr. */
float nn_lr_at(nn_sched_t s, float lr, int64_t t, int64_t warmup, int64_t total, float min_ratio);

/* ======================================================================== */
/* MLP: Linear -> [LayerNorm] -> act, repeated, then a final Linear.        */

typedef struct nn_mlp {
  int nlayers;  /* number of Linear layers */
  int width[9]; /* width[0] = input, width[nlayers] = output */
  nn_act_t act;
  int layernorm;
  nn_params_t params;
  int iw[8], ib[8], ilnw[8], ilnb[8]; /* parameter indices */
  /* activation arena for maxN rows */
  int maxN, N;
  float *arena;
  float *x[9];   /* x[0]: input copy (N,width[0]); x[l]: input of layer l */
  float *pre[8]; /* pre-activation outputs of Linear l (N,width[l+1]) */
  float *ln[8];  /* LayerNorm outputs (if layernorm) */
  float *mean[8], *rstd[8];
  float *d0, *d1; /* scratch gradients (N, max width) */
} nn_mlp_t;

/* Build an MLP with nlayers Linear layers of the given widths (nlayers+1 entries).
 * Weights use PyTorch's default init (kaiming-uniform, a=sqrt(5)) drawn from r;
 * parameter names are "<prefix>.<l>.w", ".b", ".ln.w", ".ln.b". */
int nn_mlp_init(nn_mlp_t *m, const char *prefix, int nlayers, const int *width, nn_act_t act,
                int layernorm, nn_rng_t *r);
void nn_mlp_free(nn_mlp_t *m);
/* Hidden widths written "120,84" or "256-256" into w: their count (0 for ""),
 * or -1 for anything else, a width outside [1, 65536] or more than max. */
int nn_parse_widths(const char *s, int *w, int max);
/* Forward x(N,width[0]) -> returns out(N,width[nlayers]) owned by m, valid until
 * the next forward. Keeps activations for backward. */
float *nn_mlp_forward(nn_mlp_t *m, const float *x, int N);
/* Backward of the last forward: grads += ..., dx(N,width[0]) += ... if dx. */
void nn_mlp_backward(nn_mlp_t *m, const float *dout, float *dx);

/* ======================================================================== */
/* Attention pooling (pool.c): a variable-length sequence of C-wide vectors  */
/* to one D-wide vector, PR2L's summarizer. H heads, each with a learned     */
/* query q_h (D/H): k = W_k x, v = W_v x + b_v; per head a softmax over the  */
/* sequence's first len[n] positions of q_h . k_t / sqrt(D/H) weighs v_t.    */
/* q starts at zero (mean pooling); W_k, W_v as PyTorch's Linear.            */

typedef struct nn_pool {
  int C, D, H;
  nn_params_t params; /* "<prefix>.q" (H, D/H), ".k.w" (D, C), ".v.w" (D, C), ".v.b" (D) */
  int iq, ik, iv, ivb;
  int N, T, cap;    /* the last forward's shape; rows allocated */
  const float *x;   /* borrowed input of the last forward */
  const int *len;   /* borrowed lengths of the last forward */
  float *k, *v, *a; /* (N,T,D), (N,T,D), (N,H,T) */
  float *out, *dk, *dv;
  double *da; /* (T) backward scratch */
} nn_pool_t;

int nn_pool_init(nn_pool_t *p, const char *prefix, int C, int D, int H, nn_rng_t *r);
void nn_pool_free(nn_pool_t *p);
/* x(N,T,C) padded, len(N) in [0,T] (rows t >= len[n] are never read into the
 * result; they must hold finite values); returns out(N,D), owned by p, valid
 * until the next forward; a sequence of length 0 gives zeros. x and len are
 * borrowed until the backward. NULL: no memory. */
float *nn_pool_forward(nn_pool_t *p, const float *x, const int *len, int N, int T);
/* Backward of the last forward from dout(N,D): parameter grads +=, and
 * dx(N,T,C) += when not NULL (zero at masked rows). */
void nn_pool_backward(nn_pool_t *p, const float *dout, float *dx);

/* ======================================================================== */
/* GPT: token + position embedding, L pre-LN blocks (attn, MLP 4C with GELU),  */
/* final LayerNorm, logits through the tied token embedding.                */

typedef struct nn_gpt_config {
  int vocab, ctx, layers, heads, width;
} nn_gpt_config_t;

typedef struct nn_gpt {
  nn_gpt_config_t cfg;
  nn_params_t params;
  int iwte, iwpe, ilnfw, ilnfb;
  int (*il)[12]; /* per layer: ln1w ln1b qkvw qkvb projw projb ln2w ln2b fcw fcb fcpw fcpb */
  /* activations for B x T */
  int B, T, maxBT;
  float *acts;
  size_t acts_n;
  int *tok;
  float *encoded, *residual3, *lnf, *lnf_mean, *lnf_rstd, *logits;
  float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *attproj, *residual2;
  float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *fcproj;
  float *grad_scratch; /* backward scratch */
  size_t scratch_n;
} nn_gpt_t;

/* Build a GPT with GPT-2's init (normal 0.02, residual projections scaled by
 * 1/sqrt(2L)). Names: "wte", "wpe", "h.<l>.ln1.w", "h.<l>.attn.qkv.w", ..., "lnf.w". */
int nn_gpt_init(nn_gpt_t *g, nn_gpt_config_t cfg, nn_rng_t *r);
void nn_gpt_free(nn_gpt_t *g);
/* Forward tok(B,T) (T <= ctx) -> logits(B,T,V) owned by g, valid until next forward. */
float *nn_gpt_forward(nn_gpt_t *g, const int *tok, int B, int T);
/* Forward without the output projection: the final LayerNorm's output
 * lnf(B,T,C), owned by g (for heads other than the language model's). */
float *nn_gpt_hidden(nn_gpt_t *g, const int *tok, int B, int T);
/* Backward from dlnf(B,T,C) of the last forward (nn_gpt_hidden or
 * nn_gpt_forward); accumulates parameter grads. dlnf is only read. */
void nn_gpt_backward_hidden(nn_gpt_t *g, const float *dlnf);
/* Backward from dlogits(B,T,V) of the last forward; accumulates parameter grads.
 * dlogits is used as scratch (its contents are consumed). */
void nn_gpt_backward(nn_gpt_t *g, float *dlogits);
/* Per-sequence masked log-probabilities of tok[b,t+1] given tok[b,..t]:
 * lp[b] = sum_{t<T-1} mask[b,t+1] * log p(tok[b,t+1]). Runs a forward. */
void nn_gpt_logprobs(nn_gpt_t *g, float *lp, const int *tok, const float *mask, int B, int T);
/* Backward of nn_gpt_logprobs given dlp(B) (d loss / d lp); with dlp all ones
 * and mask a weight per token, the backward of sum_b,t w[b,t] log p(tok[b,t]). */
void nn_gpt_logprobs_backward(nn_gpt_t *g, const float *dlp, const float *mask);
/* log softmax(z)[y] of one row of V logits, summed in double. */
float nn_logprob_of(const float *z, int V, int y);
/* Per-token log-probabilities out(B,T): out[b,0] = 0, out[b,t] = log p(tok[b,t]
 * | tok[b,<t]) in double. Runs a forward whose logits stay for
 * nn_gpt_logprobs_backward. 0 or LATHE_ENOMEM. */
int nn_gpt_token_logprobs(nn_gpt_t *g, const int *tok, int B, int T, float *out);

/* KV cache for incremental decoding of up to B sequences of ctx tokens. */
typedef struct nn_kvcache {
  int B, ctx, pos;
  float *k, *v; /* (L, B, ctx, C) each */
  float *scratch;
} nn_kvcache_t;

int nn_kvcache_init(nn_kvcache_t *kv, const nn_gpt_t *g, int B);
void nn_kvcache_free(nn_kvcache_t *kv);
/* Feed one token per sequence tok(B) at position kv->pos; writes logits(B,V)
 * (unless NULL: the keys and values alone) and advances pos. Matches
 * nn_gpt_forward's last-position logits. Thread-safe on a shared g (reads its
 * parameters only). */
int nn_gpt_decode(nn_gpt_t *g, nn_kvcache_t *kv, const int *tok, float *logits);
/* Fill an empty cache (kv->pos 0) with the keys and values of positions 0..P-1
 * of tok(B,P) in one batched pass (products of B*P rows instead of P of B);
 * kv->pos becomes P. The values match P nn_gpt_decode calls up to float
 * rounding (not bit for bit). Thread-safe on a shared g. 0, LATHE_ESHAPE
 * (pos != 0, P outside 1..ctx) or LATHE_ENOMEM. */
int nn_gpt_prefill(nn_gpt_t *g, nn_kvcache_t *kv, const int *tok, int P);

/* Sample one index from logits(V) with temperature (0: argmax), top_k (0: off)
 * and top_p (1: off). Uses scratch(2V) floats. One uniform draw; without
 * top_k and top_p the draw walks the probabilities in index order (no sort),
 * with them in descending order. */
int nn_sample(const float *logits, int V, float temperature, int top_k, float top_p, nn_rng_t *r,
              float *scratch);

#endif
