/*
** gan.c -- the gan program: Lua 5.4's stand-alone interpreter (lua.c) grown up.
**
**   gan [options] [script [args]]
**
** Same shape as lua.c: main() runs pmain() under lua_pcall so that even the
** setup (opening the libraries, building 'arg') cannot escape as a panic;
** every chunk runs through docall(), whose message handler appends a
** traceback.  What gan changes or adds:
**   - the "gan" module is preloaded (the global 'gan', and require "gan"),
**     plus gan.interrupted() / gan.defer_interrupts() defined here, because
**     only the program owns the signal handlers;
**   - with no script and stdin not a terminal, stdin is read statement by
**     statement like the REPL (values printed, errors reported, execution
**     goes on) instead of as one chunk; "gan -" still runs stdin as a script;
**   - Ctrl-C at the prompt drops the line being typed instead of killing
**     the session (and its trained models); readline history is written to
**     ~/.gan_history after every line, so os.exit() loses none of it;
**   - -h/--help and --version; no -E, LUA_INIT is not read; the banner
**     is printed only when stdin is a terminal.
** Failures return status codes up to main(), which is the only exit.
*/
#define _XOPEN_SOURCE 700 /* getline, sigaction with SA_RESTART, isatty */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "backend.h" /* gan_backends_describe */
#include "image.h"   /* gan_images_flush */
#include "lgan.h"

/* Messages start with the program's name, not argv[0], so that scripts and
** tests see the same "gan: ..." however the binary was invoked. */
static const char *progname = "gan";

/* --- signals ---------------------------------------------------------------
** A C signal handler may not touch the Lua state, except lua_sethook, which
** is documented as signal-safe: the hook then raises the error at the next
** instruction, a point where the state is consistent.  The flags below are
** the only other things the handlers write. */

static lua_State *globalL = NULL;           /* the state laction stops */
static volatile sig_atomic_t defer_mode;    /* gan.defer_interrupts(true) */
static volatile sig_atomic_t interrupted;   /* signal seen in defer_mode */
/* a Ctrl-C outside deferred mode stopped the chunk: a failure that follows
** (the error itself, or a script's os.exit(1) after catching it) exits 130,
** as a run stopped between steps does */
static volatile sig_atomic_t stopped;
static volatile sig_atomic_t prompt_sigint; /* Ctrl-C while at the prompt */

/* 'restart' decides whether a blocking read resumes after the handler
** (wanted while Lua runs) or fails with EINTR (wanted at the prompt, so
** that the read returns and the line can be dropped). */
static void setsignal(int sig, void (*handler)(int), int restart) {
  struct sigaction sa = {0};
  sa.sa_handler = handler;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT); /* one handler at a time: they share state */
  sigaddset(&sa.sa_mask, SIGTERM);
  sigaction(sig, &sa, NULL);
}

/* The hook set by laction: remove itself, then raise the error. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* SIGINT while Lua runs (and SIGTERM while deferred).  In deferred mode the
** first signal only raises a flag that the script polls between steps; a
** second SIGINT means the script is stuck, so stop it as lua.c would.
** SIGTERM never gets here outside deferred mode (see l_defer_interrupts). */
static struct timespec first_signal; /* when the deferred one arrived */

static double seconds_since(const struct timespec *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now); /* async-signal-safe */
  return (double)(now.tv_sec - t->tv_sec) + 1e-9 * (double)(now.tv_nsec - t->tv_nsec);
}

/* Some senders deliver one Ctrl-C twice (timeout(1) signals the process and
** then its group): a signal within 0.1 s of the first is the same one. */
static int same_signal(void) { return seconds_since(&first_signal) < 0.1; }

/* The handler once a Ctrl-C has stopped Lua outside deferred mode, until
** the program has said so and exited (or the REPL prompts again): the same
** Ctrl-C delivered again is ignored; another one terminates, as lua.c's
** second Ctrl-C does (for a C call that never returns to Lua). */
static void laction_again(int sig) {
  if (same_signal()) return;
  setsignal(sig, SIG_DFL, 0);
  raise(sig);
}

