/* dashboard.c - the ncurses dashboard (see dashboard.h).
 *
 * Layout, top to bottom: a title bar; the runs table (id, plugin, status,
 * step/total, steps per second, ETA, checkpoint age, main metric); up to four
 * chart panels (the focused metric and its neighbours in name order); the log
 * pane; the key bar. Everything is redrawn from the model (runs and their
 * series) by a timer a few times a second; ncurses sends only the cells that
 * changed, which keeps the terminal traffic and the CPU cost small.
 */
#include "dashboard.h"

#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../workbench/error.h"
#include "../workbench/registry.h"
#include "chart.h"
#include "headless.h"
#include "term.h"

#define MAXPTS    4096 /* points kept per series; beyond, every other one is dropped */
#define NLOG      256
#define MINW      60
#define MINH      16
#define REDRAW_MS 250
#define POLL_MS   500
#define NCOLORS   TERM_NSERIES

typedef struct series {
  char name[64];
  double *x, *t, *y; /* kept points: step, seconds since the run's first point, value */
  int n, cap;
  int stride;                          /* 1 in stride points is kept */
  long seen;                           /* points offered */
  double last, lo, hi, last_x, last_t; /* over every point, kept or not */
  int finite;
  uint64_t next; /* the step after the newest point read from the store */
} series_t;

typedef struct drun {
  uint32_t id;
  char plugin[32], status[16], main[64];
  int64_t step, total, ckpt_step;
  double ckpt_time, t0; /* time of the newest checkpoint; of the first point */
  int paused, overlay, ckpt_asked;
  lathe_run_t *live; /* lathe run: the session's run */
  series_t *m;
  int nm, capm;
} drun_t;

typedef struct dash {
  lathe_session_t *s; /* live: the session shown */
  lathe_store_t *st;  /* watch: the store followed */
  char title[256];
  uv_loop_t *loop;
  uv_timer_t redraw, poll;
  term_t term; /* the terminal while the dashboard is up */
  drun_t *runs;
  int nruns, capruns, sel, top;
  int metric, smooth_i, xtime, logy;
  char filter[64];
  int filtering, help, asking, quit;
  char log[NLOG][200];
  int nlog;
  char **prints;
  int nprints;
  int follow;      /* watch without ids: runs created later join */
  uint32_t max_id; /* the newest run id seen */
} dash_t;

static const double smooth_w[] = {0, 0.6, 0.9, 0.99};

/* ---- the model ---------------------------------------------------------------------- */

static drun_t *run_get(dash_t *d, uint32_t id) {
  for (int i = 0; i < d->nruns; i++)
    if (d->runs[i].id == id) return &d->runs[i];
  if (d->nruns == d->capruns) {
    int cap = d->capruns ? 2 * d->capruns : 8;
    drun_t *nr = realloc(d->runs, cap * sizeof *nr);
    if (!nr) return NULL;
    d->runs = nr, d->capruns = cap;
  }
  drun_t *r = &d->runs[d->nruns++];
  memset(r, 0, sizeof *r);
  r->id = id, r->t0 = NAN;
  snprintf(r->status, sizeof r->status, "pending");
  if (id > d->max_id) d->max_id = id;
  return r;
}

static series_t *series_get(drun_t *r, const char *name) {
  for (int i = 0; i < r->nm; i++)
    if (!strcmp(r->m[i].name, name)) return &r->m[i];
  if (r->nm == r->capm) {
    int cap = r->capm ? 2 * r->capm : 8;
    series_t *nm = realloc(r->m, cap * sizeof *nm);
    if (!nm) return NULL;
    r->m = nm, r->capm = cap;
  }
  series_t *m = &r->m[r->nm++];
  memset(m, 0, sizeof *m);
  snprintf(m->name, sizeof m->name, "%s", name);
  m->stride = 1, m->last = NAN;
  return m;
}

static void series_clear(series_t *m) {
  free(m->x), free(m->t), free(m->y);
  char name[64];
  memcpy(name, m->name, sizeof name);
  memset(m, 0, sizeof *m);
  memcpy(m->name, name, sizeof name);
  m->stride = 1, m->last = NAN;
}

static void series_add(drun_t *r, series_t *m, uint64_t step, double time, double y) {
  if (isnan(r->t0)) r->t0 = time;
  double t = time - r->t0;
  if (isfinite(y)) {
    m->lo = m->finite ? fmin(m->lo, y) : y, m->hi = m->finite ? fmax(m->hi, y) : y;
    m->finite++;
  }
  m->last = y, m->last_x = (double)step, m->last_t = t, m->next = step + 1;
  if (m->seen++ % m->stride) return;
  if (m->n == MAXPTS) { /* keep every other point: say "1 in k" on the chart */
    for (int i = 0; i < MAXPTS / 2; i++)
      m->x[i] = m->x[2 * i], m->t[i] = m->t[2 * i], m->y[i] = m->y[2 * i];
    m->n = MAXPTS / 2, m->stride *= 2;
  }
  if (m->n == m->cap) {
    int cap = m->cap ? 2 * m->cap : 64;
    double *x = realloc(m->x, cap * sizeof *x), *tt = x ? realloc(m->t, cap * sizeof *tt) : NULL,
           *yy = tt ? realloc(m->y, cap * sizeof *yy) : NULL;
    if (x) m->x = x;
    if (tt) m->t = tt;
    if (!yy) return;
    m->y = yy, m->cap = cap;
  }
  m->x[m->n] = (double)step, m->t[m->n] = t, m->y[m->n] = y, m->n++;
}

static void runs_free(dash_t *d) {
  for (int i = 0; i < d->nruns; i++) {
    for (int k = 0; k < d->runs[i].nm; k++) series_clear(&d->runs[i].m[k]);
    free(d->runs[i].m);
  }
  free(d->runs);
  d->runs = NULL, d->nruns = d->capruns = 0;
}

