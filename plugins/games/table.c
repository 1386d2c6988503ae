/* table.c - the attribute tables of the question games (twentyq, guesscity,
 * the gameplay script) and the exact values of play by dynamic programming
 * over the belief state (games.h has the contracts). */
#include "games.h"

#include <errno.h>

#include "game_tables.h" /* generated from the tables in share/data/games/derived/ */

/* ---- building ------------------------------------------------------------ */

void tb_free(tb_table_t *t) {
  free(t->obj), free(t->attr), free(t->test), free(t->value);
  memset(t, 0, sizeof *t);
}

static int alloc(tb_table_t *t, int n, int k) {
  t->obj = calloc((size_t)n, sizeof *t->obj), t->attr = calloc((size_t)k, sizeof *t->attr);
  t->test = calloc((size_t)n * (size_t)k, sizeof *t->test);
  t->value = calloc((size_t)n * (size_t)k, sizeof *t->value);
  return t->obj && t->attr && t->test && t->value ? 0 : LATHE_ENOMEM;
}

/* The test (attribute a, value v), added when new; its index. */
static int add_test(tb_table_t *t, int a, const char *v) {
  for (int i = 0; i < t->ntest; i++)
    if (t->test[i].attr == a && !strcmp(t->test[i].val, v)) return i;
  tb_test_t *x = &t->test[t->ntest];
  x->attr = a;
  snprintf(x->val, sizeof x->val, "%s", v);
  return t->ntest++;
}

/* Fill the tests' object sets from value[] and mark the tests the DP can
 * skip: a two-valued attribute's second value splits every set as its
 * first does. */
static void finish(tb_table_t *t) {
  for (int i = 0; i < t->n; i++)
    for (int a = 0; a < t->k; a++) {
      tb_set_t *s = &t->test[t->value[i * t->k + a]].has;
      s->w[i >> 6] |= 1ULL << (i & 63);
    }
  for (int a = 0; a < t->k; a++) {
    int nv = 0, last = -1;
    for (int i = 0; i < t->ntest; i++)
      if (t->test[i].attr == a) nv++, last = i;
    for (int i = 0; i < t->ntest; i++)
      if (t->test[i].attr == a) t->test[i].split = !(nv == 2 && i == last) && nv > 1;
  }
}

int tb_synthetic(tb_table_t *t, int N, int K) {
  memset(t, 0, sizeof *t);
  if (N < 1 || N > TB_MAX_OBJECTS || K < 1 || K > 30 || alloc(t, N, K)) return LATHE_ENOMEM;
  t->n = N, t->k = K;
  for (int i = 0; i < N; i++) snprintf(t->obj[i], TB_MAX_WORD, "o%d", i);
  for (int a = 0; a < K; a++) snprintf(t->attr[a], TB_MAX_WORD, "a%d", a);
  for (int i = 0; i < N; i++)
    for (int a = 0; a < K; a++) t->value[i * K + a] = add_test(t, a, i >> a & 1 ? "1" : "0");
  finish(t);
  return 0;
}

/* A word of the table: 1..TB_MAX_WORD-1 bytes of [a-z0-9_]; its length, or
 * 0 when p does not start with one (followed by a tab, newline or end). */
static size_t word(const char *p, const char *end) {
  size_t n = 0;
  while (p + n < end &&
         ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '_'))
    n++;
  if (p + n < end && p[n] != '\t' && p[n] != '\n') return 0;
  return n < TB_MAX_WORD ? n : 0;
}

