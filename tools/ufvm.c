/* SPDX-License-Identifier: MIT */
/*
 * ufvm.c - the ufvm command-line tool.
 *
 * A table of subcommands: each entry names a function that takes the
 * arguments after the subcommand name (argv[0] is the subcommand) and
 * returns a process exit status.  Exit statuses: 0 success, 1 failure
 * (including ufvm_open() refused with -EPERM: the library prints why),
 * 2 usage errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufvm.h"
#include "demo.h"
#include "bench/bench.h"

#ifndef UFVM_VERSION
#define UFVM_VERSION "unknown"
#endif

struct tool_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
	const char *summary;
};

static int cmd_demo(int argc, char **argv);
static int cmd_bench(int argc, char **argv);
static int cmd_stats(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);
int ufvm_run_main(int argc, char **argv);	/* tools/run.c */
int ufvm_fuzz_main(int argc, char **argv);	/* tools/fuzz.c */
int ufvm_policy_option(const char *name, size_t len, const char *val);
bool ufvm_policy_value_word(const char *name, size_t len, const char *word);
void ufvm_policy_options_usage(FILE *f);

static const struct tool_cmd tool_cmds[] = {
	{ "demo", cmd_demo, "[--size SIZE] [...]",
	  "map a store file through ufvm, check it, compare with the kernel's mmap" },
	{ "bench", cmd_bench, "NAME|all [OPTIONS] [--json]",
	  "run a benchmark (ufvm bench --help lists them)" },
	{ "stats", cmd_stats, "[OPTIONS] FILE.json",
	  "print a statistics file (UFVM_STATS) as tables and histograms" },
	{ "run", ufvm_run_main, "[OPTIONS] -- PROGRAM [ARGS]",
	  "run an unmodified program with its file mappings on ufvm" },
	{ "fuzz", ufvm_fuzz_main, "[--seed N] [--seeds N] [--ops N] [...]",
	  "random file and mapping operations, every byte checked against a model" },
	{ "version", cmd_version, "", "print the version" },
	{ "help", cmd_help, "[COMMAND]", "print this help, or a command's" },
};

#define TOOL_NCMDS (sizeof(tool_cmds) / sizeof(tool_cmds[0]))

static const struct tool_cmd *tool_find(const char *name)
{
	size_t i;

	for (i = 0; i < TOOL_NCMDS; i++)
		if (!strcmp(tool_cmds[i].name, name))
			return &tool_cmds[i];
	return NULL;
}

static void tool_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: ufvm COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < TOOL_NCMDS; i++)
		fprintf(f, "  %-8s %-28s %s\n", tool_cmds[i].name, tool_cmds[i].args,
			tool_cmds[i].summary);
	fprintf(f, "\npolicy options go before the command (ufvm --fault-around=1 bench spec):\n");
	ufvm_policy_options_usage(f);
	fprintf(f, "\nufvm's knobs are UFVM_* environment variables: see "
		"docs/configuration.md.\n"
		"exit status: 0 success, 1 failure, 2 a usage or configuration error\n"
		"(`ufvm run`: the program's own).\n");
}

static int cmd_demo(int argc, char **argv)
{
	return ufvm_demo_main("ufvm demo", argc, argv);
}

static int cmd_bench(int argc, char **argv)
{
	return ufvm_bench_main(argc, argv);
}

static int cmd_stats(int argc, char **argv)
{
	return ufvm_stats_main(argc, argv);
}

static int cmd_version(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "usage: ufvm version\n");
		return 2;
	}
	printf("ufvm %s\n", UFVM_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	const struct tool_cmd *c;

	if (argc < 2) {
		tool_usage(stdout);
		return 0;
	}
	c = tool_find(argv[1]);
	if (!c) {
		fprintf(stderr, "ufvm: unknown command '%s'\n\n", argv[1]);
		tool_usage(stderr);
		return 2;
	}
	if (c->run != cmd_version && c->run != cmd_help) {
		char *hargv[] = { (char *)c->name, (char *)"--help", NULL };

		return c->run(2, hargv);
	}
	printf("usage: ufvm %s %s\n  %s\n", c->name, c->args, c->summary);
	return 0;
}

/*
 * Leading policy options, before the command: `ufvm --speculative=0 bench
 * spec`.  Each sets its UFVM_* variable.  Return: the index of the command,
 * or -1 after a message.
 */
static int policy_options(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *name = a + 2, *eq, *val, *why = NULL;
		size_t len;
		int err;

		if (strncmp(a, "--", 2) || !strcmp(a, "--help") || !strcmp(a, "--version"))
			break;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		err = ufvm_policy_option(name, len, NULL);	/* before taking a value */
		if (err == -EOPNOTSUPP)
			why = "read by the preload alone: give it to `ufvm run`";
		else if (err)
			why = "unknown option";
		else if (eq)
			val = eq + 1;
		else if (i + 1 >= argc || !ufvm_policy_value_word(name, len, argv[i + 1]))
			why = "needs a value (--NAME=VALUE)";	/* not "--" nor an option */
		else if (tool_find(argv[i + 1]))
			why = "needs a value before the command (--NAME=VALUE)";
		else
			val = argv[++i];
		/* An empty UFVM_* variable means unset: an empty value would
		 * quietly give the default the option was meant to change. */
		if (!why && !*val)
			why = "an empty value (leave the option out for the default)";
		if (!why && ufvm_policy_option(name, len, val))
			why = strerror(errno);
		if (why) {
			fprintf(stderr, "ufvm: %s: %s\n\npolicy options (before the command):\n",
				a, why);
			ufvm_policy_options_usage(stderr);
			return -1;
		}
	}
	return i;
}

/*
 * A command's output is what a script keeps (ufvm bench --json > r.json):
 * a write that failed (a full disk, /dev/full) must fail the command, not
 * leave a short or empty file behind a status of 0.  stdout is buffered,
 * so most failures show only here, at the last flush.
 * Return: @status, or 1 after a message if stdout could not be written.
 */
static int tool_flush_stdout(int status)
{
	int err = fflush(stdout) ? errno : 0;

	if (!err && !ferror(stdout))
		return status;
	if (err)
		fprintf(stderr, "ufvm: cannot write standard output: %s\n", strerror(err));
	else
		fprintf(stderr, "ufvm: cannot write standard output: a write failed\n");
	return status ? status : 1;
}

int main(int argc, char **argv)
{
	const struct tool_cmd *c;
	struct ufvm_config cfg;
	int first = policy_options(argc, argv);

	if (first < 0)
		return 2;
	/*
	 * The values are read by the first ufvm_open() of the command, and
	 * a command that opens none (stats, help) would take a bad one
	 * without a word: read them now, as that open would.
	 */
	if (first > 1 && ufvm_config_init(&cfg)) {
		fprintf(stderr, "ufvm: the policy options before the command give an invalid "
			"configuration\n");
		return 2;
	}
	argc -= first - 1;
	argv += first - 1;
	if (argc < 2) {
		tool_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return tool_flush_stdout(cmd_help(1, argv + 1));
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))
		return tool_flush_stdout(cmd_version(1, argv + 1));

	c = tool_find(argv[1]);
	if (!c) {
		fprintf(stderr, "ufvm: unknown command '%s'\n\n", argv[1]);
		tool_usage(stderr);
		return 2;
	}
	return tool_flush_stdout(c->run(argc - 1, argv + 1));
}
