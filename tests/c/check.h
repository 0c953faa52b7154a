/* check.h: the one-line-per-check reporting shared by the C API tests. */
#ifndef CAGE_TEST_CHECK_H
#define CAGE_TEST_CHECK_H

#include <stdio.h>

static int failures;

/* Prints "ok" or "FAIL" for one check and counts the failures. */
static void check(int ok, const char *what, long got) {
    printf("  %s  %s (got %ld)\n", ok ? "ok  " : "FAIL", what, got);
    if (!ok)
        failures++;
}

#endif
