/* factqa.c - what a language model says about the facts world, counted
 * (specs/unfamiliar.md).
 *
 * From the text model of init_run, each step takes `chunk` records of
 * `dataset` (a factsworld set, or a recipe's copy of one) in order:
 *   mode = sample  samples `samples` continuations of the record's `field`
 *                  (a factsworld question's prompt is its cloze, "NAME lives
 *                  in": the base model's familiarity and a fine-tuned
 *                  model's answers both continue it) at `temperature`, `max_tokens`
 *                  each, on both cores (two shards with streams of their
 *                  own: the same samples on 1 or 2 threads), and classifies
 *                  each against the record's answer for its attr: correct,
 *                  wrong (another value), abstain ("i don't know"),
 *                  malformed. Records need field, answer and attr; or, for
 *                  a real QA set (NQ-Open), field and answer as a list of
 *                  accepted strings (1 to 64), matched after SQuAD's
 *                  normalisation (fw_classify_free; answers then read
 *                  "<correct>" or "<wrong>").
 *   mode = judge   P(true) of each record by a generative True/False judge
 *                  (judge.h: an sft run on labelled claims), in the form
 *                  `judge_form`: the record's `field` (a statement)
 *                  continued by " true" or " false", or its cloze by
 *                  " VALUE ." or " not VALUE ." (negation: records need
 *                  cloze and value). `correct` (a boolean), when present,
 *                  scores the verdicts.
 * Counts accumulate in the checkpoint, so a resumed run never redoes a
 * chunk; the last step writes one record per input record as dataset `out`
 * (schema any): i, entity, attr, k, split (copied when present), and
 *   sample: n, correct, wrong, abstain, malformed, answers (the value said,
 *           "<idk>" or "<malformed>" per sample), unfamiliarity (n -
 *           correct) and unfamiliar: correct below the 40th percentile of
 *           the correct counts over the records of split train (all records
 *           when none is), numpy's linear interpolation, strict <
 *   judge:  correct (when given) and p_true
 *   bio:    (mode = bio: samples `samples` bios of each record's entity from
 *           its prompt, "bio of NAME :", and checks every fact against the
 *           world of `entities` and `world`, factsworld's options) n, true
 *           and false facts of the well-formed bios, malformed (bios that
 *           do not parse or were cut off at max_tokens), bios (the texts)
 *           and facts (each well-formed bio's statements, "NAME lives in
 *           paris .", with cloze, value and truth: the conservative
 *           reward model's data). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../textdata.h"
#include "judge.h"
#include "world.h"

#define FQ_SHARDS 2 /* sampling shards: the same samples on 1 or 2 threads */

static const lathe_opt_t opts[] = {
    {"dataset", LATHE_STR, "", 0, 0, NULL, "the records (a factsworld set or a copy)"},
    {"init_run", LATHE_INT, "0", 0, 4e9, NULL, "the run whose language model answers"},
    {"mode", LATHE_STR, "sample", 0, -1, "sample|judge|bio",
     "sample answers, P(true) of a judge, or sample bios and check their facts"},
    {"field", LATHE_STR, "prompt", 0, 0, NULL, "the field continued (sample, bio) or judged"},
    {"judge_form", LATHE_STR, "statement", 0, -1, "statement|negation",
     "judge: \" true\"/\" false\" after the statement, or \" VALUE .\"/\" not VALUE .\" after "
     "the cloze (records with cloze and value; judge.h)"},
    {"samples", LATHE_INT, "12", 1, 256, NULL, "sample: continuations per record"},
    {"temperature", LATHE_NUM, "1", 0, 10, NULL, "sample: temperature (0: greedy)"},
    {"max_tokens", LATHE_INT, "8", 1, 256, NULL, "sample: tokens per continuation at most"},
    {"records", LATHE_INT, "0", 0, 1e9, NULL, "use the first N records (0: all)"},
    {"chunk", LATHE_INT, "64", 1, 65536, NULL, "records per step (and per checkpointed chunk)"},
    {"out", LATHE_STR, "", 0, 0, NULL, "the dataset written (default factqa-RUN)"},
    {"entities", LATHE_INT, "2000", 1, FW_MAX_ENTITIES, NULL, "bio: the world's entities"},
    {"world", LATHE_INT, "0", 0, 1e18, NULL, "bio: the world's seed (factsworld's seed)"},
    {NULL}};

