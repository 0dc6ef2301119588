// Package listencheck tells whether a child process listens on the port it was given: a
// port picked free (opened and closed) may be taken by another process before the child
// binds it, and a connection to it then reaches that process. Callers start the child
// again on another port when it exits instead of listening.
package listencheck

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// FreePort is a loopback port free now (not reserved: see the package comment).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ListensOn reports whether process pid holds a listening TCP socket on port (IPv4 or
// IPv6): the socket's inode, from /proc/net/tcp*, among the process's descriptors.
func ListensOn(pid, port int) bool {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fl := strings.Fields(line)
			// local_address is HEXIP:HEXPORT; st 0A is LISTEN; the inode is field 9.
			if len(fl) > 9 && fl[3] == "0A" && strings.HasSuffix(fl[1], fmt.Sprintf(":%04X", port)) {
				inodes["socket:["+fl[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[l] {
			return true
		}
	}
	return false
}
