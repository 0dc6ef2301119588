// Package localnode runs a real node on this machine for the pod end-to-end test: containerd
// and runc from Debian, and a kubelet built from Go modules, registering as node "localhost"
// with a local control plane. It follows ../shared/notes/real-kubelet.md. It needs root.
package localnode

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/listencheck"
)

// Ready reports why this machine cannot run a node, or "" when it can (installing
// containerd and runc with apt-get when they are missing).
func Ready(log io.Writer) string {
	if os.Geteuid() != 0 {
		return "the pod test needs root (a kubelet mounts volumes and runs containers)"
	}
	missing := false
	for _, b := range []string{"containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = true
		}
	}
	if _, err := os.Stat(filepath.Join(CNIBinDir, "bridge")); err != nil {
		missing = true
	}
	if !missing {
		return ""
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "containerd, runc and the CNI plugins are not installed and apt-get is not available to install them"
	}
	fmt.Fprintln(log, "localnode: installing containerd, runc and the CNI plugins with apt-get")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "containerd", "runc", "containernetworking-plugins"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Sprintf("apt-get %s failed: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return ""
}

// Pod networking for nodes started with Options.PodNetwork: Debian's CNI bridge plugin puts
// each Pod on a Linux bridge with its own IP, so several Pods can listen on the same port (a
// Deployment's replicas) and the host reaches them by IP. Start the control plane on
// Gateway (localcluster.Options.BindAddress) so Pods reach the API server.
const (
	CNIBinDir   = "/usr/lib/cni" // where containernetworking-plugins installs the plugins
	Bridge      = "gkbr0"
	Gateway     = "10.244.0.1"
	PodSubnet   = "10.244.0.0/24"
	networkName = "grantkeeper-local"
)

// CreateBridge creates the Pod bridge with the gateway address, so that the control plane
// can bind to Gateway before any Pod exists. DeleteBridge removes it.
func CreateBridge() error {
	_ = DeleteBridge() // left over from a killed run
	for _, args := range [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", Gateway + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// DeleteBridge removes the Pod bridge and the IP allocations of the CNI plugin.
func DeleteBridge() error {
	_ = os.RemoveAll(filepath.Join("/var/lib/cni/networks", networkName))
	if _, err := os.Stat("/sys/class/net/" + Bridge); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "del", Bridge).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link del %s: %v: %s", Bridge, err, out)
	}
	return nil
}

// Node is a running containerd and kubelet.
type Node struct {
	Dir    string
	Socket string
	// KubeletPort and HealthzPort are the kubelet's ports: free ones, picked at Start (the
	// node's status tells the API server the first).
	KubeletPort, HealthzPort int
	containerd               *proc
	kubelet                  *proc
	log                      io.Writer
	podNetwork               bool
}

