// swapper swaps its two arguments through main.swap, a function that takes
// two strings and returns two. Build it without inlining so main.swap exists:
//
//	go build -gcflags=-l -o swapper . && ./swapper hello go
package main

import (
	"fmt"
	"os"
)

func swap(x, y string) (string, string) {
	return y, x
}

func main() {
	args := os.Args
	if len(args) < 3 {
		panic("needs 2 args")
	}
	a, b := swap(args[1], args[2])
	fmt.Println(a, b)
}
