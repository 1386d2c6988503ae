/* tok.c - bytes, words and BPE (see tok.h). */
#include "tok.h"

#include <stdlib.h>
#include <string.h>

/* ---- a small open-addressing map: u64 key -> i32 ------------------------------ */

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33, x *= 0xff51afd7ed558ccdULL, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

static uint64_t hash_bytes(const uint8_t *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
  return h | 1; /* never 0: 0 marks an empty slot */
}

static int map_init(uint64_t **keys, int32_t **vals, size_t *cap, size_t want) {
  size_t c = 64;
  while (c < 2 * want) c <<= 1;
  *keys = calloc(c, sizeof **keys), *vals = calloc(c, sizeof **vals), *cap = c;
  return *keys && *vals ? 0 : LATHE_ENOMEM;
}

/* slot of key (key != 0): where it is, or the empty slot where it would go */
static size_t map_slot(const uint64_t *keys, size_t cap, uint64_t key) {
  size_t i = mix64(key) & (cap - 1);
  while (keys[i] && keys[i] != key) i = (i + 1) & (cap - 1);
  return i;
}

static int32_t map_get(const nn_tok_t *t, uint64_t key) {
  if (!t->hcap) return -1;
  size_t i = map_slot(t->hkeys, t->hcap, key);
  return t->hkeys[i] ? t->hvals[i] : -1;
}

static uint64_t pair_key(int a, int b) {
  return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; /* + 1: never 0 */
}

/* ---- construction ------------------------------------------------------------------ */

int nn_tok_parse(const char *name) {
  return !strcmp(name, "bytes")   ? NN_TOK_BYTES
         : !strcmp(name, "words") ? NN_TOK_WORDS
         : !strcmp(name, "bpe")   ? NN_TOK_BPE
                                  : -1;
}

void nn_tok_free(nn_tok_t *t) {
  for (int i = 0; i < t->n; i++) {
    if (t->text) free(t->text[i]);
    if (t->words) free(t->words[i]);
  }
  free(t->merges), free(t->words), free(t->text), free(t->ntext), free(t->hkeys), free(t->hvals);
  memset(t, 0, sizeof *t);
}

int nn_tok_init_bytes(nn_tok_t *t) {
  memset(t, 0, sizeof *t);
  t->kind = NN_TOK_BYTES, t->vocab = NN_TOK_FIRST;
  return 0;
}

/* the tables of n extra ids (text of each, the map) */
static int alloc_extra(nn_tok_t *t, int n) {
  t->text = calloc(n ? n : 1, sizeof *t->text), t->ntext = calloc(n ? n : 1, sizeof *t->ntext);
  if (!t->text || !t->ntext) return LATHE_ENOMEM;
  return map_init(&t->hkeys, &t->hvals, &t->hcap, (size_t)n);
}

int nn_tok_init_words(nn_tok_t *t, const char *const *words, int n) {
  memset(t, 0, sizeof *t);
  t->kind = NN_TOK_WORDS;
  t->words = calloc(n ? n : 1, sizeof *t->words);
  if (!t->words || alloc_extra(t, n)) goto oom;
  for (int i = 0; i < n; i++) {
    size_t len = strlen(words[i]);
    uint64_t h = hash_bytes((const uint8_t *)words[i], len);
    size_t s = map_slot(t->hkeys, t->hcap, h);
    if (t->hkeys[s]) continue; /* a repeated word keeps its first id */
    int id = t->n;
    t->words[id] = strdup(words[i]), t->text[id] = (uint8_t *)strdup(words[i]);
    if (!t->words[id] || !t->text[id]) {
      t->n = id + 1;
      goto oom;
    }
    t->ntext[id] = (int)len, t->hkeys[s] = h, t->hvals[s] = NN_TOK_FIRST + id, t->n++;
  }
  t->vocab = NN_TOK_FIRST + t->n;
  return 0;
oom:
  nn_tok_free(t);
  return LATHE_ENOMEM;
}

