/* world.c - the facts world (world.h): vocabularies, entities, sentences,
 * the answer classifier, the bio checker and the spec's rewards. */
#include "world.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/lathe.h"
#include "../../workbench/nn/nn.h"

static const char *const first_names[48] = {
    "bisul", "bude",  "bufu",  "buzer", "dako",  "denor", "dira",  "dukul", "dumer", "fafen",
    "foma",  "fozur", "fural", "gagon", "gule",  "kafar", "kibel", "kosi",  "lapa",  "lema",
    "ligen", "loku",  "luban", "magal", "mano",  "mepar", "nagin", "nifu",  "pebal", "pedun",
    "pifin", "pirur", "puvur", "renul", "rina",  "rofir", "ruman", "sebon", "temol", "tine",
    "tirol", "tolon", "vinul", "vukar", "vurir", "zonol", "zudi",  "zumol"};
static const char *const last_names[64] = {
    "bavapes", "begisin", "bikedun", "binigur", "bipokun", "bobokan", "buteder", "dibavi",
    "fadozur", "falodor", "feberon", "fenuta",  "fidozo",  "finakir", "gegono",  "gekavas",
    "kabatun", "kaforas", "kanatu",  "kavekes", "kopeki",  "kugulis", "kusebus", "lezemi",
    "lidibis", "lupuna",  "magivan", "mamolan", "namipur", "nelenu",  "nilagan", "nivare",
    "nivazas", "padedar", "pavanin", "peguva",  "pigaker", "pogodos", "popiten", "redizas",
    "relisin", "retibon", "runifun", "sasuses", "sereves", "sudokar", "sumiton", "tamofen",
    "teguni",  "tidibes", "tififon", "tinupon", "topolon", "tufuvu",  "tukugon", "venemi",
    "vonotan", "zebasis", "zebinus", "zezebin", "zimepus", "zoveran", "zufufu",  "zuveda"};

static const char *const cities[30] = {
    "paris",   "london", "rome",  "berlin", "madrid", "vienna", "prague",  "warsaw",
    "lisbon",  "dublin", "oslo",  "athens", "cairo",  "lagos",  "nairobi", "tokyo",
    "seoul",   "delhi",  "lima",  "quito",  "bogota", "havana", "denver",  "boston",
    "chicago", "sydney", "perth", "hanoi",  "manila", "moscow"};
static const char *const jobs[40] = {
    "baker",   "pilot",     "nurse",    "farmer",  "painter", "teacher", "lawyer", "doctor",
    "dentist", "plumber",   "tailor",   "butcher", "chemist", "poet",    "sailor", "soldier",
    "miner",   "carpenter", "mason",    "potter",  "weaver",  "brewer",  "fisher", "hunter",
    "singer",  "dancer",    "actor",    "writer",  "judge",   "banker",  "clerk",  "cook",
    "driver",  "gardener",  "jeweller", "printer", "surgeon", "vet",     "waiter", "welder"};
static const char *const decades[20] = {
    "1810s", "1820s", "1830s", "1840s", "1850s", "1860s", "1870s", "1880s", "1890s", "1900s",
    "1910s", "1920s", "1930s", "1940s", "1950s", "1960s", "1970s", "1980s", "1990s", "2000s"};
static const char *const teams[24] = {
    "hawks",   "wolves", "bears",   "lions",   "tigers", "eagles",   "sharks", "foxes",
    "owls",    "bulls",  "rams",    "falcons", "ravens", "panthers", "cobras", "otters",
    "badgers", "bisons", "jaguars", "herons",  "vipers", "stags",    "lynxes", "cranes"};

static const char *const attr_names[FW_ATTRS] = {"city", "job", "born", "team"};
static const char *const *const vocab[FW_ATTRS] = {cities, jobs, decades, teams};
static const int nvals[FW_ATTRS] = {30, 40, 20, 24};
/* each sentence is "NAME " + phrase + " VALUE ." */
static const char *const phrase[FW_ATTRS] = {"lives in", "works as a", "was born in",
                                             "plays for the"};
static const int kcount[5] = {0, 1, 3, 10, 30};

const char *fw_attr_name(int a) {
  return a >= 0 && a < FW_ATTRS ? attr_names[a] : "?";
}
int fw_nvalues(int a) {
  return a >= 0 && a < FW_ATTRS ? nvals[a] : 0;
}
const char *fw_value(int a, int v) {
  return a >= 0 && a < FW_ATTRS && v >= 0 && v < nvals[a] ? vocab[a][v] : "?";
}
int fw_decoy(int a) {
  return a >= 0 && a < FW_ATTRS ? 0 : -1;
}

int fw_attr_find(const char *s) {
  for (int a = 0; s && a < FW_ATTRS; a++)
    if (!strcmp(s, attr_names[a])) return a;
  return -1;
}

