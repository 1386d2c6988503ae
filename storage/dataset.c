/* dataset.c - schema-checked datasets (see dataset.h). */
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "../workbench/error.h"
#include "../workbench/lathe.h"
#include "../workbench/mathtext.h"

/* Unix time in seconds, for manifests. */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* 64-bit FNV-1a continued over n bytes (start from FNV_START). */
#define FNV_START 0xcbf29ce484222325ULL
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const uint8_t *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

typedef struct {
  const char *name;
  const char *fields[7]; /* NULL-terminated */
  const char *types;     /* per field: s string, b bool, n number, v number array, a number|array */
} schema_t;

static const schema_t schemas[] = {
    {"prefs", {"prompt", "chosen", "rejected"}, "sss"},
    {"sft", {"prompt", "response"}, "ss"},
    {"math", {"question", "solution", "answer"}, "sss"},
    {"text", {"text"}, "s"},
    {"transitions", {"obs", "action", "reward", "next_obs", "terminated", "truncated"}, "vanvbb"},
    {"any", {NULL}, ""},
};

static const schema_t *find_schema(const char *name) {
  for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++)
    if (!strcmp(schemas[i].name, name)) return &schemas[i];
  return NULL;
}

int lathe_schema_known(const char *schema) {
  return find_schema(schema) != NULL;
}
const char *lathe_schema_list(void) {
  return "prefs, sft, math, text, transitions, any";
}

static const char *type_word(json_object *v) {
  switch (json_object_get_type(v)) {
  case json_type_null:
    return "null";
  case json_type_boolean:
    return "a bool";
  case json_type_double:
  case json_type_int:
    return "a number";
  case json_type_string:
    return "a string";
  case json_type_array:
    return "an array";
  default:
    return "an object";
  }
}

static int is_num(json_object *v) {
  return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
}

static int num_array(json_object *v) {
  if (!json_object_is_type(v, json_type_array)) return 0;
  for (size_t i = 0; i < json_object_array_length(v); i++)
    if (!is_num(json_object_array_get_idx(v, i))) return 0;
  return 1;
}

/* HH-RLHF's layout: chosen and rejected are whole transcripts ("\n\nHuman: ...
 * \n\nAssistant: ..."). The prompt is their shared prefix up to and including
 * its last "\n\nAssistant:"; chosen and rejected become the two replies. */
static int split_transcripts(json_object *rec) {
  json_object *c, *r;
  if (!json_object_object_get_ex(rec, "chosen", &c) || !json_object_is_type(c, json_type_string) ||
      !json_object_object_get_ex(rec, "rejected", &r) || !json_object_is_type(r, json_type_string))
    return 0;
  const char *a = json_object_get_string(c), *b = json_object_get_string(r);
  size_t n = 0, cut = 0;
  while (a[n] && a[n] == b[n]) n++;
  static const char tag[] = "\n\nAssistant:";
  for (size_t i = 0; i + sizeof tag - 1 <= n; i++)
    if (!memcmp(a + i, tag, sizeof tag - 1)) cut = i + sizeof tag - 1;
  if (!cut)
    return lathe_seterr(LATHE_EDATA, "no prompt field, and chosen and rejected share no "
                                     "\"\\n\\nAssistant:\" turn to split a prompt from");
  char *prompt = strndup(a, cut), *ca = strdup(a + cut), *rb = strdup(b + cut);
  json_object_object_add(rec, "prompt", json_object_new_string(prompt));
  json_object_object_add(rec, "chosen", json_object_new_string(ca));
  json_object_object_add(rec, "rejected", json_object_new_string(rb));
  free(prompt), free(ca), free(rb);
  return 0;
}

/* PandaLM's layout: instruction (+ input), response1, response2 and three
 * annotators' votes (1, 2, or 0 for a tie). The majority's winner becomes
 * chosen; without a majority, or on a majority tie, label is 0.5 (a tie). */
