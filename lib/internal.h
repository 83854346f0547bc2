/* SPDX-License-Identifier: MIT */
/* lib/internal.h - helpers shared by the files of lib/. */
#ifndef UFVM_LIB_INTERNAL_H
#define UFVM_LIB_INTERNAL_H

#include <ufvm.h>

#include "vm/hist.h"

/*
 * The snapshot into @out, and the histograms it was computed from into
 * @hist[VM_HIST__COUNT] (every path's, then ufvm's own time).
 */
void ufvm__stats_snapshot(struct ufvm *vm, struct ufvm_stats *out, struct vm_hist *hist);

/*
 * Copy @tmpl to @out[len] with each "%p" replaced by this process's pid
 * (UFVM_STATS, UFVM_REPORT).  Context: any.  Return: 0, or -ENAMETOOLONG.
 */
int ufvm__expand_pid(const char *tmpl, char *out, size_t len);

/*
 * Replace what the file at @path holds with @text[len], so that a reader
 * sees the old content or the new one, whole, never a part: a regular
 * file, or a name not there yet, gets a new file written beside it under
 * a temporary name and renamed over it (over a symbolic link's target),
 * with the old file's mode; anything else there (a device, a FIFO) is
 * written in place.  Of several processes writing one name, the last
 * rename wins.  Context: may block (file I/O).  Return: 0 or -errno.
 */
int ufvm__replace_file(const char *path, const void *text, size_t len);

#endif
