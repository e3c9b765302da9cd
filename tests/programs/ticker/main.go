// ticker calls main.tick(i) every 5 ms, forever (or for os.Args[1] ticks),
// for tests that attach to a process that is already running (-p PID).
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

//go:noinline
func tick(i int) int {
	return i * 3
}

func main() {
	limit := -1
	if len(os.Args) > 1 {
		limit, _ = strconv.Atoi(os.Args[1])
	}
	fmt.Println("ticking", os.Getpid())
	for i := 0; limit < 0 || i < limit; i++ {
		tick(i)
		time.Sleep(5 * time.Millisecond)
	}
}
