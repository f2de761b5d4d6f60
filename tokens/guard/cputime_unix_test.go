//go:build unix

package guard

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used, user plus system. The
// benchmarks report it per operation: unlike wall time, it does not grow
// when other processes compete for the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
