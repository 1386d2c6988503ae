/* headless.h - what a run prints when no dashboard shows it.
 *
 * JSON lines on stdout (when stdout is not a TTY, or with --headless), one
 * object per line, flushed per line, schema version "v": 1:
 *   {"v":1,"type":"start","run":3,"plugin":"dqn","step":0,"time":..,"config":{..},"seed":0}
 *   {"v":1,"type":"metric","run":3,"step":1200,"time":..,"elapsed":..,"name":"loss","value":0.12}
 *   {"v":1,"type":"log","run":3,"step":..,"time":..,"text":".."}
 *   {"v":1,"type":"ckpt","run":3,"step":2000,"time":..}
 *   {"v":1,"type":"end","run":3,"step":..,"time":..,"status":"done","summary":{..},"error":".."}
 *   {"v":1,"type":"print","time":..,"text":".."}      (a recipe's print())
 * Non-finite values are written as null. Human progress (one line per run per
 * second) goes to stderr, only when stderr is a terminal.
 */
#ifndef LATHE_HEADLESS_H
#define LATHE_HEADLESS_H

#include "../workbench/run.h"

/* The session's on_event handler: JSON lines and/or progress lines. */
void lathe_headless_event(lathe_session_t *s, const lathe_event_t *ev);
/* Start the once-a-second progress timer (when s->progress). */
void lathe_headless_start(lathe_session_t *s);
/* A recipe's print(): to stdout as-is, or as a JSON "print" line. */
void lathe_headless_print(lathe_session_t *s, const char *text);

#endif
