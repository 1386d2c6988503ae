/* term.c - the dashboard's terminal layer (see term.h). */
#include "term.h"

#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../workbench/error.h"
#include "chart.h"

static term_t *T; /* curses is global: one terminal per process */

int term_possible(void) {
  const char *term = getenv("TERM");
  return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb");
}

void term_restore(void) {
  if (T && !isendwin()) endwin();
  if (T && T->saved_err >= 0) dup2(T->saved_err, STDERR_FILENO);
}

static void on_crash(int sig) {
  term_restore();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void on_input(uv_poll_t *h, int status, int events) {
  term_t *t = h->data;
  int ch, any = 0;
  while ((ch = getch()) != ERR) t->on_key(t->ud, ch), any = 1;
  if (any && t->on_keys_done) t->on_keys_done(t->ud);
}

static void on_winch(uv_signal_t *h, int sig) {
  term_t *t = h->data;
  struct winsize ws;
  if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_row && ws.ws_col)
    resizeterm(ws.ws_row, ws.ws_col);
  clear();
  if (t->on_resize) t->on_resize(t->ud);
}

/* captured stderr: kept for the real stderr at the end, and each complete line to on_errline */
static void on_err(uv_poll_t *h, int status, int events) {
  term_t *t = h->data;
  char buf[4096];
  ssize_t n;
  while ((n = read(t->errfd[0], buf, sizeof buf)) > 0) {
    char *ne = realloc(t->errs, t->nerrs + n + 1);
    if (!ne) break;
    t->errs = ne;
    size_t start = t->nerrs;
    memcpy(t->errs + t->nerrs, buf, n);
    t->nerrs += n;
    t->errs[t->nerrs] = 0;
    for (size_t i = start; i < t->nerrs;) { /* the complete lines just read */
      char *e = strchr(t->errs + i, '\n');
      size_t len = e ? (size_t)(e - (t->errs + i)) : t->nerrs - i;
      if (len && t->on_errline) t->on_errline(t->ud, t->errs + i, (int)len);
      i += len + 1;
    }
  }
}

int term_up(term_t *t, uv_loop_t *loop) {
  setlocale(LC_ALL, "");
  setlocale(LC_NUMERIC, "C"); /* numbers keep their dot */
  t->glyphs = strcmp(nl_langinfo(CODESET), "UTF-8") ? CHART_ASCII : CHART_BRAILLE;
  if (!(t->scr = newterm(NULL, stdout, stdin)))
    return lathe_seterr(LATHE_EIO, "cannot start the terminal UI");
  T = t;
  cbreak(), noecho(), keypad(stdscr, TRUE), nodelay(stdscr, TRUE), curs_set(0);
  set_escdelay(25);
  const char *nc = getenv("NO_COLOR");
  t->colors = has_colors() && !(nc && *nc);
  if (t->colors) {
    start_color();
    use_default_colors();
    static const short pal[TERM_NSERIES] = {COLOR_CYAN,  COLOR_YELLOW, COLOR_MAGENTA,
                                            COLOR_GREEN, COLOR_BLUE,   COLOR_RED};
    for (int i = 0; i < TERM_NSERIES; i++) init_pair(1 + i, pal[i], -1);
    init_pair(PAIR_HEAD, COLOR_BLACK, COLOR_CYAN);
    init_pair(PAIR_OK, COLOR_GREEN, -1);
    init_pair(PAIR_BAD, COLOR_RED, -1);
    init_pair(PAIR_WARN, COLOR_YELLOW, -1);
    init_pair(PAIR_DIM, COLOR_WHITE, -1);
  }
  signal(SIGSEGV, on_crash), signal(SIGABRT, on_crash), signal(SIGBUS, on_crash);
  signal(SIGFPE, on_crash);
  /* stderr into a pipe the loop reads */
  t->saved_err = -1;
  if (!pipe(t->errfd)) {
    fflush(stderr);
    t->saved_err = dup(STDERR_FILENO);
    dup2(t->errfd[1], STDERR_FILENO);
    close(t->errfd[1]);
    fcntl(t->errfd[0], F_SETFL, O_NONBLOCK);
    fcntl(t->errfd[0], F_SETFD, FD_CLOEXEC);
    uv_poll_init(loop, &t->errpoll, t->errfd[0]);
    t->errpoll.data = t;
    uv_poll_start(&t->errpoll, UV_READABLE, on_err);
    uv_unref((uv_handle_t *)&t->errpoll);
  }
  t->loop = loop;
  uv_poll_init(loop, &t->input, STDIN_FILENO);
  uv_signal_init(loop, &t->winch);
  t->input.data = t->winch.data = t;
  uv_poll_start(&t->input, UV_READABLE, on_input);
  uv_signal_start(&t->winch, on_winch, SIGWINCH);
  uv_unref((uv_handle_t *)&t->input), uv_unref((uv_handle_t *)&t->winch);
  return 0;
}

void term_hold_input(term_t *t) {
  uv_ref((uv_handle_t *)&t->input);
}

static void close_cb(uv_handle_t *h) {
  (void)h;
}

void term_down(term_t *t) {
  if (!t->loop) return;
  uv_close((uv_handle_t *)&t->input, close_cb);
  uv_close((uv_handle_t *)&t->winch, close_cb);
  if (t->saved_err >= 0) {
    fflush(stderr);
    dup2(t->saved_err, STDERR_FILENO);
    close(t->saved_err);
    on_err(&t->errpoll, 0, UV_READABLE); /* what is left in the pipe */
    uv_close((uv_handle_t *)&t->errpoll, close_cb);
    close(t->errfd[0]);
    t->saved_err = -1;
  }
  if (!isendwin()) endwin();
  delscreen(t->scr);
  signal(SIGSEGV, SIG_DFL), signal(SIGABRT, SIG_DFL), signal(SIGBUS, SIG_DFL);
  signal(SIGFPE, SIG_DFL);
  t->loop = NULL, T = NULL;
}