static int pandalm_fields(json_object *rec) {
  json_object *ins, *inp = NULL, *r1, *r2, *v;
  if (!json_object_object_get_ex(rec, "instruction", &ins) ||
      !json_object_object_get_ex(rec, "response1", &r1) ||
      !json_object_object_get_ex(rec, "response2", &r2) ||
      !json_object_is_type(ins, json_type_string))
    return 0;
  json_object *r[2] = {r1, r2};
  for (int k = 0; k < 2; k++) /* a few responses are bare JSON values (true): their text */
    if (json_object_is_type(r[k], json_type_object) || json_object_is_type(r[k], json_type_array) ||
        json_object_is_type(r[k], json_type_null))
      return lathe_seterr(LATHE_EDATA, "PandaLM record: response%d is not text", k + 1);
  int votes[3] = {0, 0, 0};
  for (int k = 1; k <= 3; k++) {
    char key[24];
    snprintf(key, sizeof key, "annotator%d", k);
    if (!json_object_object_get_ex(rec, key, &v) || !is_num(v) || json_object_get_int(v) < 0 ||
        json_object_get_int(v) > 2)
      return lathe_seterr(LATHE_EDATA, "PandaLM record: %s must be 0, 1 or 2", key);
    votes[json_object_get_int(v)]++;
  }
  int win = votes[1] >= 2 ? 1 : votes[2] >= 2 ? 2 : 0;
  json_object_object_get_ex(rec, "input", &inp);
  const char *i0 = json_object_get_string(ins);
  const char *i1 =
      inp && json_object_is_type(inp, json_type_string) ? json_object_get_string(inp) : "";
  size_t n = strlen(i0) + strlen(i1) + 3;
  char *prompt = malloc(n);
  if (!prompt) return LATHE_ENOMEM;
  snprintf(prompt, n, "%s%s%s", i0, *i1 ? "\n\n" : "", i1);
  json_object *a = json_object_new_string(json_object_get_string(r[win == 2]));
  json_object *b = json_object_new_string(json_object_get_string(r[win != 2]));
  json_object_object_add(rec, "prompt", json_object_new_string(prompt));
  json_object_object_add(rec, "chosen", a);
  json_object_object_add(rec, "rejected", b);
  json_object_object_add(rec, "label", json_object_new_double(win ? 1.0 : 0.5));
  free(prompt);
  return 0;
}

/* The math schema's layouts (mathtext.h): GSM8K's question and answer (the
 * solution, ending in "#### N") become question, solution (the answer text
 * without the calculator annotations "<<48/2=24>>") and answer (N,
 * normalised); MATH's problem becomes question. Then the answer must
 * normalise and, for GSM8K, the solution must carry it. */
static int math_fields(json_object *rec) {
  json_object *q, *sol, *ans;
  if (!json_object_object_get_ex(rec, "question", &q) &&
      json_object_object_get_ex(rec, "problem", &q)) {
    json_object_get(q);
    json_object_object_del(rec, "problem");
    json_object_object_add(rec, "question", q);
  }
  if (!json_object_object_get_ex(rec, "solution", &sol) &&
      json_object_object_get_ex(rec, "answer", &ans) &&
      json_object_is_type(ans, json_type_string) && strstr(json_object_get_string(ans), "####")) {
    const char *a = json_object_get_string(ans);
    char fin[256], *clean = malloc(strlen(a) + 1);
    if (!clean) return LATHE_ENOMEM;
    size_t k = 0;
    for (const char *p = a; *p;) { /* drop <<...>> */
      const char *e = p[0] == '<' && p[1] == '<' ? strstr(p, ">>") : NULL;
      if (e)
        p = e + 2;
      else
        clean[k++] = *p++;
    }
    clean[k] = 0;
    if (mt_final_answer(clean, fin, sizeof fin)) {
      free(clean);
      return lathe_seterr(LATHE_EDATA, "GSM8K answer: no final answer after '####'");
    }
    json_object_object_add(rec, "solution", json_object_new_string(clean));
    json_object_object_add(rec, "answer", json_object_new_string(fin));
    free(clean);
  }
  if (!json_object_object_get_ex(rec, "solution", &sol) &&
      json_object_object_get_ex(rec, "answer", &ans) && json_object_is_type(ans, json_type_string))
    return lathe_seterr(LATHE_EDATA, "no field 'solution', and 'answer' has no final \"#### N\" "
                                     "line (GSM8K's layout)");
  char norm[256];
  if (json_object_object_get_ex(rec, "answer", &ans) &&
      json_object_is_type(ans, json_type_string) &&
      mt_normalise(json_object_get_string(ans), strlen(json_object_get_string(ans)), norm,
                   sizeof norm))
    return lathe_seterr(LATHE_EDATA, "field 'answer' is empty or longer than 255 bytes");
  return 0;
}