int tb_parse(tb_table_t *t, const char *text, size_t len, char *why, size_t cap) {
  memset(t, 0, sizeof *t);
  const char *p = text, *end = text + len;
  int line = 0, rows = 0, cols = 0;
  /* count rows and the header's columns first, to size the arrays */
  for (const char *q = text; q < end; q++) rows += *q == '\n';
  if (len && end[-1] != '\n') rows++;
  for (const char *q = text; q < end && *q != '\n'; q++) cols += *q == '\t';
#define BAD(...) (snprintf(why, cap, __VA_ARGS__), tb_free(t), -1)
  if (rows < 3) return BAD("line %d: a table needs a header and at least two objects", rows + 1);
  if (cols < 1) return BAD("line 1: no attribute columns (tab-separated)");
  if (rows - 1 > TB_MAX_OBJECTS) return BAD("more than %d objects", TB_MAX_OBJECTS);
  if (cols > TB_MAX_ATTRS) return BAD("line 1: more than %d attributes", TB_MAX_ATTRS);
  if (alloc(t, rows - 1, cols)) return BAD("out of memory");
  t->k = cols;
  for (line = 1; p < end; line++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) nl = end;
    for (int c = 0; c <= cols; c++) {
      size_t n = word(p, nl);
      if (!n)
        return BAD("line %d, field %d: not a word of [a-z0-9_] (at most %d bytes)", line, c + 1,
                   TB_MAX_WORD - 1);
      char w[TB_MAX_WORD];
      memcpy(w, p, n), w[n] = 0, p += n;
      if (c < cols && (p == nl || *p != '\t'))
        return BAD("line %d: %d fields, the header has %d", line, c + 1, cols + 1);
      if (c == cols && p != nl)
        return BAD("line %d: more fields than the header's %d", line, cols + 1);
      p++; /* the tab, or the newline */
      if (line == 1) {
        if (c == 0) continue;
        for (int a = 0; a < c - 1; a++)
          if (!strcmp(t->attr[a], w)) return BAD("line 1: attribute %s twice", w);
        memcpy(t->attr[c - 1], w, n + 1);
      } else if (c == 0) {
        for (int i = 0; i < t->n; i++)
          if (!strcmp(t->obj[i], w)) return BAD("line %d: object %s twice", line, w);
        memcpy(t->obj[t->n], w, n + 1);
      } else
        t->value[t->n * cols + c - 1] = add_test(t, c - 1, w);
    }
    if (line > 1) t->n++;
    p = nl + 1;
  }
  for (int i = 0; i < t->n; i++)
    for (int j = 0; j < i; j++)
      if (!memcmp(t->value + i * cols, t->value + j * cols, (size_t)cols * sizeof *t->value))
        return BAD("objects %s and %s have the same attributes (they cannot be told apart)",
                   t->obj[j], t->obj[i]);
#undef BAD
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 0x100000001b3ULL;
  t->hash = h;
  finish(t);
  return 0;
}

int tb_load(const lathe_host_t *h, lathe_ctx_t *c, const char *game, const char *table, int N,
            int K, tb_table_t *t) {
  if (!*table) {
    if (N > 1 << (K < 30 ? K : 30))
      return h->fail(c, LATHE_ECONFIG, "%s: %d objects cannot be told apart by %d attributes", game,
                     N, K);
    return tb_synthetic(t, N, K) ? h->fail(c, LATHE_ENOMEM, "out of memory") : 0;
  }
  char why[160];
  const char *text = NULL;
  size_t len = 0;
  char *file = NULL;
  if (!strcmp(table, "objects")) text = tb_objects_tsv, len = sizeof tb_objects_tsv - 1;
  if (!strcmp(table, "cities")) text = tb_cities_tsv, len = sizeof tb_cities_tsv - 1;
  if (!text) {
    FILE *f = fopen(table, "rb");
    if (!f)
      return h->fail(c, LATHE_EIO, "%s: table %s: %s (objects, cities, or a .tsv file)", game,
                     table, strerror(errno));
    file = malloc(TB_MAX_FILE + 1);
    len = file ? fread(file, 1, TB_MAX_FILE + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!file) return h->fail(c, LATHE_ENOMEM, "out of memory");
    if (err || len > TB_MAX_FILE) {
      free(file);
      return h->fail(c, err ? LATHE_EIO : LATHE_ECONFIG, "%s: table %s: %s", game, table,
                     err ? "read error" : "larger than 1 MiB");
    }
    text = file;
  }
  int rc = tb_parse(t, text, len, why, sizeof why);
  free(file);
  return rc ? h->fail(c, LATHE_ECONFIG, "%s: table %s: %s", game, table, why) : 0;
}

int tb_object(const tb_table_t *t, const char *w) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->obj[i], w)) return i;
  return -1;
}

int tb_test(const tb_table_t *t, const char *attr, const char *val) {
  for (int i = 0; i < t->ntest; i++)
    if (!strcmp(t->test[i].val, val) && !strcmp(t->attr[t->test[i].attr], attr)) return i;
  return -1;
}

/* ---- the belief-state DP ------------------------------------------------- */

typedef struct {
  tb_set_t *key; /* an empty slot's set is empty (a state's never is) */
  uint32_t *tag; /* turn << 2 | identify << 1 | exact */
  double *val;   /* the value when exact, else an upper bound of it */
  size_t cap, n;
} memo_t;