static void logf_(dash_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(dash_t *d, const char *fmt, ...) {
  char *line = d->log[d->nlog++ % NLOG];
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  size_t k = strftime(line, 200, "%H:%M:%S ", &tm);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + k, 200 - k, fmt, ap);
  va_end(ap);
  for (char *p = line; *p; p++)
    if (*p == '\n' || *p == '\t') *p = ' ';
}

/* The runs whose curves are drawn: the overlay set, or else the selected run. */
static int shown(dash_t *d, drun_t **out, int max) {
  int n = 0;
  for (int i = 0; i < d->nruns && n < max; i++)
    if (d->runs[i].overlay) out[n++] = &d->runs[i];
  if (!n && d->nruns) out[n++] = &d->runs[d->sel];
  return n;
}

static int name_rank(const char *name, const char *main) {
  if (main[0] && !strcmp(name, main)) return 0;
  return strncmp(name, "perf/", 5) ? 1 : 2;
}

static const char *cmp_main;
static int name_cmp(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  int rx = name_rank(x, cmp_main), ry = name_rank(y, cmp_main);
  return rx != ry ? rx - ry : strcmp(x, y);
}

/* Metric names of the shown runs, filtered, in display order. */
static int visible_names(dash_t *d, drun_t **sh, int nsh, const char **out, int max) {
  int n = 0;
  for (int i = 0; i < nsh; i++)
    for (int k = 0; k < sh[i]->nm; k++) {
      const char *name = sh[i]->m[k].name;
      if (d->filter[0] && !strstr(name, d->filter)) continue;
      int dup = 0;
      for (int j = 0; j < n && !dup; j++) dup = !strcmp(out[j], name);
      if (!dup && n < max) out[n++] = name;
    }
  cmp_main = nsh ? sh[0]->main : "";
  qsort(out, n, sizeof *out, name_cmp);
  return n;
}

/* ---- drawing ------------------------------------------------------------------------- */

/* Series colors 1.. ; FAINT + k is series k's raw curve under its smoothed line. */
#define FAINT 100
static void attr_series(dash_t *d, int color, int on) {
  int faint = color > FAINT;
  if (faint) color -= FAINT;
  int a =
      d->term.colors ? (int)COLOR_PAIR(1 + (color - 1) % NCOLORS) : (color == 1 ? (int)A_BOLD : 0);
  if (faint) a = (a & ~(int)A_BOLD) | (int)A_DIM;
  on ? attron(a) : attroff(a);
}

static void attr_pair(dash_t *d, int pair, int fallback, int on) {
  int a = d->term.colors ? (int)COLOR_PAIR(pair) : fallback;
  on ? attron(a) : attroff(a);
}

/* Line-drawing characters: the terminal's (ACS) in a UTF-8 locale, ASCII otherwise. */
static chtype line_ch(dash_t *d, chtype acs, char ascii) {
  return d->term.glyphs == CHART_BRAILLE ? acs : (chtype)ascii;
}

static const char *age(double t, char *buf, size_t n) {
  if (!(t > 0)) return strcpy(buf, "-");
  double s = lathe_now() - t;
  if (s < 100)
    snprintf(buf, n, "%.0fs", s);
  else if (s < 6000)
    snprintf(buf, n, "%.0fm", s / 60);
  else
    snprintf(buf, n, "%.0fh", s / 3600);
  return buf;
}

static double rate_of(drun_t *r) {
  for (int i = 0; i < r->nm; i++)
    if (!strcmp(r->m[i].name, "perf/steps_per_sec")) return r->m[i].last;
  return NAN;
}

static void draw_runs(dash_t *d, int y0, int rows) {
  int W = COLS;
  attron(A_BOLD);
  mvprintw(y0, 0, "%-*.*s", W, W,
           "   ID    PLUGIN        STATUS        STEP / TOTAL        STEPS/S     ETA  CKPT  MAIN "
           "METRIC");
  attroff(A_BOLD);
  if (d->sel < d->top) d->top = d->sel;
  if (d->sel >= d->top + rows) d->top = d->sel - rows + 1;
  if (d->nruns > rows) { /* say which runs the rows show */
    char which[80];
    int last = d->top + rows < d->nruns ? d->top + rows : d->nruns;
    snprintf(which, sizeof which, "runs %d-%d of %d (j/k scroll)", d->top + 1, last, d->nruns);
    if ((int)strlen(which) + 2 < W) mvprintw(y0, W - (int)strlen(which) - 1, "%s", which);
  }
  for (int i = 0; i < rows && d->top + i < d->nruns; i++) {
    drun_t *r = &d->runs[d->top + i];
    char steps[48], rate[16] = "-", eta[16] = "-", ck[16], mm[96] = "";
    if (r->total > 0)
      snprintf(steps, sizeof steps, "%lld / %lld", (long long)r->step, (long long)r->total);
    else
      snprintf(steps, sizeof steps, "%lld", (long long)r->step);
    double rt = rate_of(r);
    int running = !strcmp(r->status, "running");
    if (running && isfinite(rt)) {
      snprintf(rate, sizeof rate, "%.0f", rt);
      if (r->total > r->step && rt > 0) {
        double left = (r->total - r->step) / rt;
        snprintf(eta, sizeof eta, left < 3600 ? "%d:%02d" : "%dh%02d",
                 left < 3600 ? (int)(left / 60) : (int)(left / 3600),
                 left < 3600 ? (int)fmod(left, 60) : (int)fmod(left / 60, 60));
      }
    }
    for (int k = 0; k < r->nm; k++)
      if (r->main[0] && !strcmp(r->m[k].name, r->main))
        snprintf(mm, sizeof mm, "%s=%.4g", r->main, r->m[k].last);
    const char *st = r->paused && running ? "paused" : r->status;
    int sel = d->top + i == d->sel;
    char head[64], tail[256];
    snprintf(head, sizeof head, "%c%c %-5u %-13.13s ", sel ? '>' : ' ', r->overlay ? '+' : ' ',
             r->id, r->plugin);
    snprintf(tail, sizeof tail, " %-18.18s %8s %7s %5s  %s", steps, r->paused ? "-" : rate,
             r->paused ? "-" : eta, age(r->ckpt_time, ck, sizeof ck), mm);
    if (sel) attron(A_REVERSE);
    mvprintw(y0 + 1 + i, 0, "%-*s", W, ""); /* the highlight spans the row */
    mvaddnstr(y0 + 1 + i, 0, head, W);
    int pair = !strcmp(st, "running")                               ? PAIR_OK
               : (!strcmp(st, "failed") || !strcmp(st, "diverged")) ? PAIR_BAD
               : strcmp(st, "done")                                 ? PAIR_WARN
                                                                    : 0;
    if (pair && !sel) attr_pair(d, pair, A_BOLD, 1);
    if (getcurx(stdscr) < W) printw("%-13.13s", st);
    if (pair && !sel) attr_pair(d, pair, A_BOLD, 0);
    int x = getcurx(stdscr);
    if (x < W && getcury(stdscr) == y0 + 1 + i) addnstr(tail, W - x);
    if (sel) attroff(A_REVERSE);
  }
}