/* D4RL's field names (observations, actions, rewards, next_observations,
 * terminals, timeouts; flags as 0/1 or bools) become the transitions schema's. */
static void d4rl_names(json_object *rec) {
  static const char *from[] = {"observations",      "actions",   "rewards",
                               "next_observations", "terminals", "timeouts"};
  static const char *to[] = {"obs", "action", "reward", "next_obs", "terminated", "truncated"};
  for (int i = 0; i < 6; i++) {
    json_object *v;
    if (!json_object_object_get_ex(rec, from[i], &v) || json_object_object_get_ex(rec, to[i], NULL))
      continue;
    if (i >= 4 && is_num(v))
      v = json_object_new_boolean(json_object_get_double(v) != 0);
    else
      json_object_get(v);
    json_object_object_del(rec, from[i]);
    json_object_object_add(rec, to[i], v);
  }
}

int lathe_schema_check(const char *schema, json_object *rec) {
  const schema_t *s = find_schema(schema);
  if (!s)
    return lathe_seterr(LATHE_EUSAGE, "unknown schema '%s' (one of %s)", schema,
                        lathe_schema_list());
  if (!json_object_is_type(rec, json_type_object))
    return lathe_seterr(LATHE_EDATA, "record is %s, want an object", type_word(rec));
  json_object *pr;
  int rc;
  if (!strcmp(schema, "prefs") && !json_object_object_get_ex(rec, "prompt", &pr) &&
      (rc = json_object_object_get_ex(rec, "response1", NULL) ? pandalm_fields(rec)
                                                              : split_transcripts(rec)))
    return rc;
  if (!strcmp(schema, "transitions")) d4rl_names(rec);
  if (!strcmp(schema, "math") && (rc = math_fields(rec))) return rc;
  for (int i = 0; s->fields[i]; i++) {
    json_object *v;
    if (!json_object_object_get_ex(rec, s->fields[i], &v) || !v)
      return lathe_seterr(LATHE_EDATA, "field '%s' missing", s->fields[i]);
    int ok = 0;
    const char *want = "";
    switch (s->types[i]) {
    case 's':
      ok = json_object_is_type(v, json_type_string), want = "a string";
      break;
    case 'b':
      ok = json_object_is_type(v, json_type_boolean), want = "a bool";
      break;
    case 'n':
      ok = is_num(v), want = "a number";
      break;
    case 'v':
      ok = num_array(v), want = "an array of numbers";
      break;
    case 'a':
      ok = is_num(v) || num_array(v), want = "a number or an array of numbers";
      break;
    }
    if (!ok)
      return lathe_seterr(LATHE_EDATA, "field '%s' is %s, want %s", s->fields[i], type_word(v),
                          want);
  }
  /* what consumers need beyond types: a preference label is a probability;
   * a transition's obs and next_obs have one length */
  json_object *v;
  if (!strcmp(schema, "prefs") && json_object_object_get_ex(rec, "label", &v)) {
    double x = is_num(v) ? json_object_get_double(v) : NAN;
    if (!(x >= 0 && x <= 1))
      return lathe_seterr(LATHE_EDATA, "field 'label' is %s, want a number in [0, 1]",
                          is_num(v) ? json_object_get_string(v) : type_word(v));
  }
  if (!strcmp(schema, "transitions")) {
    json_object *o, *n;
    json_object_object_get_ex(rec, "obs", &o), json_object_object_get_ex(rec, "next_obs", &n);
    if (json_object_array_length(o) != json_object_array_length(n))
      return lathe_seterr(LATHE_EDATA, "'obs' has %zu numbers and 'next_obs' %zu",
                          json_object_array_length(o), json_object_array_length(n));
    if (json_object_array_length(o) == 0) return lathe_seterr(LATHE_EDATA, "'obs' is empty");
  }
  return 0;
}

/* The same shape on every record of a dataset (transitions: the obs and action
 * lengths of its first record). shape[2] starts as {-1, -1}. */
