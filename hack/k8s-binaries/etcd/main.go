// Command etcd is etcd's own server main, built from the Go module proxy
// because release binaries cannot be downloaded on our machines.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