/* A series' points as drawn: x, the smoothed y, and (when smoothing) the raw y
 * kept for the faint curve underneath, as TensorBoard shows it. */
static void series_xy(dash_t *d, series_t *m, double **x, double **y, double **raw, int *n) {
  int k = m->n;
  int tail = m->n == 0 || m->last_x > m->x[m->n - 1]; /* the newest point, if not kept */
  *x = malloc((k + 1) * sizeof **x), *y = malloc((k + 1) * sizeof **y);
  *raw = smooth_w[d->smooth_i] > 0 ? malloc((k + 1) * sizeof **raw) : NULL;
  if (!*x || !*y) {
    *n = 0;
    return;
  }
  memcpy(*x, d->xtime ? m->t : m->x, k * sizeof **x);
  memcpy(*y, m->y, k * sizeof **y);
  if (tail && m->seen) (*x)[k] = d->xtime ? m->last_t : m->last_x, (*y)[k] = m->last, k++;
  if (*raw) memcpy(*raw, *y, k * sizeof **raw);
  chart_ema(*y, k, smooth_w[d->smooth_i], *y);
  *n = k;
}

static void draw_panel(dash_t *d, int y0, int x0, int h, int w, const char *name, int focused,
                       drun_t **sh, int nsh) {
  const int LW = 8; /* y tick labels */
  int cw = w - LW - 1, ch = h - 2;
  if (cw < 4 || ch < 2) return;
  double *xs[NCOLORS], *ys[NCOLORS], *raw[NCOLORS];
  int ns[NCOLORS], stride = 1;
  series_t *ms[NCOLORS];
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int i = 0; i < nsh; i++) {
    ms[i] = NULL, xs[i] = ys[i] = raw[i] = NULL, ns[i] = 0;
    for (int k = 0; k < sh[i]->nm; k++)
      if (!strcmp(sh[i]->m[k].name, name)) ms[i] = &sh[i]->m[k];
    if (!ms[i]) continue;
    series_xy(d, ms[i], &xs[i], &ys[i], &raw[i], &ns[i]);
    if (ms[i]->stride > stride) stride = ms[i]->stride;
    double a, b;
    if (chart_range(ys[i], ns[i], d->logy, &a, &b)) ylo = fmin(ylo, a), yhi = fmax(yhi, b);
    if (raw[i] && chart_range(raw[i], ns[i], d->logy, &a, &b))
      ylo = fmin(ylo, a), yhi = fmax(yhi, b);
    for (int k = 0; k < ns[i]; k++)
      if (isfinite(xs[i][k])) xlo = fmin(xlo, xs[i][k]), xhi = fmax(xhi, xs[i][k]);
  }
  /* title: name (cut to leave room for the markers), then the markers that say
   * how the curve is drawn, then the last value, min and max or the legend */
  char marks[64] = "";
  if (stride > 1) snprintf(marks, sizeof marks, "  (1 in %d pts)", stride);
  if (smooth_w[d->smooth_i] > 0)
    snprintf(marks + strlen(marks), sizeof marks - strlen(marks), "  ema %.2g",
             smooth_w[d->smooth_i]);
  int room = w - (int)strlen(marks);
  if (focused) attron(A_BOLD | A_UNDERLINE);
  mvprintw(y0, x0, "%.*s", room > 8 ? room : w, name);
  if (focused) attroff(A_BOLD | A_UNDERLINE);
  if (room > 8) addstr(marks);
  char info[160] = "";
  if (nsh == 1 && ms[0]) {
    snprintf(info, sizeof info, "  last %.4g  min %.4g  max %.4g", ms[0]->last, ms[0]->lo,
             ms[0]->hi);
    if (!ms[0]->finite) snprintf(info, sizeof info, "  last %.4g  (no finite value)", ms[0]->last);
    addnstr(info, x0 + w - getcurx(stdscr));
  } else {
    for (int i = 0; i < nsh && getcurx(stdscr) < x0 + w - 8; i++) {
      addstr("  ");
      attr_series(d, i + 1, 1);
      addstr(d->term.glyphs == CHART_BRAILLE ? "\xe2\xa3\xbf" : "#");
      attr_series(d, i + 1, 0);
      printw(" %u", sh[i]->id);
    }
  }
  if (!(ylo <= yhi) || !(xlo <= xhi)) {
    mvprintw(y0 + 1 + ch / 2, x0 + LW, "%.*s", cw,
             d->logy ? "no positive finite values (log scale)" : "no finite values yet");
    goto out;
  }
  if (ylo == yhi) ylo -= 1, yhi += 1;
  chart_t c;
  if (chart_init(&c, cw, ch, d->term.glyphs)) goto out;
  chart_frame(&c, xlo, xhi, ylo, yhi, d->logy);
  for (int i = nsh - 1; i >= 0; i--) /* raw curves faint, under every smoothed line */
    if (ns[i] && raw[i]) chart_line(&c, xs[i], raw[i], ns[i], FAINT + i + 1);
  for (int i = nsh - 1; i >= 0; i--)
    if (ns[i]) chart_line(&c, xs[i], ys[i], ns[i], i + 1);
  /* y axis with ticks */
  double t[16];
  int nt = chart_ticks(ylo, yhi, d->logy, ch / 2 > 1 ? (ch / 2 < 8 ? ch / 2 : 8) : 2, t);
  double sp = nt > 1 ? t[1] - t[0] : (yhi - ylo);
  for (int r = 0; r < ch; r++) mvaddch(y0 + 1 + r, x0 + LW - 1, line_ch(d, ACS_VLINE, '|'));
  for (int i = 0; i < nt; i++) {
    double f = d->logy ? (log10(t[i]) - log10(ylo)) / (log10(yhi) - log10(ylo))
                       : (t[i] - ylo) / (yhi - ylo);
    int r = (int)lround((1 - f) * (4 * ch - 1)) / 4;
    if (r < 0 || r >= ch) continue;
    char b[32];
    chart_fmt(t[i], chart_tick_spacing(t, nt, i), b, sizeof b);
    mvprintw(y0 + 1 + r, x0, "%*.*s", LW - 1, LW - 1, b);
    mvaddch(y0 + 1 + r, x0 + LW - 1, line_ch(d, ACS_RTEE, '+'));
  }
  /* the curves */
  char cell[5];
  for (int r = 0; r < ch; r++) {
    move(y0 + 1 + r, x0 + LW);
    for (int col = 0; col < cw; col++) {
      int color = c.color[r * cw + col];
      if (color) attr_series(d, color, 1);
      addstr(chart_cell(&c, col, r, cell));
      if (color) attr_series(d, color, 0);
    }
  }
  chart_free(&c);
  /* x axis: tick labels under the chart */
  nt = chart_ticks(xlo, xhi, 0, cw / 12 > 1 ? cw / 12 : 2, t);
  sp = nt > 1 ? t[1] - t[0] : xhi - xlo;
  mvprintw(y0 + h - 1, x0, "%*s", LW - 1, d->xtime ? "sec" : "step");
  for (int i = 0; i < nt; i++) {
    char b[32];
    chart_fmt(t[i], sp, b, sizeof b);
    int col = xhi > xlo ? (int)lround((t[i] - xlo) / (xhi - xlo) * (2 * cw - 1)) / 2 : cw / 2;
    int at = x0 + LW + col - (int)strlen(b) / 2;
    if (at < x0 + LW) at = x0 + LW;
    if (at + (int)strlen(b) > x0 + w) at = x0 + w - (int)strlen(b);
    mvprintw(y0 + h - 1, at, "%s", b);
  }
