// hidden has params DWARF may leave out although they take a register: the
// dictionary of generic shape instances (absent from DWARF before Go 1.27)
// and a blank _ param (absent before Go 1.22). Each function prints what it
// got, so tests can compare gobt's reads.
package main

import "fmt"

type Stack[T any] struct{ items []T }

//go:noinline
func (s *Stack[T]) Push(v T, n int) int {
	s.items = append(s.items, v)
	fmt.Printf("P Push n=%d\n", n)
	return len(s.items) + n
}

//go:noinline
func Pick[T any](a, b T, first bool, tag string) T {
	fmt.Printf("P Pick first=%d tag=%s\n", b2i(first), tag)
	if first {
		return a
	}
	return b
}

//go:noinline
func Blank(a int, _ int, c string) int {
	fmt.Printf("P Blank a=%d c=%s\n", a, c)
	return a + len(c)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func main() {
	s := &Stack[string]{}
	s.Push("x", 5)
	Pick("a", "b", false, "strings")
	Pick(1, 2, true, "ints")
	Blank(1, 2, "ccc")
}
