/* test_chart.c - the curve drawing on fixed series, without a terminal. */
#include <math.h>
#include <string.h>

#include "../ui/chart.h"
#include "test.h"

static int dots_in_col(const chart_t *c, int col) {
  int n = 0;
  for (int r = 0; r < c->h; r++) n += c->dots[r * c->w + col] != 0;
  return n;
}

static int total_dots(const chart_t *c) {
  int n = 0;
  for (int i = 0; i < c->w * c->h; i++) n += __builtin_popcount(c->dots[i]);
  return n;
}

TEST(chart_line_diagonal) {
  chart_t c;
  ASSERT(!chart_init(&c, 10, 5, CHART_BRAILLE));
  double x[10], y[10];
  for (int i = 0; i < 10; i++) x[i] = i, y[i] = i;
  chart_frame(&c, 0, 9, 0, 9, 0);
  chart_line(&c, x, y, 10, 1);
  for (int col = 0; col < 10; col++) ASSERT(dots_in_col(&c, col) >= 1);
  ASSERT(c.dots[4 * 10 + 0] & 0x40); /* bottom-left dot */
  ASSERT(c.dots[0 * 10 + 9] & 0x08); /* top-right dot */
  ASSERT_EQ(c.color[0 * 10 + 9], 1);
  char buf[5];
  ASSERT_STR(chart_cell(&c, 9, 0, buf), "\xe2\xa0\x8a"); /* U+280A: two dots of the line */
  ASSERT_STR(chart_cell(&c, 0, 0, buf), " ");
  chart_free(&c);
}

TEST(chart_step_is_vertical) {
  chart_t c;
  ASSERT(!chart_init(&c, 20, 6, CHART_BRAILLE));
  double x[10], y[10];
  for (int i = 0; i < 10; i++) x[i] = i, y[i] = i < 5 ? 0 : 1;
  chart_frame(&c, 0, 9, 0, 1, 0);
  chart_line(&c, x, y, 10, 2);
  int rows = 0; /* the jump crosses every row, within three columns */
  for (int r = 0; r < 6; r++) {
    int any = 0;
    for (int col = 8; col <= 10; col++) any |= c.dots[r * 20 + col] != 0;
    rows += any;
  }
  ASSERT_EQ(rows, 6);
  ASSERT_EQ(dots_in_col(&c, 0), 1);
  ASSERT_EQ(dots_in_col(&c, 19), 1);
  chart_free(&c);
}

TEST(chart_gaps_for_nan_and_inf) {
  double x[] = {0, 1, 2, 3, 4, 5}, y[] = {1, 2, NAN, 3, INFINITY, 4};
  double lo, hi;
  ASSERT_EQ(chart_range(y, 6, 0, &lo, &hi), 4);
  ASSERT_NEAR(lo, 1, 0);
  ASSERT_NEAR(hi, 4, 0);
  chart_t c;
  ASSERT(!chart_init(&c, 12, 4, CHART_BRAILLE));
  chart_frame(&c, 0, 5, lo, hi, 0);
  chart_line(&c, x, y, 6, 1);
  /* x = 1..3 is a gap (the NaN at 2): the columns strictly between are empty */
  for (int col = 0; col < 12; col++) {
    double xc0 = col * 2 / 23.0 * 5, xc1 = (col * 2 + 1) / 23.0 * 5;
    if ((xc0 > 1.3 && xc1 < 2.7) || (xc0 > 3.3 && xc1 < 4.7)) ASSERT_EQ(dots_in_col(&c, col), 0);
  }
  ASSERT_EQ(dots_in_col(&c, 11), 1); /* the point after the inf stands alone */
  double all_bad[] = {NAN, INFINITY, -INFINITY};
  ASSERT_EQ(chart_range(all_bad, 3, 0, &lo, &hi), 0);
  chart_line(&c, x, all_bad, 3, 1); /* draws nothing, does not crash */
  chart_free(&c);
}

TEST(chart_single_point_and_constant) {
  double x[] = {7}, y[] = {3.5}, lo, hi;
  ASSERT_EQ(chart_range(y, 1, 0, &lo, &hi), 1);
  ASSERT(lo < 3.5 && hi > 3.5);
  chart_t c;
  ASSERT(!chart_init(&c, 8, 4, CHART_BRAILLE));
  chart_frame(&c, 7, 7, lo, hi, 0); /* empty x range: the point is centred */
  chart_line(&c, x, y, 1, 1);
  ASSERT_EQ(total_dots(&c), 1);
  double cx[] = {0, 1, 2, 3}, cy[] = {0, 0, 0, 0};
  ASSERT_EQ(chart_range(cy, 4, 0, &lo, &hi), 4);
  ASSERT(lo < 0 && hi > 0);
  chart_frame(&c, 0, 3, lo, hi, 0);
  chart_line(&c, cx, cy, 4, 1);
  int rows = 0; /* a flat line sits in one row */
  for (int r = 0; r < 4; r++) {
    int any = 0;
    for (int col = 0; col < 8; col++) any |= c.dots[r * 8 + col] != 0;
    rows += any;
  }
  ASSERT_EQ(rows, 1);
  chart_free(&c);
}

