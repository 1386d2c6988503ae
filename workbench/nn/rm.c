/* rm.c - reward models and RRM's augmentation (see rm.h). */
#include "rm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int nn_rm_parse(const char *name) {
  return !strcmp(name, "bt") ? NN_RM_BT : !strcmp(name, "pairwise") ? NN_RM_PAIRWISE : -1;
}

static int head_declare(nn_rm_t *m) {
  int C = m->gpt.cfg.width;
  nn_params_add(&m->head, "head.w", 1, 1, (int[]){C});
  nn_params_add(&m->head, "head.b", 0, 1, (int[]){1});
  return nn_params_alloc(&m->head);
}

int nn_rm_init(nn_rm_t *m, nn_rm_kind_t kind, nn_tok_t *tok, nn_gpt_config_t cfg, nn_rng_t *r) {
  memset(m, 0, sizeof *m);
  m->kind = kind, m->tok = *tok;
  memset(tok, 0, sizeof *tok);
  cfg.vocab = m->tok.vocab;
  if (nn_gpt_init(&m->gpt, cfg, r) || head_declare(m)) {
    nn_rm_free(m);
    return LATHE_ENOMEM;
  }
  nn_init_normal(&m->head, 0, 0.02f, r);
  return 0;
}

void nn_rm_free(nn_rm_t *m) {
  nn_tok_free(&m->tok), nn_gpt_free(&m->gpt), nn_params_free(&m->head);
  free(m->len), free(m->dh);
  memset(m, 0, sizeof *m);
}

/* ---- inputs ------------------------------------------------------------------------ */

/* The ids of s, malloc'd, *n of them (-1 on failure). */
static int *encode_all(const nn_tok_t *t, const char *s, int *n) {
  size_t len = strlen(s);
  int k = nn_tok_encode(t, s, len, NULL, 0);
  int *ids = k >= 0 ? malloc(((size_t)k + 1) * sizeof *ids) : NULL;
  if (ids) nn_tok_encode(t, s, len, ids, k);
  *n = ids ? k : -1;
  return ids;
}

int nn_rm_encode(const nn_rm_t *m, const char *prompt, const char *first, const char *second,
                 int *ids) {
  int ctx = m->gpt.cfg.ctx, nr = second ? 2 : 1, n[3], rc = 0;
  const char *s[3] = {prompt, first, second};
  int *part[3] = {NULL, NULL, NULL};
  for (int i = 0; i <= nr; i++)
    if (!(part[i] = encode_all(&m->tok, s[i], &n[i]))) rc = -1;
  if (!rc) {
    int cap = nr == 1 ? ctx / 2 : ctx * 3 / 8, keep[3], used = 0;
    for (int i = 1; i <= nr; i++) /* a response keeps its start and its <eos> */
      keep[i] = n[i] + 1 <= cap ? n[i] : cap - 1, used += keep[i] + 1;
    keep[0] = n[0] < ctx - used - 1 ? n[0] : ctx - used - 1;
    int at = 0;
    memcpy(ids, part[0] + n[0] - keep[0], (size_t)keep[0] * sizeof *ids), at += keep[0];
    ids[at++] = NN_TOK_EOS;
    for (int i = 1; i <= nr; i++) {
      memcpy(ids + at, part[i], (size_t)keep[i] * sizeof *ids), at += keep[i];
      ids[at++] = NN_TOK_EOS;
    }
    rc = at;
  }
  for (int i = 0; i < 3; i++) free(part[i]);
  return rc;
}

/* ---- forward and backward --------------------------------------------------------- */

int nn_rm_forward(nn_rm_t *m, const int *tok, const int *len, int B, int T, float *out) {
  if (T < 1 || T > m->gpt.cfg.ctx) return LATHE_ESHAPE;
  for (int b = 0; b < B; b++)
    if (len[b] < 1 || len[b] > T) return LATHE_ESHAPE;
  int C = m->gpt.cfg.width;
  size_t need = (size_t)B * T * C;
  if (need > m->cap) {
    float *dh = realloc(m->dh, need * sizeof *dh);
    if (!dh) return LATHE_ENOMEM;
    m->dh = dh, m->cap = need;
  }
  int *l = realloc(m->len, (size_t)B * sizeof *l);
  if (!l) return LATHE_ENOMEM;
  m->len = l, memcpy(l, len, (size_t)B * sizeof *l);
  const float *h = nn_gpt_hidden(&m->gpt, tok, B, T);
  if (!h) return LATHE_ENOMEM;
  const float *w = nn_w(&m->head, 0), bias = nn_w(&m->head, 1)[0];
  for (int b = 0; b < B; b++) {
    const float *x = h + ((size_t)b * T + len[b] - 1) * C;
    float s = bias;
    for (int i = 0; i < C; i++) s += w[i] * x[i];
    out[b] = s;
  }
  m->B = B, m->T = T;
  return 0;
}