// proc is a started process and the end of its Wait.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(c *exec.Cmd) (*proc, error) {
	if err := c.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: c, done: make(chan struct{})}
	go func() { _ = c.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Options for Start.
type Options struct {
	Dir          string        // short path: the containerd socket must fit in 108 bytes
	KubeletBin   string        // the kubelet binary
	Kubeconfig   string        // the kubelet's credentials (admin is fine for a test node)
	PauseImage   string        // sandbox image name, built by BuildImages
	Images       []string      // docker-archive tarballs to import
	SyncInterval time.Duration // kubelet syncFrequency: how fast Secret volumes update
	Log          io.Writer
	// PodNetwork gives Pods their own network on the bridge (CreateBridge first); without it
	// Pods must use hostNetwork.
	PodNetwork bool
}

// Start starts containerd, imports images and starts the kubelet.
func Start(o Options) (_ *Node, err error) {
	n := &Node{Dir: o.Dir, Socket: filepath.Join(o.Dir, "containerd.sock"), log: o.Log, podNetwork: o.PodNetwork}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	for _, d := range []string{"root", "state", "cni/bin", "cni/conf", "opt", "runc", "kubelet", "kubelet-certs", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	cniBin := filepath.Join(o.Dir, "cni/bin")
	if o.PodNetwork {
		cniBin = CNIBinDir
		conf := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": %q, "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}]}`, networkName, Bridge, PodSubnet, Gateway)
		if err := os.WriteFile(filepath.Join(o.Dir, "cni/conf", "10-grantkeeper.conflist"), []byte(conf), 0o600); err != nil {
			return nil, err
		}
	}
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[5]q
    conf_dir = %[6]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[7]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[8]q
`, filepath.Join(o.Dir, "root"), filepath.Join(o.Dir, "state"), n.Socket, o.PauseImage,
		cniBin, filepath.Join(o.Dir, "cni/conf"), filepath.Join(o.Dir, "runc"), filepath.Join(o.Dir, "opt"))
	cfgPath := filepath.Join(o.Dir, "containerd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	ctrd := exec.Command("containerd", "--config", cfgPath)
	ctrd.Stdout, ctrd.Stderr = o.Log, o.Log
	ctrd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if n.containerd, err = startProc(ctrd); err != nil {
		return nil, fmt.Errorf("starting containerd: %w", err)
	}
	if err := waitFor(30*time.Second, func() bool { return exec.Command("ctr", "-a", n.Socket, "version").Run() == nil }); err != nil {
		return nil, fmt.Errorf("containerd did not come up: %w", err)
	}
	for _, img := range o.Images {
		cmd := exec.Command("ctr", "-a", n.Socket, "-n", "k8s.io", "images", "import", "--no-unpack=false", img)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("importing %s: %v: %s", img, err, out)
		}
	}

	// The kubelet's ports: free now, but another process may bind one before the kubelet
	// does (it cannot be given port 0); it then exits, and starts again on other ports.
	for attempt := 1; ; attempt++ {
		if n.KubeletPort, err = listencheck.FreePort(); err != nil {
			return nil, err
		}
		if n.HealthzPort, err = listencheck.FreePort(); err != nil {
			return nil, err
		}
		err = n.startKubelet(o)
		if err == nil || !errors.Is(err, errKubeletExited) || attempt == 5 {
			break
		}
		fmt.Fprintf(o.Log, "localnode: the kubelet exited on ports %d/%d (taken meanwhile?): starting it on others\n", n.KubeletPort, n.HealthzPort)
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}

var errKubeletExited = errors.New("the kubelet exited before it listened on its ports")

// startKubelet starts the kubelet on n's ports and waits until it listens on both.
func (n *Node) startKubelet(o Options) error {
	kcfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
readOnlyPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
syncFrequency: %s
fileCheckFrequency: 5s
evictionHard: {"nodefs.available": "1%%", "imagefs.available": "1%%", "memory.available": "1Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, n.KubeletPort, n.HealthzPort, n.Socket, filepath.Join(o.Dir, "pod-logs"), o.SyncInterval)
	kcfgPath := filepath.Join(o.Dir, "kubelet.yaml")
	if err := os.WriteFile(kcfgPath, []byte(kcfg), 0o600); err != nil {
		return err
	}
	kl := exec.Command(o.KubeletBin, "--config="+kcfgPath, "--kubeconfig="+o.Kubeconfig,
		"--root-dir="+filepath.Join(o.Dir, "kubelet"), "--cert-dir="+filepath.Join(o.Dir, "kubelet-certs"),
		"--hostname-override=localhost", "--v=1")
	kl.Stdout, kl.Stderr = o.Log, o.Log
	kl.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var err error
	if n.kubelet, err = startProc(kl); err != nil {
		return fmt.Errorf("starting the kubelet: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if n.kubelet.exited() {
			n.kubelet = nil
			return errKubeletExited
		}
		pid := kl.Process.Pid
		if listencheck.ListensOn(pid, n.KubeletPort) && listencheck.ListensOn(pid, n.HealthzPort) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the kubelet did not listen on ports %d and %d within 2 minutes", n.KubeletPort, n.HealthzPort)
		}
		<-time.After(200 * time.Millisecond) // poll interval
	}
}

