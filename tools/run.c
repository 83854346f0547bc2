/* SPDX-License-Identifier: MIT */
/*
 * run.c - `ufvm run [OPTIONS] -- PROGRAM [ARGS...]`: run an unmodified
 * program with its file mappings on ufvm.
 *
 * The command sets LD_PRELOAD to libufvm-preload.so (docs/preload.md) and
 * the UFVM_* variables named by the options, checks the configuration the
 * way the preload will read it (ufvm_config_init()), and then executes
 * PROGRAM in its own place: the exit status and the signals are the
 * program's own.  The preload writes the statistics (--stats, --report)
 * when the program exits.
 *
 * Where the preload is found: $UFVM_PRELOAD_LIB, else the path the build
 * recorded (UFVM_PRELOAD_PATH), else ../preload/ and ../lib/ next to this
 * executable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ufvm.h"

int ufvm_run_main(int argc, char **argv);

/*
 * One option: --NAME VALUE (or --NAME=VALUE) sets the variable VAR.
 * @run_only: read by the preload alone, so meaningless before another
 * command (`ufvm --report demo`).
 * @dash: its value may start with '-' (a file "-", a glob); the values of
 * the others cannot, so a word that does is the next option, not a value.
 */
struct run_opt {
	const char *name;
	const char *var;
	const char *arg;
	const char *help;
	bool run_only;
	bool dash;
};

static const struct run_opt run_opts[] = {
	{ "backend", "UFVM_BACKEND", "auto|uffd|sigsegv", "fault delivery" },
	{ "delivery", "UFVM_DELIVERY", "handler|inthread", "userfaultfd delivery" },
	{ "map-ahead", "UFVM_MAP_AHEAD", "PAGES", "largest map-ahead window of sequential readers (0: off)" },
	{ "write-ahead", "UFVM_WRITE_AHEAD", "PAGES", "largest window a sequential writer's fault dirties (0: off)" },
	{ "handlers", "UFVM_HANDLERS", "N", "userfaultfd handler threads (0: one per CPU)" },
	{ "spin-us", "UFVM_HANDLER_SPIN_US", "US", "handler polling before blocking" },
	{ "handler-batch", "UFVM_HANDLER_BATCH", "0|1", "pinned handlers never preempt a running thread (SCHED_BATCH)" },
	{ "handler-park", "UFVM_HANDLER_PARK", "0|1", "a pinned handler with no faulting thread on its CPU stops reading" },
	{ "install-split", "UFVM_INSTALL_SPLIT", "0|1", "installs of 128 pages or more shared with a thread on another CPU" },
	{ "speculative", "UFVM_SPECULATIVE", "0|1", "speculative (RCU) faults" },
	{ "fault-around", "UFVM_FAULT_AROUND", "PAGES", "fault-around window (1: off)" },
	{ "retry", "UFVM_RETRY", "0|1", "drop the address-space lock while waiting for I/O" },
	{ "invalidate", "UFVM_INVALIDATE", "rwsem|addblock|none", "invalidate-lock mode" },
	{ "readahead", "UFVM_READAHEAD", "PAGES", "readahead window" },
	{ "store-latency-us", "UFVM_STORE_LATENCY_US", "US", "latency added to each store read" },
	{ "direct-io", "UFVM_DIRECT_IO", "0|1", "store files read and written with O_DIRECT" },
	{ "cache", "UFVM_CACHE_PAGES", "PAGES|SIZE", "page-cache budget (e.g. 64M)" },
	{ "reclaim", "UFVM_RECLAIM", "clock|fifo", "eviction policy" },
	{ "dirty-expire-ms", "UFVM_DIRTY_EXPIRE_MS", "MS", "age at which dirty pages are written back" },
	{ "stats", "UFVM_STATS", "FILE", "write the statistics as JSON at exit (%p: the pid)",
	  false, true },
	{ "match", "UFVM_MATCH", "GLOBS", "which files are managed (docs/preload.md)", true, true },
	{ "report", "UFVM_REPORT", "[=FILE]",
	  "print a summary at exit on stderr; to FILE only as --report=FILE", true },
};

#define RUN_NOPTS (sizeof(run_opts) / sizeof(run_opts[0]))