static void laction(int sig) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  if (defer_mode && (sig == SIGTERM || !interrupted)) {
    interrupted = 1;
    clock_gettime(CLOCK_MONOTONIC, &first_signal);
    return;
  }
  if (defer_mode && same_signal()) return;
  if (!defer_mode) { /* (a second one in deferred mode exits 1) */
    stopped = 1;
    clock_gettime(CLOCK_MONOTONIC, &first_signal);
    setsignal(sig, laction_again, 1);
  } else {
    setsignal(sig, SIG_DFL, 0); /* if another one comes, terminate process */
  }
  lua_sethook(globalL, lstop, flag, 1);
}

/* SIGINT while waiting at the interactive prompt. */
static void pcancel(int sig) {
  (void)sig;
  prompt_sigint = 1;
}

/* --- counting allocations ---------------------------------------------------
** Every allocation of the Lua state goes through count_alloc, which wraps
** lauxlib's allocator.  gan.lua_allocs() returns the count, so a test can
** show that a training step creates no Lua garbage (tensors are counted by
** their backend: gan.memory().allocs). */

static lua_Alloc base_alloc;
static size_t lua_allocs;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  if (nsize > 0 && (ptr == NULL || nsize > osize)) lua_allocs++;
  return base_alloc(ud, ptr, osize, nsize);
}

static int l_lua_allocs(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lua_allocs);
  return 1;
}

/* gan.interrupted(): whether SIGINT/SIGTERM arrived in deferred mode. */
static int l_interrupted(lua_State *L) {
  lua_pushboolean(L, interrupted);
  return 1;
}

/* gan.defer_interrupts(flag): in deferred mode SIGINT and SIGTERM only set
** the flag, so a training loop can finish its step, save a checkpoint and
** os.exit(130).  Turning it on clears the flag.  Returns the previous mode.
** The order of the stores matters: laction must never see SIGTERM with
** defer_mode off. */
static int l_defer_interrupts(lua_State *L) {
  int was = defer_mode;
  luaL_checkany(L, 1);
  if (lua_toboolean(L, 1)) {
    interrupted = 0;
    defer_mode = 1;
    setsignal(SIGTERM, laction, 1);
  }
  else {
    setsignal(SIGTERM, SIG_DFL, 0);
    defer_mode = 0;
  }
  lua_pushboolean(L, was);
  return 1;
}

/* --- messages and calls ------------------------------------------------- */

static void print_usage(FILE *f, const char *badoption) {
  if (badoption != NULL) {
    if (badoption[1] == 'e' || badoption[1] == 'l')
      fprintf(f, "%s: '%s' needs argument\n", progname, badoption);
    else
      fprintf(f, "%s: unrecognized option '%s'\n", progname, badoption);
  }
  fprintf(f,
    "usage: %s [options] [script [args]]\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -v        show version information (also --version)\n"
    "  -W        turn warnings on\n"
    "  -h        show this help (also --help)\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n"
    "With no script, statements are read from stdin: a REPL on a terminal,\n"
    "one statement after another (errors reported, not fatal) from a pipe.\n"
    "\n"
    "The training scripts have options of their own: %s SCRIPT --help\n"
    "  scripts/strawberry.lua        the seed's dense GAN (the student's program)\n"
    "  scripts/strawberry_dcgan.lua  a DCGAN: strawberries you can recognise\n"
    "  scripts/sample.lua            images from a checkpoint\n"
    "  scripts/evaluate.lua          a checkpoint's quality (sliced Wasserstein)\n",
    progname, progname);
  fflush(f);
}

