// methods has two pointer-receiver methods whose names differ only in the
// type: main.(*T).M and main.(*ST).M. bpftrace reads "main.(*T).M" as a
// pattern that matches both; a probe gobt resolved for one must not fire in
// the other.
package main

import "fmt"

type T struct{ A, B int }

type ST struct{ S string }

//go:noinline
func (t *T) M(x int) int { return t.B + x }

//go:noinline
func (s *ST) M(x int) int { return len(s.S) + x }

func main() {
	t := &T{A: 1, B: 2}
	s := &ST{S: "hello"}
	fmt.Println(t.M(10), s.M(20))
}