enum { M_SAMPLE, M_JUDGE, M_BIO };
enum { ANS_CORRECT_FREE = -4, ANS_WRONG_FREE = -3, ANS_IDK = -2, ANS_MALFORMED = -1 };

typedef struct {
  char *text, *entity, *split; /* entity and split: JSON text, or NULL */
  char *value;                 /* judge, negation form */
  int attr, truth, k, correct; /* correct: -1 unknown */
  char **alias;                /* free-text QA: the accepted answers (nalias), else NULL */
  int nalias;
  int e; /* bio: the entity */
} fq_rec_t;

typedef struct {
  fj_t m; /* the model (its tokenizer and GPT): a judge in mode judge */
  int mode, S, max_new, chunk, negation;
  float temp;
  fq_rec_t *r;
  int64_t n, next;
  nn_rng_t rng[FQ_SHARDS];
  int32_t *cnt;  /* n x FW_CLASSES; bio: true facts, false facts, malformed bios, 0 */
  int16_t *ans;  /* n x S: value, ANS_IDK or ANS_MALFORMED */
  double *ptrue; /* judge: n */
  char **bio;    /* bio: n records' bios and facts (JSON members) */
  fw_world_t w;  /* bio */
} fq_t;

static void destroy(void *self) {
  fq_t *s = self;
  if (!s) return;
  for (int64_t i = 0; s->r && i < s->n; i++)
    free(s->r[i].text), free(s->r[i].entity), free(s->r[i].split), free(s->r[i].value);
  for (int64_t i = 0; s->r && i < s->n; i++) {
    for (int j = 0; j < s->r[i].nalias; j++) free(s->r[i].alias[j]);
    free(s->r[i].alias);
  }
  for (int64_t i = 0; s->bio && i < s->n; i++) free(s->bio[i]);
  free(s->r), free(s->cnt), free(s->ans), free(s->ptrue), free(s->bio), fw_free(&s->w);
  fj_free(&s->m);
  free(s);
}

