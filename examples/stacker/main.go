// stacker grows its goroutine stack while main.stacker runs: each Example
// lives on the stack, so a large count makes the runtime copy the stack to
// a bigger one. A uretprobe on main.stacker crashes it; goret does not.
//
//	go build -gcflags=-l -o stacker . && ./stacker 1000000
package main

import (
	"fmt"
	"os"
	"strconv"
)

type Example struct {
	ID   int
	Name string
}

func stacker(count int) string {
	var result int
	for i := 0; i < count; i++ {
		temp := Example{ID: i * 2, Name: fmt.Sprintf("%d", result)}
		result += temp.ID
	}
	s := fmt.Sprintf("hello: %d", result)
	return s
}

func main() {
	args := os.Args
	if len(args) < 2 {
		panic("needs 1 arg")
	}
	count, err := strconv.Atoi(args[1])
	if err != nil {
		panic("arg needs to be a number")
	}
	s := stacker(count)
	fmt.Println(s)
}
