/* replay.c - the replay buffer of off-policy RL (dqn, sac/cql/calql): a ring
 * of transitions, checkpointed whole (nn.h). */
#include <stdlib.h>
#include <string.h>

#include "nn.h"

int nn_replay_init(nn_replay_t *b, int64_t cap, int O, int A, int with_G) {
  memset(b, 0, sizeof *b);
  b->cap = cap, b->O = O, b->A = A;
  if (cap < 1 || O < 1 || A < 1 || (uint64_t)cap > SIZE_MAX / sizeof(float) / (size_t)(O + A))
    return LATHE_ENOMEM;
  size_t n = (size_t)cap;
  b->obs = malloc(sizeof(float) * n * O), b->next = malloc(sizeof(float) * n * O);
  b->act = malloc(sizeof(float) * n * A), b->rew = malloc(sizeof(float) * n);
  b->term = malloc(n);
  if (with_G) b->G = malloc(sizeof(float) * n);
  return b->obs && b->next && b->act && b->rew && b->term && (!with_G || b->G) ? 0 : LATHE_ENOMEM;
}

void nn_replay_free(nn_replay_t *b) {
  free(b->obs), free(b->next), free(b->act), free(b->rew), free(b->G), free(b->term);
  memset(b, 0, sizeof *b);
}

void nn_replay_add(nn_replay_t *b, const float *o, const float *a, float r, const float *next,
                   int term, float G) {
  size_t i = (size_t)b->pos, O = (size_t)b->O, A = (size_t)b->A;
  memcpy(b->obs + i * O, o, sizeof(float) * O), memcpy(b->next + i * O, next, sizeof(float) * O);
  memcpy(b->act + i * A, a, sizeof(float) * A);
  b->rew[i] = r, b->term[i] = (uint8_t)(term != 0);
  if (b->G) b->G[i] = G;
  b->pos = (b->pos + 1) % b->cap;
  if (b->size < b->cap) b->size++;
}

void nn_replay_save(const nn_replay_t *b, lathe_buf_t *out) {
  size_t n = (size_t)b->size, O = (size_t)b->O, A = (size_t)b->A, f = sizeof(float);
  LATHE_PUT(out, b->size), LATHE_PUT(out, b->pos);
  lathe_buf_put(out, b->obs, f * n * O), lathe_buf_put(out, b->next, f * n * O);
  lathe_buf_put(out, b->act, f * n * A), lathe_buf_put(out, b->rew, f * n);
  lathe_buf_put(out, b->term, n);
  if (b->G) lathe_buf_put(out, b->G, f * n);
}

const char *nn_replay_load(nn_replay_t *b, lathe_buf_t *in) {
  int64_t size, pos;
  LATHE_GET(in, size), LATHE_GET(in, pos);
  if (in->err) return "truncated before the replay buffer";
  if (size < 0 || size > b->cap) return "replay buffer 'size' outside [0, buffer capacity]";
  if (pos < 0 || pos >= b->cap || (size < b->cap && pos != size))
    return "replay buffer 'pos' does not fit its size";
  size_t n = (size_t)size, O = (size_t)b->O, A = (size_t)b->A, f = sizeof(float);
  size_t row = f * (2 * O + A + 1 + (b->G ? 1 : 0)) + 1;
  if (lathe_buf_left(in) / row < n) return "fewer bytes than the replay buffer's transitions";
  lathe_buf_get(in, b->obs, f * n * O), lathe_buf_get(in, b->next, f * n * O);
  lathe_buf_get(in, b->act, f * n * A), lathe_buf_get(in, b->rew, f * n);
  lathe_buf_get(in, b->term, n);
  if (b->G) lathe_buf_get(in, b->G, f * n);
  if (in->err) return "truncated replay buffer";
  for (size_t i = 0; i < n; i++)
    if (b->term[i] > 1) return "a replay buffer terminal flag other than 0 or 1";
  b->size = size, b->pos = pos;
  return NULL;
}
