/* registry.c - plugin declarations, lazy dlopen, API-version handshake. */
#include "registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "nn/nn.h"
#include "runimpl.h"

typedef struct entry {
  char name[64];
  char path[PATH_MAX];
  char where[256];
  void *dl;
  const lathe_plugin_t *p;
} entry_t;

static entry_t *entries;
static int nentries, cap;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

const char *lathe_exe_dir(void) {
  static char dir[PATH_MAX];
  if (!dir[0]) {
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) return ".";
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
  }
  return dir;
}

static int is_dir(const char *p) {
  struct stat st;
  return !stat(p, &st) && S_ISDIR(st.st_mode);
}

const char *lathe_plugin_dir(void) {
  static char dir[PATH_MAX];
  const char *env = getenv("LATHE_PLUGIN_DIR");
  if (env && *env) return env;
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "%s/plugins", lathe_exe_dir());
    if (!is_dir(dir)) snprintf(dir, sizeof dir, "%s/../lib/lathe/plugins", lathe_exe_dir());
  }
  return dir;
}

const char *lathe_share_dir(void) {
  static char dir[PATH_MAX];
  const char *env = getenv("LATHE_SHARE_DIR");
  if (env && *env) return env;
  if (!dir[0]) {
    /* build/lathe (or build/asan/lathe) in a source tree: share/ at the top */
    const char *up[] = {"/../share", "/../../share"};
    for (int i = 0; i < 2 && !dir[0]; i++) {
      char p[PATH_MAX];
      snprintf(p, sizeof p, "%s%s/plugins.lua", lathe_exe_dir(), up[i]);
      if (!access(p, R_OK)) snprintf(dir, sizeof dir, "%s%s", lathe_exe_dir(), up[i]);
    }
    if (!dir[0]) snprintf(dir, sizeof dir, "%s/../share/lathe", lathe_exe_dir());
  }
  return dir;
}

static int load(entry_t *e) {
  if (e->p) return 0;
  void *dl = dlopen(e->path, RTLD_NOW | RTLD_LOCAL);
  if (!dl)
    return lathe_seterr(LATHE_EPLUGIN, "%s: cannot load plugin '%s': %s", e->where, e->name,
                        dlerror());
  char sym[96];
  snprintf(sym, sizeof sym, "lathe_plugin_entry_%s", e->name);
  lathe_plugin_entry_fn fn = NULL;
  if (e->name[0]) fn = (lathe_plugin_entry_fn)dlsym(dl, sym);
  if (!fn) fn = (lathe_plugin_entry_fn)dlsym(dl, "lathe_plugin_entry");
  if (!fn) {
    dlclose(dl);
    return lathe_seterr(LATHE_EPLUGIN, "%s: %s has no lathe_plugin_entry()", e->where, e->path);
  }
  const lathe_plugin_t *p = fn(LATHE_API_MAJOR, LATHE_API_MINOR);
  int rc = p ? lathe_descriptor_check(p)
             : lathe_seterr(LATHE_EAPIVER,
                            "it serves no API %d.%d (built for another major or a newer minor)",
                            LATHE_API_MAJOR, LATHE_API_MINOR);
  if (rc) {
    char why[512];
    snprintf(why, sizeof why, "%s", lathe_lasterr()); /* p dies with dlclose */
    dlclose(dl);
    return lathe_seterr(rc, "%s: %s: %s%s", e->where, e->path, why,
                        rc == LATHE_EAPIVER ? "; rebuild it against this lathe.h" : "");
  }
  if (e->name[0] && strcmp(e->name, p->name)) {
    dlclose(dl);
    return lathe_seterr(LATHE_EPLUGIN, "%s: %s declares itself '%s', not '%s'", e->where, e->path,
                        p->name, e->name);
  }
  /* the schema's own defaults must validate */
  lathe_cfg_t c;
  rc = lathe_cfg_init(&c, p->name, p->opts, NULL);
  if (rc) {
    dlclose(dl);
    return lathe_seterr(LATHE_EPLUGIN, "%s: %s", e->where, lathe_lasterr());
  }
  lathe_cfg_free(&c);
  snprintf(e->name, sizeof e->name, "%s", p->name);
  e->dl = dl, e->p = p;
  return 0;
}

