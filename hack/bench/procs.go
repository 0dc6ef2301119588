package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/grantkeeper/grantkeeper/test/framework/localcluster"
)

// procCPU is the CPU seconds each process of the stack used, by name: the manager is
// measured apart; kube-apiserver and etcd are the bench's children, and the bench (which
// also runs the fake Google server and the watches) is this process.
type procCPU map[string]float64

// stackProcs finds the control plane's processes among this process's children.
func stackProcs() map[string]int {
	pids := map[string]int{"bench+fake-google": os.Getpid()}
	for _, pid := range localcluster.ChildPIDs(os.Getpid()) {
		p, err := procfs.NewProc(pid)
		if err != nil {
			continue
		}
		comm, err := p.Comm()
		if err != nil {
			continue
		}
		if comm == "kube-apiserver" || comm == "etcd" {
			pids[comm] = pid
		}
	}
	return pids
}

func cpuOf(pids map[string]int, mgr *managerProc) procCPU {
	out := procCPU{}
	if mgr != nil {
		out["manager"] = mgr.cpuSeconds()
	}
	for name, pid := range pids {
		p, err := procfs.NewProc(pid)
		if err != nil {
			continue
		}
		if st, err := p.Stat(); err == nil {
			out[name] = st.CPUTime()
		}
	}
	return out
}

func (c procCPU) since(before procCPU) procCPU {
	out := procCPU{}
	for k, v := range c {
		out[k] = v - before[k]
	}
	return out
}

// loadAverage is /proc/loadavg's first three fields: other work on the machine skews
// every CPU and latency figure, never the counts.
func loadAverage() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return "unknown"
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
}

// apiLatency is the API server's own request latency (apiserver_request_duration_seconds
// sum and count) by verb, from its /metrics.
type apiLatency map[string][2]float64

func scrapeAPIServer(ctx context.Context, cfg *rest.Config) apiLatency {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil
	}
	out := apiLatency{}
	for _, m := range families["apiserver_request_duration_seconds"].GetMetric() {
		verb := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "verb" {
				verb = l.GetValue()
			}
		}
		if verb == "WATCH" || verb == "CONNECT" {
			continue
		}
		h := m.GetHistogram()
		v := out[verb]
		out[verb] = [2]float64{v[0] + h.GetSampleSum(), v[1] + float64(h.GetSampleCount())}
	}
	return out
}

// meanMillis is the mean latency by verb, in ms, of the requests between before and a.
func (a apiLatency) meanMillis(before apiLatency) map[string]float64 {
	out := map[string]float64{}
	for verb, v := range a {
		if n := v[1] - before[verb][1]; n > 0 {
			out[verb] = (v[0] - before[verb][0]) / n * 1000
		}
	}
	return out
}

// watchPeak samples the manager's RSS every second until the returned stop is called, and
// saves its heap profile (as of the last GC, none forced) each time the RSS passes the
// highest seen by 2 MiB. stop returns the profile's path, the RSS it was taken at and what
// that RSS was made of.
func (m *managerProc) watchPeak(dir, name string) (stop func() (path string, rss float64, breakdown string)) {
	done, finished := make(chan struct{}), make(chan struct{})
	var path, breakdown string
	var at float64
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if rss := rssNow(m); rss > at+2 {
				if p := m.heapProfile(dir, name, false); p != "" {
					path, at, breakdown = p, rss, m.memoryBreakdown()
					say("manager RSS %.0f MiB: %s", rss, breakdown)
				}
			}
		}
	}()
	return func() (string, float64, string) {
		close(done)
		<-finished
		return path, at, breakdown
	}
}

// memoryBreakdown says what the manager's resident memory is made of: anonymous memory
// against pages of the binary (/proc), and the Go runtime's view of its heap and stacks
// (the MemStats that /debug/pprof/heap?debug=1 ends with).
func (m *managerProc) memoryBreakdown() string {
	out := ""
	if p, err := procfs.NewProc(m.cmd.Process.Pid); err == nil {
		if st, err := p.NewStatus(); err == nil {
			out = fmt.Sprintf("anon %.0f MiB, file %.0f MiB", float64(st.RssAnon)/(1<<20), float64(st.RssFile)/(1<<20))
		}
	}
	if m.pprofAddr == "" {
		return out
	}
	resp, err := http.Get("http://" + m.pprofAddr + "/debug/pprof/heap?debug=1")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	stats := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		var k string
		var v float64
		if n, _ := fmt.Sscanf(line, "# %s = %g", &k, &v); n == 2 {
			stats[k] = v / (1 << 20)
		}
	}
	return out + fmt.Sprintf("; heap: alloc %.0f, in use %.0f, idle not released %.0f, next GC %.0f MiB; stacks %.0f MiB",
		stats["HeapAlloc"], stats["HeapInuse"], stats["HeapIdle"]-stats["HeapReleased"], stats["NextGC"], stats["Stack"])
}

// saveHeapProfile writes the manager's heap profile (after a GC) into dir.
func (m *managerProc) saveHeapProfile(dir, name string) string {
	return m.heapProfile(dir, name, true)
}

func (m *managerProc) heapProfile(dir, name string, gc bool) string {
	if m.pprofAddr == "" {
		return ""
	}
	url := "http://" + m.pprofAddr + "/debug/pprof/heap"
	if gc {
		url += "?gc=1"
	}
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return ""
	}
	return path
}

func (c procCPU) String() string { return formatSorted(c, "%s %.1f") }

func formatMillis(m map[string]float64) string { return formatSorted(m, "%s %.1f ms") }

// formatSorted formats each key and value of m with format, by key, comma-separated.
func formatSorted(m map[string]float64, format string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf(format, k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// saveAPIServerProfile writes a CPU profile of kube-apiserver over d into dir: where a
// refresh's cost goes on the API server's side (decoding, validation, managedFields,
// storage, watch fan-out).
func saveAPIServerProfile(ctx context.Context, cfg *rest.Config, d time.Duration, dir string) string {
	return saveAPIServerProfileAs(ctx, cfg, d, dir, "kube-apiserver-cpu.pprof")
}

// saveAPIServerProfileAs is saveAPIServerProfile into the file name.
func saveAPIServerProfileAs(ctx context.Context, cfg *rest.Config, d time.Duration, dir, name string) string {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return ""
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(int(d.Seconds()))).Timeout(d + 30*time.Second).DoRaw(ctx)
	if err != nil {
		return ""
	}
	path := filepath.Join(dir, name)
	if os.WriteFile(path, body, 0o600) != nil {
		return ""
	}
	return path
}
