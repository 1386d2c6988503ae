/* l_lathe.h - recipes: Lua 5.4 scripts run as a coroutine on the libuv loop.
 *
 * lathe.run() starts a run and yields until it ends; lathe.spawn() starts one
 * and returns at once; lathe.wait() yields until the given runs end. The Lua
 * state lives on the loop thread only.
 */
#ifndef LATHE_L_LATHE_H
#define LATHE_L_LATHE_H

#include "../workbench/run.h"

/* Load share/plugins.lua (the built-in declarations) and LATHE_PLUGIN_PATH
 * into the plugin registry, using a throwaway Lua state. */
int lathe_declare_builtins(void);

/* Run the recipe at path to completion inside session s (whose store may be
 * NULL when s->check_only). Returns 0, or the code of the first failure:
 * LATHE_ERECIPE/ECONFIG for recipe errors, LATHE_EINTR when stopped by a
 * signal, or the error of a failed run. The message is in lathe_lasterr(). */
int lathe_recipe_run(lathe_session_t *s, const char *path);

#endif