out:
  for (int i = 0; i < nsh; i++) free(xs[i]), free(ys[i]), free(raw[i]);
}

/* ---- keys: one table for the handler, the help screen and the key bar ------------- */

typedef enum {
  KEY_ACT_HELP,
  KEY_ACT_QUIT,
  KEY_ACT_SELECT,
  KEY_ACT_METRIC,
  KEY_ACT_FILTER,
  KEY_ACT_CLEAR,
  KEY_ACT_OVERLAY,
  KEY_ACT_SMOOTH,
  KEY_ACT_XAXIS,
  KEY_ACT_LOGY,
  KEY_ACT_PAUSE,
  KEY_ACT_CKPT,
  KEY_ACT_REDRAW
} action_t;

static const struct keydef {
  action_t act;
  int keys[5];        /* the keys that do it, 0-terminated */
  const char *names;  /* as the help screen writes them */
  const char *help;   /* its line on the help screen (NULL: said in another's) */
  const char *barkey; /* on the key bar as barkey + label (NULL: not on it) */
  const char *label;
  int live; /* lathe run only: lathe watch is read-only */
} keydefs[] = {
    {KEY_ACT_HELP, {'?', KEY_F(1)}, "?  F1", "this help (any key closes it)", "?", "Help", 0},
    {KEY_ACT_QUIT,
     {'q', 'Q', KEY_F(10)},
     "q  F10",
     "quit (lathe run: asks, then checkpoints and stops the runs)",
     "q",
     "Quit",
     0},
    {KEY_ACT_PAUSE, {'p', 'P'}, "p", "pause / resume the selected run", "p", "Pause", 1},
    {KEY_ACT_CKPT, {'c', 'C'}, "c", "checkpoint the selected run now", "c", "Ckpt", 1},
    {KEY_ACT_FILTER,
     {'/'},
     "/",
     "filter metrics by name (Enter keeps it, Esc clears it)",
     "/",
     "Filter",
     0},
    {KEY_ACT_CLEAR, {27}, "Esc", NULL, NULL, NULL, 0},
    {KEY_ACT_SMOOTH,
     {'s'},
     "s",
     "smoothing: off, 0.6, 0.9, 0.99 (TensorBoard's EMA)",
     "s",
     "Smooth",
     0},
    {KEY_ACT_XAXIS, {'x'}, "x", "x axis: step or wall-clock seconds", "x", "X-axis", 0},
    {KEY_ACT_LOGY, {'l'}, "l", "log-scale y", "l", "Log-y", 0},
    {KEY_ACT_OVERLAY,
     {'+', '-', ' '},
     "+ - space",
     "add / drop / toggle the selected run in the overlay",
     "+-",
     "Overlay",
     0},
    {KEY_ACT_METRIC,
     {KEY_RIGHT, '\t', KEY_LEFT, KEY_BTAB},
     "Left Right",
     "focus the previous / next metric (Tab, Shift-Tab too)",
     "Tab",
     "Metric",
     0},
    {KEY_ACT_SELECT, {KEY_UP, 'k', KEY_DOWN, 'j'}, "Up Down j k", "select a run", NULL, NULL, 0},
    {KEY_ACT_REDRAW, {12}, "Ctrl-L", "redraw", NULL, NULL, 0},
};
#define NKEYS (int)(sizeof keydefs / sizeof *keydefs)