/* Id NN_TOK_FIRST + i is the merge of (a, b): record its bytes and its rank. */
static int add_merge(nn_tok_t *t, int i, int a, int b) {
  int la = a < NN_TOK_FIRST ? 1 : t->ntext[a - NN_TOK_FIRST];
  int lb = b < NN_TOK_FIRST ? 1 : t->ntext[b - NN_TOK_FIRST];
  uint8_t *txt = malloc((size_t)la + lb);
  if (!txt) return LATHE_ENOMEM;
  if (a < NN_TOK_FIRST)
    txt[0] = (uint8_t)(a - NN_TOK_BYTE0);
  else
    memcpy(txt, t->text[a - NN_TOK_FIRST], la);
  if (b < NN_TOK_FIRST)
    txt[la] = (uint8_t)(b - NN_TOK_BYTE0);
  else
    memcpy(txt + la, t->text[b - NN_TOK_FIRST], lb);
  t->text[i] = txt, t->ntext[i] = la + lb, t->n = i + 1;
  t->merges[2 * i] = a, t->merges[2 * i + 1] = b;
  uint64_t key = pair_key(a, b);
  size_t slot = map_slot(t->hkeys, t->hcap, key);
  t->hkeys[slot] = key, t->hvals[slot] = i; /* pair -> rank */
  return 0;
}

/* ---- pieces: a run of non-space bytes with at most one leading space, or whitespace ---- */