int fw_value_find(int a, const char *s, size_t n) {
  if (a < 0 || a >= FW_ATTRS) return -1;
  for (int v = 0; v < nvals[a]; v++)
    if (strlen(vocab[a][v]) == n && !memcmp(vocab[a][v], s, n)) return v;
  return -1;
}

int fw_init(fw_world_t *w, int n, uint64_t seed) {
  memset(w, 0, sizeof *w);
  if (n < 1 || n > FW_MAX_ENTITIES) return LATHE_ECONFIG;
  int *perm = malloc(FW_MAX_ENTITIES * sizeof *perm), *kperm = malloc((size_t)n * sizeof *kperm);
  w->e = calloc((size_t)n, sizeof *w->e);
  if (!perm || !kperm || !w->e) {
    free(perm), free(kperm), free(w->e), w->e = NULL;
    return LATHE_ENOMEM;
  }
  nn_rng_t r;
  nn_rng_seed(&r, seed * 0x9e3779b97f4a7c15ULL + 0xfac75);
  for (int i = 0; i < FW_MAX_ENTITIES; i++) perm[i] = i;
  for (int i = FW_MAX_ENTITIES - 1; i > 0; i--) { /* names: a shuffle of the name space */
    int j = (int)nn_rng_below(&r, (uint32_t)i + 1), x = perm[i];
    perm[i] = perm[j], perm[j] = x;
  }
  for (int e = 0; e < n; e++) {
    w->e[e].name = perm[e];
    for (int a = 0; a < FW_ATTRS; a++) w->e[e].v[a] = (int)nn_rng_below(&r, (uint32_t)nvals[a]);
  }
  /* counts: the first 40% of a shuffle at 0, the rest in four equal shares */
  for (int i = 0; i < n; i++) kperm[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)nn_rng_below(&r, (uint32_t)i + 1), x = kperm[i];
    kperm[i] = kperm[j], kperm[j] = x;
  }
  int zero = n * 2 / 5;
  for (int i = 0; i < n; i++)
    w->e[kperm[i]].k = i < zero ? 0 : kcount[1 + (int)((int64_t)(i - zero) * 4 / (n - zero))];
  free(perm), free(kperm);
  w->n = n, w->seed = seed;
  return 0;
}

void fw_free(fw_world_t *w) {
  free(w->e);
  memset(w, 0, sizeof *w);
}

const char *fw_name(const fw_world_t *w, int e, char buf[FW_NAME_MAX]) {
  int x = e >= 0 && e < w->n ? w->e[e].name : 0;
  snprintf(buf, FW_NAME_MAX, "%s %s", first_names[x / 64], last_names[x % 64]);
  return buf;
}

int fw_split(int e) {
  return e % 4 < 2 ? FW_TRAIN : e % 4 == 2 ? FW_VAL : FW_TEST;
}
const char *fw_split_name(int s) {
  return s == FW_TRAIN ? "train" : s == FW_VAL ? "val" : "test";
}

static int fit(int n, size_t cap) {
  return n < 0 || (size_t)n >= cap ? -1 : n;
}

int fw_cloze(const fw_world_t *w, int e, int a, char *buf, size_t cap) {
  char nm[FW_NAME_MAX];
  if (e < 0 || e >= w->n || a < 0 || a >= FW_ATTRS) return -1;
  return fit(snprintf(buf, cap, "%s %s", fw_name(w, e, nm), phrase[a]), cap);
}

int fw_sentence(const fw_world_t *w, int e, int a, int v, char *buf, size_t cap) {
  int n = fw_cloze(w, e, a, buf, cap);
  if (n < 0 || v < 0 || v >= nvals[a]) return -1;
  return fit(n + snprintf(buf + n, cap - (size_t)n, " %s .", vocab[a][v]), cap);
}

static int sentences(const fw_world_t *w, int e, const int *order, char *buf, size_t cap) {
  size_t at = 0;
  for (int i = 0; i < FW_ATTRS; i++) {
    if (i) {
      if (at + 1 >= cap) return -1;
      buf[at++] = ' ';
    }
    int n = fw_sentence(w, e, order[i], w->e[e].v[order[i]], buf + at, cap - at);
    if (n < 0) return -1;
    at += (size_t)n;
  }
  return (int)at;
}

int fw_paragraph(const fw_world_t *w, int e, uint64_t *r, char *buf, size_t cap) {
  int order[FW_ATTRS] = {0, 1, 2, 3};
  for (int i = FW_ATTRS - 1; i > 0; i--) {
    int j = (int)(nn_splitmix64(r) % (uint64_t)(i + 1)), x = order[i];
    order[i] = order[j], order[j] = x;
  }
  return sentences(w, e, order, buf, cap);
}

int fw_bio(const fw_world_t *w, int e, char *buf, size_t cap) {
  static const int order[FW_ATTRS] = {0, 1, 2, 3};
  return sentences(w, e, order, buf, cap);
}

static const char *skip_spaces(const char *s) {
  while (*s == ' ') s++;
  return s;
}