static void run_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: ufvm run [OPTIONS] [--] PROGRAM [ARGS...]\n\n"
		"Run PROGRAM with its shared file mappings on ufvm (LD_PRELOAD of\n"
		"libufvm-preload.so; see docs/preload.md).  Each option sets a UFVM_*\n"
		"variable for the program; unset ones keep their value from the\n"
		"environment.  --NAME VALUE and --NAME=VALUE are the same, except for\n"
		"--report, whose file can only be given as --report=FILE (a bare\n"
		"--report prints on stderr and takes no value).  A value that starts\n"
		"with '-' is given as --NAME=VALUE (\"--\" is never one).  A relative\n"
		"--stats or --report file is taken from the directory `ufvm run` starts\n"
		"in, whichever the program is in when it exits (\"-\" is stderr), and it\n"
		"must be one that can be written (\"%%p\": its directory must).\n"
		"\noptions:\n");
	for (i = 0; i < RUN_NOPTS; i++)
		fprintf(f, "  --%-16s %-20s %s (%s)\n", run_opts[i].name, run_opts[i].arg,
			run_opts[i].help, run_opts[i].var);
	fprintf(f, "  --%-16s %-20s %s\n", "env", "UFVM_NAME=VALUE", "set any UFVM_* variable");
	fprintf(f, "  --%-16s %-20s %s\n", "preload", "PATH", "the preload library to use");
	fprintf(f, "  --%-16s %-20s %s\n", "verbose", "", "log each managed mapping on stderr");
	fprintf(f, "\nexit status: PROGRAM's; 2 for a usage or configuration error (a bad\n"
		"option or UFVM_* value), 127 when PROGRAM cannot be executed.\n");
}

static bool run_readable(const char *path)
{
	return path && path[0] && access(path, R_OK) == 0;
}

/*
 * Find libufvm-preload.so into @out.  A UFVM_PRELOAD_LIB that cannot be
 * read is named with its error, not taken for a library never built.
 * Return: 0, or -ENOENT after a message.
 */
static int run_find_preload(char *out, size_t len)
{
	static const char *const rel[] = { "../preload/libufvm-preload.so",
					   "../lib/libufvm-preload.so",
					   "libufvm-preload.so" };
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	const char *env = getenv("UFVM_PRELOAD_LIB");
	ssize_t n;
	size_t i;

	if (env && env[0]) {
		if (!run_readable(env)) {
			fprintf(stderr, "ufvm run: UFVM_PRELOAD_LIB=%s: %s\n", env,
				strerror(errno));
			return -ENOENT;
		}
		if (len < PATH_MAX || !realpath(env, out)) {	/* see ufvm_run_main() */
			fprintf(stderr, "ufvm run: UFVM_PRELOAD_LIB=%s: %s\n", env,
				strerror(errno));
			return -ENOENT;
		}
		return 0;
	}
#ifdef UFVM_PRELOAD_PATH
	if (run_readable(UFVM_PRELOAD_PATH)) {
		snprintf(out, len, "%s", UFVM_PRELOAD_PATH);
		return 0;
	}
#endif
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
			snprintf(cand, sizeof(cand), "%s/%s", exe, rel[i]);
			if (run_readable(cand) && realpath(cand, out))
				return 0;
		}
	}
	fprintf(stderr, "ufvm run: libufvm-preload.so not found (set UFVM_PRELOAD_LIB "
		"or --preload; it is not built in sanitizer trees)\n");
	return -ENOENT;
}

/*
 * ld.so splits LD_PRELOAD at spaces and colons and skips, with no more
 * than a message, a piece it cannot load: the program would run with none
 * of its mappings managed and exit with its own status as if all went
 * well.  Such a path cannot be quoted, only refused.
 * Return: 0, or -EINVAL after a message.
 */
static int run_check_preload_path(const char *lib)
{
	if (!strpbrk(lib, " :"))
		return 0;
	fprintf(stderr, "ufvm run: %s: a preload path cannot hold a space or a colon "
		"(ld.so splits LD_PRELOAD at them); move or link the library elsewhere\n",
		lib);
	return -EINVAL;
}

/*
 * The preload opens UFVM_STATS and UFVM_REPORT when the program exits,
 * relative to the working directory the program has then: a relative
 * path is made absolute here, against the directory `ufvm run` was
 * started in, where the user meant it.  "-" (and an empty UFVM_REPORT:
 * stderr) is left as it is; "%p" stays for the preload to expand.
 * Return: 0, or -errno after a message.
 */