/* The entry whose keys include ch, NULL if none. */
static const struct keydef *keydef_of(int ch) {
  for (int i = 0; i < NKEYS; i++)
    for (int k = 0; keydefs[i].keys[k]; k++)
      if (keydefs[i].keys[k] == ch) return &keydefs[i];
  return NULL;
}

static void draw_help(dash_t *d) {
  const char *lines[NKEYS + 2];
  char buf[NKEYS][128];
  int n = 0;
  lines[n++] = "lathe dashboard keys", lines[n++] = "";
  for (int i = 0; i < NKEYS; i++)
    if (keydefs[i].help) {
      snprintf(buf[i], sizeof buf[i], "  %-12s %s%s", keydefs[i].names, keydefs[i].help,
               keydefs[i].live ? "  (lathe run only)" : "");
      lines[n++] = buf[i];
    }
  int w = 0;
  for (int i = 0; i < n; i++) w = (int)strlen(lines[i]) > w ? (int)strlen(lines[i]) : w;
  w += 4;
  int y0 = (LINES - n - 2) / 2, x0 = (COLS - w) / 2;
  if (y0 < 0) y0 = 0;
  if (x0 < 0) x0 = 0;
  for (int i = 0; i <= n; i++) mvprintw(y0 + i, x0, "%-*s", w, "");
  attron(A_REVERSE);
  mvprintw(y0, x0, " %-*s ", w - 2, lines[0]);
  attroff(A_REVERSE);
  for (int i = 1; i < n; i++) mvprintw(y0 + i, x0 + 2, "%s", lines[i]);
  chtype v = line_ch(d, ACS_VLINE, '|');
  mvhline(y0 + n, x0, line_ch(d, ACS_HLINE, '-'), w);
  mvvline(y0 + 1, x0, v, n - 1), mvvline(y0 + 1, x0 + w - 1, v, n - 1);
  mvaddch(y0 + n, x0, line_ch(d, ACS_LLCORNER, '+'));
  mvaddch(y0 + n, x0 + w - 1, line_ch(d, ACS_LRCORNER, '+'));
}

static void draw(dash_t *d) {
  erase();
  int H = LINES, W = COLS;
  if (W < MINW || H < MINH) {
    mvprintw(0, 0, "%.*s", W, "terminal too small");
    if (H > 1) mvprintw(1, 0, "%dx%d: lathe needs %dx%d", W, H, MINW, MINH);
    refresh();
    return;
  }
  if (d->sel >= d->nruns) d->sel = d->nruns ? d->nruns - 1 : 0;
  /* title bar */
  attr_pair(d, PAIR_HEAD, A_REVERSE, 1);
  char right[128];
  snprintf(right, sizeof right, "x:%s  ema:%g  y:%s%s%s  ? help ", d->xtime ? "time" : "step",
           smooth_w[d->smooth_i], d->logy ? "log" : "linear", d->filter[0] ? "  /" : "", d->filter);
  mvprintw(0, 0, "%-*.*s", W, W, d->title);
  mvprintw(0, W - (int)strlen(right) > 0 ? W - (int)strlen(right) : 0, "%s", right);
  attr_pair(d, PAIR_HEAD, A_REVERSE, 0);
  /* runs, log and charts share the rest */
  int runrows = d->nruns < 1 ? 1 : d->nruns > H / 6 ? H / 6 : d->nruns;
  if (runrows < 2 && d->nruns > 1) runrows = 2;
  int logrows = H >= 36 ? 6 : H >= 24 ? 4 : 2;
  draw_runs(d, 1, runrows);
  if (!d->nruns) mvprintw(2, 2, "no runs yet");
  int cy = 2 + runrows + 1, chh = H - 1 - logrows - 1 - cy;
  drun_t *sh[NCOLORS];
  int nsh = shown(d, sh, NCOLORS);
  const char *names[256];
  int nn = visible_names(d, sh, nsh, names, 256);
  if (d->metric >= nn) d->metric = nn ? nn - 1 : 0;
  int cols = W >= 120 && nn > 1 ? 2 : 1, rows = chh >= 24 && nn > cols ? 2 : 1;
  int per = cols * rows, page = d->metric / per * per;
  if (!nn)
    mvprintw(cy + chh / 2, 2, "%s",
             d->filter[0] ? "no metric matches the filter" : "no metrics yet");
  for (int i = 0; i < per && page + i < nn; i++) {
    int ph = chh / rows, pw = W / cols;
    draw_panel(d, cy + (i / cols) * ph, (i % cols) * pw, ph - (rows > 1), pw - 1, names[page + i],
               page + i == d->metric, sh, nsh);
  }
  if (nn > per)
    mvprintw(cy - 1, W - 24, "metrics %d-%d of %d", page + 1, page + per < nn ? page + per : nn,
             nn);
  /* log pane */
  int ly = H - 1 - logrows;
  mvhline(ly - 1, 0, line_ch(d, ACS_HLINE, '-'), W);
  mvprintw(ly - 1, 2, " log ");
  for (int i = 0; i < logrows; i++) {
    int k = d->nlog - logrows + i;
    if (k >= 0) mvprintw(ly + i, 1, "%.*s", W - 2, d->log[k % NLOG]);
  }
  /* key bar, or the prompt in use */
  move(H - 1, 0);
  if (d->asking) {
    attron(A_BOLD);
    printw(
        "stop the recipe and its runs? They checkpoint and `lathe resume` continues them. [y/N]");
    attroff(A_BOLD);
  } else if (d->filtering) {
    printw("filter metrics: %s", d->filter);
    attron(A_REVERSE), addch(' '), attroff(A_REVERSE);
  } else {
    for (int i = 0; i < NKEYS && getcurx(stdscr) < W - 12; i++) {
      const struct keydef *k = &keydefs[i];
      if (!k->barkey || (k->live && !d->s)) continue;
      attron(A_BOLD), printw("%s", k->barkey), attroff(A_BOLD);
      attr_pair(d, PAIR_HEAD, A_REVERSE, 1), printw("%-7s", k->label);
      attr_pair(d, PAIR_HEAD, A_REVERSE, 0), addch(' ');
    }
  }
  if (d->help) draw_help(d);
  refresh();
}

