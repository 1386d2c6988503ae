/* plot.h - figures as files: one metric of several runs as a standalone SVG.
 *
 * A series is one run, or a group of runs (the seeds of one method) drawn as
 * their mean with a shaded band for the spread. Runs of a group are aligned on
 * the first run's steps (linear interpolation, over the steps all of them
 * cover); x is then the step, the mean wall-clock time, or the mean value of
 * another metric logged at the same steps (xmetric: reward against KL). Smoothing is TensorBoard's
 * EMA (chart.h), applied per run before grouping. The SVG uses the same ticks and labels as the
 * dashboard, has no external references, and is written atomically (temporary file + rename).
 */
#ifndef LATHE_PLOT_H
#define LATHE_PLOT_H

#include <stdint.h>

#include "../storage/store.h"

typedef struct lathe_plot_series {
  const char *label; /* legend text; NULL: what differs in the runs' configs */
  const uint32_t *runs;
  int nruns;
} lathe_plot_series_t;

typedef struct lathe_plot_opts {
  const char *metric;  /* required */
  const char *out;     /* required: the .svg path */
  const char *title;   /* NULL: the metric's name */
  double smooth;       /* EMA weight in [0, 1) */
  int xtime;           /* x = seconds since each run's first point, not steps */
  const char *xmetric; /* x = this metric's value at the same step (reward against KL) */
  int logy;
  const char *band;           /* spread of a group: "std" (default), "sem", "minmax", "none" */
  int width, height;          /* pixels; 0: 640 x 400 */
  const double *vlines;       /* marked x positions (a phase boundary...) */
  const char *const *vlabels; /* their labels, entries may be NULL */
  int nvlines;
  const double *hlines;       /* reference levels (an optimum, a baseline), inside the y range */
  const char *const *hlabels; /* their labels, entries may be NULL */
  int nhlines;
  int logx;           /* lathe_plot_points: x on a log scale */
  const char *xlabel; /* NULL: step, time or xmetric as above */
} lathe_plot_opts_t;

/* A series of given points (a result against data scale): (x[i], y[i]) with
 * an interval [lo[i], hi[i]] drawn as an error bar (lo, hi NULL: none). */
typedef struct lathe_plot_points {
  const char *label;
  const double *x, *y, *lo, *hi;
  int n;
} lathe_plot_points_t;

/* Read the runs' points from the store and write the figure. Returns 0, or a
 * negative code with the message set (a missing run or metric names the
 * run; a bad option names the option). */
int lathe_plot(lathe_store_t *st, const lathe_plot_series_t *series, int n,
               const lathe_plot_opts_t *o);

/* The figure of given points, markers joined by lines; o->metric names the
 * y axis. Returns 0, or a negative code with the message set. */
int lathe_plot_points(const lathe_plot_points_t *series, int n, const lathe_plot_opts_t *o);

#endif
