// inlinedsites calls bump from several places, in loops and through
// another inlined function, and the compiler inlines every call: bump has
// no body of its own unless taken as a value (see keep). The program
// counts its own calls and prints each n it passes, for tests to check
// what probes at the inlined copies see.
package main

import (
	"fmt"
	"os"
)

var calls int

func bump(n int, label string) int {
	calls++
	return n*2 + len(label)
}

// twice inlines bump twice, and is itself inlined into main.
func twice(n int) int {
	return bump(n, "tw") + bump(n+1, "twice")
}

//go:noinline
func say(n int) { fmt.Println("n", n) }

func main() {
	rounds := len(os.Args) + 2
	total := 0
	for i := 0; i < rounds; i++ {
		say(i * 7)
		total += bump(i*7, "loop")
	}
	say(rounds * 100)
	total += bump(rounds*100, os.Args[0])
	for i := 0; i < 2; i++ {
		say(i + 1000)
		say(i + 1001)
		total += twice(i + 1000)
	}
	fmt.Println("calls", calls, "total", total)
}
