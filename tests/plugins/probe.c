/* probe.c - test plugins for the registry's rules and the host's duties at
 * the plugin boundary (lathe.h Kinds, Versions, Ownership), one per -D:
 *   -DPROBE_FAIL_CREATE  an algorithm whose create() allocates, sets *self
 *                        and fails: the host must destroy it (ASan: no leak)
 *   -DPROBE_STOPPING     an algorithm whose first step runs until
 *                        host->stopping() (API 6.1) says a stop was asked for
 *   -DPROBE_ENV_STUB     an environment without set_state: refused at load
 *   -DPROBE_TASK_SAVES   a task with save/load: refused (a task is stateless)
 *   -DPROBE_TWO_KINDS    an algorithm that also sets an env interface: refused
 *   -DPROBE_HOST_KEY     an algorithm option named max_steps, a key every run has: refused
 *   -DPROBE_TEXTENV      a text environment without step: refused; with
 *                        -DLATHE_API_TARGET=1 too, kind 5 does not exist yet: refused
 *   -DPROBE_BIG_SPACE    an environment with 65 observations: refused at create
 *   -DPROBE_NN_ABI=N     claims nn library ABI N: refused unless it is the loaded one
 * Each prints "probe: destroyed" from destroy, for the tests to see. Built by
 * tests/e2e.sh with the plain cc command of share/examples/hello.c. */
#include <lathe.h>
#include <stdio.h>
#include <time.h>

#ifdef PROBE_HOST_KEY
static const lathe_opt_t opts[] = {
    {"max_steps", LATHE_INT, "20", 1, 100, NULL, "shadows the host's"}, {NULL}};
#else
static const lathe_opt_t opts[] = {{NULL}};
#endif

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  *self = calloc(1, 4096);
  if (!*self) return h->fail(c, LATHE_ENOMEM, "probe: out of memory");
#ifdef PROBE_FAIL_CREATE
  return h->fail(c, LATHE_ECONFIG, "probe: refused after allocating");
#else
  return 0;
#endif
}

static void destroy(void *self) {
  fprintf(stderr, "probe: destroyed\n");
  free(self);
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  int64_t *t = self;
  ++*t;
  h->metric(c, "t", (double)*t);
#ifdef PROBE_STOPPING
  while (!h->stopping(c)) nanosleep(&(struct timespec){0, 1000000}, NULL);
  fprintf(stderr, "probe: stopping() seen in step %lld\n", (long long)*t);
  return LATHE_CONTINUE;
#else
  return *t >= 10 ? LATHE_DONE : LATHE_CONTINUE;
#endif
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  lathe_buf_put(b, self, sizeof(int64_t));
  return 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  lathe_buf_get(b, self, sizeof(int64_t));
  return b->err ? h->fail(c, LATHE_ECKPT, "probe: short checkpoint") : 0;
}

static int spaces(void *self, lathe_space_t *obs, lathe_space_t *act) {
  obs->discrete = 0, obs->n = 65, act->discrete = 1, act->n = 2;
  return 0;
}
static int reset(void *self, const lathe_host_t *h, lathe_ctx_t *c, uint64_t seed, float *obs) {
  return 0;
}
static int set_state(void *self, const lathe_host_t *h, lathe_ctx_t *c, const double *s, int n,
                     float *obs) {
  return 0;
}
static int env_step(void *self, const lathe_host_t *h, lathe_ctx_t *c, const float *a, float *obs,
                    double *r, int *term, int *trunc) {
  return 0;
}
static int spec(void *self, lathe_task_spec_t *s) {
  return 0;
}
static int prompt(void *self, const lathe_host_t *h, lathe_ctx_t *c, uint64_t i, int *p) {
  return 0;
}
static double reward(void *self, const int *p, const int *resp, int n) {
  return 0;
}
static int reference(void *self, const lathe_host_t *h, lathe_ctx_t *c, const int *p,
                     const int *resp, int t, float *probs) {
  return 0;
}

static const lathe_algorithm_t algorithm = {.step = step, .main_metric = "t"};
#ifdef PROBE_ENV_STUB
static const lathe_env_t env = {.spaces = spaces, .reset = reset, .step = env_step};
#else
static const lathe_env_t env = {
    .spaces = spaces, .reset = reset, .set_state = set_state, .step = env_step};
#endif
#ifdef PROBE_TEXTENV
static int text_reset(void *self, const lathe_host_t *h, lathe_ctx_t *c, uint64_t seed,
                      const char **obs) {
  (void)self, (void)h, (void)c, (void)seed;
  *obs = "";
  return 0;
}
#if LATHE_API_TARGET >= 2
static const lathe_textenv_t textenv = {.reset = text_reset};
#endif
#endif
static const lathe_task_t task = {
    .spec = spec, .prompt = prompt, .reward = reward, .reference = reference};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "probe",
    .version = "1.0.0",
    .doc = "a test plugin (tests/plugins/probe.c)",
    .opts = opts,
#ifdef PROBE_NN_ABI
    .nn_abi = PROBE_NN_ABI,
#endif
    .create = create,
    .destroy = destroy,
#if defined(PROBE_ENV_STUB) || defined(PROBE_BIG_SPACE)
    .kind = LATHE_ENVIRONMENT,
    .env = &env,
    .save = save,
    .load = load,
#elif defined(PROBE_TASK_SAVES)
    .kind = LATHE_TASK,
    .task = &task,
    .save = save,
    .load = load,
#elif defined(PROBE_TEXTENV)
    .kind = (lathe_kind_t)5,
#if LATHE_API_TARGET >= 2
    .textenv = &textenv,
#endif
    .save = save,
    .load = load,
#elif defined(PROBE_TWO_KINDS)
    .kind = LATHE_ALGORITHM,
    .algorithm = &algorithm,
    .env = &env,
    .save = save,
    .load = load,
#else
    .kind = LATHE_ALGORITHM,
    .algorithm = &algorithm,
    .save = save,
    .load = load,
#endif
};

LATHE_PLUGIN_ENTRY(plugin)
