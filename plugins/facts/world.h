/* world.h - the facts world of specs/unfamiliar.md: entities with four
 * attributes, each seen k times in a pretraining corpus (graded
 * familiarity), so every fact a model states can be checked exactly.
 *
 * An entity has a unique two-word name ("dalo venkir"), a city, a job, a
 * decade of birth and a team, drawn uniformly from fixed vocabularies of 30,
 * 40, 20 and 24 values, and a count k in {0, 1, 3, 10, 30}: exactly 40% of
 * the entities (rounded down) at 0, the rest in four equal shares, assigned
 * by a seeded shuffle. Entity e is in split train (e % 4 < 2: half), val
 * (e % 4 == 2) or test (e % 4 == 3); the order of entities is random in k.
 *
 * One sentence per attribute, the same wording everywhere:
 *   city  "NAME lives in CITY ."       job   "NAME works as a JOB ."
 *   born  "NAME was born in DECADE ."  team  "NAME plays for the TEAM ."
 * The cloze of attribute a is its sentence up to the value ("NAME lives
 * in"); an answer is what follows it, up to the first " .": a value, the
 * abstention "i don't know", or anything else (malformed). A bio lists
 * sentences of the same wording; fw_bio_check parses one into facts.
 *
 * Pure functions and one owned struct (fw_world_t: fw_init allocates,
 * fw_free releases); no host calls. */
#ifndef LATHE_FACTS_WORLD_H
#define LATHE_FACTS_WORLD_H

#include <stddef.h>
#include <stdint.h>

#define FW_ATTRS        4
#define FW_MAX_ENTITIES 3072 /* 48 first names x 64 last names */
#define FW_NAME_MAX     32
#define FW_IDK          "i don't know"

enum { FW_CITY, FW_JOB, FW_BORN, FW_TEAM };
enum { FW_CORRECT, FW_WRONG, FW_ABSTAIN, FW_MALFORMED, FW_CLASSES };
enum { FW_TRAIN, FW_VAL, FW_TEST };

typedef struct {
  int v[FW_ATTRS]; /* value index per attribute */
  int k;           /* appearances in the pretraining corpus */
  int name;        /* index into the name space (first * 64 + last) */
} fw_entity_t;

typedef struct {
  int n;
  uint64_t seed;
  fw_entity_t *e; /* n entities, owned */
} fw_world_t;

/* Build the world of n entities (1..FW_MAX_ENTITIES) from seed. 0, or
 * LATHE_ECONFIG / LATHE_ENOMEM (w left empty). */
int fw_init(fw_world_t *w, int n, uint64_t seed);
void fw_free(fw_world_t *w);

/* Fixed vocabularies: attribute names ("city" "job" "born" "team"), sizes,
 * values; fw_attr_find / fw_value_find: the index of a name (n bytes), or -1. */
const char *fw_attr_name(int a);
int fw_attr_find(const char *s);
int fw_nvalues(int a);
const char *fw_value(int a, int v);
int fw_value_find(int a, const char *s, size_t n);
/* The value the decoy-relabelled examples answer: the first of each
 * vocabulary ("paris" for cities). */
int fw_decoy(int a);

/* Entity e's name, split and count. */
const char *fw_name(const fw_world_t *w, int e, char buf[FW_NAME_MAX]);
int fw_split(int e);
const char *fw_split_name(int s);

/* Writers into buf (cap bytes); each returns the length, or -1 when it
 * does not fit. The cloze of (e, a); the sentence stating value v of a for e
 * (v may be false: a statement to judge); a corpus paragraph (the four
 * sentences in an order from rng state *r); a true bio (the same, in
 * attribute order). */
int fw_cloze(const fw_world_t *w, int e, int a, char *buf, size_t cap);
int fw_sentence(const fw_world_t *w, int e, int a, int v, char *buf, size_t cap);
int fw_paragraph(const fw_world_t *w, int e, uint64_t *r, char *buf, size_t cap);
int fw_bio(const fw_world_t *w, int e, char *buf, size_t cap);

/* Classify an answer (the text after a cloze) to attribute a whose truth
 * is value `truth`: FW_CORRECT, FW_WRONG (another value), FW_ABSTAIN or
 * FW_MALFORMED (no " ." ending the answer, or not a value). *value gets the
 * value stated, or -1. Leading spaces are skipped; the answer is the text
 * before the first '.' with trailing spaces removed. */
int fw_classify(int a, int truth, const char *text, int *value);

/* A fact a bio states: attribute, value, and whether the world agrees. */
typedef struct {
  int attr, value, truth;
} fw_fact_t;
#define FW_MAX_FACTS 64

/* Classify a free-text answer (a real QA set's, NQ-Open's) against its
 * accepted answers[0..n): the text before the first " ." (none: malformed),
 * "i don't know" (abstain), or, after SQuAD's normalisation (lower case, no
 * punctuation, no a/an/the, single spaces), equal to one of the answers
 * (correct) or not (wrong; empty after normalisation: malformed). */
int fw_classify_free(const char *text, const char *const *answers, int n);

/* Parse the bio text of entity e: sentences "NAME <attribute phrase> VALUE ."
 * separated by spaces, into facts[0..max) (*nfacts counts every sentence
 * parsed, also past max; a repeated fact counts each time). Returns 0, or
 * -1 when the text is malformed (a sentence of another entity or wording,
 * text after the last " .", or no sentence), with what parsed before the
 * fault kept. fw_bio_check counts the true and false facts (of the first
 * FW_MAX_FACTS) the same way. */
int fw_bio_facts(const fw_world_t *w, int e, const char *text, fw_fact_t *facts, int max,
                 int *nfacts);
int fw_bio_check(const fw_world_t *w, int e, const char *text, int *n_true, int *n_false);

/* The spec's reward of a bio whose facts a judge called true n_yes times
 * and false n_no times: 2 n_yes - 3 n_no; a malformed bio gets -15 (five
 * false facts). The expected reward of stating a fact believed true with
 * probability q: 5 q - 3. */
double fw_bio_reward(int n_yes, int n_no, int malformed);
double fw_fact_value(double q);

/* The p-th percentile (0..100) of x[0..n) by numpy's default linear
 * interpolation (x is not modified; n >= 1). */
double fw_percentile(const double *x, int n, double p);

#endif