/* ---- sources ------------------------------------------------------------------------- */

static void live_sync(dash_t *d) {
  lathe_session_t *s = d->s;
  for (int i = 0; i < s->nruns; i++) {
    lathe_run_t *lr = s->runs[i];
    drun_t *r = run_get(d, lr->id);
    if (!r) continue;
    r->live = lr;
    snprintf(r->plugin, sizeof r->plugin, "%s", lr->plugin->name);
    const char *mm = lathe_main_metric(lr->plugin);
    snprintf(r->main, sizeof r->main, "%s", mm ? mm : "");
    snprintf(r->status, sizeof r->status, "%s", lathe_status_name(atomic_load(&lr->status)));
    r->paused = atomic_load(&lr->pause_req);
    r->step = lr->view_step > r->step ? lr->view_step : r->step;
    r->total = lathe_run_total(lr);
  }
}

static void live_event(lathe_session_t *s, const lathe_event_t *ev) {
  dash_t *d = s->ui;
  drun_t *r = run_get(d, ev->run);
  if (!r) return;
  series_t *m;
  switch (ev->type) {
  case EV_START:
    if (r->step > (int64_t)ev->step) /* resumed behind the newest point: redraw from there */
      for (int i = 0; i < r->nm; i++) series_clear(&r->m[i]);
    r->step = (int64_t)ev->step;
    break;
  case EV_METRIC:
    if ((m = series_get(r, ev->name))) series_add(r, m, ev->step, ev->time, ev->value);
    r->step = (int64_t)ev->step > r->step ? (int64_t)ev->step : r->step;
    break;
  case EV_LOG:
    logf_(d, "run %u: %s", ev->run, ev->text ? ev->text : "");
    break;
  case EV_CKPT:
    r->ckpt_time = ev->time, r->ckpt_step = (int64_t)ev->step;
    if (r->ckpt_asked)
      logf_(d, "run %u: checkpoint at step %llu", ev->run, (unsigned long long)ev->step);
    r->ckpt_asked = 0;
    break;
  case EV_END:
    r->step = (int64_t)ev->step;
    logf_(d, "run %u: %s at step %llu%s%s", ev->run, ev->name, (unsigned long long)ev->step,
          ev->text ? ": " : "", ev->text ? ev->text : "");
    break;
  }
}

static void live_print(lathe_session_t *s, const char *text) {
  dash_t *d = s->ui;
  char **np = realloc(d->prints, (d->nprints + 1) * sizeof *np);
  if (np) (d->prints = np)[d->nprints++] = strdup(text);
  const char *p = text;
  while (*p) { /* one log line per printed line */
    const char *e = strchr(p, '\n');
    int n = e ? (int)(e - p) : (int)strlen(p);
    logf_(d, "%.*s", n, p);
    p += n + (e != NULL);
  }
}

typedef struct {
  dash_t *d;
  MDB_txn *txn;
  drun_t *r;
  series_t *m;
} poll_ctx;

static int poll_point(uint64_t step, double value, double time, void *arg) {
  poll_ctx *c = arg;
  series_add(c->r, c->m, step, time, value);
  return 0;
}

static int poll_name(const char *name, void *arg) {
  poll_ctx *c = arg;
  if (!(c->m = series_get(c->r, name))) return 0;
  return lathe_store_metric_from(c->d->st, c->txn, c->r->id, name, c->m->next, poll_point, c);
}

static const char *jstr(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "";
}