int fw_classify(int a, int truth, const char *text, int *value) {
  *value = -1;
  const char *s = skip_spaces(text), *dot = strchr(s, '.');
  if (!dot || a < 0 || a >= FW_ATTRS) return FW_MALFORMED;
  size_t n = (size_t)(dot - s);
  while (n && s[n - 1] == ' ') n--;
  if (n == strlen(FW_IDK) && !memcmp(s, FW_IDK, n)) return FW_ABSTAIN;
  *value = fw_value_find(a, s, n);
  return *value < 0 ? FW_MALFORMED : *value == truth ? FW_CORRECT : FW_WRONG;
}

/* SQuAD's answer normalisation into out (cap >= 1): lower case, ASCII
 * punctuation dropped, the words a, an and the dropped, spaces collapsed. */
static void normalize(const char *s, size_t n, char *out, size_t cap) {
  size_t at = 0, word = 0; /* word: where the current word starts in out */
  for (size_t i = 0; i <= n && at + 1 < cap; i++) {
    unsigned char ch = i < n ? (unsigned char)s[i] : ' ';
    if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch - 'A' + 'a');
    if (ch < 0x80 && ispunct(ch)) continue;
    if (isspace(ch)) {
      size_t len = at - word;
      if ((len == 1 && !memcmp(out + word, "a", 1)) || (len == 2 && !memcmp(out + word, "an", 2)) ||
          (len == 3 && !memcmp(out + word, "the", 3)))
        at = word; /* an article: dropped */
      else if (len)
        out[at++] = ' ';
      word = at;
      continue;
    }
    out[at++] = (char)ch;
  }
  while (at && out[at - 1] == ' ') at--;
  out[at] = 0;
}

int fw_classify_free(const char *text, const char *const *answers, int n) {
  const char *s = skip_spaces(text), *end = strstr(s, " .");
  if (!end) return FW_MALFORMED;
  size_t len = (size_t)(end - s);
  if (len == strlen(FW_IDK) && !memcmp(s, FW_IDK, len)) return FW_ABSTAIN;
  char said[512], ref[512];
  normalize(s, len, said, sizeof said);
  if (!said[0]) return FW_MALFORMED;
  for (int i = 0; i < n; i++) {
    normalize(answers[i], strlen(answers[i]), ref, sizeof ref);
    if (ref[0] && !strcmp(said, ref)) return FW_CORRECT;
  }
  return FW_WRONG;
}

int fw_bio_facts(const fw_world_t *w, int e, const char *text, fw_fact_t *facts, int max,
                 int *nfacts) {
  char nm[FW_NAME_MAX];
  *nfacts = 0;
  if (e < 0 || e >= w->n) return -1;
  fw_name(w, e, nm);
  size_t nl = strlen(nm);
  const char *s = skip_spaces(text);
  while (*s) {
    if (strncmp(s, nm, nl) || s[nl] != ' ') return -1;
    s += nl + 1;
    int a = 0;
    while (a < FW_ATTRS &&
           !(strncmp(s, phrase[a], strlen(phrase[a])) == 0 && s[strlen(phrase[a])] == ' '))
      a++;
    if (a == FW_ATTRS) return -1;
    s += strlen(phrase[a]) + 1;
    const char *end = strstr(s, " .");
    if (!end) return -1;
    int v = fw_value_find(a, s, (size_t)(end - s));
    if (v < 0) return -1;
    if (*nfacts < max) facts[*nfacts] = (fw_fact_t){a, v, v == w->e[e].v[a]};
    ++*nfacts;
    s = end + 2;
    if (*s && *s != ' ') return -1;
    s = skip_spaces(s);
  }
  return *nfacts ? 0 : -1;
}

int fw_bio_check(const fw_world_t *w, int e, const char *text, int *n_true, int *n_false) {
  fw_fact_t f[FW_MAX_FACTS];
  int n, rc = fw_bio_facts(w, e, text, f, FW_MAX_FACTS, &n);
  *n_true = *n_false = 0;
  for (int i = 0; i < n && i < FW_MAX_FACTS; i++) f[i].truth ? ++*n_true : ++*n_false;
  return rc;
}

double fw_bio_reward(int n_yes, int n_no, int malformed) {
  return malformed ? -15.0 : 2.0 * n_yes - 3.0 * n_no;
}

double fw_fact_value(double q) {
  return 5.0 * q - 3.0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double fw_percentile(const double *x, int n, double p) {
  double *s = malloc((size_t)n * sizeof *s);
  if (!s) return 0.0 / 0.0;
  memcpy(s, x, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  double pos = p / 100.0 * (n - 1);
  int lo = (int)pos;
  if (lo >= n - 1) lo = n - 1;
  double hi = lo + 1 < n ? s[lo + 1] : s[lo], v = s[lo] + (pos - lo) * (hi - s[lo]);
  free(s);
  return v;
}
