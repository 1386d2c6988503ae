/* world.h - PR2L's grid world (specs/pr2l.md, "Small-scale faithful
 * reproduction"): a G x G grid holding a few typed objects, one of them the
 * target type; the agent moves north, south, east or west (a wall keeps it
 * in place) or interacts. Interacting on the target ends the episode with
 * reward 1 - 0.9 t / max_steps (t: steps taken, MiniGrid's form);
 * interacting on another object ends it with 0; interacting on an empty
 * cell does nothing; max_steps truncates.
 *
 * Coordinates are (x, y): x grows to the east, y to the north. A layout is
 * the objects (distinct cells, distinct types, the target once, in an order
 * drawn with them); the agent's start is drawn per episode. Layouts come
 * from numbered streams so training and held-out layouts never coincide.
 *
 * The observation exists twice: a one-hot grid (pw_onehot: G*G cells x
 * (agent + PW_TYPES) channels) and text (pw_describe: "you 2 3 . key 4 1 .
 * ball 0 0 ."). pw_answer answers the questions the world model is taught
 * about a scene; it is the rule the scenes generator writes its records by.
 * Everything here is a pure function of its arguments. */
#ifndef LATHE_PR2L_WORLD_H
#define LATHE_PR2L_WORLD_H

#include <stddef.h>
#include <stdint.h>

#define PW_MAX_G   8
#define PW_TYPES   6 /* key ball box door gem tree */
#define PW_ACTIONS 5 /* north south east west interact */

enum { PW_NORTH, PW_SOUTH, PW_EAST, PW_WEST, PW_INTERACT };
/* The question kinds (pw_question writes their text). */
enum { PW_Q_WHERE, PW_Q_IS, PW_Q_HERE, PW_Q_FAR, PW_Q_THINK, PW_NQ };

extern const char *const pw_types[PW_TYPES];

typedef struct {
  int G, nobj;
  int8_t x[PW_TYPES], y[PW_TYPES], type[PW_TYPES];
} pw_layout_t;

typedef struct {
  pw_layout_t lay;
  int ax, ay, t;
} pw_state_t;

/* A type's index by name, -1 if unknown. */
int pw_type(const char *name);
/* Layout i of stream `stream` (0: training, 1: held-out, 2+: free for
 * generators) of world `seed`: nobj objects (1..PW_TYPES) of distinct types,
 * one of them `target` (or any types when target < 0), on distinct cells. */
void pw_layout(pw_layout_t *l, int G, int nobj, int target, uint64_t seed, int stream, uint64_t i);
/* A start on an empty cell of l drawn from r (nn_rng_t *), into *x, *y. */
struct nn_rng;
void pw_start(const pw_layout_t *l, struct nn_rng *r, int *x, int *y);
/* One step; returns the reward; *term: the episode ended by interacting;
 * *success: on the target; *trunc: t reached max_steps. */
double pw_step(pw_state_t *s, int action, int target, int max_steps, int *term, int *trunc,
               int *success);
/* The scene as text into buf (NUL-terminated); returns its length, or -1 if
 * cap is too small. */
int pw_describe(const pw_state_t *s, char *buf, size_t cap);
/* n = G*G*(1 + PW_TYPES) floats: cell (x, y) channel 0 the agent, channel
 * 1 + k an object of type k. */
void pw_onehot(const pw_state_t *s, float *out);
int pw_onehot_size(int G);
/* The question of kind q about type k as text ("where is the key ?"). */
int pw_question(int q, int k, char *buf, size_t cap);
/* The answer the world gives (what the world model is taught): where:
 * "north east" | "south" | ... | "here" | "none"; is: "yes" | "no"; here:
 * the type under the agent or "nothing"; far: "3 steps" | "0 steps" |
 * "none"; think: "key at 4 1 , you at 2 3 , so south east" (or "no key ,
 * so none"). Returns the length or -1. */
int pw_answer(const pw_state_t *s, int q, int k, char *buf, size_t cap);
/* The relative position of type k's object as one of 9 classes
 * (3 (sign dy + 1) + sign dx + 1; 4: here), or -1 if absent: the label of
 * the offline prompt evaluation. */
int pw_direction(const pw_state_t *s, int k);

#endif