typedef struct {
  const tb_table_t *t;
  int T;
  double g;
  double *U;  /* U[m * (T + 1) + t] */
  int *order; /* per turn: the tests that split, most balanced first */
  int *count; /* per turn: their sizes on the yes side */
  memo_t m;
} dp_t;

static uint64_t set_hash(const tb_set_t *s, uint32_t key) {
  uint64_t x = key * 0xbf58476d1ce4e5b9ULL;
  for (int i = 0; i < TB_WORDS; i++) x = (x ^ s->w[i]) * 0x9e3779b97f4a7c15ULL;
  return x ^ x >> 29;
}

/* The slot of state (set, key = turn << 1 | identify): 1 if it is there. */
static int memo_find(const memo_t *m, const tb_set_t *set, uint32_t key, size_t *slot) {
  size_t i = (size_t)set_hash(set, key) & (m->cap - 1);
  while (!tb_empty(m->key[i]) && !(tb_equal(m->key[i], *set) && m->tag[i] >> 1 == key))
    i = (i + 1) & (m->cap - 1);
  *slot = i;
  return !tb_empty(m->key[i]);
}

static int memo_grow(memo_t *m) {
  memo_t o = *m;
  m->cap = o.cap ? 2 * o.cap : 1 << 12, m->n = 0;
  if (m->cap > TB_MAX_MEMO) return LATHE_ENOMEM;
  m->key = calloc(m->cap, sizeof *m->key), m->tag = malloc(m->cap * sizeof *m->tag);
  m->val = malloc(m->cap * sizeof *m->val);
  if (!m->key || !m->tag || !m->val) {
    free(m->key), free(m->tag), free(m->val);
    *m = o;
    return LATHE_ENOMEM;
  }
  for (size_t i = 0; i < o.cap; i++)
    if (!tb_empty(o.key[i])) {
      size_t s;
      memo_find(m, &o.key[i], o.tag[i] >> 1, &s);
      m->key[s] = o.key[i], m->tag[s] = o.tag[i], m->val[s] = o.val[i], m->n++;
    }
  free(o.key), free(o.tag), free(o.val);
  return 0;
}

#define UB(d, m, t) ((d)->U[(size_t)(m) * (size_t)((d)->T + 1) + (size_t)(t)])

/* An upper bound on the value of set S (m objects) at turn t: U[m][t], or
 * what the memo knows. */
static double upper(const dp_t *d, const tb_set_t *S, int m, int t, int identify) {
  if (t >= d->T || m == 1) return 0.0;
  size_t slot;
  double u = UB(d, m, t);
  if (memo_find(&d->m, S, (uint32_t)t << 1 | (uint32_t)identify, &slot) && d->m.val[slot] < u)
    u = d->m.val[slot];
  return u;
}

/* The value of candidate set S at turn t (identify: guesses only from one
 * candidate) when it exceeds alpha; otherwise some v <= alpha (it is at
 * most alpha: a fail-low). NAN: out of memory. Exact by branch and bound: an
 * action is dropped only when its value is shown no better than the best
 * found (or alpha), each child searched with the threshold its action needs
 * to win given an upper bound of the other child; U[m][t] (ideal splits and
 * guesses of any set of m) bounds every value. */
