/* SPDX-License-Identifier: MIT */
/* demo_main.c - `ufvm-demo`: see demo.c. */
#include "demo.h"

int main(int argc, char **argv)
{
	return ufvm_demo_main("ufvm-demo", argc, argv);
}
