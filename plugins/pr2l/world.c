/* world.c - PR2L's grid world (world.h). */
#include "world.h"

#include <stdio.h>
#include <string.h>

#include "../../workbench/nn/nn.h"

const char *const pw_types[PW_TYPES] = {"key", "ball", "box", "door", "gem", "tree"};

int pw_type(const char *name) {
  for (int k = 0; k < PW_TYPES; k++)
    if (!strcmp(name, pw_types[k])) return k;
  return -1;
}

void pw_layout(pw_layout_t *l, int G, int nobj, int target, uint64_t seed, int stream, uint64_t i) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL ^ (uint64_t)stream << 56 ^ i;
  nn_rng_t r;
  nn_rng_seed(&r, nn_splitmix64(&x));
  memset(l, 0, sizeof *l);
  l->G = G, l->nobj = nobj;
  int types[PW_TYPES], cells[PW_MAX_G * PW_MAX_G];
  for (int k = 0; k < PW_TYPES; k++) types[k] = k;
  for (int k = PW_TYPES - 1; k > 0; k--) { /* a shuffle of the types */
    int j = (int)nn_rng_below(&r, (uint32_t)k + 1), t = types[k];
    types[k] = types[j], types[j] = t;
  }
  if (target >= 0) /* the target among the first nobj, at a drawn place */
    for (int k = 0; k < PW_TYPES; k++)
      if (types[k] == target) {
        int j = (int)nn_rng_below(&r, (uint32_t)nobj);
        types[k] = types[j], types[j] = target;
        break;
      }
  for (int c = 0; c < G * G; c++) cells[c] = c;
  for (int k = 0; k < nobj; k++) {
    int j = k + (int)nn_rng_below(&r, (uint32_t)(G * G - k)), c = cells[j];
    cells[j] = cells[k], cells[k] = c;
    l->x[k] = (int8_t)(c % G), l->y[k] = (int8_t)(c / G), l->type[k] = (int8_t)types[k];
  }
}

static int object_at(const pw_layout_t *l, int x, int y) {
  for (int k = 0; k < l->nobj; k++)
    if (l->x[k] == x && l->y[k] == y) return k;
  return -1;
}

static int object_of(const pw_layout_t *l, int type) {
  for (int k = 0; k < l->nobj; k++)
    if (l->type[k] == type) return k;
  return -1;
}

void pw_start(const pw_layout_t *l, nn_rng_t *r, int *x, int *y) {
  do *x = (int)nn_rng_below(r, (uint32_t)l->G), *y = (int)nn_rng_below(r, (uint32_t)l->G);
  while (object_at(l, *x, *y) >= 0);
}

double pw_step(pw_state_t *s, int action, int target, int max_steps, int *term, int *trunc,
               int *success) {
  int G = s->lay.G;
  double r = 0.0;
  *term = *trunc = *success = 0;
  s->t++;
  if (action == PW_NORTH && s->ay < G - 1) s->ay++;
  if (action == PW_SOUTH && s->ay > 0) s->ay--;
  if (action == PW_EAST && s->ax < G - 1) s->ax++;
  if (action == PW_WEST && s->ax > 0) s->ax--;
  if (action == PW_INTERACT) {
    int o = object_at(&s->lay, s->ax, s->ay);
    if (o >= 0) {
      *term = 1;
      if (s->lay.type[o] == target) *success = 1, r = 1.0 - 0.9 * s->t / max_steps;
    }
  }
  if (!*term && s->t >= max_steps) *trunc = 1;
  return r;
}

int pw_describe(const pw_state_t *s, char *buf, size_t cap) {
  size_t n = (size_t)snprintf(buf, cap, "you %d %d .", s->ax, s->ay);
  for (int k = 0; k < s->lay.nobj && n < cap; k++)
    n += (size_t)snprintf(buf + n, cap - n, " %s %d %d .", pw_types[s->lay.type[k]], s->lay.x[k],
                          s->lay.y[k]);
  return n < cap ? (int)n : -1;
}

int pw_onehot_size(int G) {
  return G * G * (1 + PW_TYPES);
}

void pw_onehot(const pw_state_t *s, float *out) {
  int G = s->lay.G, K = 1 + PW_TYPES;
  memset(out, 0, (size_t)pw_onehot_size(G) * sizeof *out);
  out[(s->ay * G + s->ax) * K] = 1.0f;
  for (int k = 0; k < s->lay.nobj; k++)
    out[(s->lay.y[k] * G + s->lay.x[k]) * K + 1 + s->lay.type[k]] = 1.0f;
}

int pw_question(int q, int k, char *buf, size_t cap) {
  const char *t = k >= 0 && k < PW_TYPES ? pw_types[k] : "?";
  int n = q == PW_Q_WHERE   ? snprintf(buf, cap, "where is the %s ?", t)
          : q == PW_Q_IS    ? snprintf(buf, cap, "is there a %s ?", t)
          : q == PW_Q_HERE  ? snprintf(buf, cap, "what is here ?")
          : q == PW_Q_FAR   ? snprintf(buf, cap, "how far is the %s ?", t)
          : q == PW_Q_THINK ? snprintf(buf, cap, "think : where is the %s ?", t)
                            : -1;
  return n >= 0 && (size_t)n < cap ? n : -1;
}

static const char *dir_words(int dx, int dy) {
  static const char *const w[9] = {"south west", "south",      "south east", "west",      "here",
                                   "east",       "north west", "north",      "north east"};
  return w[3 * ((dy > 0) - (dy < 0) + 1) + (dx > 0) - (dx < 0) + 1];
}

int pw_direction(const pw_state_t *s, int k) {
  int o = object_of(&s->lay, k);
  if (o < 0) return -1;
  int dx = s->lay.x[o] - s->ax, dy = s->lay.y[o] - s->ay;
  return 3 * ((dy > 0) - (dy < 0) + 1) + (dx > 0) - (dx < 0) + 1;
}

int pw_answer(const pw_state_t *s, int q, int k, char *buf, size_t cap) {
  int o = k >= 0 && k < PW_TYPES ? object_of(&s->lay, k) : -1, n = -1;
  int dx = o >= 0 ? s->lay.x[o] - s->ax : 0, dy = o >= 0 ? s->lay.y[o] - s->ay : 0;
  if (q == PW_Q_WHERE) n = snprintf(buf, cap, "%s", o < 0 ? "none" : dir_words(dx, dy));
  if (q == PW_Q_IS) n = snprintf(buf, cap, "%s", o < 0 ? "no" : "yes");
  if (q == PW_Q_HERE) {
    int h = object_at(&s->lay, s->ax, s->ay);
    n = snprintf(buf, cap, "%s", h < 0 ? "nothing" : pw_types[s->lay.type[h]]);
  }
  if (q == PW_Q_FAR)
    n = o < 0 ? snprintf(buf, cap, "none")
              : snprintf(buf, cap, "%d steps", (dx < 0 ? -dx : dx) + (dy < 0 ? -dy : dy));
  if (q == PW_Q_THINK)
    n = o < 0 ? snprintf(buf, cap, "no %s , so none", pw_types[k])
              : snprintf(buf, cap, "%s at %d %d , you at %d %d , so %s", pw_types[k], s->lay.x[o],
                         s->lay.y[o], s->ax, s->ay, dir_words(dx, dy));
  return n >= 0 && (size_t)n < cap ? n : -1;
}
