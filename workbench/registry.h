/* registry.h - the plugin registry: name -> shared object -> descriptor.
 *
 * Plugins are declared (lathe.register{} in share/plugins.lua, a recipe, or
 * LATHE_PLUGIN_PATH) and loaded with dlopen on first use, through one path for
 * built-in and user plugins alike. The registry is process-wide and safe to
 * use from the loop and worker threads. Not to be confused with the Lua registry.
 */
#ifndef LATHE_REGISTRY_H
#define LATHE_REGISTRY_H

#include "lathe.h"

/* Declare plugin name at path (a .so; relative paths resolve against the
 * plugin directory). name NULL: load now and take the descriptor's name.
 * where names the declaration for messages ("share/plugins.lua:3"). */
int lathe_registry_add(const char *name, const char *path, const char *where);
/* Load (if needed) and return the descriptor of name. LATHE_ENOPLUGIN names
 * the nearest registered plugin; LATHE_EAPIVER / LATHE_EPLUGIN for bad objects. */
int lathe_registry_get(const char *name, const lathe_plugin_t **out);
/* Number of declared plugins and the name of the i-th (in declaration order). */
int lathe_registry_count(void);
const char *lathe_registry_name(int i);
/* The directory built-in plugins live in (LATHE_PLUGIN_DIR, else next to the
 * binary: build/plugins or PREFIX/lib/lathe/plugins). */
const char *lathe_plugin_dir(void);
/* The folder of the running binary (/proc/self/exe). */
const char *lathe_exe_dir(void);
/* The share directory (LATHE_SHARE_DIR, else ../share beside build/, else
 * PREFIX/share/lathe). */
const char *lathe_share_dir(void);
/* Register each .so named in LATHE_PLUGIN_PATH (files or folders, ':'-separated). */
int lathe_registry_add_env(void);

/* An algorithm's main metric (NULL for other kinds or none) and whether lower is better. */
const char *lathe_main_metric(const lathe_plugin_t *p);
int lathe_main_lower_better(const lathe_plugin_t *p);
/* The rules of lathe.h's Kinds and Versions for descriptor p: 0, or
 * LATHE_EPLUGIN / LATHE_EAPIVER with a message naming what is wrong (no prefix). */
int lathe_descriptor_check(const lathe_plugin_t *p);

#endif
