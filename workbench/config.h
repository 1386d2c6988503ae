/* config.h - a plugin's resolved configuration: its schema (lathe_opt_t
 * tables) with a value for every key, checked on every assignment.
 *
 * Values arrive as text (from Lua tables, --set, or stored run records) and
 * are parsed per the option's type; an unknown key, a wrong type, a value out
 * of range or not among the choices is LATHE_ECONFIG with a one-line message
 * naming key, value and what was expected (and the nearest known key).
 * A cfg owns its strings; free with lathe_cfg_free.
 */
#ifndef LATHE_CONFIG_H
#define LATHE_CONFIG_H

#include <json-c/json.h>

#include "lathe.h"

typedef struct lathe_cfg_val {
  const lathe_opt_t *opt;
  char *str;  /* STR value (owned) */
  double num; /* INT, NUM and BOOL value */
  int set;    /* 1 if assigned (not the default) */
} lathe_cfg_val_t;

typedef struct lathe_cfg {
  const char *owner; /* plugin name, for messages */
  int n;
  lathe_cfg_val_t *v;
} lathe_cfg_t;

/* Build from up to two option tables (the plugin's, then the host's), with
 * defaults. A default that does not parse is LATHE_EPLUGIN. */
int lathe_cfg_init(lathe_cfg_t *c, const char *owner, const lathe_opt_t *a, const lathe_opt_t *b);
void lathe_cfg_free(lathe_cfg_t *c);
/* Assign key from text. */
int lathe_cfg_set(lathe_cfg_t *c, const char *key, const char *text);
/* Getters; asking for a key not in the schema is a programmer error (abort). */
int64_t lathe_cfg_int(const lathe_cfg_t *c, const char *key);
double lathe_cfg_num(const lathe_cfg_t *c, const char *key);
const char *lathe_cfg_str(const lathe_cfg_t *c, const char *key);
/* The resolved values as a JSON object (new reference). */
json_object *lathe_cfg_json(const lathe_cfg_t *c);
/* Assign every member of a JSON object (as stored in run records). */
int lathe_cfg_from_json(lathe_cfg_t *c, json_object *obj);
/* Type name for docs: "int", "number", "bool", "string". */
const char *lathe_type_name(lathe_type_t t);

/* The entry of list (n words) nearest to word by edit distance, or NULL when
 * none is close enough to be a plausible typo. */
const char *lathe_nearest(const char *word, const char *const *list, int n);

#endif
