/* SPDX-License-Identifier: MIT */
/*
 * lsan.c - LeakSanitizer settings for the test executables
 * (UFVM_SANITIZE builds): Criterion's runner leaks a small
 * allocation of its own at exit, which would make every test binary exit
 * non-zero.  Suppress leaks whose allocation stack is inside libcriterion
 * only; leaks in ufvm and in the tests are still reported.  Linked into
 * every test executable as an object (tests/CMakeLists.txt, ufvm_lsan),
 * not taken from the static library, where a test that calls nothing else
 * of the object would leave it out.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcriterion.so\n";
}

const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}