static double value(dp_t *d, tb_set_t S, int t, int identify, double alpha) {
  if (t >= d->T) return 0.0;
  int m = tb_count(S);
  if (m == 1) return 0.0; /* guess it */
  size_t slot;
  uint32_t key = (uint32_t)t << 1 | (uint32_t)identify;
  if (memo_find(&d->m, &S, key, &slot) && ((d->m.tag[slot] & 1) || d->m.val[slot] <= alpha))
    return d->m.val[slot];
  const tb_table_t *tt = d->t;
  int *ord = d->order + (size_t)t * (size_t)tt->ntest;
  int *cnt = d->count + (size_t)t * (size_t)tt->ntest;
  int ns = 0;
  for (int i = 0; i < tt->ntest; i++) {
    if (!tt->test[i].split) continue;
    int c1 = tb_count(tb_and(S, tt->test[i].has));
    if (!c1 || c1 == m) continue;
    /* insertion by balance: |2 c1 - m| ascending, ties in table order */
    int b = abs(2 * c1 - m), j = ns++;
    while (j > 0 && abs(2 * cnt[j - 1] - m) > b) ord[j] = ord[j - 1], cnt[j] = cnt[j - 1], j--;
    ord[j] = i, cnt[j] = c1;
  }
  double best = alpha, g = d->g;
  int found = 0; /* an action's exact value above alpha */
  /* an action -1 + g (c1 v1 + c0 v0) / m beats best iff
   * c1 v1 + c0 v0 > need = m (best + 1) / g */
  for (int k = 0; k < ns; k++) {
    int c1 = cnt[k], c0 = m - c1;
    tb_set_t s1 = tb_and(S, tt->test[ord[k]].has), s0 = tb_andnot(S, tt->test[ord[k]].has);
    double need = m * (best + 1.0) / g;
    double u1 = upper(d, &s1, c1, t + 1, identify), u0 = upper(d, &s0, c0, t + 1, identify);
    if (c1 * u1 + c0 * u0 <= need) continue;
    double v1 = value(d, s1, t + 1, identify, (need - c0 * u0) / c1);
    if (v1 != v1) return NAN;
    if (c1 * v1 + c0 * u0 <= need) continue;
    double v0 = value(d, s0, t + 1, identify, (need - c1 * v1) / c0);
    if (v0 != v0) return NAN;
    double v = -1.0 + g * (c1 * v1 + c0 * v0) / m;
    if (v > best) best = v, found = 1;
  }
  /* guessing: (m - 1) / m (-1 + g v) beats best iff v > (best m / (m - 1) + 1) / g */
  if (!identify)
    for (int i = 0; i < tt->n; i++) {
      if (!tb_has(S, i)) continue;
      double need = (best * m / (m - 1.0) + 1.0) / g;
      tb_set_t r = S;
      r.w[i >> 6] &= ~(1ULL << (i & 63));
      if (upper(d, &r, m - 1, t + 1, 0) <= need) continue;
      double v = value(d, r, t + 1, 0, need);
      if (v != v) return NAN;
      v = (m - 1.0) / m * (-1.0 + g * v);
      if (v > best) best = v, found = 1;
    }
  if (!ns && identify) { /* nothing splits and no guess allowed: the turn passes */
    double v = value(d, S, t + 1, identify, (alpha + 1.0) / g);
    if (v != v) return NAN;
    best = -1.0 + g * v, found = best > alpha;
  }
  if (2 * (d->m.n + 1) > d->m.cap && memo_grow(&d->m)) return NAN;
  if (!memo_find(&d->m, &S, key, &slot)) d->m.n++;
  d->m.key[slot] = S, d->m.tag[slot] = key << 1 | (uint32_t)found, d->m.val[slot] = best;
  return best;
}

int tb_values(const tb_table_t *t, int T, double g, double *opt, double *ident) {
  dp_t d = {.t = t, .T = T, .g = g};
  int N = t->n, rc = LATHE_ENOMEM;
  d.U = malloc((size_t)(N + 1) * (size_t)(T + 1) * sizeof *d.U);
  d.order = malloc((size_t)(T + 1) * (size_t)(t->ntest + 1) * sizeof *d.order);
  d.count = malloc((size_t)(T + 1) * (size_t)(t->ntest + 1) * sizeof *d.count);
  if (d.U && d.order && d.count && !memo_grow(&d.m)) {
    /* U[m][t]: the best any set of m candidates could do at turn t, were
     * every split of it possible */
    for (int tt = T; tt >= 0; tt--)
      for (int m = 1; m <= N; m++) {
        if (tt == T || m == 1) {
          UB(&d, m, tt) = 0.0;
          continue;
        }
        double u = (m - 1.0) / m * (-1.0 + g * UB(&d, m - 1, tt + 1));
        for (int a = 1; a < m; a++) {
          double v = -1.0 + g * (a * UB(&d, a, tt + 1) + (m - a) * UB(&d, m - a, tt + 1)) / m;
          u = v > u ? v : u;
        }
        UB(&d, m, tt) = u;
      }
    tb_set_t all = tb_all(N);
    *opt = value(&d, all, 0, 0, -INFINITY), *ident = value(&d, all, 0, 1, -INFINITY);
    rc = *opt != *opt || *ident != *ident ? LATHE_ENOMEM : 0;
  }
  free(d.U), free(d.order), free(d.count), free(d.m.key), free(d.m.tag), free(d.m.val);
  return rc;
}