static char *json_copy(json_object *o, const char *k) { /* the value's JSON text */
  json_object *v;
  if (!json_object_object_get_ex(o, k, &v)) return NULL;
  return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

static int read_records(fq_t *s, const lathe_host_t *h, lathe_ctx_t *c, const char *ds,
                        const char *field, int64_t limit) {
  int64_t n = h->dataset_count(c, ds);
  if (n < 0) return (int)n;
  if (limit > 0 && n > limit) n = limit;
  if (!n) return h->fail(c, LATHE_EDATA, "factqa: dataset '%s' is empty", ds);
  if (!(s->r = calloc((size_t)n, sizeof *s->r))) return h->fail(c, LATHE_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    char *js = h->dataset_get(c, ds, i);
    json_object *o = js ? json_tokener_parse(js) : NULL, *v;
    free(js);
    fq_rec_t *r = &s->r[i];
    s->n = i + 1;
    const char *t = o ? tx_field(o, field) : NULL;
    const char *ans = o ? tx_field(o, "answer") : NULL, *at = o ? tx_field(o, "attr") : NULL;
    const char *val = o ? tx_field(o, "value") : NULL;
    r->attr = fw_attr_find(at), r->truth = ans ? fw_value_find(r->attr, ans, strlen(ans)) : -1;
    r->correct = o && json_object_object_get_ex(o, "correct", &v) &&
                         json_object_is_type(v, json_type_boolean)
                     ? json_object_get_boolean(v)
                     : -1;
    r->k = o && json_object_object_get_ex(o, "k", &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int(v)
               : -1;
    r->e = o && json_object_object_get_ex(o, "entity", &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int(v)
               : -1;
    int nfree = -1; /* free-text QA: "answer" is a list of accepted strings */
    if (o && s->mode == M_SAMPLE && json_object_object_get_ex(o, "answer", &v) &&
        json_object_is_type(v, json_type_array)) {
      int m = (int)json_object_array_length(v);
      nfree = m > 0 && m <= 64 ? m : 0;
      for (int j = 0; j < nfree; j++)
        if (!json_object_is_type(json_object_array_get_idx(v, (size_t)j), json_type_string))
          nfree = 0;
      if (nfree > 0 && !(r->alias = calloc((size_t)nfree, sizeof *r->alias))) nfree = 0;
      for (int j = 0; r->alias && j < nfree; j++) {
        r->alias[j] = strdup(json_object_get_string(json_object_array_get_idx(v, (size_t)j)));
        if (r->alias[j]) r->nalias++;
      }
      if (r->alias && r->nalias < nfree)
        return (json_object_put(o), h->fail(c, LATHE_ENOMEM, "out of memory"));
    }
    char fieldwhy[96], ewhy[96];
    snprintf(ewhy, sizeof ewhy, "no entity, or one outside the world's %d", s->w.n);
    snprintf(fieldwhy, sizeof fieldwhy, "no text in field '%s' (%s)", field,
             s->negation ? "judge_form = negation" : "option field");
    const char *why = !o                    ? "not a JSON object"
                      : !t                  ? fieldwhy
                      : s->negation && !val ? "no value (judge_form = negation)"
                      : s->mode == M_JUDGE  ? NULL
                      : s->mode == M_BIO    ? (r->e < 0 || r->e >= s->w.n ? ewhy : NULL)
                      : nfree > 0           ? NULL
                      : nfree == 0          ? "its answer list is empty or holds a non-string"
                      : !at                 ? "no attr"
                      : r->attr < 0         ? "attr is not city, job, born or team"
                      : !ans                ? "no answer"
                      : r->truth < 0        ? "answer is not a value of its attr"
                                            : NULL;
    if (why) {
      json_object_put(o);
      return h->fail(c, LATHE_EDATA, "factqa: dataset '%s' record %lld: %s", ds, (long long)i, why);
    }
    r->text = strdup(t), r->entity = json_copy(o, "entity"), r->split = json_copy(o, "split");
    if (s->negation && !(r->value = strdup(val))) r->text = (free(r->text), NULL);
    json_object_put(o);
    if (!r->text) return h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  return 0;
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  fq_t *s = calloc(1, sizeof *s);
  if (!s) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = s;
  const char *mode = h->cfg_str(c, "mode");
  s->mode = !strcmp(mode, "judge") ? M_JUDGE : !strcmp(mode, "bio") ? M_BIO : M_SAMPLE;
  s->S = s->mode != M_JUDGE ? (int)h->cfg_int(c, "samples") : 1;
  if (s->mode == M_BIO &&
      fw_init(&s->w, (int)h->cfg_int(c, "entities"), (uint64_t)h->cfg_int(c, "world")))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  s->max_new = (int)h->cfg_int(c, "max_tokens"), s->chunk = (int)h->cfg_int(c, "chunk");
  s->temp = (float)h->cfg_num(c, "temperature");
  const char *ds = h->cfg_str(c, "dataset");
  if (!*ds) return h->fail(c, LATHE_ECONFIG, "factqa: no dataset given (dataset = NAME)");
  int rc = tx_model_of_run(h, c, "init_run", (uint32_t)h->cfg_int(c, "init_run"),
                           " (factqa reads and writes text)", &s->m.tok, &s->m.g);
  if (rc) return rc;
  s->negation = s->mode == M_JUDGE && !strcmp(h->cfg_str(c, "judge_form"), "negation");
  const char *field = s->negation ? "cloze" : h->cfg_str(c, "field");
  if ((rc = read_records(s, h, c, ds, field, h->cfg_int(c, "records")))) return rc;
  if (s->mode != M_JUDGE && s->max_new >= s->m.g.cfg.ctx)
    return h->fail(c, LATHE_ECONFIG, "factqa: max_tokens %d leaves no room in a context of %d",
                   s->max_new, s->m.g.cfg.ctx);
  s->cnt = calloc((size_t)s->n * FW_CLASSES, sizeof *s->cnt);
  s->ans = calloc((size_t)s->n * s->S, sizeof *s->ans);
  s->ptrue = calloc((size_t)s->n, sizeof *s->ptrue), s->bio = calloc((size_t)s->n, sizeof *s->bio);
  if (!s->cnt || !s->ans || !s->ptrue || !s->bio) return h->fail(c, LATHE_ENOMEM, "out of memory");
  uint64_t seed = h->seed(c);
  for (int k = 0; k < FQ_SHARDS; k++) nn_rng_seed(&s->rng[k], seed * 0x9e3779b97f4a7c15ULL + k);
  h->set_total(c, (s->n + s->chunk - 1) / s->chunk);
  h->log(c, "%lld records, %s", (long long)s->n,
         s->mode == M_JUDGE ? "P(true) of each"
         : s->mode == M_BIO ? "sampled bios checked"
                            : "sampled answers counted");
  return 0;
}

/* Bio mode: each record's S sampled bios (out, ol) parsed into facts and
 * checked against the world; counts into cnt, the texts and the facts of
 * the well-formed bios (as statements with their truth) into bio[i]. */
static int check_bios(fq_t *s, int64_t i0, int P, const int *out, const int *ol, char *text) {
  int S = s->S, M = s->max_new;
  for (int p = 0; p < P; p++) {
    int64_t i = i0 + p;
    int e = s->r[i].e;
    json_object *o = json_object_new_object(), *bios = json_object_new_array(),
                *facts = json_object_new_array();
    for (int j = 0; j < S; j++) {
      int b = p * S + j, n;
      nn_tok_decode(&s->m.tok, out + (size_t)b * M, ol[b], text, (size_t)M * 64 + 1);
      json_object_array_add(bios, json_object_new_string(text));
      fw_fact_t f[FW_MAX_FACTS];
      int bad = fw_bio_facts(&s->w, e, text, f, FW_MAX_FACTS, &n) != 0 ||
                (ol[b] == M && out[(size_t)b * M + M - 1] != NN_TOK_EOS); /* cut off */
      if (bad) {
        s->cnt[i * FW_CLASSES + 2]++;
        continue;
      }
      for (int k = 0; k < n && k < FW_MAX_FACTS; k++) {
        char st[256];
        s->cnt[i * FW_CLASSES + (f[k].truth ? 0 : 1)]++;
        if (fw_sentence(&s->w, e, f[k].attr, f[k].value, st, sizeof st) < 0) continue;
        json_object *x = json_object_new_object();
        json_object_object_add(x, "statement", json_object_new_string(st));
        if (fw_cloze(&s->w, e, f[k].attr, st, sizeof st) >= 0)
          json_object_object_add(x, "cloze", json_object_new_string(st));
        json_object_object_add(x, "value", json_object_new_string(fw_value(f[k].attr, f[k].value)));
        json_object_object_add(x, "truth", json_object_new_boolean(f[k].truth));
        json_object_array_add(facts, x);
      }
    }
    json_object_object_add(o, "bios", bios), json_object_object_add(o, "facts", facts);
    free(s->bio[i]);
    s->bio[i] = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (!s->bio[i]) return LATHE_ENOMEM;
  }
  return 0;
}

static int step_sample(fq_t *s, int64_t i0, int P) {
  int C = s->m.g.cfg.ctx, S = s->S, M = s->max_new, B = P * S, maxp = C - M, rc = 0;
  int *pr = malloc((size_t)B * maxp * sizeof *pr), *pl = malloc((size_t)B * sizeof *pl);
  int *out = malloc((size_t)B * M * sizeof *out), *ol = malloc((size_t)B * sizeof *ol);
  char *text = malloc((size_t)M * 64 + 1);
  if (!pr || !pl || !out || !ol || !text) rc = LATHE_ENOMEM;
  for (int p = 0; p < P && !rc; p++) {
    int len = tx_encode_end(&s->m.tok, s->r[i0 + p].text, pr + (size_t)p * S * maxp, maxp);
    if (len < 0) rc = LATHE_ENOMEM;
    if (len == 0) /* an empty prompt: start from <eos>, as a text record does */
      pr[(size_t)p * S * maxp] = NN_TOK_EOS, len = 1;
    for (int j = 0; j < S && !rc; j++) {
      if (j) memcpy(pr + ((size_t)p * S + j) * maxp, pr + (size_t)p * S * maxp, len * sizeof *pr);
      pl[p * S + j] = len;
    }
  }
  static const int stop[] = {NN_TOK_EOS};
  nn_gen_t o = {s->temp, 0, 1.0f, stop, 1, 0, 0};
  if (!rc)
    rc = nn_lm_generate_sharded(&s->m.g, pr, pl, B, maxp, M, &o, s->rng, FQ_SHARDS,
                                nn_get_threads(), out, ol, NULL);
  if (!rc && s->mode == M_BIO) rc = check_bios(s, i0, P, out, ol, text);
  for (int b = 0; b < B && !rc && s->mode == M_SAMPLE; b++) {
    const fq_rec_t *r = &s->r[i0 + b / S];
    nn_tok_decode(&s->m.tok, out + (size_t)b * M, ol[b], text, (size_t)M * 64 + 1);
    int v, cls = r->alias ? fw_classify_free(text, (const char *const *)r->alias, r->nalias)
                          : fw_classify(r->attr, r->truth, text, &v);
    if (r->alias) v = cls == FW_CORRECT ? ANS_CORRECT_FREE : ANS_WRONG_FREE;
    s->cnt[(i0 + b / S) * FW_CLASSES + cls]++;
    s->ans[(i0 + b / S) * S + b % S] = (int16_t)(cls == FW_ABSTAIN     ? ANS_IDK
                                                 : cls == FW_MALFORMED ? ANS_MALFORMED
                                                                       : v);
  }
  free(pr), free(pl), free(out), free(ol), free(text);
  return rc;
}

static int step_judge(fq_t *s, int64_t i0, int P) {
  const char **texts = malloc((size_t)P * sizeof *texts), **vals = malloc((size_t)P * sizeof *vals);
  int rc = texts && vals ? 0 : LATHE_ENOMEM;
  for (int p = 0; p < P && !rc; p++) texts[p] = s->r[i0 + p].text, vals[p] = s->r[i0 + p].value;
  if (!rc) rc = fj_ptrue(&s->m, texts, s->negation ? vals : NULL, P, s->ptrue + i0);
  free(texts), free(vals);
  return rc;
}

static void put_metrics(fq_t *s, const lathe_host_t *h, lathe_ctx_t *c, int64_t upto) {
  if (s->mode == M_JUDGE) {
    double right = 0, scored = 0, pt[2] = {0, 0}, nt[2] = {0, 0};
    for (int64_t i = 0; i < upto; i++) {
      if (s->r[i].correct < 0) continue;
      int y = s->r[i].correct;
      right += (s->ptrue[i] > 0.5) == y, scored++, pt[y] += s->ptrue[i], nt[y]++;
    }
    if (scored) h->metric(c, "judge/accuracy", right / scored);
    if (nt[1]) h->metric(c, "judge/p_true_correct", pt[1] / nt[1]);
    if (nt[0]) h->metric(c, "judge/p_true_incorrect", pt[0] / nt[0]);
    return;
  }
  if (s->mode == M_BIO) {
    double t[3] = {0, 0, 0}, bios = (double)upto * s->S;
    for (int64_t i = 0; i < upto; i++)
      for (int k = 0; k < 3; k++) t[k] += s->cnt[i * FW_CLASSES + k];
    h->metric(c, "bio/true_facts", t[0] / bios), h->metric(c, "bio/false_facts", t[1] / bios);
    h->metric(c, "bio/malformed", t[2] / bios);
    return;
  }
  static const char *names[FW_CLASSES] = {"qa/correct", "qa/wrong", "qa/abstain", "qa/malformed"};
  double tot[FW_CLASSES] = {0}, all = 0;
  for (int64_t i = 0; i < upto; i++)
    for (int k = 0; k < FW_CLASSES; k++)
      tot[k] += s->cnt[i * FW_CLASSES + k], all += s->cnt[i * FW_CLASSES + k];
  for (int k = 0; k < FW_CLASSES && all; k++) h->metric(c, names[k], tot[k] / all);
  static const int ks[5] = {0, 1, 3, 10, 30};
  for (int j = 0; j < 5; j++) { /* accuracy by pretraining count */
    double right = 0, n = 0;
    for (int64_t i = 0; i < upto; i++)
      if (s->r[i].k == ks[j]) right += s->cnt[i * FW_CLASSES + FW_CORRECT], n += s->S;
    char name[32];
    snprintf(name, sizeof name, "qa/correct_k%d", ks[j]);
    if (n) h->metric(c, name, right / n);
  }
}

/* The 40th percentile of the correct counts over split train's records (all
 * when there are none; a run has at least one record); NaN without memory. */
static double threshold(const fq_t *s, int *over_train) {
  double *x = malloc((size_t)s->n * sizeof *x), p;
  int m = 0;
  if (!x) return NAN;
  for (int64_t i = 0; i < s->n; i++)
    if (s->r[i].split && !strcmp(s->r[i].split, "\"train\""))
      x[m++] = s->cnt[i * FW_CLASSES + FW_CORRECT];
  *over_train = m > 0;
  if (!m)
    for (int64_t i = 0; i < s->n; i++) x[m++] = s->cnt[i * FW_CLASSES + FW_CORRECT];
  p = fw_percentile(x, m, 40);
  free(x);
  return p;
}

static char *record_json(const fq_t *s, int64_t i, double p40) {
  const fq_rec_t *r = &s->r[i];
  json_object *o = json_object_new_object();
  json_object_object_add(o, "i", json_object_new_int64(i));
  if (r->entity) json_object_object_add(o, "entity", json_tokener_parse(r->entity));
  if (r->attr >= 0)
    json_object_object_add(o, "attr", json_object_new_string(fw_attr_name(r->attr)));
  if (r->k >= 0) json_object_object_add(o, "k", json_object_new_int(r->k));
  if (r->split) json_object_object_add(o, "split", json_tokener_parse(r->split));
  if (s->mode == M_BIO) {
    const int32_t *k = s->cnt + i * FW_CLASSES;
    json_object_object_add(o, "n", json_object_new_int(s->S));
    json_object_object_add(o, "true", json_object_new_int(k[0]));
    json_object_object_add(o, "false", json_object_new_int(k[1]));
    json_object_object_add(o, "malformed", json_object_new_int(k[2]));
    json_object *b = s->bio[i] ? json_tokener_parse(s->bio[i]) : NULL, *v;
    if (b && json_object_object_get_ex(b, "bios", &v))
      json_object_object_add(o, "bios", json_object_get(v));
    if (b && json_object_object_get_ex(b, "facts", &v))
      json_object_object_add(o, "facts", json_object_get(v));
    json_object_put(b);
  } else if (s->mode == M_JUDGE) {
    if (r->correct >= 0) json_object_object_add(o, "correct", json_object_new_boolean(r->correct));
    json_object_object_add(o, "p_true", json_object_new_double(s->ptrue[i]));
  } else {
    const int32_t *k = s->cnt + i * FW_CLASSES;
    json_object_object_add(o, "n", json_object_new_int(s->S));
    json_object_object_add(o, "correct", json_object_new_int(k[FW_CORRECT]));
    json_object_object_add(o, "wrong", json_object_new_int(k[FW_WRONG]));
    json_object_object_add(o, "abstain", json_object_new_int(k[FW_ABSTAIN]));
    json_object_object_add(o, "malformed", json_object_new_int(k[FW_MALFORMED]));
    json_object *a = json_object_new_array();
    for (int j = 0; j < s->S; j++) {
      int v = s->ans[i * s->S + j];
      json_object_array_add(a,
                            json_object_new_string(v == ANS_IDK            ? "<idk>"
                                                   : v == ANS_MALFORMED    ? "<malformed>"
                                                   : v == ANS_CORRECT_FREE ? "<correct>"
                                                   : v == ANS_WRONG_FREE   ? "<wrong>"
                                                                           : fw_value(r->attr, v)));
    }
    json_object_object_add(o, "answers", a);
    json_object_object_add(o, "unfamiliarity", json_object_new_int(s->S - k[FW_CORRECT]));
    json_object_object_add(o, "unfamiliar", json_object_new_boolean(k[FW_CORRECT] < p40));
  }
  char *js = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
  return js;
}

static int finish(fq_t *s, const lathe_host_t *h, lathe_ctx_t *c) {
  int over_train = 0;
  double p40 = s->mode == M_SAMPLE ? threshold(s, &over_train) : 0;
  char **rec = calloc((size_t)s->n, sizeof *rec);
  int rc = rec ? 0 : LATHE_ENOMEM;
  double unf = 0;
  for (int64_t i = 0; i < s->n && !rc; i++) {
    if (!(rec[i] = record_json(s, i, p40))) rc = LATHE_ENOMEM;
    unf += s->cnt[i * FW_CLASSES + FW_CORRECT] < p40;
  }
  if (s->mode == M_SAMPLE) {
    h->metric(c, "familiarity/p40", p40);
    h->metric(c, "familiarity/unfamiliar", unf / (double)s->n);
    h->log(c, "40th percentile of correct answers (of %d) over %s: %g; %.1f%% below it", s->S,
           over_train ? "split train" : "all records", p40, 100 * unf / (double)s->n);
  }
  char name[96];
  const char *o = h->cfg_str(c, "out");
  if (!*o) snprintf(name, sizeof name, "factqa-%u", h->run_id(c)), o = name;
  if (rc)
    rc = h->fail(c, LATHE_ENOMEM, "out of memory");
  else if (!(rc = h->dataset_create(c, o, "any", (const char *const *)rec, s->n)))
    h->log(c, "wrote %lld records to dataset '%s'", (long long)s->n, o);
  for (int64_t i = 0; rec && i < s->n; i++) free(rec[i]);
  free(rec);
  return rc;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  fq_t *s = self;
  int P = (int)(s->n - s->next < s->chunk ? s->n - s->next : s->chunk);
  double t0 = tx_now();
  int rc = s->mode == M_JUDGE ? step_judge(s, s->next, P) : step_sample(s, s->next, P);
  if (rc)
    return h->fail(c, rc,
                   rc == LATHE_ESHAPE ? "factqa: the judge's context is too short for a label"
                                      : "factqa: out of memory");
  s->next += P;
  h->metric(c, "perf/records_per_sec", P / (tx_now() - t0 + 1e-9));
  put_metrics(s, h, c, s->next);
  if (s->next < s->n) return LATHE_CONTINUE;
  rc = finish(s, h, c);
  return rc ? rc : LATHE_DONE;
}

#define FQ_VERSION 1

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  fq_t *s = self;
  uint32_t v = FQ_VERSION;
  LATHE_PUT(b, v), LATHE_PUT(b, s->n), LATHE_PUT(b, s->S), LATHE_PUT(b, s->next);
  LATHE_PUT(b, s->rng);
  lathe_buf_put(b, s->cnt, (size_t)s->next * FW_CLASSES * sizeof *s->cnt);
  lathe_buf_put(b, s->ans, (size_t)s->next * s->S * sizeof *s->ans);
  lathe_buf_put(b, s->ptrue, (size_t)s->next * sizeof *s->ptrue);
  for (int64_t i = 0; i < s->next && s->mode == M_BIO; i++) tx_put_str(b, s->bio[i]);
  return b->err ? h->fail(c, LATHE_ENOMEM, "out of memory") : 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  fq_t *s = self;
  uint32_t v;
  int64_t n, next;
  int S;
  LATHE_GET(b, v), LATHE_GET(b, n), LATHE_GET(b, S), LATHE_GET(b, next);
  if (b->err || v != FQ_VERSION) return h->fail(c, LATHE_ECKPT, "factqa: truncated checkpoint");
  if (n != s->n || S != s->S || next < 0 || next > n)
    return h->fail(c, LATHE_ECKPT,
                   "factqa: checkpoint of %lld records, %d samples, %lld done does not fit this "
                   "run (%lld records, %d samples)",
                   (long long)n, S, (long long)next, (long long)s->n, s->S);
  LATHE_GET(b, s->rng);
  size_t need =
      (size_t)next * (FW_CLASSES * sizeof *s->cnt + S * sizeof *s->ans + sizeof *s->ptrue);
  if (b->err || (s->mode == M_BIO ? lathe_buf_left(b) < need : lathe_buf_left(b) != need))
    return h->fail(c, LATHE_ECKPT, "factqa: checkpoint holds %zu bytes of counts, want %zu",
                   b->err ? 0 : lathe_buf_left(b), need);
  lathe_buf_get(b, s->cnt, (size_t)next * FW_CLASSES * sizeof *s->cnt);
  lathe_buf_get(b, s->ans, (size_t)next * S * sizeof *s->ans);
  lathe_buf_get(b, s->ptrue, (size_t)next * sizeof *s->ptrue);
  for (int64_t i = 0; i < next; i++) { /* every stored count and answer in range */
    int bad = 0;
    if (s->mode == M_SAMPLE) {
      int64_t tot = 0;
      for (int k = 0; k < FW_CLASSES; k++)
        bad |= s->cnt[i * FW_CLASSES + k] < 0, tot += s->cnt[i * FW_CLASSES + k];
      bad |= tot != S;
      for (int j = 0; j < S && !bad; j++)
        bad = s->r[i].alias
                  ? s->ans[i * S + j] < ANS_CORRECT_FREE || s->ans[i * S + j] >= 0
                  : s->ans[i * S + j] < ANS_IDK || s->ans[i * S + j] >= fw_nvalues(s->r[i].attr);
    } else if (s->mode == M_BIO) {
      int64_t tot = 0;
      for (int k = 0; k < 3; k++)
        bad |= s->cnt[i * FW_CLASSES + k] < 0, tot += s->cnt[i * FW_CLASSES + k];
      bad |= s->cnt[i * FW_CLASSES + 2] > S || tot > (int64_t)S * FW_MAX_FACTS;
    } else {
      bad = !(s->ptrue[i] >= 0 && s->ptrue[i] <= 1);
    }
    if (bad)
      return h->fail(c, LATHE_ECKPT, "factqa: checkpoint record %lld is out of range",
                     (long long)i);
  }
  for (int64_t i = 0; i < next && s->mode == M_BIO; i++) { /* the bios, as JSON text */
    free(s->bio[i]);
    int rc = tx_get_str(b, &s->bio[i]);
    if (rc == LATHE_ENOMEM) return h->fail(c, rc, "out of memory");
    if (rc) return h->fail(c, rc, "factqa: checkpoint bio record %lld is truncated", (long long)i);
  }
  if (lathe_buf_left(b))
    return h->fail(c, LATHE_ECKPT, "factqa: %zu bytes after the checkpoint's records",
                   lathe_buf_left(b));
  s->next = next;
  return 0;
}

static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  if (!*h->cfg_str(c, "dataset"))
    return h->fail(c, LATHE_ECONFIG, "factqa: no dataset given (dataset = NAME)");
  if (!h->cfg_int(c, "init_run"))
    return h->fail(c, LATHE_ECONFIG, "factqa: no model given (init_run = RUN of an sft run)");
  return 0;
}

static const lathe_algorithm_t algorithm = {
    .step = step, .main_metric = "qa/correct", .main_lower_better = 0};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "factqa",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "a model's answers in the facts world counted (familiarity, answer classes), its "
           "sampled bios checked, or a True/False judge's P(true), as a dataset",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .validate = validate,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_factqa, plugin)