static int run_abs_out(const char *var)
{
	const char *v = getenv(var);
	char cwd[PATH_MAX], *abs;
	int err = 0;

	if (!v || !v[0] || !strcmp(v, "-") || v[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd))) {
		err = -errno;
		fprintf(stderr, "ufvm run: %s=%s: the working directory: %s\n", var, v,
			strerror(-err));
		return err;
	}
	if (asprintf(&abs, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", v) < 0)
		return -ENOMEM;
	if (setenv(var, abs, 1)) {
		err = -errno;
		perror("ufvm run: setenv");
	}
	free(abs);
	return err;
}

/*
 * Can the preload write @var's file at exit?  It can say so only then,
 * and only if the program mapped a managed file: a path that cannot be
 * written would lose the statistics without a word.  Without "%p" the
 * file is made and removed again (one that exists is opened, not
 * emptied); with one, the name is known only in the program, so its
 * directory is checked.  Call after run_abs_out().
 * Return: 0, or -errno after a message.
 */
static int run_check_out(const char *var)
{
	const char *v = getenv(var);
	char dir[PATH_MAX];
	struct stat st;
	char *slash;
	int fd;

	if (!v || !v[0] || !strcmp(v, "-"))
		return 0;
	if (!strstr(v, "%p")) {
		/* O_NONBLOCK: a FIFO with no reader must not hang the check. */
		fd = open(v, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0666);
		if (fd >= 0) {
			close(fd);
			unlink(v);
			return 0;
		}
		if (errno == EEXIST)
			fd = open(v, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 || errno == ENXIO) {	/* ENXIO: a FIFO, no reader yet */
			if (fd >= 0)
				close(fd);
			return 0;
		}
		goto bad;
	}
	if (snprintf(dir, sizeof(dir), "%s", v) >= (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		goto bad;
	}
	slash = strrchr(dir, '/');	/* there is one: the path is absolute */
	if (slash == dir)
		slash++;		/* "/%p.json": the directory is "/" */
	*slash = '\0';
	if (strstr(dir, "%p"))
		return 0;	/* a directory per process: made by someone else */
	if (stat(dir, &st))
		goto bad;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		goto bad;
	}
	if (access(dir, W_OK | X_OK))
		goto bad;
	return 0;
bad:
	fd = errno;
	fprintf(stderr, "ufvm run: %s=%s: %s\n", var, v, strerror(fd));
	return -fd;
}

/* Put @lib first in LD_PRELOAD.  Return: 0 or -errno. */
static int run_set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;
	int err = 0;

	if (!old || !old[0])
		return setenv("LD_PRELOAD", lib, 1) ? -errno : 0;
	if (asprintf(&v, "%s:%s", lib, old) < 0)
		return -ENOMEM;
	if (setenv("LD_PRELOAD", v, 1))
		err = -errno;
	free(v);
	return err;
}

static const struct run_opt *run_find_opt(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < RUN_NOPTS; i++)
		if (strlen(run_opts[i].name) == len && !strncmp(run_opts[i].name, name, len))
			return &run_opts[i];
	return NULL;
}

/*
 * May @word, the word after a --NAME that takes a value, be that value?
 * "--" never is: it ends the options, and taking it would run the program
 * with a setting nobody meant (`ufvm run --match -- prog`); nor is a word
 * that starts with "--", or with "-" where the values cannot (!@dash):
 * that is the next option.  --NAME=VALUE takes any value.
 */
static bool run_value_word(bool dash, const char *word)
{
	if (word[0] != '-')
		return true;
	return dash && word[1] != '-';
}

/*
 * ufvm_policy_value_word - may @word, after the policy option --@name
 * given to the ufvm tool itself, be its value (run_value_word())?
 * Return: true if it may.
 */
bool ufvm_policy_value_word(const char *name, size_t len, const char *word)
{
	const struct run_opt *o = run_find_opt(name, len);

	return run_value_word(o && o->dash, word);
}

/*
 * ufvm_policy_option - a policy option given to the ufvm tool itself
 * (`ufvm --fault-around=1 bench spec`): set its UFVM_* variable, which
 * every ufvm instance the command opens reads (docs/configuration.md).
 * With @val NULL, only check that @name is one.
 * Return: 0, -ENOENT if @name is not one of the options above, or
 * -EOPNOTSUPP if only `ufvm run` takes it.
 */
int ufvm_policy_option(const char *name, size_t len, const char *val)
{
	const struct run_opt *o = run_find_opt(name, len);

	if (!o)
		return -ENOENT;
	if (o->run_only)
		return -EOPNOTSUPP;
	if (!val)
		return 0;	/* only asked whether it is one */
	return setenv(o->var, val, 1) ? -errno : 0;
}