/* Prints an error message, prefixed by the program name when there is one
** (the REPL passes NULL).  stdout is flushed first so that, with both
** streams sent to one file, the message lands after the output before it. */
static void l_message(const char *pname, const char *msg) {
  fflush(stdout);
  if (pname) fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* Reports a failed call: the message is on the top of the stack. */
static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    l_message(progname, msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

/* Message handler: turns the error into "message + stack traceback". */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) { /* error object is not a string? */
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1; /* that is the message */
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  /* a second Ctrl-C during a run that defers the first (gan/train.lua): it
  ** stopped the step where it was, which a traceback would not explain */
  if (interrupted && strstr(msg, "interrupted!") != NULL) {
    lua_pushliteral(L, "interrupted twice: stopped at once, without a new checkpoint "
                       "(one Ctrl-C stops after the step and writes one)");
    return 1;
  }
  /* one Ctrl-C: where it stopped is enough, a traceback is noise */
  const char *at = strstr(msg, "interrupted!");
  if (stopped && at != NULL) {
    size_t n = (size_t)(at - msg);
    while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == ':')) n--;
    lua_pushliteral(L, "interrupted (Ctrl-C)");
    if (n) {
      lua_pushliteral(L, " at ");
      lua_pushlstring(L, msg, n);
      lua_concat(L, 3);
    }
    return 1;
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below its 'narg' arguments with the traceback handler,
** and with Ctrl-C armed for exactly the time Lua runs. */
static int docall(lua_State *L, int narg, int nres) {
  int status;
  int base = lua_gettop(L) - narg; /* function index */
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base); /* put it under function and args */
  globalL = L;
  stopped = 0;
  setsignal(SIGINT, laction, 1);
  status = lua_pcall(L, narg, nres, base);
  /* a Ctrl-C that stopped the chunk may still come a second time */
  setsignal(SIGINT, stopped ? laction_again : SIG_DFL, 0);
  /* a run that failed or was stopped left deferred mode on: the next chunk
  ** (a REPL line) starts with Ctrl-C interrupting at once again */
  if (defer_mode) {
    setsignal(SIGTERM, SIG_DFL, 0);
    defer_mode = 0;
  }
  interrupted = 0;
  /* a Ctrl-C just after the chunk ended must not hit the next one */
  if (lua_gethook(L) == lstop) lua_sethook(L, NULL, 0, 0);
  lua_remove(L, base);
  return status;
}

static void print_version(void) {
  printf("gan %s (%s)\n%s\n", GAN_VERSION, LUA_RELEASE,
         gan_backends_describe());
  fflush(stdout);
}

/* Creates the global 'arg' as lua.c does: the script name at index 0, its
** arguments at 1..n, the interpreter and its options at negative indices.
** Without a script, argv[0] goes to index 0. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  int i, narg;
  if (script == argc) script = 0; /* no script name? */
  narg = argc - (script + 1);     /* number of positive indices */
  lua_createtable(L, narg > 0 ? narg : 0, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* -e stat */
static int dostring(lua_State *L, const char *s) {
  int status = luaL_loadbuffer(L, s, strlen(s), "=(command line)");
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

/* -l mod: global[mod] = require(mod) */
static int dolibrary(lua_State *L, const char *name) {
  int status;
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  status = docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, name);
  return report(L, status);
}

/* Pushes arg[1..n], which the script receives as '...'. */
static int pushargs(lua_State *L) {
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -i); /* remove table from the stack */
  return n;
}

/* Runs the script argv[0] ("-" is stdin, unless it follows "--").  A load
** error (missing file, syntax) is reported without a traceback: there is
** no running code to trace. */
static int handle_script(lua_State *L, char **argv) {
  int status;
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
    fname = NULL; /* stdin */
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}

/* --- command line ----------------------------------------------------------
** collectargs only validates and classifies; runargs later executes -e and
** -l in order, once the libraries and 'arg' exist. */

#define has_error 1 /* bad option */
#define has_i     2 /* -i */
#define has_v     4 /* -v, --version */
#define has_e     8 /* -e */
#define has_h     16 /* -h, --help */

