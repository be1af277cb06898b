package sessions

import (
	"slices"

	"github.com/berth-edge/berth/daemon/client"
)

// NewContext computes the resource context (GET context) of a host with
// cpus CPUs and memGB GB of RAM, capped by maxCores and maxMemGB when they
// are positive. Cores options are 1..N; memory options are 1, 2, then even
// numbers to 16, then steps of 4 to 32, 8 to 64, 16 to 128 and 32 beyond,
// up to N GB. Defaults: 2 cores, 8 GB (less on small hosts).
func NewContext(cpus, memGB, maxCores, maxMemGB, maxInteractive int) client.Context {
	n := max(1, cpus)
	if maxCores > 0 {
		n = min(n, maxCores)
	}
	m := max(1, memGB)
	if maxMemGB > 0 {
		m = min(m, maxMemGB)
	}
	cores := make([]int, 0, n)
	for i := 1; i <= n; i++ {
		cores = append(cores, i)
	}
	var mem []int
	for v := 1; v <= m; {
		mem = append(mem, v)
		switch {
		case v < 2:
			v++
		case v < 16:
			v += 2
		case v < 32:
			v += 4
		case v < 64:
			v += 8
		case v < 128:
			v += 16
		default:
			v += 32
		}
	}
	memDefault := largestAtMost(mem, min(8, max(1, m/2)))
	return client.Context{
		Cores: client.ResourceOptions{
			Default: min(2, n), DefaultRequest: 1, DefaultLimit: n, Options: cores,
		},
		MemoryGB: client.ResourceOptions{
			Default: memDefault, DefaultRequest: largestAtMost(mem, min(4, memDefault)),
			DefaultLimit: mem[len(mem)-1], Options: mem,
		},
		GPUs:                   client.GPUOptions{Options: []int{}},
		MaxInteractiveSessions: maxInteractive,
	}
}

// largestAtMost returns the largest option not above v (the first option
// when all are).
func largestAtMost(opts []int, v int) int {
	best := opts[0]
	for _, o := range opts {
		if o <= v {
			best = o
		}
	}
	return best
}

// inOptions reports whether v is one of the options.
func inOptions(o client.ResourceOptions, v int) bool { return slices.Contains(o.Options, v) }
