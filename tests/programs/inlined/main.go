// inlined calls add twice: once inlined into main (invisible to probes),
// once out of line through a func value.
package main

import (
	"fmt"
	"os"
)

func add(a, b int) int { return a + b }

var f = add

func main() {
	x := add(len(os.Args), 2)
	y := f(x, 5)
	fmt.Println(x, y)
}