/* Returns the options seen; *first is the index of the script (argc when
** there is none), or of the offending argument on has_error. */
static int collectargs(char **argv, int *first) {
  int args = 0;
  int i;
  *first = 0;
  if (argv[0] == NULL) return 0; /* no program name, no arguments */
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args; /* not an option: the script */
    switch (argv[i][1]) {
    case '-': /* '--', '--help', '--version' */
      if (strcmp(argv[i], "--help") == 0) return args | has_h;
      if (strcmp(argv[i], "--version") == 0) { args |= has_v; break; }
      if (argv[i][2] != '\0') return has_error;
      *first = i + 1;
      return args;
    case '\0': /* '-': the script is stdin */
      return args;
    case 'h':
      return (argv[i][2] != '\0') ? has_error : (args | has_h);
    case 'W': case 'i': case 'v': /* no argument, nothing concatenated */
      if (argv[i][2] != '\0') return has_error;
      args |= (argv[i][1] == 'i') ? has_i : (argv[i][1] == 'v') ? has_v : 0;
      break;
    case 'e':
      args |= has_e; /* FALLTHROUGH */
    case 'l': /* both options need an argument */
      if (argv[i][2] == '\0') { /* not concatenated: take the next one */
        i++;
        if (argv[i] == NULL || argv[i][0] == '-') return has_error;
      }
      break;
    default:
      return has_error;
    }
  }
  *first = i;
  return args;
}

/* Executes -e, -l and -W, in order, up to the script.  0 on failure. */
static int runargs(lua_State *L, char **argv, int n) {
  int i;
  for (i = 1; i < n; i++) {
    int option = argv[i][1];
    if (option == 'e' || option == 'l') {
      const char *extra = argv[i] + 2;
      int status;
      if (*extra == '\0') extra = argv[++i];
      status = (option == 'e') ? dostring(L, extra) : dolibrary(L, extra);
      if (status != LUA_OK) return 0;
    }
    else if (option == 'W')
      lua_warning(L, "@on", 0);
  }
  return 1;
}

/* --- reading lines ---------------------------------------------------------
** The REPL reads through read_line: readline on a terminal when built with
** it, otherwise getline (no length limit, unlike lua.c's fixed buffer, so a
** long line from a pipe is never cut in two).  A NULL prompt means stdin is
** not a terminal: no prompt, no history, Ctrl-C keeps its default action. */

#ifdef GAN_USE_READLINE
#include <readline/readline.h>
#include <readline/history.h>

static char histfile[1024]; /* ~/.gan_history; "" without $HOME */

/* readline's own getc, on Ctrl-C, restores the terminal, passes SIGINT to
** our handler (pcancel) and then just reads on.  This one ends the line
** instead, and read_line throws it away. */
static int gan_getc(FILE *f) {
  unsigned char c;
  for (;;) {
    ssize_t n = read(fileno(f), &c, 1);
    if (n == 1) return c;
    if (n == 0 || errno != EINTR) return EOF;
    rl_check_signals(); /* readline's handling, then ours */
    if (prompt_sigint) return '\n';
  }
}

static void init_readline(void) {
  const char *home = getenv("HOME");
  rl_readline_name = "gan";
  rl_getc_function = gan_getc;
  if (home == NULL || *home == '\0' ||
      snprintf(histfile, sizeof histfile, "%s/.gan_history", home) >=
          (int)sizeof histfile)
    histfile[0] = '\0'; /* no history file, history in memory only */
  else
    read_history(histfile); /* a missing file is not an error here */
  stifle_history(1000);
}

/* Adds a line to the history and rewrites the file at once (at most 1000
** lines: cheap), so that no way of leaving loses it.  Errors are ignored: a
** read-only home must not break the REPL. */
static void saveline(const char *line) {
  if (line[0] == '\0') return;
  add_history(line);
  if (histfile[0] != '\0') write_history(histfile);
}
#else
#define init_readline() ((void)0)
#define saveline(line)  ((void)(line))
#endif

/* Returns a malloc'd line without its newline, or NULL at end of input or
** when Ctrl-C dropped the line (then prompt_sigint is set). */
static char *read_line(const char *prmt) {
  char *b = NULL;
  prompt_sigint = 0;
  if (prmt != NULL) setsignal(SIGINT, pcancel, 0); /* reads get EINTR */
#ifdef GAN_USE_READLINE
  if (prmt != NULL)
    b = readline(prmt);
  else
#endif
  {
    size_t cap = 0;
    ssize_t n;
    if (prmt != NULL) { fputs(prmt, stdout); fflush(stdout); }
    n = getline(&b, &cap, stdin);
    if (n < 0) { free(b); b = NULL; }
    else if (n > 0 && b[n - 1] == '\n') b[n - 1] = '\0';
    if (prompt_sigint) { clearerr(stdin); fputc('\n', stdout); }
  }
  if (prmt != NULL) setsignal(SIGINT, SIG_DFL, 0);
  if (prompt_sigint) { free(b); b = NULL; }
  return b;
}

