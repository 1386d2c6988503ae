/* config.c - schema-checked plugin configuration (see config.h). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

const char *lathe_type_name(lathe_type_t t) {
  static const char *names[] = {"int", "number", "bool", "string"};
  return names[t];
}

/* Edit distance counting an adjacent transposition as one edit ("rnu" -> "run"). */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 60 || lb > 60) return 1000;
  size_t d[62][62];
  for (size_t i = 0; i <= la; i++) d[i][0] = i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      size_t best = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

const char *lathe_nearest(const char *word, const char *const *list, int n) {
  const char *best = NULL;
  size_t bd = (size_t)-1;
  for (int i = 0; i < n; i++) {
    size_t d = edit_distance(word, list[i]);
    if (d < bd) bd = d, best = list[i];
  }
  size_t len = strlen(word);
  return best && bd <= (len < 5 ? 1 : len / 3 + 1) ? best : NULL;
}

static lathe_cfg_val_t *find(const lathe_cfg_t *c, const char *key) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->v[i].opt->key, key)) return &c->v[i];
  return NULL;
}

/* Parse text into v per its type; message on failure. */
static int parse(const lathe_cfg_t *c, lathe_cfg_val_t *v, const char *text, int is_default) {
  const lathe_opt_t *o = v->opt;
  const char *who = is_default ? "default of " : "";
  char *end;
  switch (o->type) {
  case LATHE_INT:
  case LATHE_NUM: {
    errno = 0;
    double x = strtod(text, &end);
    while (*end == ' ') end++;
    if (end == text || *end || errno == ERANGE || isnan(x))
      return lathe_seterr(LATHE_ECONFIG, "%s: %s%s = '%s' is not %s", c->owner, who, o->key, text,
                          o->type == LATHE_INT ? "an integer" : "a number");
    if (o->type == LATHE_INT && (x != floor(x) || fabs(x) > 9.007199254740992e15))
      return lathe_seterr(LATHE_ECONFIG, "%s: %s%s = '%s' is not an integer", c->owner, who, o->key,
                          text);
    if (o->min <= o->max && (x < o->min || x > o->max))
      return lathe_seterr(LATHE_ECONFIG, "%s: %s%s = %s is out of range [%g, %g]", c->owner, who,
                          o->key, text, o->min, o->max);
    v->num = x;
    return 0;
  }
  case LATHE_BOOL:
    if (!strcasecmp(text, "true") || !strcmp(text, "1") || !strcasecmp(text, "yes"))
      v->num = 1;
    else if (!strcasecmp(text, "false") || !strcmp(text, "0") || !strcasecmp(text, "no"))
      v->num = 0;
    else
      return lathe_seterr(LATHE_ECONFIG, "%s: %s%s = '%s' is not a bool (true or false)", c->owner,
                          who, o->key, text);
    return 0;
  case LATHE_STR:
    if (o->choices) {
      size_t n = strlen(text);
      const char *p = o->choices;
      int ok = 0;
      while (*p && !ok) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        ok = len == n && !strncmp(p, text, n);
        p += len + (bar != NULL);
      }
      if (!ok)
        return lathe_seterr(LATHE_ECONFIG, "%s: %s%s = '%s' is not one of %s", c->owner, who,
                            o->key, text, o->choices);
    }
    free(v->str);
    v->str = strdup(text);
    return v->str ? 0 : LATHE_ENOMEM;
  }
  return LATHE_ECONFIG;
}

int lathe_cfg_init(lathe_cfg_t *c, const char *owner, const lathe_opt_t *a, const lathe_opt_t *b) {
  memset(c, 0, sizeof *c);
  c->owner = owner;
  int n = 0;
  for (const lathe_opt_t *o = a; o && o->key; o++) n++;
  for (const lathe_opt_t *o = b; o && o->key; o++) n++;
  c->v = calloc(n ? n : 1, sizeof *c->v);
  if (!c->v) return LATHE_ENOMEM;
  const lathe_opt_t *tabs[2] = {a, b};
  for (int t = 0; t < 2; t++)
    for (const lathe_opt_t *o = tabs[t]; o && o->key; o++) {
      if (find(c, o->key)) continue; /* a plugin's own default wins over the host's */
      lathe_cfg_val_t *v = &c->v[c->n++];
      v->opt = o;
      int rc = parse(c, v, o->def ? o->def : "", 1);
      if (rc) {
        lathe_cfg_free(c);
        return lathe_seterr(LATHE_EPLUGIN, "%s", lathe_lasterr());
      }
    }
  return 0;
}

