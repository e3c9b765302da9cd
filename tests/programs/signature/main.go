// signature is traced through signatures declared in the probe (the tests
// build it stripped, where nothing else tells gobt the params). Every call
// prints what it was given and what it returns, for the probes' output to
// be compared with.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

type S struct {
	hits int
	name string
}

//go:noinline
func tick(n int, label string) (int, string) {
	return n * 3, label + "!"
}

//go:noinline
func (s *S) Get(key string, n int) (count int, err error) {
	s.hits += n
	if n%2 == 1 {
		return s.hits, errors.New("odd " + key)
	}
	return s.hits, nil
}

//go:noinline
func sum(a, b int32, xs []int) int64 {
	t := int64(a) + int64(b)
	for _, x := range xs {
		t += int64(x)
	}
	return t
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	s := &S{name: "s"}
	for i := 1; i <= n; i++ {
		label := "k" + strconv.Itoa(i)
		r, l := tick(i, label)
		fmt.Printf("tick %d %s -> %d %s\n", i, label, r, l)
		count, err := s.Get(label, i)
		fmt.Printf("get %s %d -> %d %t\n", label, i, count, err != nil)
		fmt.Printf("sum %d\n", sum(int32(i), 2, []int{i, 4, 5}))
	}
}