/* --- the REPL ------------------------------------------------------------- */

#define NO_INPUT     (-1) /* loadline: end of input */
#define LINE_DROPPED (-2) /* loadline: Ctrl-C at the prompt */

static int interactive; /* stdin is a terminal: prompts, history */

/* Pushes the next line; 0 at end of input or when it was dropped. */
static int pushline(lua_State *L, int firstline) {
  const char *prmt = interactive ? (firstline ? "gan> " : "  >> ") : NULL;
  char *b = read_line(prmt);
  if (b == NULL) return 0;
  lua_pushstring(L, b);
  free(b);
  return 1;
}

/* Tries the line as "return <line>;" so that expressions print their value.
** Leaves the compiled function on success, else nothing. */
static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2); /* remove modified line */
    saveline(line);
  }
  else
    lua_pop(L, 2); /* remove the error and the modified line */
  return status;
}

/* A syntax error at "<eof>" means the statement is merely unfinished. */
static int incomplete(lua_State *L, int status) {
  size_t lmsg;
  const char *msg;
  if (status != LUA_ERRSYNTAX) return 0;
  msg = lua_tolstring(L, -1, &lmsg);
  return lmsg >= 5 && strcmp(msg + lmsg - 5, "<eof>") == 0;
}

/* Reads continuation lines until the chunk at index 1 compiles or fails
** for another reason.  Leaves the function or the error message above it. */
static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, line, len, "=stdin");
    if (!incomplete(L, status) || !pushline(L, 0)) {
      if (prompt_sigint) return LINE_DROPPED;
      saveline(line);
      return status; /* at EOF the "<eof>" error is reported */
    }
    lua_remove(L, -2); /* remove the error of the incomplete chunk */
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3); /* line .. "\n" .. next line, at index 1 */
  }
}

/* Reads and compiles one statement: leaves a function (LUA_OK) or an error
** message on an empty stack, or returns NO_INPUT / LINE_DROPPED. */
static int loadline(lua_State *L) {
  int status;
  lua_settop(L, 0);
  if (!pushline(L, 1)) return prompt_sigint ? LINE_DROPPED : NO_INPUT;
  if ((status = addreturn(L)) != LUA_OK) status = multiline(L);
  if (status == LINE_DROPPED) lua_settop(L, 0);
  else lua_remove(L, 1); /* remove the line */
  return status;
}

/* A plain table (no metatable) is replaced by its text from gan.show:
** "{2, 3}" for t:shape(), "{{0, 1}, {2, 3}}" for a small t:totable(),
** "{allocs = 2, bytes = 256, peak = 256}" for gan.memory(), rather than
** "table: 0x...".  Anything else, or a table gan.show declines (too large),
** is left for 'print'. */
static void show_table(lua_State *L, int i) {
  if (!lua_istable(L, i)) return;
  if (lua_getmetatable(L, i)) { /* a module, a checkpoint...: print's */
    lua_pop(L, 1);
    return;
  }
  const int top = lua_gettop(L);
  if (lua_getglobal(L, "gan") != LUA_TTABLE || lua_getfield(L, -1, "show") != LUA_TFUNCTION) {
    lua_settop(L, top);
    return;
  }
  lua_pushvalue(L, i);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
    lua_replace(L, i); /* the text, for the table */
  lua_settop(L, top);
}

/* Prints whatever the statement returned, with the global 'print'. */
static void l_print(lua_State *L) {
  int n = lua_gettop(L);
  if (n > 0) {
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    for (int i = 1; i <= n; i++) show_table(L, i);
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
      l_message(progname, lua_pushfstring(L, "error calling 'print' (%s)",
                                          lua_tostring(L, -1)));
  }
}

