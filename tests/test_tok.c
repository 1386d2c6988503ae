/* test_tok.c - tokenizers: exact round trips on arbitrary bytes (invalid
 * UTF-8 included), deterministic BPE training, serialisation. */
#include <stdlib.h>
#include <string.h>

#include "../workbench/nn/nn.h"
#include "../workbench/nn/tok.h"
#include "test.h"

static const char *corpus[] = {"the cat sat on the mat",
                               "the dog sat on the log",
                               "\n\nHuman: hello there\n\nAssistant: hi",
                               "thethethe   the  the\tthe",
                               "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 5",
                               "the cat and the dog"};
#define NC (int)(sizeof corpus / sizeof *corpus)

static void round_trip(const nn_tok_t *t, const char *s, size_t n) {
  int cap = (int)n * 2 + 8, *ids = malloc(cap * sizeof *ids);
  int k = nn_tok_encode(t, s, n, ids, cap);
  ASSERT(k >= 0 && k <= cap);
  for (int i = 0; i < k; i++) ASSERT(ids[i] >= 2 && ids[i] < t->vocab);
  char *back = malloc(n + 1);
  size_t m = nn_tok_decode(t, ids, k, back, n + 1);
  ASSERT_EQ(m, n);
  ASSERT(!memcmp(back, s, n));
  free(ids), free(back);
}

static void random_bytes(char *s, size_t n, nn_rng_t *r) {
  static const char pool[] = {' ',        ' ',        '\n',       't',        'h',  'e', 'a',
                              (char)0xc3, (char)0xa9, (char)0xff, (char)0x80, 0x01, '\t'};
  for (size_t i = 0; i < n; i++)
    s[i] =
        nn_rng_below(r, 4) ? pool[nn_rng_below(r, sizeof pool)] : (char)(1 + nn_rng_below(r, 255));
}

TEST(tok_round_trips) {
  nn_tok_t tb, tw, tp;
  const char *words[] = {"the", "cat", "dog", "sat"};
  ASSERT(!nn_tok_init_bytes(&tb));
  ASSERT(!nn_tok_init_words(&tw, words, 4));
  ASSERT(!nn_tok_train_bpe(&tp, corpus, NC, 300));
  ASSERT_EQ(tb.vocab, 258);
  ASSERT_EQ(tw.vocab, 262);
  nn_rng_t r;
  nn_rng_seed(&r, 5);
  char s[600];
  for (int trial = 0; trial < 200; trial++) {
    size_t n = nn_rng_below(&r, sizeof s);
    random_bytes(s, n, &r);
    round_trip(&tb, s, n), round_trip(&tw, s, n), round_trip(&tp, s, n);
  }
  for (int i = 0; i < NC; i++)
    round_trip(&tb, corpus[i], strlen(corpus[i])), round_trip(&tw, corpus[i], strlen(corpus[i])),
        round_trip(&tp, corpus[i], strlen(corpus[i]));
  /* words are single ids; the space before a word is its own byte token */
  int ids[16];
  ASSERT_EQ(nn_tok_encode(&tw, "the cat", 7, ids, 16), 3);
  ASSERT_EQ(ids[0], NN_TOK_FIRST + 0);
  ASSERT_EQ(ids[1], NN_TOK_BYTE0 + ' ');
  ASSERT_EQ(ids[2], NN_TOK_FIRST + 1);
  /* truncation reports the full length */
  ASSERT_EQ(nn_tok_encode(&tb, "abcdef", 6, ids, 2), 6);
  /* specials decode to nothing */
  int sp[3] = {NN_TOK_BYTE0 + 'a', NN_TOK_EOS, NN_TOK_PAD};
  char out[8];
  ASSERT_EQ(nn_tok_decode(&tb, sp, 3, out, sizeof out), 1);
  ASSERT_STR(out, "a");
  nn_tok_free(&tb), nn_tok_free(&tw), nn_tok_free(&tp);
}

TEST(tok_bpe_deterministic_and_compresses) {
  nn_tok_t a, b, c;
  ASSERT(!nn_tok_train_bpe(&a, corpus, NC, 320));
  ASSERT(!nn_tok_train_bpe(&b, corpus, NC, 320));
  ASSERT_EQ(a.n, b.n);
  ASSERT(a.n > 10);
  ASSERT(!memcmp(a.merges, b.merges, (size_t)a.n * 2 * sizeof *a.merges));
  /* the most frequent pairs are 't' 'h' and 'h' 'e' (every "the"), tied: the smaller
   * pair of ids goes first; a piece never has a space after its first byte */
  ASSERT_EQ(a.merges[0], NN_TOK_BYTE0 + 'h');
  ASSERT_EQ(a.merges[1], NN_TOK_BYTE0 + 'e');
  for (int i = 0; i < a.n; i++)
    for (int k = 1; k < a.ntext[i]; k++) ASSERT(a.text[i][k] != ' ');
  int ids[64];
  int k = nn_tok_encode(&a, "the cat sat on the mat", 22, ids, 64);
  ASSERT(k < 12); /* fewer ids than bytes */
  /* save / load gives the same encoder */
  lathe_buf_t buf = {0};
  nn_tok_save(&a, &buf);
  buf.off = 0;
  ASSERT(!nn_tok_load(&c, &buf));
  ASSERT_EQ(c.vocab, a.vocab);
  int ids2[64];
  ASSERT_EQ(nn_tok_encode(&c, "the cat sat on the mat", 22, ids2, 64), k);
  ASSERT(!memcmp(ids, ids2, k * sizeof *ids));
  /* a corrupt table is refused */
  ((int32_t *)(buf.p + 16))[0] = 999999;
  buf.off = 0;
  nn_tok_t d;
  ASSERT_EQ(nn_tok_load(&d, &buf), LATHE_ECKPT);
  lathe_buf_free(&buf);
  nn_tok_free(&a), nn_tok_free(&b), nn_tok_free(&c);
}