int lathe_registry_add(const char *name, const char *path, const char *where) {
  pthread_mutex_lock(&mu);
  int rc = 0;
  entry_t tmp = {0};
  if (path[0] == '/' || !strncmp(path, "./", 2) || !strncmp(path, "../", 3))
    snprintf(tmp.path, sizeof tmp.path, "%s", path);
  else
    snprintf(tmp.path, sizeof tmp.path, "%s/%s", lathe_plugin_dir(), path);
  snprintf(tmp.where, sizeof tmp.where, "%s", where ? where : "?");
  if (name)
    snprintf(tmp.name, sizeof tmp.name, "%s", name);
  else if ((rc = load(&tmp)))
    goto out;
  for (int i = 0; i < nentries; i++)
    if (!strcmp(entries[i].name, tmp.name)) {
      if (strcmp(entries[i].path, tmp.path))
        rc = lathe_seterr(LATHE_EPLUGIN, "%s: plugin '%s' already registered at %s", tmp.where,
                          tmp.name, entries[i].where);
      if (tmp.dl && !entries[i].dl)
        entries[i].dl = tmp.dl, entries[i].p = tmp.p;
      else if (tmp.dl)
        dlclose(tmp.dl);
      goto out;
    }
  if (nentries == cap) {
    int ncap = cap ? 2 * cap : 32;
    entry_t *ne = realloc(entries, ncap * sizeof *ne);
    if (!ne) {
      rc = LATHE_ENOMEM;
      goto out;
    }
    entries = ne, cap = ncap;
  }
  entries[nentries++] = tmp;
out:
  pthread_mutex_unlock(&mu);
  return rc;
}

int lathe_registry_get(const char *name, const lathe_plugin_t **out) {
  pthread_mutex_lock(&mu);
  int rc;
  for (int i = 0; i < nentries; i++)
    if (!strcmp(entries[i].name, name)) {
      rc = load(&entries[i]);
      *out = entries[i].p;
      pthread_mutex_unlock(&mu);
      return rc;
    }
  const char *names[512];
  int n = 0;
  for (int i = 0; i < nentries && n < 512; i++) names[n++] = entries[i].name;
  const char *near = lathe_nearest(name, names, n);
  pthread_mutex_unlock(&mu);
  *out = NULL;
  if (near) return lathe_seterr(LATHE_ENOPLUGIN, "no plugin '%s' (did you mean '%s'?)", name, near);
  return lathe_seterr(LATHE_ENOPLUGIN, "no plugin '%s' (see `lathe plugins`)", name);
}

int lathe_registry_count(void) {
  return nentries;
}

const char *lathe_registry_name(int i) {
  return i < nentries ? entries[i].name : NULL;
}

int lathe_registry_add_env(void) {
  const char *env = getenv("LATHE_PLUGIN_PATH");
  if (!env || !*env) return 0;
  char *copy = strdup(env), *save = NULL;
  int rc = 0;
  for (char *tok = strtok_r(copy, ":", &save); tok && !rc; tok = strtok_r(NULL, ":", &save)) {
    char where[PATH_MAX + 32];
    snprintf(where, sizeof where, "LATHE_PLUGIN_PATH (%s)", tok);
    if (is_dir(tok)) {
      DIR *d = opendir(tok);
      struct dirent *de;
      while (d && !rc && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 3, ".so")) continue;
        char p[PATH_MAX * 2];
        snprintf(p, sizeof p, "%s%s/%s", tok[0] == '/' ? "" : "./", tok, de->d_name);
        rc = lathe_registry_add(NULL, p, where);
      }
      if (d) closedir(d);
    } else {
      char p[PATH_MAX + 4];
      snprintf(p, sizeof p, "%s%s", tok[0] == '/' ? "" : "./", tok);
      rc = lathe_registry_add(NULL, p, where);
    }
  }
  free(copy);
  return rc;
}