/* Read run id's record and its new metric points. */
static int poll_run(dash_t *d, MDB_txn *txn, drun_t *r) {
  char *rec;
  int rc = lathe_store_run_get(d->st, txn, r->id, &rec);
  if (rc == LATHE_ENOTFOUND) {
    lathe_clearerr();
    if (strcmp(r->status, "removed")) logf_(d, "run %u: not in the store", r->id);
    snprintf(r->status, sizeof r->status, "removed");
    return 0;
  }
  if (rc) return rc;
  json_object *o = json_tokener_parse(rec);
  free(rec);
  if (!o) return 0;
  const char *st = jstr(o, "status");
  if (strcmp(st, r->status)) {
    if (!strcmp(st, "running") && r->nm) /* resumed: points after its checkpoint were redone */
      for (int i = 0; i < r->nm; i++) series_clear(&r->m[i]);
    if (strcmp(r->status, "pending") || strcmp(st, "running"))
      logf_(d, "run %u: %s at step %s%s%s", r->id, st, jstr(o, "step"),
            *jstr(o, "error") ? ": " : "", jstr(o, "error"));
    snprintf(r->status, sizeof r->status, "%s", st);
  }
  int64_t ck = atoll(jstr(o, "ckpt_step"));
  r->ckpt_step = ck, r->ckpt_time = atof(jstr(o, "ckpt_time"));
  r->step = atoll(jstr(o, "step")), r->total = atoll(jstr(o, "total"));
  snprintf(r->plugin, sizeof r->plugin, "%s", jstr(o, "plugin"));
  snprintf(r->main, sizeof r->main, "%s", jstr(o, "main_metric"));
  json_object_put(o);
  poll_ctx c = {d, txn, r, NULL};
  rc = lathe_store_metric_names(d->st, txn, r->id, poll_name, &c);
  for (int i = 0; i < r->nm; i++) /* the record lags the metrics by up to a flush */
    if ((int64_t)r->m[i].last_x > r->step && r->m[i].seen) r->step = (int64_t)r->m[i].last_x;
  return rc;
}

typedef struct {
  dash_t *d;
  int running;
} scan_args;

static int scan_cb(uint32_t id, const char *json, size_t n, void *arg) {
  scan_args *a = arg;
  if (id <= a->d->max_id && a->d->nruns) return 0;
  if (!a->d->follow) return 0;
  /* the first scan takes the running runs; later scans every new run */
  if (a->running && !strstr(json, "\"status\":\"running\"")) {
    a->d->max_id = id > a->d->max_id ? id : a->d->max_id;
    return 0;
  }
  run_get(a->d, id);
  return 0;
}

static int poll_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  dash_t *d = arg;
  if (d->follow) {
    int first = d->nruns == 0 && d->max_id == 0;
    scan_args a = {d, first};
    int rc = lathe_store_run_each(st, txn, scan_cb, &a);
    if (rc) return rc;
    if (first && !d->nruns && d->max_id) run_get(d, d->max_id); /* none running: the newest */
  }
  for (int i = 0; i < d->nruns; i++) {
    int rc = poll_run(d, txn, &d->runs[i]);
    if (rc) return rc;
  }
  return 0;
}

static void on_poll(uv_timer_t *t) {
  dash_t *d = t->data;
  if (lathe_store_read(d->st, poll_txn, d)) logf_(d, "store: %s", lathe_lasterr());
}

/* ---- input --------------------------------------------------------------------------- */

static void on_redraw(uv_timer_t *t) {
  dash_t *d = t->data;
  if (d->s) live_sync(d);
  draw(d);
}

static void key(dash_t *d, int ch) {
  drun_t *r = d->nruns ? &d->runs[d->sel] : NULL;
  if (d->help) {
    d->help = 0;
    return;
  }
  if (d->asking) {
    d->asking = 0;
    if (ch == 'y' || ch == 'Y') {
      logf_(d, "stopping: every run checkpoints, then lathe exits");
      lathe_session_interrupt(d->s, SIGINT);
    }
    return;
  }
  if (d->filtering) {
    size_t n = strlen(d->filter);
    if (ch == 27)
      d->filter[0] = 0, d->filtering = 0;
    else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
      d->filtering = 0;
    else if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n)
      d->filter[n - 1] = 0;
    else if (ch >= 32 && ch < 127 && n + 1 < sizeof d->filter)
      d->filter[n] = (char)ch, d->filter[n + 1] = 0;
    d->metric = 0;
    return;
  }
  const struct keydef *k = keydef_of(ch);
  if (!k) return;
  switch (k->act) {
  case KEY_ACT_QUIT:
    if (d->s && !d->s->signal)
      d->asking = 1;
    else if (!d->s)
      d->quit = 1;
    break;
  case KEY_ACT_HELP:
    d->help = 1;
    break;
  case KEY_ACT_SELECT:
    if ((ch == KEY_UP || ch == 'k') && d->sel > 0) d->sel--;
    if ((ch == KEY_DOWN || ch == 'j') && d->sel + 1 < d->nruns) d->sel++;
    break;
  case KEY_ACT_METRIC:
    if (ch == KEY_LEFT || ch == KEY_BTAB) {
      if (d->metric > 0) d->metric--;
    } else
      d->metric++; /* clamped by draw */
    break;
  case KEY_ACT_FILTER:
    d->filtering = 1;
    break;
  case KEY_ACT_CLEAR:
    d->filter[0] = 0;
    break;
  case KEY_ACT_SMOOTH:
    d->smooth_i = (d->smooth_i + 1) % 4;
    break;
  case KEY_ACT_XAXIS:
    d->xtime = !d->xtime;
    break;
  case KEY_ACT_LOGY:
    d->logy = !d->logy;
    break;
  case KEY_ACT_OVERLAY:
    if (r) r->overlay = ch == '+' ? 1 : ch == '-' ? 0 : !r->overlay;
    break;
  case KEY_ACT_PAUSE:
  case KEY_ACT_CKPT:
    if (!r) break;
    if (!d->s) {
      logf_(d, "%c: run %u belongs to another process (lathe watch is read-only)", ch, r->id);
    } else if (!r->live || atomic_load(&r->live->status) != RUN_RUNNING) {
      logf_(d, "run %u is not running", r->id);
    } else if (k->act == KEY_ACT_PAUSE) {
      int holds = lathe_run_pause(r->live);
      logf_(d, "run %u %s", r->id,
            holds ? "pausing (it finishes its step and says where)" : "resumed");
    } else {
      lathe_run_checkpoint_now(r->live);
      r->ckpt_asked = 1;
      logf_(d, "run %u: checkpoint requested", r->id);
    }
    break;
  case KEY_ACT_REDRAW:
    clearok(curscr, TRUE);
    break;
  }
}

