// Command pause is the pod sandbox ("pause") image's process for the pod end-to-end test:
// it does nothing until it is signalled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
