package main

import (
	"io/fs"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the manager's GOGC unless the environment sets one. Go's default (100)
// lets the heap grow to twice what is live before collecting; the manager's live heap is
// mostly its caches, which it holds for good, so a quarter of that again is room enough.
// The peak comes while thousands of grants get their first tokens at once, when the heap's
// headroom over a live heap of 60 MB at 10,000 grants is most of the difference from the
// steady state (docs/benchmarks.md); the price is GC CPU, a small share of what a refresh
// costs the API server.
const defaultGCPercent = 25

// memoryLimitShare is the part of the container's memory limit given to GOMEMLIMIT when the
// environment sets none: the rest is for what the Go runtime does not count (the binary,
// thread stacks), so the GC works harder before the kernel's OOM killer steps in.
const memoryLimitShare = 0.9

// setMemoryDefaults applies defaultGCPercent and a soft memory limit from the cgroup (as
// KimMachineGun/automemlimit does), each only when its environment variable is unset.
// It returns the limit set, 0 if none.
func setMemoryDefaults(getenv func(string) string, cgroup fs.FS) int64 {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit, ok := cgroupMemoryLimit(cgroup)
	if !ok {
		return 0
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	return soft
}

// noLimitV1 is the smallest value cgroup v1 reports for "no limit" (the largest page-aligned
// int64, or close to it); real limits are far below.
const noLimitV1 = 1 << 62

// cgroupMemoryLimit reads the memory limit of the cgroup the process runs in, from the
// cgroup filesystem root (cgroup v2's memory.max, else v1's memory/memory.limit_in_bytes;
// in a container both show the container's own cgroup there). false when there is none.
func cgroupMemoryLimit(cgroup fs.FS) (int64, bool) {
	if b, err := fs.ReadFile(cgroup, "memory.max"); err == nil {
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil && n > 0
	}
	if b, err := fs.ReadFile(cgroup, "memory/memory.limit_in_bytes"); err == nil {
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n, err == nil && n > 0 && n < noLimitV1
	}
	return 0, false
}

func cgroupFS() fs.FS { return os.DirFS("/sys/fs/cgroup") }