/* List the policy options the tool takes before any command (for its usage). */
void ufvm_policy_options_usage(FILE *f)
{
	size_t i;

	for (i = 0; i < RUN_NOPTS; i++)
		if (!run_opts[i].run_only)
			fprintf(f, "  --%-16s %-20s %s (%s)\n", run_opts[i].name,
				run_opts[i].arg, run_opts[i].help, run_opts[i].var);
	fprintf(f, "(--match and --report are read by the preload alone: `ufvm run` "
		"takes them)\n");
}

int ufvm_run_main(int argc, char **argv)
{
	char lib[PATH_MAX] = "", abs[PATH_MAX];
	struct ufvm_config cfg;
	int i, err;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *val, *eq;
		const struct run_opt *o;
		size_t nlen;

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			run_usage(stdout);
			return 0;
		}
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			setenv("UFVM_PRELOAD_VERBOSE", "1", 1);
			continue;
		}
		if (strncmp(a, "--", 2))
			goto bad;
		name = a + 2;
		eq = strchr(name, '=');
		nlen = eq ? (size_t)(eq - name) : strlen(name);
		if (!eq && !strcmp(name, "report")) {
			setenv("UFVM_REPORT", "-", 1);	/* its value is optional */
			continue;
		}
		o = run_find_opt(name, nlen);
		if (!o && !(nlen == 7 && !strncmp(name, "preload", 7)) &&
		    !(nlen == 3 && !strncmp(name, "env", 3)))
			goto bad;	/* before it could take a value that is not its own */
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc &&	/* !o: --preload (a path) or --env */
			   run_value_word(o ? o->dash : nlen == 7, argv[i + 1])) {
			val = argv[++i];
		} else {
			fprintf(stderr, "ufvm run: %s needs a value\n", a);
			return 2;
		}
		/* The preload takes an empty UFVM_* variable as unset: the
		 * option would quietly leave the default it was meant to change. */
		if (!*val) {
			fprintf(stderr, "ufvm run: --%.*s: an empty value (leave the option out "
				"for the default)\n", (int)nlen, name);
			return 2;
		}
		if (nlen == 7 && !strncmp(name, "preload", 7)) {
			snprintf(lib, sizeof(lib), "%s", val);
			continue;
		}
		if (nlen == 3 && !strncmp(name, "env", 3)) {
			const char *e = strchr(val, '=');

			if (!e || strncmp(val, "UFVM_", 5)) {
				fprintf(stderr, "ufvm run: --env wants UFVM_NAME=VALUE, not '%s'\n",
					val);
				return 2;
			}
			if (putenv((char *)val)) {
				perror("ufvm run: putenv");
				return 2;
			}
			continue;
		}
		if (setenv(o->var, val, 1)) {
			perror("ufvm run: setenv");
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "ufvm run: no program given\n\n");
		run_usage(stderr);
		return 2;
	}
	if (run_abs_out("UFVM_STATS") || run_abs_out("UFVM_REPORT"))
		return 2;
	/* The preload reads the same variables: refuse a configuration it would. */
	err = ufvm_config_init(&cfg);
	if (err) {
		fprintf(stderr, "ufvm run: bad configuration (%s)\n", ufvm_strerror(err));
		return 2;
	}
	if (run_check_out("UFVM_STATS") || run_check_out("UFVM_REPORT"))
		return 2;
	/*
	 * Absolute: ld.so looks a name without a slash up in the library
	 * path, not here where it was found readable, and skips it (the
	 * program then runs unmanaged); a relative path would also follow the
	 * program's children into other directories.
	 */
	if (lib[0] && (!run_readable(lib) || !realpath(lib, abs))) {
		fprintf(stderr, "ufvm run: %s: %s\n", lib, strerror(errno));
		return 2;
	}
	if (lib[0])
		snprintf(lib, sizeof(lib), "%s", abs);
	if (!lib[0] && run_find_preload(lib, sizeof(lib)))
		return 2;
	if (run_check_preload_path(lib))
		return 2;
	err = run_set_preload(lib);
	if (err) {
		fprintf(stderr, "ufvm run: LD_PRELOAD: %s\n", strerror(-err));
		return 2;
	}
	fflush(NULL);
	execvp(argv[i], argv + i);
	fprintf(stderr, "ufvm run: %s: %s\n", argv[i], strerror(errno));
	return 127;
bad:
	fprintf(stderr, "ufvm run: unknown option '%s'\n\n", argv[i]);
	run_usage(stderr);
	return 2;
}
