// wrappers calls a method promoted through an embedded pointer, via an
// interface, so that the compiler's wrapper (*Outer).Value exists. In Go
// 1.19 and 1.24+ that wrapper ends in a JMP to (*Inner).Value: a tail call,
// with no RET of its own.
package main

import (
	"fmt"
	"os"
)

type Inner struct{ v int }

//go:noinline
func (i *Inner) Value() int { return i.v * 2 }

type Outer struct {
	*Inner
	name string
}

type valuer interface{ Value() int }

var things []valuer

//go:noinline
func sum() int {
	total := 0
	for _, t := range things {
		total += t.Value()
	}
	return total
}

func main() {
	things = append(things, &Outer{Inner: &Inner{v: len(os.Args)}}, &Inner{v: 1})
	fmt.Println(sum())
}
