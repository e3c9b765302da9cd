// cgocall is a cgo program (import "C"): N goroutines each call scale(i,
// label), which multiplies in C. Each prints its own goroutine id and what
// scale returned ("G i goid result"), so a trace can be checked against it.
package main

/*
#include <stdint.h>

int64_t c_triple(int64_t n) { return n * 3; }
*/
import "C"

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
)

//go:noinline
func scale(n int, label string) (int, string) {
	return int(C.c_triple(C.int64_t(n))), label + "!"
}

func goid() int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	n, _ := strconv.Atoi(string(buf[:bytes.IndexByte(buf, ' ')]))
	return n
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	var wg sync.WaitGroup
	lines := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, _ := scale(i, "g"+strconv.Itoa(i))
			lines[i] = fmt.Sprintf("G %d %d %d", i, goid(), r)
		}(i)
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Println(l)
	}
}
