// loop calls the //go:noinline function step N times (default 1,000,000)
// and prints the time per call, measured inside Go around the loop:
//
//	calls 1000000 ns_per_call 2.345 total_ns 2345000 sum 123
//
// bench/run runs it untraced and under each kind of probe on step; the
// difference per call is the probe's overhead. step's frame is tiny and the
// loop does not recurse, so the goroutine stack never grows while it runs:
// a uretprobe on step is safe here.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

var sink int

//go:noinline
func step(i, acc int) int {
	if i&1 == 0 {
		return acc + i
	}
	return acc ^ i
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	acc := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		acc = step(i, acc)
	}
	elapsed := time.Since(start)
	sink = acc
	fmt.Printf("calls %d ns_per_call %.3f total_ns %d sum %d\n",
		n, float64(elapsed.Nanoseconds())/float64(n), elapsed.Nanoseconds(), acc)
}