// Stop stops the kubelet and containerd (and the containers' shims), unmounts what the
// kubelet mounted and removes the fixed paths the kubelet and containerd use.
func (n *Node) Stop() {
	stop := func(p *proc) {
		if p == nil {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	stop(n.kubelet)
	// Containers run under containerd-shim processes that outlive containerd: kill this
	// node's, and only those (another cluster's on this machine are not ours).
	n.killShims()
	stop(n.containerd)
	n.unmountUnder(n.Dir)
	// Pod network namespaces that containerd bind-mounted (only with PodNetwork).
	if netns, _ := filepath.Glob("/run/netns/cni-*"); n.podNetwork {
		for _, ns := range netns {
			_ = syscall.Unmount(ns, syscall.MNT_DETACH)
			_ = os.Remove(ns)
		}
	}
	for _, p := range []string{"/var/lib/kubelet/device-plugins", "/var/log/containers", "/var/log/pods", "/run/containerd/s"} {
		_ = os.RemoveAll(p)
	}
	for _, p := range []string{"/var/lib/kubelet", "/run/containerd"} {
		_ = os.Remove(p) // only when empty: they may be a real node's
	}
	for _, pattern := range []string{"/sys/fs/cgroup/*/kubepods*", "/sys/fs/cgroup/kubepods*"} {
		dirs, _ := filepath.Glob(pattern)
		for _, d := range dirs {
			removeCgroup(d)
		}
	}
}

// killShims kills the shims this node's containerd started (their command line names its
// socket) and every process below them (the containers), deepest first.
func (n *Node) killShims() {
	type pinfo struct {
		ppid int
		cmd  string
	}
	procs := map[int]pinfo{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		procs[pid] = pinfo{ppid: ppid, cmd: strings.ReplaceAll(string(cmd), "\x00", " ")}
	}
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var order []int // parents before children
	var walk func(int)
	walk = func(pid int) {
		order = append(order, pid)
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for pid, p := range procs {
		if strings.Contains(p.cmd, "containerd-shim") && strings.Contains(p.cmd, " -address "+n.Socket) {
			walk(pid)
		}
	}
	for i := len(order) - 1; i >= 0; i-- {
		_ = syscall.Kill(order[i], syscall.SIGKILL)
	}
}

// unmountUnder unmounts every mount below dir, deepest first.
func (n *Node) unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

// Mounts lists the mounts below dir (for checking a clean tear-down).
func Mounts(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

func removeCgroup(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroup(filepath.Join(dir, e.Name()))
		}
	}
	_ = syscall.Rmdir(dir)
}

func waitFor(timeout time.Duration, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		<-time.After(200 * time.Millisecond)
	}
	return nil
}

// BuildImages builds each Go package (pkg -> image reference) in the module at root as a
// static binary (or takes make test's prebuilt one: gobuild.Image) and packs it the way
// `make image` packs the manager (PackImage: empty base, UID 65532, CA roots), writing
// docker-archive tarballs into dir for Start.
func BuildImages(root, dir string, images map[string]string) ([]string, error) {
	var tarballs []string
	for pkg, ref := range images {
		bin := filepath.Join(dir, filepath.Base(pkg))
		if err := gobuild.Image(root, pkg, bin); err != nil {
			return nil, err
		}
		tb := bin + ".tar"
		if err := PackImage(root, bin, ref, tb); err != nil {
			return nil, fmt.Errorf("packing %s: %w", pkg, err)
		}
		tarballs = append(tarballs, tb)
	}
	return tarballs, nil
}

// PackImage packs the static binary bin as image ref into the docker-archive out, the way
// `make image` does (hack/image -bin, so imagebuild.Write), in a process of its own: in the
// calling test binary, built with -race, gzip and sha256 of a 50 MB binary took about 10 s an
// image on an idle machine and minutes under load; in hack/image, a second.
func PackImage(root, bin, ref, out string) error {
	cmd := exec.Command("go", "run", "./hack/image", "-bin", bin, "-tag", ref, "-o", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go run ./hack/image -bin %s: %v: %s", bin, err, b)
	}
	return nil
}

// Processes lists processes whose command line mentions dir (containerd, the kubelet, shims
// and containers started for this node), for checking a clean tear-down.
func Processes(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, dir) {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

// Lock serialises local nodes on this machine: a kubelet uses fixed paths
// (/var/lib/kubelet/device-plugins, the Pod bridge and its subnet), so test packages that
// start one (go test runs packages in parallel) take turns. Call it before starting anything; call the returned
// function after Stop.
func Lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "grantkeeper-localnode.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the local node: %w", err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