static int shape_check(const char *schema, json_object *rec, long shape[2]) {
  if (strcmp(schema, "transitions")) return 0;
  json_object *o, *a;
  json_object_object_get_ex(rec, "obs", &o), json_object_object_get_ex(rec, "action", &a);
  long no = (long)json_object_array_length(o),
       na = json_object_is_type(a, json_type_array) ? (long)json_object_array_length(a) : 0;
  if (shape[0] < 0) shape[0] = no, shape[1] = na;
  if (no != shape[0])
    return lathe_seterr(LATHE_EDATA, "'obs' has %ld numbers, the first record's has %ld", no,
                        shape[0]);
  if (na != shape[1])
    return lathe_seterr(LATHE_EDATA, "'action' has %ld numbers, the first record's has %ld", na,
                        shape[1]);
  return 0;
}

/* ---- import --------------------------------------------------------------------- */

typedef struct {
  const char *name, *schema, *source;
  json_object *records; /* array */
  char sha[17];
} write_args;

static int manifest_exists(lathe_store_t *st, MDB_txn *txn, const char *name) {
  char *m;
  if (lathe_store_ds_get_manifest(st, txn, name, &m)) return 0;
  free(m);
  return 1;
}

static int put_manifest(lathe_store_t *st, MDB_txn *txn, const char *name, const char *schema,
                        const char *source, int64_t n, const char *sha) {
  json_object *m = json_object_new_object();
  json_object_object_add(m, "name", json_object_new_string(name));
  json_object_object_add(m, "schema", json_object_new_string(schema));
  json_object_object_add(m, "count", json_object_new_int64(n));
  json_object_object_add(m, "source", json_object_new_string(source ? source : ""));
  json_object_object_add(m, "created", json_object_new_double(now()));
  json_object_object_add(m, "sha", json_object_new_string(sha));
  int rc = lathe_store_ds_put_manifest(
      st, txn, name,
      json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(m);
  return rc;
}

static int write_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  write_args *a = arg;
  if (manifest_exists(st, txn, a->name))
    return lathe_seterr(LATHE_EUSAGE, "dataset '%s' already exists (lathe data rm %s first)",
                        a->name, a->name);
  size_t n = json_object_array_length(a->records);
  for (size_t i = 0; i < n; i++) {
    const char *txt =
        json_object_to_json_string_ext(json_object_array_get_idx(a->records, i),
                                       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = lathe_store_ds_put(st, txn, a->name, i, txt, strlen(txt));
    if (rc) return rc;
  }
  return put_manifest(st, txn, a->name, a->schema, a->source, (int64_t)n, a->sha);
}

static int valid_name(const char *name) {
  if (!*name || strlen(name) > 128) return 0;
  for (const char *p = name; *p; p++)
    if (!(*p == '-' || *p == '_' || *p == '.' || *p == '/' || (*p >= '0' && *p <= '9') ||
          (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
      return 0;
  return 1;
}

int lathe_dataset_create(lathe_store_t *st, const char *name, const char *schema,
                         json_object *records, const char *source) {
  if (!valid_name(name))
    return lathe_seterr(LATHE_EUSAGE, "bad dataset name '%s' (letters, digits, - _ . /)", name);
  if (!lathe_schema_known(schema))
    return lathe_seterr(LATHE_EUSAGE, "unknown schema '%s' (one of %s)", schema,
                        lathe_schema_list());
  size_t n = json_object_array_length(records);
  long shape[2] = {-1, -1};
  for (size_t i = 0; i < n; i++)
    if (lathe_schema_check(schema, json_object_array_get_idx(records, i)) ||
        shape_check(schema, json_object_array_get_idx(records, i), shape))
      return lathe_seterr(LATHE_EDATA, "%s: record %zu: %s", name, i + 1, lathe_lasterr());
  write_args a = {name, schema, source, records, ""};
  const char *all = json_object_to_json_string_ext(records, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
  snprintf(a.sha, sizeof a.sha, "%016llx", (unsigned long long)fnv(FNV_START, all, strlen(all)));
  return st ? lathe_store_write(st, write_txn, &a) : 0;
}

/* A file holding one JSON array: every element is a record, checked as a
 * line of JSON Lines would be ("FILE: record N: ..."). */
static int import_array(gzFile gz, const char *file, const char *schema, json_object *records,
                        uint64_t *h) {
  size_t cap = 1 << 20, len = 0;
  char *buf = malloc(cap);
  int n, rc = 0;
  while (buf && (n = gzread(gz, buf + len, (unsigned)(cap - len))) > 0) {
    *h = fnv(*h, buf + len, (size_t)n);
    len += (size_t)n;
    if (len == cap) {
      char *p = realloc(buf, cap * 2);
      if (!p) free(buf);
      buf = p, cap *= 2;
    }
  }
  if (!buf) return lathe_seterr(LATHE_ENOMEM, "%s: out of memory", file);
  if (len > INT32_MAX) {
    free(buf);
    return lathe_seterr(LATHE_EDATA, "%s: a JSON array over 2 GiB (use JSON Lines)", file);
  }
  const char *nul = memchr(buf, 0, len);
  if (nul) {
    size_t at = (size_t)(nul - buf);
    free(buf);
    return lathe_seterr(LATHE_EDATA, "%s: a NUL byte at offset %zu", file, at);
  }
  json_tokener *tok = json_tokener_new();
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT); /* JSON, not JSON-ish: no trailing commas */
  json_object *all = json_tokener_parse_ex(tok, buf, (int)len);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  if (jerr != json_tokener_success || !json_object_is_type(all, json_type_array))
    rc = lathe_seterr(LATHE_EDATA, "%s: invalid JSON array: %s", file,
                      jerr == json_tokener_success    ? "not an array"
                      : jerr == json_tokener_continue ? "truncated"
                                                      : json_tokener_error_desc(jerr));
  size_t k = rc ? 0 : json_tokener_get_parse_end(tok);
  while (!rc && k < len && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\n' || buf[k] == '\r'))
    k++;
  if (!rc && k < len) rc = lathe_seterr(LATHE_EDATA, "%s: trailing text after the array", file);
  long shape[2] = {-1, -1};
  for (size_t i = 0; !rc && i < json_object_array_length(all); i++) {
    json_object *o = json_object_get(json_object_array_get_idx(all, i));
    if (lathe_schema_check(schema, o) || shape_check(schema, o, shape)) {
      rc = lathe_seterr(LATHE_EDATA, "%s: record %zu: %s (schema %s)", file, i + 1, lathe_lasterr(),
                        schema);
      json_object_put(o);
    } else {
      json_object_array_add(records, o);
    }
  }
  json_object_put(all);
  json_tokener_free(tok);
  free(buf);
  return rc;
}

/* Lines of a (gzip or plain) file read by length, so NUL bytes stay visible. */
typedef struct {
  gzFile gz;
  char buf[1 << 16];
  size_t n, pos;
  int eof;
} line_reader_t;

/* The next line (with its '\n' if any) into *line (grown as needed), its
 * length in *len. Returns 1, 0 at the end of the file, -1 out of memory. */
static int read_line(line_reader_t *r, char **line, size_t *cap, size_t *len) {
  *len = 0;
  for (;;) {
    if (r->pos == r->n) {
      if (r->eof) return *len > 0;
      int k = gzread(r->gz, r->buf, sizeof r->buf);
      if (k <= 0) {
        r->eof = 1;
        return *len > 0;
      }
      r->n = (size_t)k, r->pos = 0;
    }
    char *nl = memchr(r->buf + r->pos, '\n', r->n - r->pos);
    size_t take = nl ? (size_t)(nl - (r->buf + r->pos)) + 1 : r->n - r->pos;
    if (*len + take + 1 > *cap) {
      size_t want = *cap;
      while (want < *len + take + 1) want *= 2;
      char *p = realloc(*line, want);
      if (!p) return -1;
      *line = p, *cap = want;
    }
    memcpy(*line + *len, r->buf + r->pos, take);
    *len += take, r->pos += take;
    (*line)[*len] = 0;
    if (nl) return 1;
  }
}

int lathe_dataset_import(lathe_store_t *st, const char *file, const char *name, const char *schema,
                         int64_t *count) {
  *count = 0;
  if (!valid_name(name))
    return lathe_seterr(LATHE_EUSAGE, "bad dataset name '%s' (letters, digits, - _ . /)", name);
  if (!lathe_schema_known(schema))
    return lathe_seterr(LATHE_EUSAGE, "unknown schema '%s' (one of %s)", schema,
                        lathe_schema_list());
  gzFile gz = gzopen(file, "rb");
  if (!gz) return lathe_seterr(LATHE_EIO, "cannot open %s", file);
  json_object *records = json_object_new_array();
  json_tokener *tok = json_tokener_new();
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT); /* JSON, not JSON-ish: no trailing commas */
  size_t cap = 1 << 16, len = 0;
  char *line = malloc(cap);
  long lineno = 0, shape[2] = {-1, -1};
  int rc = line && tok && records ? 0 : LATHE_ENOMEM, eof = 0, c;
  line_reader_t lr = {gz, {0}, 0, 0, 0};
  uint64_t h = FNV_START;
  while ((c = gzgetc(gz)) == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
  if (c == '[' && !strstr(file, ".jsonl")) { /* one JSON array of records, not JSON Lines */
    gzungetc(c, gz);
    rc = import_array(gz, file, schema, records, &h);
    eof = 1;
  } else if (c != -1) {
    gzungetc(c, gz);
  }
  while (!rc && !eof) {
    /* one whole line of any length, by length: a NUL byte is data, not its end */
    int more = read_line(&lr, &line, &cap, &len);
    if (more < 0) {
      rc = lathe_seterr(LATHE_ENOMEM, "%s:%ld: out of memory for a line", file, lineno + 1);
      break;
    }
    if (!more) break;
    lineno++;
    h = fnv(h, line, len);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    size_t sp = 0;
    while (sp < len && (line[sp] == ' ' || line[sp] == '\t')) sp++;
    if (sp == len) continue; /* blank line */
    if (memchr(line, 0, len)) {
      rc = lathe_seterr(LATHE_EDATA, "%s:%ld: a NUL byte at column %zu", file, lineno,
                        (size_t)((char *)memchr(line, 0, len) - line) + 1);
      break;
    }
    if (len > INT32_MAX) {
      rc = lathe_seterr(LATHE_EDATA, "%s:%ld: a line over 2 GiB", file, lineno);
      break;
    }
    json_tokener_reset(tok);
    json_object *obj = json_tokener_parse_ex(tok, line, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (jerr != json_tokener_success || !obj) {
      rc = lathe_seterr(LATHE_EDATA, "%s:%ld: invalid JSON: %s", file, lineno,
                        jerr == json_tokener_continue ? "truncated record"
                                                      : json_tokener_error_desc(jerr));
      json_object_put(obj);
      break;
    }
    if (json_tokener_get_parse_end(tok) < len) {
      size_t k = json_tokener_get_parse_end(tok);
      while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
      if (k < len) {
        rc = lathe_seterr(LATHE_EDATA, "%s:%ld: invalid JSON: trailing text after the record", file,
                          lineno);
        json_object_put(obj);
        break;
      }
    }
    if (lathe_schema_check(schema, obj) || shape_check(schema, obj, shape)) {
      rc = lathe_seterr(LATHE_EDATA, "%s:%ld: %s (schema %s)", file, lineno, lathe_lasterr(),
                        schema);
      json_object_put(obj);
      break;
    }
    json_object_array_add(records, obj);
  }
  int gzerr;
  const char *gzmsg = gzerror(gz, &gzerr);
  if (!rc && gzerr != Z_OK && gzerr != Z_STREAM_END)
    rc = lathe_seterr(LATHE_EDATA, "%s:%ld: cannot read: %s", file, lineno + 1, gzmsg);
  gzclose(gz);
  free(line);
  json_tokener_free(tok);
  if (!rc && json_object_array_length(records) == 0)
    rc = lathe_seterr(LATHE_EDATA, "%s: no records", file);
  if (!rc) {
    write_args a = {name, schema, file, records, ""};
    snprintf(a.sha, sizeof a.sha, "%016llx", (unsigned long long)h);
    rc = st ? lathe_store_write(st, write_txn, &a) : 0;
    if (!rc) *count = (int64_t)json_object_array_length(records);
  }
  json_object_put(records);
  return rc;
}

/* ---- records from a producer (a generator plugin, through the host) -------------- */

typedef struct {
  const char *name, *schema, *source, *who;
  lathe_record_fn next;
  void *arg;
  int64_t count;
} stream_args;

static int stream_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  stream_args *a = arg;
  if (st && manifest_exists(st, txn, a->name))
    return lathe_seterr(LATHE_EUSAGE, "dataset '%s' already exists (lathe data rm %s first)",
                        a->name, a->name);
  lathe_buf_t b = {0};
  json_tokener *tok = json_tokener_new();
  uint64_t h = FNV_START;
  int rc = tok ? 0 : lathe_seterr(LATHE_ENOMEM, "out of memory");
  if (!rc) rc = a->next(a->arg, NULL); /* from the first record (again, after a map resize) */
  for (a->count = 0; !rc; a->count++) {
    b.n = 0;
    lathe_clearerr();
    int r = a->next(a->arg, &b);
    if (r == LATHE_DONE) break;
    if (r < 0 || b.err) {
      const char *why = lathe_lasterr()[0] ? lathe_lasterr() : lathe_strerror(r < 0 ? r : b.err);
      rc = lathe_seterr(r < 0 ? r : b.err, "%s: record %lld: %s", a->who, (long long)a->count + 1,
                        why);
      break;
    }
    json_tokener_reset(tok);
    json_object *o =
        b.n < (size_t)1 << 30 ? json_tokener_parse_ex(tok, (const char *)b.p, (int)b.n) : NULL;
    if (!o || lathe_schema_check(a->schema, o)) {
      rc = lathe_seterr(LATHE_EPLUGIN, "%s: record %lld: %s", a->who, (long long)a->count + 1,
                        o ? lathe_lasterr() : "invalid JSON");
      json_object_put(o);
      break;
    }
    const char *txt =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t n = strlen(txt);
    h = fnv(h, txt, n);
    if (st) rc = lathe_store_ds_put(st, txn, a->name, (uint64_t)a->count, txt, n);
    json_object_put(o);
  }
  json_tokener_free(tok);
  lathe_buf_free(&b);
  if (!rc && a->count == 0) rc = lathe_seterr(LATHE_EPLUGIN, "%s made no records", a->who);
  if (rc || !st) return rc;
  char sha[17];
  snprintf(sha, sizeof sha, "%016llx", (unsigned long long)h);
  return put_manifest(st, txn, a->name, a->schema, a->source, a->count, sha);
}

int lathe_dataset_stream(lathe_store_t *st, const char *name, const char *schema,
                         const char *source, const char *who, lathe_record_fn next, void *arg,
                         int64_t *count) {
  *count = 0;
  if (!valid_name(name))
    return lathe_seterr(LATHE_EUSAGE, "bad dataset name '%s' (letters, digits, - _ . /)", name);
  if (!lathe_schema_known(schema))
    return lathe_seterr(LATHE_EUSAGE, "%s: unknown schema '%s'", who, schema);
  stream_args a = {name, schema, source, who, next, arg, 0};
  int rc = st ? lathe_store_write(st, stream_txn, &a) : stream_txn(NULL, NULL, &a);
  if (!rc) *count = a.count;
  return rc;
}

int lathe_dataset_count(lathe_store_t *st, MDB_txn *txn, const char *name, int64_t *count) {
  char *man;
  int rc = lathe_store_ds_get_manifest(st, txn, name, &man);
  if (rc) return rc;
  json_object *m = json_tokener_parse(man), *c;
  *count = m && json_object_object_get_ex(m, "count", &c) ? json_object_get_int64(c) : 0;
  json_object_put(m);
  free(man);
  return 0;
}

/* ---- export --------------------------------------------------------------------- */

typedef struct {
  const char *name;
  FILE *f;
} export_args;

static int export_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  export_args *a = arg;
  int64_t n;
  int rc = lathe_dataset_count(st, txn, a->name, &n);
  if (rc) return rc;
  for (int64_t i = 0; i < n; i++) {
    MDB_val v;
    if ((rc = lathe_store_ds_get(st, txn, a->name, (uint64_t)i, &v))) return rc;
    fwrite(v.mv_data, 1, v.mv_size, a->f);
    fputc('\n', a->f);
  }
  return 0;
}

int lathe_dataset_export(lathe_store_t *st, const char *name, FILE *f) {
  export_args a = {name, f};
  return lathe_store_read(st, export_txn, &a);
}
