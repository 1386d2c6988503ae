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

static const char *exe_dir(void) {
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
    snprintf(dir, sizeof dir, "%s/plugins", exe_dir());
    if (!is_dir(dir)) snprintf(dir, sizeof dir, "%s/../lib/lathe/plugins", exe_dir());
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
      snprintf(p, sizeof p, "%s%s/plugins.lua", exe_dir(), up[i]);
      if (!access(p, R_OK)) snprintf(dir, sizeof dir, "%s%s", exe_dir(), up[i]);
    }
    if (!dir[0]) snprintf(dir, sizeof dir, "%s/../share/lathe", exe_dir());
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
  const lathe_plugin_t *p = fn(LATHE_PLUGIN_APIVER);
  if (!p || p->apiver != LATHE_PLUGIN_APIVER) {
    int theirs = p ? p->apiver : -1; /* read before dlclose unmaps p */
    dlclose(dl);
    return lathe_seterr(LATHE_EAPIVER,
                        "%s: %s was built for plugin API %d, this lathe speaks %d; rebuild it "
                        "against this lathe.h",
                        e->where, e->path, theirs, LATHE_PLUGIN_APIVER);
  }
  if (!p->name || !p->kind || !p->create || !p->step || !p->destroy) {
    dlclose(dl);
    return lathe_seterr(LATHE_EPLUGIN,
                        "%s: %s: descriptor lacks name, kind, create, step or destroy", e->where,
                        e->path);
  }
  if (e->name[0] && strcmp(e->name, p->name)) {
    dlclose(dl);
    return lathe_seterr(LATHE_EPLUGIN, "%s: %s declares itself '%s', not '%s'", e->where, e->path,
                        p->name, e->name);
  }
  /* the schema's own defaults must validate */
  lathe_cfg_t c;
  int rc = lathe_cfg_init(&c, p->name, p->opts, NULL);
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
