// busy calls main.f0001 at full speed from two goroutines, and main.slow
// (which sleeps 2 ms inside) from 200 more, so that there are always calls
// under way: a probe attached while the program runs finds some, and so
// does the end of a trace. For tests of what
// bpftrace prints at exit while the probes still fire. It runs until
// stopped, or for os.Args[1] milliseconds, then exits.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

var sink int

//go:noinline
func f0001(i int) int {
	return i*7 + 1
}

//go:noinline
func slow(i int) int {
	time.Sleep(2 * time.Millisecond)
	return i + 1
}

func spin() {
	s := 0
	for i := 0; ; i++ {
		s += f0001(i)
	}
}

func main() {
	fmt.Fprintln(os.Stderr, "busy", os.Getpid()) // stdout is the tracer's, under -c
	go spin()
	go spin()
	for g := 0; g < 200; g++ {
		go func(g int) {
			for i := g; ; i++ {
				sink = slow(i)
			}
		}(g)
	}
	if len(os.Args) > 1 {
		ms, _ := strconv.Atoi(os.Args[1])
		time.Sleep(time.Duration(ms) * time.Millisecond)
		os.Exit(0)
	}
	select {}
}