void nn_rm_backward(nn_rm_t *m, const float *dout) {
  int B = m->B, T = m->T, C = m->gpt.cfg.width;
  const float *h = m->gpt.lnf, *w = nn_w(&m->head, 0);
  float *gw = nn_g(&m->head, 0), *gb = nn_g(&m->head, 1);
  memset(m->dh, 0, (size_t)B * T * C * sizeof *m->dh);
  for (int b = 0; b < B; b++) {
    size_t row = ((size_t)b * T + m->len[b] - 1) * C;
    for (int i = 0; i < C; i++) gw[i] += dout[b] * h[row + i], m->dh[row + i] = dout[b] * w[i];
    gb[0] += dout[b];
  }
  nn_gpt_backward_hidden(&m->gpt, m->dh);
}

float nn_rm_clip(nn_rm_t *m, float max_norm) {
  float a = nn_clip_grad_norm(&m->gpt.params, 0), b = nn_clip_grad_norm(&m->head, 0);
  float norm = sqrtf(a * a + b * b);
  if (max_norm > 0 && norm > max_norm) {
    float s = max_norm / norm;
    nn_params_t *ps[2] = {&m->gpt.params, &m->head};
    for (int k = 0; k < 2; k++)
      for (size_t i = 0; i < ps[k]->total; i++) ps[k]->g[i] *= s;
  }
  return norm;
}

/* Forward n encoded sequences in batches of up to 64: out(n). */
static int forward_all(nn_rm_t *m, int *const *ids, const int *len, int n, float *out) {
  int ctx = m->gpt.cfg.ctx, rc = 0;
  int *tok = malloc((size_t)64 * ctx * sizeof *tok);
  if (!tok) return LATHE_ENOMEM;
  for (int b0 = 0; b0 < n && !rc; b0 += 64) {
    int B = n - b0 < 64 ? n - b0 : 64, T = 1;
    for (int b = 0; b < B; b++) T = len[b0 + b] > T ? len[b0 + b] : T;
    for (int b = 0; b < B; b++) {
      memcpy(tok + (size_t)b * T, ids[b0 + b], (size_t)len[b0 + b] * sizeof *tok);
      for (int t = len[b0 + b]; t < T; t++) tok[(size_t)b * T + t] = NN_TOK_PAD;
    }
    rc = nn_rm_forward(m, tok, len + b0, B, T, out + b0);
  }
  free(tok);
  return rc;
}

int nn_rm_score(nn_rm_t *m, const char *const *prompt, const char *const *first,
                const char *const *second, int n, double *out) {
  int pw = m->kind == NN_RM_PAIRWISE, k = pw ? 2 * n : n, rc = 0, ctx = m->gpt.cfg.ctx;
  int **ids = calloc((size_t)k, sizeof *ids), *len = malloc((size_t)k * sizeof *len);
  float *z = malloc((size_t)k * sizeof *z);
  if (!ids || !len || !z) rc = LATHE_ENOMEM;
  for (int i = 0; i < k && !rc; i++) { /* pairwise: both orders */
    int j = pw ? i / 2 : i, swap = pw && i % 2;
    if (!(ids[i] = malloc((size_t)ctx * sizeof **ids)))
      rc = LATHE_ENOMEM;
    else if ((len[i] = nn_rm_encode(m, prompt[j], swap ? second[j] : first[j],
                                    pw ? (swap ? first[j] : second[j]) : NULL, ids[i])) < 0)
      rc = LATHE_ENOMEM;
  }
  if (!rc) rc = forward_all(m, ids, len, k, z);
  for (int i = 0; !rc && i < n; i++) out[i] = pw ? nn_rm_sym(z[2 * i], z[2 * i + 1]) : z[i];
  for (int i = 0; ids && i < k; i++) free(ids[i]);
  free(ids), free(len), free(z);
  return rc;
}

int nn_rm_rank(nn_rm_t *m, const char *prompt, const char *const *resp, int k, double *out) {
  int pw = m->kind == NN_RM_PAIRWISE, np = pw ? k * (k - 1) : k, q = 0, rc = 0;
  const char **P = malloc(sizeof *P * (size_t)(np + 1)), **A = malloc(sizeof *A * (size_t)(np + 1));
  const char **B = malloc(sizeof *B * (size_t)(np + 1));
  double *s = malloc(sizeof *s * (size_t)(np + 1));
  if (!P || !A || !B || !s) rc = LATHE_ENOMEM;
  for (int a = 0; a < k && !rc; a++)
    for (int c = 0; c < (pw ? k : 1); c++)
      if (!pw || c != a) P[q] = prompt, A[q] = resp[a], B[q] = pw ? resp[c] : NULL, q++;
  if (!rc && np) rc = nn_rm_score(m, P, A, pw ? B : NULL, np, s);
  for (int a = 0; a < k && !rc; a++) {
    out[a] = pw ? (k > 1 ? 0 : 0.5) : s[a];
    for (int c = 0; pw && c < k - 1; c++) out[a] += s[a * (k - 1) + c] / (k - 1);
  }
  free(P), free(A), free(B), free(s);
  return rc;
}

