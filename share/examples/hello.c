/* hello.c - the smallest useful lathe plugin: a seeded random walk that
 * reports its position, with the complete state saved and restored so runs
 * resume exactly. It includes only lathe.h. Build and use it with:
 *
 *     cc -shared -fPIC -I/usr/local/include/lathe hello.c -o hello.so
 *     LATHE_PLUGIN_PATH=$PWD/hello.so lathe plugins hello
 *
 * or declare it from a recipe: lathe.register{name = "hello", so = "/path/hello.so"}.
 */
#include <lathe.h>

static const lathe_opt_t opts[] = {
    {"steps", LATHE_INT, "100", 1, 1e9, NULL, "number of steps to walk"},
    {"stride", LATHE_NUM, "1.0", 0, 100, NULL, "size of each step"},
    {NULL}};

typedef struct {
  uint64_t rng; /* xorshift64 state */
  int64_t t, steps;
  double x, stride;
} walk_t;

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  walk_t *w = calloc(1, sizeof *w);
  if (!w) return h->fail(c, LATHE_ENOMEM, "hello: out of memory");
  w->rng = h->seed(c) * 2654435761u + 1;
  w->steps = h->cfg_int(c, "steps");
  w->stride = h->cfg_num(c, "stride");
  h->set_total(c, w->steps);
  *self = w;
  return 0;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  walk_t *w = self;
  w->rng ^= w->rng << 13, w->rng ^= w->rng >> 7, w->rng ^= w->rng << 17;
  w->x += (w->rng & 1) ? w->stride : -w->stride;
  h->metric(c, "position", w->x);
  return ++w->t >= w->steps ? LATHE_DONE : LATHE_CONTINUE;
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  walk_t *w = self;
  LATHE_PUT(b, w->rng), LATHE_PUT(b, w->t), LATHE_PUT(b, w->x);
  return 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  walk_t *w = self;
  LATHE_GET(b, w->rng), LATHE_GET(b, w->t), LATHE_GET(b, w->x);
  return b->err ? h->fail(c, LATHE_ECKPT, "hello: short checkpoint") : 0;
}

static void destroy(void *self) {
  free(self);
}

static const lathe_algorithm_t algorithm = {.step = step, .main_metric = "position"};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "hello",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "a seeded random walk: the example user plugin",
    .opts = opts,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY(plugin)