/* The read-eval-print loop, on a terminal or line by line from a pipe.  An
** error is reported (with its traceback) and the loop goes on. */
static void doREPL(lua_State *L) {
  int status;
  const char *oldprogname = progname;
  progname = NULL; /* no program name on errors in the REPL */
  interactive = isatty(STDIN_FILENO);
  if (interactive) init_readline();
  while ((status = loadline(L)) != NO_INPUT) {
    if (status == LINE_DROPPED) continue;
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) l_print(L);
    else report(L, status);
  }
  lua_settop(L, 0);
  if (interactive) fputc('\n', stdout);
  fflush(stdout);
  progname = oldprogname;
}

/* --- main ----------------------------------------------------------------- */

/* Waits for a sample grid still being written in the background; prints
** its failure (or an earlier one nobody asked about) and returns 0 then. */
static int grids_landed(void) {
  if (gan_images_flush() == GAN_OK) return 1;
  l_message(progname, gan_errmsg());
  return 0;
}

/* os.exit, wrapped: the grids land first, and if one failed, an exit status
** of success becomes a failure: the run did not do what it said.  The
** original os.exit is upvalue 1. */
static int l_os_exit(lua_State *L) {
  int ok = lua_isnoneornil(L, 1) ||
           (lua_isboolean(L, 1) ? lua_toboolean(L, 1)
                                : luaL_optinteger(L, 1, EXIT_SUCCESS) == EXIT_SUCCESS);
  /* a failed grid fails a run that said success; a script that caught the
  ** Ctrl-C and gave up exits 130 */
  int fail_grid = !grids_landed() && ok;
  if (fail_grid || (!ok && stopped)) {
    if (lua_gettop(L) < 1) lua_settop(L, 1);
    if (stopped) lua_pushinteger(L, 130);
    else lua_pushboolean(L, 0);
    lua_replace(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 0);
  return 0;
}

static void wrap_os_exit(lua_State *L) {
  lua_getglobal(L, "os");
  lua_getfield(L, -1, "exit");
  lua_pushcclosure(L, l_os_exit, 1);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
}

/* Everything, under lua_pcall: returns true when there was no error. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script;
  int args = collectargs(argv, &script);
  luaL_checkversion(L);
  if (args == has_error) {
    print_usage(stderr, argv[script]); /* 'script' is the bad argument */
    return 0;
  }
  if (args & has_h) {
    print_usage(stdout, NULL);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (args & has_v) print_version();
  luaL_openlibs(L);
  wrap_os_exit(L);
  luaL_requiref(L, "gan", luaopen_gan, 1); /* global 'gan', and require */
  lua_pushcfunction(L, l_interrupted);
  lua_setfield(L, -2, "interrupted");
  lua_pushcfunction(L, l_defer_interrupts);
  lua_setfield(L, -2, "defer_interrupts");
  lua_pushcfunction(L, l_lua_allocs);
  lua_setfield(L, -2, "lua_allocs");
  lua_pop(L, 1);
  createargtable(L, argv, argc, script);
  lua_gc(L, LUA_GCGEN, 0, 0); /* generational GC, as lua.c */
  if (!runargs(L, argv, script)) return 0;
  if (script < argc && handle_script(L, argv + script) != LUA_OK) return 0;
  /* The banner only on a terminal (lua.c's -i implies -v even from a pipe,
  ** where it would pollute the output), and after the script has run. */
  if ((args & has_i) ||
      (script == argc && !(args & (has_e | has_v)))) { /* no arguments */
    if (isatty(STDIN_FILENO) && !(args & has_v)) print_version();
    doREPL(L); /* a terminal or not: see the header */
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  int status, result;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    l_message(progname, "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  void *alloc_ud;
  base_alloc = lua_getallocf(L, &alloc_ud);
  lua_setallocf(L, count_alloc, alloc_ud);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  result = lua_toboolean(L, -1);
  report(L, status);
  lua_close(L); /* runs the __gc of tensors, freeing device memory */
  if (!grids_landed()) result = 0; /* a grid a script left writing */
  if (result && status == LUA_OK) return EXIT_SUCCESS;
  return stopped ? 130 : EXIT_FAILURE;
}
