/* maze.h - the point-maze world shared by the pointmaze environment and the
 * mazedata generator: the maze layouts, the point mass's motion with sliding
 * walls, the goal test and rewards, and the waypoint controller that the
 * generator rolls out (with noise) and that measures the expert reference.
 *
 * Geometry. A maze is a grid of unit cells, '#' walls; cell (row i, col j)
 * spans x in [j, j+1], y in [i, i+1]. The state is the position (x, y); an
 * action a in [-1, 1]^2 moves it by speed * a. A move into a wall keeps the
 * axis that stays clear (the point slides along the wall) or stops. The
 * episode ends (terminated) within goal_radius of the goal cell's centre.
 * Rewards: sparse 1 at the goal else 0 (AntMaze), dense -distance to the goal.
 * Header-only (static functions), included by both plugins. */
#ifndef LATHE_MAZE_H
#define LATHE_MAZE_H

#include <math.h>
#include <string.h>

#define MAZE_MAX 12

typedef struct maze_layout {
  const char *name;
  int rows, cols, horizon; /* horizon: the default time limit */
  const char *map[MAZE_MAX];
  /* D4RL-style reference returns, measured once (tests/test_envs.c re-measures
   * them: env_pointmaze_reference_returns, 200 episodes each) with uniform
   * random actions and with the noise-free waypoint controller */
  double ref[4]; /* random and expert return, sparse; random and expert, dense */
} maze_layout_t;

/* clang-format off */
static const maze_layout_t maze_layouts[] = {
    {"open", 6, 6, 100,
     {"######",
      "#S...#",
      "#....#",
      "#....#",
      "#...G#",
      "######"},
     {0, 1, -376.33, -52.89}},
    {"umaze", 5, 5, 150,
     {"#####",
      "#S..#",
      "###.#",
      "#G..#",
      "#####"},
     {0.005, 1, -322.66, -35.90}},
    {"medium", 9, 9, 300,
     {"#########",
      "#S..#...#",
      "##.##.#.#",
      "#...#.#.#",
      "#.#...#.#",
      "#.###.#.#",
      "#...#...#",
      "###.###G#",
      "#########"},
     {0, 1, -2289.12, -166.59}},
};
/* clang-format on */
#define MAZE_COUNT ((int)(sizeof maze_layouts / sizeof *maze_layouts))

typedef struct maze {
  int layout;            /* index into maze_layouts (no pointer: environments are saved as bytes) */
  int start[2], goal[2]; /* cells (row, col) */
  double speed, goal_radius;
  int dense;
  int dist[MAZE_MAX][MAZE_MAX]; /* BFS steps to the controller's target cell */
  int target[2];
} maze_t;

static const int maze_nb[4][2] = {{-1, 0}, {1, 0}, {0, -1}, {0, 1}}; /* neighbour cells */

static inline const maze_layout_t *maze_L(const maze_t *m) {
  return &maze_layouts[m->layout];
}

static inline int maze_wall(const maze_t *m, int i, int j) {
  return i < 0 || j < 0 || i >= maze_L(m)->rows || j >= maze_L(m)->cols ||
         maze_L(m)->map[i][j] == '#';
}
static inline int maze_wall_at(const maze_t *m, double x, double y) {
  /* outside the maze's box, or not a number, is wall (found by fuzzing: a
   * diverged policy's NaN action once became a NaN cell index) */
  if (!(x >= 0 && y >= 0 && x < MAZE_MAX && y < MAZE_MAX)) return 1;
  return maze_wall(m, (int)floor(y), (int)floor(x));
}

/* 0, or -1 for an unknown layout name */
static inline int maze_init(maze_t *m, const char *name, double speed, double goal_radius,
                            int dense) {
  memset(m, 0, sizeof *m);
  m->layout = -1;
  for (int k = 0; k < MAZE_COUNT; k++)
    if (!strcmp(maze_layouts[k].name, name)) m->layout = k;
  if (m->layout < 0) return -1;
  m->speed = speed, m->goal_radius = goal_radius, m->dense = dense;
  for (int i = 0; i < maze_L(m)->rows; i++)
    for (int j = 0; j < maze_L(m)->cols; j++) {
      if (maze_L(m)->map[i][j] == 'S') m->start[0] = i, m->start[1] = j;
      if (maze_L(m)->map[i][j] == 'G') m->goal[0] = i, m->goal[1] = j;
    }
  return 0;
}

static inline double maze_goal_dist(const maze_t *m, const double *p) {
  return hypot(p[0] - (m->goal[1] + 0.5), p[1] - (m->goal[0] + 0.5));
}

/* Move p by action a (clipped to [-1, 1]); returns the reward, sets *done at the goal. */
static inline double maze_move(const maze_t *m, double *p, const float *a, int *done) {
  double d[2];
  for (int k = 0; k < 2; k++) {
    double v = a[k] < -1.0f ? -1.0 : (a[k] > 1.0f ? 1.0 : a[k]);
    d[k] = m->speed * v;
  }
  if (!maze_wall_at(m, p[0] + d[0], p[1] + d[1]))
    p[0] += d[0], p[1] += d[1];
  else if (!maze_wall_at(m, p[0] + d[0], p[1]))
    p[0] += d[0];
  else if (!maze_wall_at(m, p[0], p[1] + d[1]))
    p[1] += d[1];
  double dist = maze_goal_dist(m, p);
  *done = dist <= m->goal_radius;
  if (m->dense) return -dist;
  return *done ? 1.0 : 0.0;
}

/* The controller's target cell; recomputes the BFS distance field. */
static inline void maze_set_target(maze_t *m, int ti, int tj) {
  for (int i = 0; i < MAZE_MAX; i++)
    for (int j = 0; j < MAZE_MAX; j++) m->dist[i][j] = -1;
  int q[MAZE_MAX * MAZE_MAX][2], h = 0, t = 0;
  m->target[0] = ti, m->target[1] = tj;
  m->dist[ti][tj] = 0, q[t][0] = ti, q[t++][1] = tj;
  while (h < t) {
    int i = q[h][0], j = q[h++][1];
    for (int k = 0; k < 4; k++) {
      int a = i + maze_nb[k][0], b = j + maze_nb[k][1];
      if (maze_wall(m, a, b) || m->dist[a][b] >= 0) continue;
      m->dist[a][b] = m->dist[i][j] + 1, q[t][0] = a, q[t++][1] = b;
    }
  }
}

/* The waypoint controller: full speed toward the centre of the neighbouring
 * cell one BFS step closer to the target (the target's centre once inside it). */
static inline void maze_controller(const maze_t *m, const double *p, float *a) {
  int i = (int)floor(p[1]), j = (int)floor(p[0]), bi = i, bj = j;
  for (int k = 0; k < 4; k++) {
    int x = i + maze_nb[k][0], y = j + maze_nb[k][1];
    if (!maze_wall(m, x, y) && m->dist[x][y] >= 0 && m->dist[x][y] < m->dist[bi][bj])
      bi = x, bj = y;
  }
  double dx = bj + 0.5 - p[0], dy = bi + 0.5 - p[1], n = fmax(fabs(dx), fabs(dy));
  double scale = n > m->speed ? 1.0 / n : 1.0 / m->speed; /* arrive, don't overshoot */
  a[0] = (float)(dx * scale), a[1] = (float)(dy * scale);
}

#endif