/* ---- terminal callbacks ------------------------------------------------------------- */

static void on_key(void *ud, int ch) {
  key(ud, ch);
}

static void on_keys_done(void *ud) {
  dash_t *d = ud;
  draw(d);
  if (d->quit) uv_stop(d->loop);
}

static void on_resize(void *ud) {
  draw(ud);
}

static void on_errline(void *ud, const char *line, int n) {
  logf_(ud, "%.*s", n, line);
}

int lathe_dash_possible(void) {
  return term_possible();
}

/* The terminal, then the redraw and poll timers. */
static int screen_up(dash_t *d, uv_loop_t *loop) {
  d->term.ud = d, d->term.on_key = on_key, d->term.on_keys_done = on_keys_done;
  d->term.on_resize = on_resize, d->term.on_errline = on_errline;
  int rc = term_up(&d->term, loop);
  if (rc) return rc;
  d->loop = loop;
  uv_timer_init(loop, &d->redraw);
  uv_timer_init(loop, &d->poll);
  d->redraw.data = d->poll.data = d;
  uv_timer_start(&d->redraw, on_redraw, 0, REDRAW_MS);
  uv_unref((uv_handle_t *)&d->redraw);
  return 0;
}

static void close_cb(uv_handle_t *h) {
  (void)h;
}

static void screen_down(dash_t *d) {
  if (!d->loop) return;
  uv_close((uv_handle_t *)&d->redraw, close_cb);
  uv_close((uv_handle_t *)&d->poll, close_cb);
  term_down(&d->term);
  d->loop = NULL;
}

static void on_abort(lathe_session_t *s) {
  term_restore();
}

static void on_hangup(lathe_session_t *s) {
  lathe_dash_detach(s); /* the runs go on, without a view */
}

int lathe_dash_attach(lathe_session_t *s, const char *title) {
  dash_t *d = calloc(1, sizeof *d);
  if (!d) return lathe_seterr(LATHE_ENOMEM, "out of memory");
  d->s = s;
  snprintf(d->title, sizeof d->title, " lathe run %.200s", title);
  int rc = screen_up(d, &s->loop);
  if (rc) {
    free(d);
    return rc;
  }
  s->ui = d;
  s->on_event = live_event, s->on_print = live_print;
  s->on_abort = on_abort, s->on_hangup = on_hangup;
  s->json_out = 0, s->progress = 0;
  logf_(d, "dashboard up: ? for keys, q to stop");
  return 0;
}

/* One line per run for the scrollback: what the last screen showed. */
static void summary(dash_t *d, FILE *f) {
  for (int i = 0; i < d->nruns; i++) {
    drun_t *r = &d->runs[i];
    fprintf(f, "run %u %s: %s at step %lld", r->id, r->plugin, r->status, (long long)r->step);
    for (int k = 0; k < r->nm; k++)
      if (r->main[0] && !strcmp(r->m[k].name, r->main))
        fprintf(f, "  %s=%.4g", r->main, r->m[k].last);
    fputc('\n', f);
  }
}

void lathe_dash_detach(lathe_session_t *s) {
  dash_t *d = s->ui;
  if (!d) return;
  live_sync(d);
  screen_down(d);
  s->ui = NULL;
  s->on_event = lathe_headless_event, s->on_print = NULL, s->on_abort = NULL;
  s->on_hangup = NULL;
  if (d->term.nerrs) fwrite(d->term.errs, 1, d->term.nerrs, stderr);
  summary(d, stderr);
  for (int i = 0; i < d->nprints; i++) {
    if (d->prints[i]) puts(d->prints[i]);
    free(d->prints[i]);
  }
  fflush(stdout);
  free(d->prints), free(d->term.errs);
  runs_free(d);
  free(d);
}

int lathe_dash_watch(lathe_store_t *st, const uint32_t *ids, int n) {
  dash_t *d = calloc(1, sizeof *d);
  uv_loop_t loop;
  if (!d || uv_loop_init(&loop)) {
    free(d);
    return lathe_seterr(LATHE_EIO, "cannot start the event loop");
  }
  d->st = st, d->follow = n == 0;
  snprintf(d->title, sizeof d->title, " lathe watch %.200s (read-only)", st->path);
  for (int i = 0; i < n; i++) run_get(d, ids[i]);
  int rc = lathe_store_read(st, poll_txn, d); /* the first look: a missing run is an error */
  for (int i = 0; i < d->nruns && !rc; i++)
    if (!strcmp(d->runs[i].status, "removed"))
      rc = lathe_seterr(LATHE_ENOTFOUND, "no run %u in %s", d->runs[i].id, st->path);
  if (!rc && !d->nruns) rc = lathe_seterr(LATHE_ENOTFOUND, "no runs in %s", st->path);
  if (!rc && !(rc = screen_up(d, &loop))) {
    d->nlog = 0;
    logf_(d, "watching %d run%s: ? for keys, q to quit", d->nruns, d->nruns == 1 ? "" : "s");
    uv_timer_start(&d->poll, on_poll, POLL_MS, POLL_MS);
    term_hold_input(&d->term);
    uv_run(&loop, UV_RUN_DEFAULT);
    screen_down(d);
    if (d->term.nerrs) fwrite(d->term.errs, 1, d->term.nerrs, stderr);
    summary(d, stderr);
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* close callbacks */
  uv_loop_close(&loop);
  free(d->term.errs);
  runs_free(d);
  free(d);
  return rc;
}
