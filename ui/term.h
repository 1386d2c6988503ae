/* term.h - the dashboard's terminal layer: curses on stdout, its palette,
 * stderr captured into a pipe the loop reads, keys and resizes delivered as
 * callbacks, and a terminal restored on every way out (term_down, a crash
 * signal, term_restore from an abort path).
 *
 * curses is global, so at most one terminal is up per process. Everything
 * runs on the thread of the loop given to term_up.
 */
#ifndef LATHE_TERM_H
#define LATHE_TERM_H

#include <curses.h>
#include <stddef.h>
#include <uv.h>

/* Colour pairs: 1..TERM_NSERIES for the series, then the named ones. */
#define TERM_NSERIES 6
enum { PAIR_HEAD = TERM_NSERIES + 1, PAIR_OK, PAIR_BAD, PAIR_WARN, PAIR_DIM };

typedef struct term {
  /* set by the caller before term_up */
  void *ud;
  void (*on_key)(void *ud, int ch);                      /* each key read */
  void (*on_keys_done)(void *ud);                        /* after a batch of keys */
  void (*on_resize)(void *ud);                           /* after resizeterm */
  void (*on_errline)(void *ud, const char *line, int n); /* a line written to stderr */
  /* set by term_up */
  int glyphs; /* chart.h CHART_BRAILLE on a UTF-8 locale, else CHART_ASCII */
  int colors; /* colour pairs usable (and NO_COLOR unset) */
  char *errs; /* owned: everything written to stderr while up */
  size_t nerrs;
  /* private */
  SCREEN *scr;
  uv_loop_t *loop;
  uv_poll_t input, errpoll;
  uv_signal_t winch;
  int errfd[2], saved_err;
} term_t;

/* 1 if stdin and stdout are terminals curses can use (TERM set, not dumb). */
int term_possible(void);
/* Take the terminal: curses, palette, stderr capture, key and resize
 * watchers on loop (unref'd: they keep no loop alive; term_hold_input makes
 * the input watcher hold it). 0, or LATHE_EIO with the message set. */
int term_up(term_t *t, uv_loop_t *loop);
void term_hold_input(term_t *t);
/* Give the terminal back: handles closed (their callbacks run on the loop's
 * next turn), stderr restored after reading what is left in the pipe. The
 * captured bytes stay in t->errs for the caller, who frees them. */
void term_down(term_t *t);
/* Restore the terminal and stderr now, from an abort path (second Ctrl-C). */
void term_restore(void);

#endif