TEST(chart_ticks_and_labels_huge_and_tiny) {
  double t[16];
  char b[32];
  int n = chart_ticks(0, 3e9, 0, 5, t);
  ASSERT(n >= 2 && n <= 5);
  ASSERT_STR(chart_fmt(t[1], t[1] - t[0], b, sizeof b), "1G");
  n = chart_ticks(1e-9, 5e-9, 0, 5, t);
  ASSERT(n >= 2 && n <= 5);
  for (int i = 0; i < n; i++) ASSERT(t[i] >= 1e-9 * 0.999 && t[i] <= 5e-9 * 1.001);
  ASSERT_STR(chart_fmt(2e-9, 1e-9, b, sizeof b), "2e-09");
  n = chart_ticks(1e-6, 1e3, 1, 6, t);
  ASSERT(n >= 2 && n <= 6);
  ASSERT_NEAR(log10(t[0]), round(log10(t[0])), 1e-12); /* powers of ten */
  ASSERT_STR(chart_fmt(0.25, 0.05, b, sizeof b), "0.25");
  ASSERT_STR(chart_fmt(1500, 500, b, sizeof b), "1500");
  ASSERT_STR(chart_fmt(15000, 5000, b, sizeof b), "15k");
  ASSERT_STR(chart_fmt(-3, 1, b, sizeof b), "-3");
  ASSERT_STR(chart_fmt(NAN, 1, b, sizeof b), "nan");
  double vals[] = {1e300, -1e300, 1e-300, -7.77e-5, 123456789, 0.1234567, -9.99e14};
  for (int i = 0; i < 7; i++)
    ASSERT(strlen(chart_fmt(vals[i], fabs(vals[i]) / 3, b, sizeof b)) <= 8);
  ASSERT_EQ(chart_ticks(2, 2, 0, 5, t), 1);
  ASSERT_EQ(chart_ticks(NAN, 1, 0, 5, t), 0);
  /* a huge-magnitude series draws inside the grid */
  chart_t c;
  ASSERT(!chart_init(&c, 10, 3, CHART_BRAILLE));
  double x[] = {0, 1, 2}, y[] = {1e300, -1e300, 1e300}, lo, hi;
  ASSERT_EQ(chart_range(y, 3, 0, &lo, &hi), 3);
  chart_frame(&c, 0, 2, lo, hi, 0);
  chart_line(&c, x, y, 3, 1);
  ASSERT(total_dots(&c) > 10);
  chart_free(&c);
}

TEST(chart_log_axis_and_ascii) {
  chart_t c;
  ASSERT(!chart_init(&c, 6, 3, CHART_ASCII));
  double x[] = {0, 1, 2, 3}, y[] = {1, 10, -5, 100}, lo, hi;
  ASSERT_EQ(chart_range(y, 4, 1, &lo, &hi), 3); /* -5 has no place on a log axis */
  chart_frame(&c, 0, 3, lo, hi, 1);
  chart_line(&c, x, y, 4, 1);
  char b[5];
  int glyphs = 0;
  for (int r = 0; r < 3; r++)
    for (int col = 0; col < 6; col++) {
      const char *g = chart_cell(&c, col, r, b);
      ASSERT_EQ(strlen(g), 1);
      ASSERT(strchr(" '.-:|", g[0]));
      glyphs += g[0] != ' ';
    }
  ASSERT(glyphs >= 3);
  chart_free(&c);
}

TEST(chart_ema_matches_tensorboard) {
  double y[] = {1, 2, NAN, 3}, out[4];
  chart_ema(y, 4, 0.6, out);
  ASSERT_NEAR(out[0], 1, 1e-12);
  ASSERT_NEAR(out[1], (0.4 * 0.6 + 0.8) / (1 - 0.36), 1e-12);
  ASSERT(isnan(out[2]));
  ASSERT_NEAR(out[3], ((0.4 * 0.6 + 0.8) * 0.6 + 1.2) / (1 - 0.216), 1e-12);
  chart_ema(y, 4, 0, out);
  ASSERT_NEAR(out[3], 3, 0);
}

/* A log axis over less than two decades gets linear ticks; their labels must
 * stay distinct (they once read 4, 3, 2, 2, 2, 1). */
TEST(chart_log_ticks_distinct_labels) {
  double t[16];
  double ranges[][2] = {{1, 4.5}, {1.2, 3.3}, {0.011, 0.09}, {2, 9}, {0.5, 60}};
  for (int r = 0; r < 5; r++) {
    for (int max = 2; max <= 8; max++) {
      int n = chart_ticks(ranges[r][0], ranges[r][1], 1, max, t);
      char a[32], b[32];
      for (int i = 1; i < n; i++) {
        chart_fmt(t[i - 1], chart_tick_spacing(t, n, i - 1), a, sizeof a);
        chart_fmt(t[i], chart_tick_spacing(t, n, i), b, sizeof b);
        ASSERT(strcmp(a, b) != 0);
      }
    }
  }
}
