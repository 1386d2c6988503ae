/* dashboard.h - the ncurses dashboard: live training curves.
 *
 * Two sources, one view. `lathe run` on a terminal shows its own session
 * live (events from the workers; p pauses, c checkpoints, q asks whether to
 * stop the runs). `lathe watch` opens a store read-only and follows the runs
 * another process writes (polling LMDB a few times a second; run control is
 * refused there: the runs belong to the other process).
 *
 * The dashboard owns the terminal while it is up: stderr is captured into its
 * log pane and replayed on the real stderr when it ends, a recipe's print()
 * lines are shown and then printed to stdout, and every exit path (q, the end
 * of a recipe, a second Ctrl-C, a crash, SIGHUP) restores the terminal.
 * curses is global, so there is at most one dashboard per process.
 */
#ifndef LATHE_DASHBOARD_H
#define LATHE_DASHBOARD_H

#include "../workbench/run.h"

/* 1 if stdin and stdout are terminals a dashboard can use (TERM set, not dumb). */
int lathe_dash_possible(void);
/* Put the dashboard on session s (before the recipe starts): it takes over
 * on_event and on_print. title names what runs (the recipe). Returns 0, or a
 * negative code when the terminal cannot be initialised (the caller falls
 * back to headless output). */
int lathe_dash_attach(lathe_session_t *s, const char *title);
/* Take the dashboard down (terminal restored), print the recipe's output to
 * stdout and the captured stderr to stderr. Safe to call when none is up. */
void lathe_dash_detach(lathe_session_t *s);
/* `lathe watch`: follow runs ids[0..n) of the store (n == 0: the running
 * runs, or the newest run, and runs created later) until the user quits.
 * Returns 0 or a negative code with the message set. */
int lathe_dash_watch(lathe_store_t *st, const uint32_t *ids, int n);

#endif
