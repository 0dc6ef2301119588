package main

import (
	"runtime/debug"
	"testing"
	"testing/fstest"
)

func TestCgroupMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"v2 limit", map[string]string{"memory.max": "536870912\n"}, 536870912, true},
		{"v2 no limit", map[string]string{"memory.max": "max\n"}, 0, false},
		{"v2 garbage", map[string]string{"memory.max": "lots\n"}, 0, false},
		{"v1 limit", map[string]string{"memory/memory.limit_in_bytes": "268435456\n"}, 268435456, true},
		{"v1 no limit", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"v2 wins over v1", map[string]string{"memory.max": "max", "memory/memory.limit_in_bytes": "268435456"}, 0, false},
		{"no cgroup files", map[string]string{}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range c.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			got, ok := cgroupMemoryLimit(fsys)
			if ok != c.ok || (ok && got != c.want) {
				t.Errorf("cgroupMemoryLimit = %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// The environment always wins; without it the GC percent and the soft limit are set.
func TestSetMemoryDefaults(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	limited := fstest.MapFS{"memory.max": &fstest.MapFile{Data: []byte("1000000000")}}
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

	debug.SetGCPercent(100)
	if got := setMemoryDefaults(env(nil), limited); got != 900000000 {
		t.Errorf("soft limit %d, want 90%% of the cgroup's", got)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC %d, want %d", got, defaultGCPercent)
	}
	debug.SetMemoryLimit(1 << 40)
	if got := setMemoryDefaults(env(map[string]string{"GOGC": "200", "GOMEMLIMIT": "512MiB"}), limited); got != 0 {
		t.Errorf("a soft limit (%d) was set over GOMEMLIMIT", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC %d was changed though the environment sets it", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("memory limit %d was changed though GOMEMLIMIT is set", got)
	}
}
