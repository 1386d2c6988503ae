/* tok.h - tokenizers: bytes, a word vocabulary over bytes, and byte-pair
 * encoding (BPE) with its trainer.
 *
 * Ids: 0 is <eos>, 1 is <pad>, 2..257 are the 256 bytes; words or BPE merges
 * follow from 258. Every tokenizer falls back to bytes, so encoding is exact
 * on any input, valid UTF-8 or not: decode(encode(s)) == s byte for byte.
 * BPE splits text into pieces first (a run of non-space bytes with at most one
 * leading space, or a run of whitespace) so merges never cross a word
 * boundary; training is deterministic (the most frequent pair wins, ties go
 * to the smallest pair of ids). A tokenizer serialises into a checkpoint.
 * Ownership: nn_tok_t owns its tables (nn_tok_free).
 */
#ifndef LATHE_NN_TOK_H
#define LATHE_NN_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "../lathe.h"

enum { NN_TOK_EOS = 0, NN_TOK_PAD = 1, NN_TOK_BYTE0 = 2, NN_TOK_FIRST = 258 };
typedef enum { NN_TOK_BYTES, NN_TOK_WORDS, NN_TOK_BPE } nn_tok_kind_t;

typedef struct nn_tok {
  nn_tok_kind_t kind;
  int vocab;       /* ids 0..vocab-1 */
  int n;           /* words or merges: id NN_TOK_FIRST + i */
  int32_t *merges; /* BPE: 2n ids, merge i joins (merges[2i], merges[2i+1]) */
  char **words;    /* WORDS: n strings */
  uint8_t **text;  /* every id above 257: its bytes (for decoding) */
  int *ntext;
  uint64_t *hkeys; /* hash: pair (a << 32 | b) or word hash -> id */
  int32_t *hvals;
  size_t hcap;
} nn_tok_t;

/* "bytes" | "words" | "bpe" -> kind, -1 if unknown. */
int nn_tok_parse(const char *name);
/* The byte tokenizer: vocab 258. */
int nn_tok_init_bytes(nn_tok_t *t);
/* A word vocabulary: each of words[0..n) (no whitespace inside) is one id;
 * anything else is spelled in bytes. */
int nn_tok_init_words(nn_tok_t *t, const char *const *words, int n);
/* Train BPE on texts[0..n) up to vocab ids (>= 258); stops early when no pair
 * occurs twice. Returns 0 or LATHE_ENOMEM. */
int nn_tok_train_bpe(nn_tok_t *t, const char *const *texts, int n, int vocab);
void nn_tok_free(nn_tok_t *t);

/* Encode len bytes of s; writes at most max ids and returns how many the
 * whole text takes (a return above max means out was truncated). */
int nn_tok_encode(const nn_tok_t *t, const char *s, size_t len, int *out, int max);
/* Decode ids into out (NUL-terminated, at most cap-1 bytes); <eos> and <pad>
 * decode to nothing. Returns the full decoded length. */
size_t nn_tok_decode(const nn_tok_t *t, const int *ids, int n, char *out, size_t cap);

void nn_tok_save(const nn_tok_t *t, lathe_buf_t *b);
/* Restore a tokenizer saved by nn_tok_save into an empty t. LATHE_ECKPT if malformed. */
int nn_tok_load(nn_tok_t *t, lathe_buf_t *b);

#endif
