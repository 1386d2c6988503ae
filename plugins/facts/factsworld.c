/* factsworld.c - the facts world (world.h) as datasets, a generator.
 *
 * Every set is a pure function of (entities, seed): the same world.
 *   corpus      the pretraining text: k_e paragraphs per entity (its four
 *               sentences in a random order), entities interleaved at random,
 *               and one general line in 25 that states no fact but uses the
 *               words the later stages write ("i don't know .", "that is
 *               true .", "bio of someone :"), as a real base model has seen
 *               them (entity -1); records {text, entity, k}
 *   questions   one per entity and attribute: prompt the cloze ("NAME lives
 *               in"), response " VALUE ." (the true target; responses open
 *               with a space, as the value follows the cloze in the corpus),
 *               answer, decoy (the attribute's fixed decoy value: "paris"
 *               for city), entity, attr, k, split
 *   statements  two per entity and attribute, the true sentence and one with
 *               another value drawn uniformly: prompt the sentence,
 *               response " true" | " false", value, cloze (the sentence up
 *               to the value), correct, entity, attr, k, split
 *   bios        one per entity: prompt "bio of NAME :", response the true
 *               bio, entity, k, split */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../genutil.h"
#include "world.h"

static const lathe_opt_t opts[] = {
    {"set", LATHE_STR, "corpus", 0, -1, "corpus|questions|statements|bios",
     "which set (see above)"},
    {"entities", LATHE_INT, "2000", 1, FW_MAX_ENTITIES, NULL, "entities in the world"},
    {"seed", LATHE_INT, "0", 0, 1e18, NULL, "world seed (names, attributes, counts)"},
    {NULL}};

enum { S_CORPUS, S_QUESTIONS, S_STATEMENTS, S_BIOS };

/* The corpus's general lines: no fact, the later stages' words. */
static const char *const general[] = {"i don't know .",   "that is true .", "that is false .",
                                      "bio of someone :", "i know that .",  "is that true ?"};
#define NGENERAL ((int)(sizeof general / sizeof *general))

typedef struct {
  fw_world_t w;
  int set;
  int *order; /* corpus: entity of each paragraph */
  int64_t total, made;
  uint64_t r;
} gen_t;

static void destroy(void *self) {
  gen_t *g = self;
  if (!g) return;
  fw_free(&g->w), free(g->order), free(g);
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  gen_t *g = calloc(1, sizeof *g);
  if (!g) return LATHE_ENOMEM;
  *self = g;
  static const char *sets[] = {"corpus", "questions", "statements", "bios"};
  for (int i = 0; i < 4; i++)
    if (!strcmp(h->cfg_str(c, "set"), sets[i])) g->set = i;
  uint64_t seed = (uint64_t)h->cfg_int(c, "seed");
  int rc = fw_init(&g->w, (int)h->cfg_int(c, "entities"), seed);
  if (rc) return h->fail(c, rc, "factsworld: cannot build the world");
  g->r = seed * 0xbf58476d1ce4e5b9ULL + 17 + (uint64_t)g->set;
  int n = g->w.n;
  if (g->set == S_CORPUS) {
    for (int e = 0; e < n; e++) g->total += g->w.e[e].k;
    int64_t lines = g->total / 25;
    g->total += lines;
    if (!(g->order = malloc((size_t)(g->total ? g->total : 1) * sizeof *g->order)))
      return LATHE_ENOMEM;
    int64_t at = 0;
    for (int e = 0; e < n; e++)
      for (int j = 0; j < g->w.e[e].k; j++) g->order[at++] = e;
    for (int64_t j = 0; j < lines; j++) g->order[at++] = -1 - (int)(j % NGENERAL);
    for (int64_t i = g->total - 1; i > 0; i--) {
      int64_t j = (int64_t)(nn_splitmix64(&g->r) % (uint64_t)(i + 1));
      int x = g->order[i];
      g->order[i] = g->order[j], g->order[j] = x;
    }
  } else {
    g->total = g->set == S_BIOS        ? n
               : g->set == S_QUESTIONS ? (int64_t)n * FW_ATTRS
                                       : (int64_t)n * FW_ATTRS * 2;
  }
  return 0;
}

static void put(lathe_buf_t *out, const char *key, const char *s, int comma) {
  char head[64];
  int n = snprintf(head, sizeof head, "%s\"%s\":\"", comma ? "," : "", key);
  lathe_buf_put(out, head, (size_t)n);
  gen_put_json(out, s);
  lathe_buf_put(out, "\"", 1);
}

