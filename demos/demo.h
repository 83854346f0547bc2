/* SPDX-License-Identifier: MIT */
/*
 * demo.h - the ufvm demo as a function, so that both `ufvm-demo` and
 * `ufvm demo` run the same code.
 */
#ifndef UFVM_DEMO_H
#define UFVM_DEMO_H

/*
 * ufvm_demo_main - run the demo with command-line arguments.
 * @prog: name to print in messages ("ufvm-demo", "ufvm demo").
 * @argc, @argv: arguments; argv[0] is skipped, as in main().
 * Context: process context; installs signal handlers for SIGINT/SIGTERM
 * and SIGBUS/SIGSEGV (to remove its temporary files); may take seconds.
 * Return: a process exit status: 0 every check passed, 1 a check or a
 * system call failed, 2 bad arguments.
 */
int ufvm_demo_main(const char *prog, int argc, char **argv);

#endif /* UFVM_DEMO_H */