void lathe_cfg_free(lathe_cfg_t *c) {
  for (int i = 0; i < c->n; i++) free(c->v[i].str);
  free(c->v);
  memset(c, 0, sizeof *c);
}

int lathe_cfg_set(lathe_cfg_t *c, const char *key, const char *text) {
  lathe_cfg_val_t *v = find(c, key);
  if (!v) {
    const char *names[256];
    int n = 0;
    for (int i = 0; i < c->n && n < 256; i++) names[n++] = c->v[i].opt->key;
    const char *near = lathe_nearest(key, names, n);
    if (near)
      return lathe_seterr(LATHE_ECONFIG, "%s: unknown config key '%s' (did you mean '%s'?)",
                          c->owner, key, near);
    return lathe_seterr(LATHE_ECONFIG, "%s: unknown config key '%s' (see `lathe plugins %s`)",
                        c->owner, key, c->owner);
  }
  int rc = parse(c, v, text, 0);
  if (!rc) v->set = 1;
  return rc;
}

static const lathe_cfg_val_t *get(const lathe_cfg_t *c, const char *key, lathe_type_t t) {
  const lathe_cfg_val_t *v = find(c, key);
  if (!v) lathe_abort(__FILE__, __LINE__, "%s: config key '%s' not in schema", c->owner, key);
  if (v->opt->type != t && !(t == LATHE_NUM && v->opt->type != LATHE_STR))
    lathe_abort(__FILE__, __LINE__, "%s: config key '%s' read as %s", c->owner, key,
                lathe_type_name(t));
  return v;
}

int64_t lathe_cfg_int(const lathe_cfg_t *c, const char *key) {
  const lathe_cfg_val_t *v = find(c, key);
  if (!v || v->opt->type == LATHE_STR) get(c, key, LATHE_INT);
  return (int64_t)v->num;
}
double lathe_cfg_num(const lathe_cfg_t *c, const char *key) {
  return get(c, key, LATHE_NUM)->num;
}
const char *lathe_cfg_str(const lathe_cfg_t *c, const char *key) {
  return get(c, key, LATHE_STR)->str;
}

json_object *lathe_cfg_json(const lathe_cfg_t *c) {
  json_object *o = json_object_new_object();
  for (int i = 0; i < c->n; i++) {
    const lathe_cfg_val_t *v = &c->v[i];
    json_object *x = NULL;
    switch (v->opt->type) {
    case LATHE_INT:
      x = json_object_new_int64((int64_t)v->num);
      break;
    case LATHE_NUM:
      x = json_object_new_double(v->num);
      break;
    case LATHE_BOOL:
      x = json_object_new_boolean(v->num != 0);
      break;
    case LATHE_STR:
      x = json_object_new_string(v->str);
      break;
    }
    json_object_object_add(o, v->opt->key, x);
  }
  return o;
}

int lathe_cfg_from_json(lathe_cfg_t *c, json_object *obj) {
  if (!json_object_is_type(obj, json_type_object)) /* a damaged record (found by fuzzing) */
    return lathe_seterr(LATHE_ECONFIG, "%s: a stored config is %s, not an object", c->owner,
                        obj ? json_type_to_name(json_object_get_type(obj)) : "null");
  json_object_object_foreach(obj, key, val) {
    char buf[64];
    const char *text;
    if (json_object_is_type(val, json_type_double)) {
      snprintf(buf, sizeof buf, "%.17g", json_object_get_double(val));
      text = buf;
    } else
      text = json_object_get_string(val);
    int rc = lathe_cfg_set(c, key, text);
    if (rc) return rc;
  }
  return 0;
}