static int is_space(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* length of the piece starting at s[0] (n > 0) */
static size_t piece_len(const uint8_t *s, size_t n) {
  size_t i = 0;
  if (is_space(s[0]) && !(s[0] == ' ' && n > 1 && !is_space(s[1]))) {
    while (i < n && is_space(s[i])) i++;
    /* leave a last space to lead the next word */
    if (i < n && i > 1 && s[i - 1] == ' ') i--;
    return i;
  }
  if (s[0] == ' ') i = 1;
  while (i < n && !is_space(s[i])) i++;
  return i;
}

/* Merge every (a, b) in ids[0..n) into id; returns the new length. */
static int merge_pair(int *ids, int n, int a, int b, int id) {
  int w = 0;
  for (int r = 0; r < n; r++) {
    if (r + 1 < n && ids[r] == a && ids[r + 1] == b)
      ids[w++] = id, r++;
    else
      ids[w++] = ids[r];
  }
  return w;
}

/* BPE on one piece: repeatedly merge the lowest-ranked pair present */
static int bpe_piece(const nn_tok_t *t, int *ids, int n) {
  for (;;) {
    int best = -1;
    for (int i = 0; i + 1 < n; i++) {
      int32_t r = map_get(t, pair_key(ids[i], ids[i + 1]));
      if (r >= 0 && (best < 0 || r < best)) best = r;
    }
    if (best < 0) return n;
    n = merge_pair(ids, n, t->merges[2 * best], t->merges[2 * best + 1], NN_TOK_FIRST + best);
  }
}

int nn_tok_encode(const nn_tok_t *t, const char *str, size_t len, int *out, int max) {
  const uint8_t *s = (const uint8_t *)str;
  int total = 0, cap = 256, *ids = malloc(cap * sizeof *ids);
  if (!ids) return -1;
  for (size_t i = 0; i < len;) {
    size_t pl = t->kind == NN_TOK_BYTES ? len - i : piece_len(s + i, len - i);
    int n = 0;
    if (t->kind == NN_TOK_WORDS) { /* the word (without its leading space) or bytes */
      size_t lead = s[i] == ' ' && pl > 1 && !is_space(s[i + 1]);
      int32_t id = pl > lead ? map_get(t, hash_bytes(s + i + lead, pl - lead)) : -1;
      if (id >= 0 && !is_space(s[i + lead])) {
        if (lead) ids[n++] = NN_TOK_BYTE0 + ' ';
        ids[n++] = id;
        goto emit;
      }
    }
    if ((int)pl > cap) {
      int *ni = realloc(ids, pl * sizeof *ni);
      if (!ni) {
        free(ids);
        return -1;
      }
      ids = ni, cap = (int)pl;
    }
    for (size_t k = 0; k < pl; k++) ids[n++] = NN_TOK_BYTE0 + s[i + k];
    if (t->kind == NN_TOK_BPE) n = bpe_piece(t, ids, n);
  emit:
    for (int k = 0; k < n; k++, total++)
      if (total < max) out[total] = ids[k];
    i += pl;
  }
  free(ids);
  return total;
}

size_t nn_tok_decode(const nn_tok_t *t, const int *ids, int n, char *out, size_t cap) {
  size_t len = 0;
  for (int i = 0; i < n; i++) {
    int id = ids[i];
    const uint8_t *p = NULL;
    uint8_t byte;
    int k = 0;
    if (id >= NN_TOK_BYTE0 && id < NN_TOK_FIRST)
      byte = (uint8_t)(id - NN_TOK_BYTE0), p = &byte, k = 1;
    else if (id >= NN_TOK_FIRST && id < NN_TOK_FIRST + t->n)
      p = t->text[id - NN_TOK_FIRST], k = t->ntext[id - NN_TOK_FIRST];
    for (int j = 0; j < k; j++, len++)
      if (len + 1 < cap) out[len] = (char)p[j];
  }
  if (cap) out[len < cap ? len : cap - 1] = 0;
  return len;
}

/* ---- training ---------------------------------------------------------------------- */

typedef struct {
  int *ids, n;
  int64_t count;
} piece_t;

int nn_tok_train_bpe(nn_tok_t *t, const char *const *texts, int ntexts, int vocab) {
  memset(t, 0, sizeof *t);
  t->kind = NN_TOK_BPE;
  int want = vocab > NN_TOK_FIRST ? vocab - NN_TOK_FIRST : 0, rc = LATHE_ENOMEM;
  /* unique pieces with their counts */
  size_t total = 0;
  for (int i = 0; i < ntexts; i++) total += strlen(texts[i]);
  uint64_t *pk = NULL, *ck = NULL;
  int32_t *pv = NULL, *cv = NULL;
  size_t pcap, ccap = 0;
  piece_t *pieces = NULL;
  int np = 0, cappieces = 0;
  if (map_init(&pk, &pv, &pcap, total / 4 + 16)) goto out;
  for (int i = 0; i < ntexts; i++) {
    const uint8_t *s = (const uint8_t *)texts[i];
    size_t n = strlen(texts[i]);
    for (size_t at = 0; at < n;) {
      size_t pl = piece_len(s + at, n - at);
      uint64_t h = hash_bytes(s + at, pl);
      size_t slot = map_slot(pk, pcap, h);
      if (pk[slot]) { /* seen (a 64-bit hash collision would merge two pieces' counts) */
        pieces[pv[slot]].count++;
      } else {
        if (np == cappieces) {
          cappieces = cappieces ? 2 * cappieces : 1024;
          piece_t *npc = realloc(pieces, cappieces * sizeof *npc);
          if (!npc) goto out;
          pieces = npc;
        }
        pieces[np].ids = malloc(pl * sizeof(int)), pieces[np].n = (int)pl, pieces[np].count = 1;
        if (!pieces[np].ids) goto out;
        for (size_t k = 0; k < pl; k++) pieces[np].ids[k] = NN_TOK_BYTE0 + s[at + k];
        pk[slot] = h, pv[slot] = np++;
        if ((size_t)np * 2 > pcap) { /* grow: rehash */
          uint64_t *nk;
          int32_t *nv;
          size_t ncap;
          if (map_init(&nk, &nv, &ncap, (size_t)np * 2)) goto out;
          for (size_t j = 0; j < pcap; j++)
            if (pk[j]) {
              size_t d = map_slot(nk, ncap, pk[j]);
              nk[d] = pk[j], nv[d] = pv[j];
            }
          free(pk), free(pv);
          pk = nk, pv = nv, pcap = ncap;
        }
      }
      at += pl;
    }
  }
  t->merges = malloc((size_t)(want ? want : 1) * 2 * sizeof *t->merges);
  if (!t->merges || alloc_extra(t, want)) goto out;
  /* merges: count pairs over the unique pieces, weighted by their counts */
  size_t pairs = 0;
  for (int i = 0; i < np; i++) pairs += pieces[i].n;
  if (map_init(&ck, &cv, &ccap, pairs + 16)) goto out;
  int64_t *cnt = malloc(ccap * sizeof *cnt);
  if (!cnt) goto out;
  while (t->n < want) {
    memset(ck, 0, ccap * sizeof *ck);
    memset(cnt, 0, ccap * sizeof *cnt);
    for (int i = 0; i < np; i++)
      for (int k = 0; k + 1 < pieces[i].n; k++) {
        uint64_t key = pair_key(pieces[i].ids[k], pieces[i].ids[k + 1]);
        size_t slot = map_slot(ck, ccap, key);
        ck[slot] = key, cnt[slot] += pieces[i].count;
      }
    uint64_t best = 0;
    int64_t bc = 0;
    for (size_t j = 0; j < ccap; j++)
      if (ck[j] && (cnt[j] > bc || (cnt[j] == bc && ck[j] < best))) best = ck[j], bc = cnt[j];
    if (bc < 2) break;
    int a = (int)((best - 1) >> 32), b = (int)((best - 1) & 0xffffffffu), id = NN_TOK_FIRST + t->n;
    for (int i = 0; i < np; i++) pieces[i].n = merge_pair(pieces[i].ids, pieces[i].n, a, b, id);
    if (add_merge(t, t->n, a, b)) {
      free(cnt);
      goto out;
    }
  }
  free(cnt);
  t->vocab = NN_TOK_FIRST + t->n;
  rc = 0;
out:
  for (int i = 0; i < np; i++) free(pieces[i].ids);
  free(pieces), free(pk), free(pv), free(ck), free(cv);
  if (rc) nn_tok_free(t);
  return rc;
}

/* ---- serialisation ------------------------------------------------------------------- */

void nn_tok_save(const nn_tok_t *t, lathe_buf_t *b) {
  uint32_t magic = 0x4b4f544c, version = 1, kind = t->kind, n = (uint32_t)t->n; /* "LTOK" */
  LATHE_PUT(b, magic), LATHE_PUT(b, version), LATHE_PUT(b, kind), LATHE_PUT(b, n);
  if (t->kind == NN_TOK_BPE) lathe_buf_put(b, t->merges, (size_t)n * 2 * sizeof *t->merges);
  if (t->kind == NN_TOK_WORDS)
    for (int i = 0; i < t->n; i++) {
      uint32_t len = (uint32_t)strlen(t->words[i]);
      LATHE_PUT(b, len), lathe_buf_put(b, t->words[i], len);
    }
}

int nn_tok_load(nn_tok_t *t, lathe_buf_t *b) {
  uint32_t magic, version, kind, n;
  memset(t, 0, sizeof *t);
  LATHE_GET(b, magic), LATHE_GET(b, version), LATHE_GET(b, kind), LATHE_GET(b, n);
  if (b->err || magic != 0x4b4f544c || version != 1 || kind > NN_TOK_BPE || n > (1u << 24))
    return LATHE_ECKPT;
  /* allocations are sized by the bytes present: a word takes at least its
   * 4-byte length, a merge 8 bytes */
  if (kind != NN_TOK_BYTES && lathe_buf_left(b) / (kind == NN_TOK_WORDS ? 4 : 8) < n)
    return LATHE_ECKPT;
  if (kind == NN_TOK_BYTES) return nn_tok_init_bytes(t);
  if (kind == NN_TOK_WORDS) {
    char **w = calloc(n ? n : 1, sizeof *w);
    int rc = w ? 0 : LATHE_ENOMEM;
    for (uint32_t i = 0; i < n && !rc; i++) {
      uint32_t len;
      LATHE_GET(b, len);
      if (b->err || len > (1u << 20) || len > lathe_buf_left(b) || !(w[i] = calloc(len + 1, 1))) {
        rc = LATHE_ECKPT;
        break;
      }
      lathe_buf_get(b, w[i], len);
    }
    if (!rc && b->err) rc = LATHE_ECKPT;
    if (!rc) rc = nn_tok_init_words(t, (const char *const *)w, (int)n);
    for (uint32_t i = 0; w && i < n; i++) free(w[i]);
    free(w);
    return rc;
  }
  /* BPE: replay the merges */
  t->kind = NN_TOK_BPE;
  t->merges = malloc((size_t)(n ? n : 1) * 2 * sizeof *t->merges);
  if (!t->merges || alloc_extra(t, (int)n)) {
    nn_tok_free(t);
    return LATHE_ENOMEM;
  }
  lathe_buf_get(b, t->merges, (size_t)n * 2 * sizeof *t->merges);
  if (b->err) {
    nn_tok_free(t);
    return LATHE_ECKPT;
  }
  for (uint32_t i = 0; i < n; i++) {
    int a = t->merges[2 * i], c = t->merges[2 * i + 1];
    if (a < NN_TOK_BYTE0 || c < NN_TOK_BYTE0 || a >= NN_TOK_FIRST + (int)i ||
        c >= NN_TOK_FIRST + (int)i) {
      nn_tok_free(t);
      return LATHE_ECKPT;
    }
    if (add_merge(t, (int)i, a, c)) {
      nn_tok_free(t);
      return LATHE_ENOMEM;
    }
  }
  t->vocab = NN_TOK_FIRST + t->n;
  return 0;
}