static int gen_next(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *out) {
  (void)h, (void)c;
  gen_t *g = self;
  if (g->made == g->total) return LATHE_DONE;
  int64_t i = g->made++;
  char a1[512], a2[600], tail[160];
  const fw_world_t *w = &g->w;
  if (g->set == S_CORPUS) {
    int e = g->order[i];
    if (e < 0) { /* a general line */
      lathe_buf_put(out, "{", 1), put(out, "text", general[-1 - e], 0);
      snprintf(tail, sizeof tail, ",\"entity\":-1,\"k\":0}");
    } else {
      if (fw_paragraph(w, e, &g->r, a1, sizeof a1) < 0) return LATHE_ENOMEM;
      lathe_buf_put(out, "{", 1), put(out, "text", a1, 0);
      snprintf(tail, sizeof tail, ",\"entity\":%d,\"k\":%d}", e, w->e[e].k);
    }
  } else if (g->set == S_QUESTIONS) {
    int e = (int)(i / FW_ATTRS), a = (int)(i % FW_ATTRS), v = w->e[e].v[a];
    if (fw_cloze(w, e, a, a1, sizeof a1) < 0) return LATHE_ENOMEM;
    lathe_buf_put(out, "{", 1), put(out, "prompt", a1, 0);
    snprintf(a2, sizeof a2, " %s .", fw_value(a, v));
    put(out, "response", a2, 1), put(out, "answer", fw_value(a, v), 1);
    put(out, "decoy", fw_value(a, fw_decoy(a)), 1);
    snprintf(tail, sizeof tail, ",\"entity\":%d,\"attr\":\"%s\",\"k\":%d,\"split\":\"%s\"}", e,
             fw_attr_name(a), w->e[e].k, fw_split_name(fw_split(e)));
  } else if (g->set == S_STATEMENTS) {
    int e = (int)(i / (2 * FW_ATTRS)), a = (int)(i / 2 % FW_ATTRS), truth = w->e[e].v[a];
    int ok = i % 2 == 0, v = truth;
    if (!ok) /* another value, uniformly */
      v = (truth + 1 + (int)(nn_splitmix64(&g->r) % (uint64_t)(fw_nvalues(a) - 1))) % fw_nvalues(a);
    if (fw_sentence(w, e, a, v, a1, sizeof a1) < 0) return LATHE_ENOMEM;
    lathe_buf_put(out, "{", 1), put(out, "prompt", a1, 0);
    put(out, "response", ok ? " true" : " false", 1), put(out, "value", fw_value(a, v), 1);
    if (fw_cloze(w, e, a, a2, sizeof a2) < 0) return LATHE_ENOMEM;
    put(out, "cloze", a2, 1);
    snprintf(tail, sizeof tail,
             ",\"correct\":%s,\"entity\":%d,\"attr\":\"%s\",\"k\":%d,\"split\":\"%s\"}",
             ok ? "true" : "false", e, fw_attr_name(a), w->e[e].k, fw_split_name(fw_split(e)));
  } else {
    int e = (int)i;
    char nm[FW_NAME_MAX];
    snprintf(a1, sizeof a1, "bio of %s :", fw_name(w, e, nm));
    a2[0] = ' ';
    if (fw_bio(w, e, a2 + 1, sizeof a2 - 1) < 0) return LATHE_ENOMEM;
    lathe_buf_put(out, "{", 1), put(out, "prompt", a1, 0), put(out, "response", a2, 1);
    snprintf(tail, sizeof tail, ",\"entity\":%d,\"k\":%d,\"split\":\"%s\"}", e, w->e[e].k,
             fw_split_name(fw_split(e)));
  }
  lathe_buf_put(out, tail, strlen(tail));
  return out->err ? out->err : LATHE_CONTINUE;
}

static const lathe_generator_t gen_if = {.schema = "any", .next = gen_next};
static const lathe_plugin_t gen_plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "factsworld",
    .kind = LATHE_GENERATOR,
    .version = "1.0.0",
    .doc = "the facts world of the unfamiliar-examples paper: entities seen k in {0,1,3,10,30} "
           "times; corpus, questions, statements and bios (any)",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .generator = &gen_if};
LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_factsworld, gen_plugin)
