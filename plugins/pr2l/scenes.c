/* scenes.c - the scenes generator: text about grid-world scenes to train
 * PR2L's frozen world model on (sft schema). A record is a scene's
 * description and a question, and the world's answer (world.h):
 *
 *     {"prompt": "you 2 3 . key 4 1 . ball 0 0 .\nwhere is the key ?\n",
 *      "response": "south east"}
 *
 * Scenes come from their own layout stream (2), any types, the agent
 * anywhere; questions: where 35%, think 25%, far 20%, is 10%, here 10%, about
 * a type in the scene three times in four. The model so learns the world's
 * semantics for every layout, the RL task's held-out ones included, as a
 * pretrained VLM knows scenes its policy never trained on. */
#include <stdio.h>
#include <string.h>

#include "world.h"
#include "../../workbench/lathe.h"
#include "../genutil.h"
#include "../../workbench/nn/nn.h"

static const lathe_opt_t opts[] = {
    {"n", LATHE_INT, "20000", 1, 1e8, NULL, "records to make"},
    {"size", LATHE_INT, "5", 2, PW_MAX_G, NULL, "grid side G"},
    {"objects", LATHE_INT, "3", 1, PW_TYPES, NULL, "objects per scene"},
    {"seed", LATHE_INT, "0", 0, 1e18, NULL, "generator seed"},
    {NULL}};

typedef struct {
  nn_rng_t rng;
  int G, nobj;
  uint64_t seed;
  int64_t total, made;
} scenes_t;

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  scenes_t *s = calloc(1, sizeof *s);
  if (!s) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = s;
  s->G = (int)h->cfg_int(c, "size"), s->nobj = (int)h->cfg_int(c, "objects");
  s->total = h->cfg_int(c, "n"), s->seed = (uint64_t)h->cfg_int(c, "seed");
  if (s->nobj > s->G * s->G)
    return h->fail(c, LATHE_ECONFIG, "scenes: %d objects do not fit a %dx%d grid", s->nobj, s->G,
                   s->G);
  uint64_t x = s->seed ^ 0x7363656e6573ULL;
  nn_rng_seed(&s->rng, nn_splitmix64(&x));
  return 0;
}

static int gen_next(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *out) {
  (void)h, (void)c;
  scenes_t *s = self;
  if (s->made == s->total) return LATHE_DONE;
  pw_state_t st = {0};
  pw_layout(&st.lay, s->G, s->nobj, -1, s->seed, 2, (uint64_t)s->made++);
  st.ax = (int)nn_rng_below(&s->rng, (uint32_t)s->G), st.ay = (int)nn_rng_below(&s->rng, s->G);
  uint32_t u = nn_rng_below(&s->rng, 100);
  int q = u < 35   ? PW_Q_WHERE
          : u < 60 ? PW_Q_THINK
          : u < 80 ? PW_Q_FAR
          : u < 90 ? PW_Q_IS
                   : PW_Q_HERE;
  int k = nn_rng_below(&s->rng, 4) ? st.lay.type[nn_rng_below(&s->rng, (uint32_t)s->nobj)]
                                   : (int)nn_rng_below(&s->rng, PW_TYPES);
  char d[256], qt[64], a[128];
  if (pw_describe(&st, d, sizeof d) < 0 || pw_question(q, k, qt, sizeof qt) < 0 ||
      pw_answer(&st, q, k, a, sizeof a) < 0)
    return h->fail(c, LATHE_EPLUGIN, "scenes: a scene did not fit its buffer");
  lathe_buf_put(out, "{\"prompt\":\"", 11);
  gen_put_json(out, d), gen_put_json(out, "\n"), gen_put_json(out, qt), gen_put_json(out, "\n");
  lathe_buf_put(out, "\",\"response\":\"", 14);
  gen_put_json(out, a);
  lathe_buf_put(out, "\"}", 2);
  return out->err ? out->err : LATHE_CONTINUE;
}

static void destroy(void *self) {
  free(self);
}

static const lathe_generator_t gen_if = {.schema = "sft", .next = gen_next};
static const lathe_plugin_t plugin = {.major = LATHE_API_MAJOR,
                                      .minor = LATHE_API_TARGET,
                                      .name = "scenes",
                                      .kind = LATHE_GENERATOR,
                                      .version = "1.0.0",
                                      .doc = "grid-world scenes with questions and answers, to "
                                             "train PR2L's world model (sft)",
                                      .opts = opts,
                                      .nn_abi = NN_ABI,
                                      .create = create,
                                      .destroy = destroy,
                                      .generator = &gen_if};
LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_scenes, plugin)