/* ---- checkpoint block -------------------------------------------------------------- */

#define RM_MAGIC 0x31424d52u /* "RMB1" */

void nn_rm_save(const nn_rm_t *m, lathe_buf_t *b, int with_opt) {
  nn_lm_save(&m->tok, &m->gpt, b, with_opt);
  uint32_t magic = RM_MAGIC, kind = m->kind;
  LATHE_PUT(b, magic), LATHE_PUT(b, kind);
  nn_params_save(&m->head, b, with_opt);
}

int nn_rm_load(nn_rm_t *m, lathe_buf_t *b) {
  int has, rc;
  memset(m, 0, sizeof *m);
  if ((rc = nn_lm_load(&m->tok, &has, &m->gpt, b))) return rc;
  uint32_t magic = 0, kind = 9;
  LATHE_GET(b, magic), LATHE_GET(b, kind);
  if (!has || b->err || magic != RM_MAGIC || kind > NN_RM_PAIRWISE) rc = LATHE_ECKPT;
  m->kind = (nn_rm_kind_t)kind;
  if (!rc && (rc = head_declare(m))) rc = LATHE_ENOMEM;
  if (!rc && (rc = nn_params_load(&m->head, b))) rc = LATHE_ECKPT;
  if (rc) nn_rm_free(m);
  return rc;
}

int nn_rm_restore(nn_rm_t *m, lathe_buf_t *b) {
  nn_rm_t n;
  int rc = nn_rm_load(&n, b);
  if (rc) return rc;
  if (n.kind != m->kind || n.tok.vocab != m->tok.vocab ||
      memcmp(&n.gpt.cfg, &m->gpt.cfg, sizeof n.gpt.cfg)) {
    nn_rm_free(&n);
    return LATHE_ESHAPE;
  }
  nn_rm_free(m);
  *m = n;
  return 0;
}

/* ---- losses and RRM ---------------------------------------------------------------- */

static double softplus(double x) {
  return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

double nn_rm_bt(double z) {
  return 1 / (1 + exp(-z));
}

double nn_rm_soft_ce(double z, double c, double *dz) {
  if (dz) *dz = nn_rm_bt(z) - c;
  return c * softplus(-z) + (1 - c) * softplus(z);
}

double nn_rm_sym(double z_ab, double z_ba) {
  return 0.5 * (nn_rm_bt(z_ab) + 1 - nn_rm_bt(z_ba));
}

int nn_rrm_keep(double p, double c, double threshold) {
  return fabs(p - c) >= threshold;
}

int64_t nn_rrm_augment(int64_t n, int kinds, double frac, nn_rng_t *r, nn_rrm_triplet_t **out,
                       int64_t *generated) {
  int per = (kinds & NN_RRM_WINS ? 8 : 0) + (kinds & NN_RRM_TIES ? 6 : 0);
  *out = NULL, *generated = 0;
  if (n < 3) return -1;
  int64_t total = n * per, want = (int64_t)(frac * (double)total + 0.5), kept = 0;
  nn_rrm_triplet_t *t = malloc((size_t)(want > 0 ? want : 1) * sizeof *t);
  if (!t) return -1;
  for (int64_t i = 0, seen = 0; i < n; i++) {
    int64_t j = (int64_t)nn_rng_below(r, (uint32_t)(n - 1)), k;
    j += j >= i; /* j != i */
    do k = (int64_t)nn_rng_below(r, (uint32_t)(n - 1)), k += k >= i;
    while (k == j);
    int32_t pool[4] = {(int32_t)(2 * j), (int32_t)(2 * j + 1), (int32_t)(2 * k),
                       (int32_t)(2 * k + 1)};
    nn_rrm_triplet_t made[14];
    int m = 0;
    if (kinds & NN_RRM_WINS)
      for (int own = 0; own < 2; own++)
        for (int q = 0; q < 4; q++)
          made[m++] = (nn_rrm_triplet_t){(int32_t)i, (int32_t)(2 * i + own), pool[q], 1.0f};
    if (kinds & NN_RRM_TIES)
      for (int a = 0; a < 4; a++)
        for (int b = a + 1; b < 4; b++)
          made[m++] = (nn_rrm_triplet_t){(int32_t)i, pool[a], pool[b], 0.5f};
    for (int q = 0; q < m; q++, seen++) /* selection sampling: exactly `want`, in order */
      if ((double)(total - seen) * nn_rng_uniform_d(r) < (double)(want - kept)) t[kept++] = made[q];
  }
  *out = t, *generated = total;
  return kept;
}
