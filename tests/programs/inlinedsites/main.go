// inlinedsites calls small functions the compiler inlines at every call
// site: none of bump, note and mark has a body of its own. Each counts its
// own calls and prints them, and note prints the n it is given (through
// say, which is never inlined), for tests to check what probes at the
// inlined copies see.
package main

import (
	"fmt"
	"os"
)

var bumps, notes, marks int

func bump(n int, label string) int {
	bumps++
	return n*3 + len(label)
}

// twice inlines bump twice, and is itself inlined into main: nested copies.
// (The calls between keep each copy's code its own: with none, Go 1.27
// merges adjacent copies' bumps++ into one bumps += 3, and a call merged
// away has no instruction left to probe.)
func twice(n int) int {
	a := bump(get(n), "tw")
	return bump(get(a), "twice")
}

//go:noinline
func say(n int) { fmt.Println("n", n) }

//go:noinline
func get(i int) int { return i * 7 }

//go:noinline
func pair(i int) (int, int) { return i * 11, i * 13 }

// note's n comes straight from a call's result at each of its copies, so
// DWARF locates it at each copy's entry (in RAX or RBX).
func note(n int, label string) int {
	notes++
	say(n)
	return n*3 + len(label)
}

// mark's n is computed inside the copy: DWARF has no location for it at
// the copy's entry.
func mark(n int) int {
	marks++
	return n * 5
}

func main() {
	rounds := len(os.Args) + 2
	total := 0
	for i := 0; i < rounds; i++ {
		total += bump(get(i), "loop")
		total += twice(i + 1000)
		total += note(get(i), "get")
		a, b := pair(i)
		total += note(b, "pair") + a
		total += mark(i * 3)
	}
	total += bump(rounds*100, os.Args[0])
	total += note(get(rounds*100), os.Args[0])
	fmt.Println("bumps", bumps, "notes", notes, "marks", marks, "total", total)
}