const char *lathe_main_metric(const lathe_plugin_t *p) {
  return p->kind == LATHE_ALGORITHM ? p->algorithm->main_metric : NULL;
}

int lathe_main_lower_better(const lathe_plugin_t *p) {
  return p->kind == LATHE_ALGORITHM && p->algorithm->main_lower_better;
}

#define NEED(cond, ...)                                                                            \
  do {                                                                                             \
    if (!(cond)) return lathe_seterr(LATHE_EPLUGIN, __VA_ARGS__);                                  \
  } while (0)

int lathe_descriptor_check(const lathe_plugin_t *p) {
  if (p->major != LATHE_API_MAJOR || p->minor < 0 || p->minor > LATHE_API_MINOR)
    return lathe_seterr(LATHE_EAPIVER, "built for plugin API %d.%d, this lathe speaks %d.%d",
                        p->major, p->minor, LATHE_API_MAJOR, LATHE_API_MINOR);
  if (p->nn_abi && p->nn_abi != nn_abi_version())
    return lathe_seterr(LATHE_EAPIVER, "built against nn library ABI %d, the loaded one is %d",
                        p->nn_abi, nn_abi_version());
  NEED(p->name && p->name[0], "the descriptor has no name");
  NEED(p->create && p->destroy, "'%s' lacks create or destroy", p->name);
  /* the text environment kind and its interface exist from minor 2 on; an
   * older descriptor has no textenv field to read */
  const lathe_textenv_t *textenv = p->minor >= 2 ? p->textenv : NULL;
  int last = p->minor >= 2 ? LATHE_TEXTENV : LATHE_GENERATOR;
  NEED(p->kind >= LATHE_ALGORITHM && (int)p->kind <= last, "'%s': kind %d is not one of 1-%d",
       p->name, (int)p->kind, last);
  const char *kind = lathe_kind_name(p->kind);
  int set = !!p->algorithm + !!p->env + !!p->task + !!p->generator + !!textenv;
  const void *mine = p->kind == LATHE_ALGORITHM     ? (const void *)p->algorithm
                     : p->kind == LATHE_ENVIRONMENT ? (const void *)p->env
                     : p->kind == LATHE_TASK        ? (const void *)p->task
                     : p->kind == LATHE_TEXTENV     ? (const void *)textenv
                                                    : (const void *)p->generator;
  NEED(mine && set == 1, "'%s' (%s) must set its %s interface and no other", p->name, kind, kind);
  int stateful =
      p->kind == LATHE_ALGORITHM || p->kind == LATHE_ENVIRONMENT || p->kind == LATHE_TEXTENV;
  NEED(stateful ? p->save && p->load : !p->save && !p->load,
       stateful ? "'%s' (%s) lacks save or load"
                : "'%s' (%s) is a pure function of its config: "
                  "save and load must be NULL",
       p->name, kind);
  switch (p->kind) {
  case LATHE_ALGORITHM:
    NEED(p->algorithm->step, "'%s' (algorithm) lacks step", p->name);
    for (const lathe_opt_t *o = p->opts; o && o->key; o++) /* a run's own keys stay the host's */
      for (const lathe_opt_t *r = run_host_opts; r->key; r++)
        NEED(strcmp(o->key, r->key), "'%s': option '%s' is a key every run has", p->name, o->key);
    break;
  case LATHE_ENVIRONMENT:
    NEED(p->env->spaces && p->env->reset && p->env->set_state && p->env->step,
         "'%s' (environment) lacks spaces, reset, set_state or step", p->name);
    break;
  case LATHE_TASK:
    NEED(p->task->spec && p->task->prompt && p->task->reward && p->task->reference,
         "'%s' (task) lacks spec, prompt, reward or reference", p->name);
    break;
  case LATHE_GENERATOR:
    NEED(p->generator->schema && p->generator->next, "'%s' (generator) lacks schema or next",
         p->name);
    break;
  case LATHE_TEXTENV:
    NEED(textenv->reset && textenv->step, "'%s' (textenv) lacks reset or step", p->name);
    break;
  }
  return 0;
}
