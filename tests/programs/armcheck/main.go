// armcheck: the values a gobt script reads on a real arm64 kernel, each
// printed by the program itself first, so the test compares the two.
//
//	armcheck N    calls each probed function N times, then prints what it passed
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

type point struct {
	X, Y int
	Name string
}

//go:noinline
func add(a, b, c int) int { return a + b + c }

//go:noinline
func greet(p *point, prefix string) (string, int) { return prefix + p.Name, p.X * p.Y }

//go:noinline
func nap(d time.Duration) int {
	time.Sleep(d)
	return int(d / time.Millisecond)
}

// grow recurses with a big frame, so the goroutine's stack is copied while
// it runs: a uretprobe's trampoline address on the stack then crashes Go.
//
//go:noinline
func grow(n int) int {
	var pad [512]byte
	pad[n%512] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return grow(n-1) + int(pad[n%512]&1)
}

//go:noinline
func check(name string) error {
	if len(name) > 5 {
		return errors.New("name too long: " + name)
	}
	return nil
}

// goid is the calling goroutine's id as the runtime prints it in a stack trace.
func goid() int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, _ := strconv.Atoi(string(buf[:bytes.IndexByte(buf, ' ')]))
	return id
}

func main() {
	n := 3
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	done := make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			add(i, 10, 100)
		}
		done <- goid()
	}()
	fmt.Printf("adder goroutine %d\n", <-done)
	p := &point{X: 6, Y: 7, Name: "gopher"}
	for i := 0; i < n; i++ {
		s, v := greet(p, "hi ")
		if i == 0 {
			fmt.Printf("greet returned %q %d\n", s, v)
		}
	}
	fmt.Printf("nap returned %d\n", nap(200*time.Millisecond))
	for i := 0; i < n; i++ {
		fmt.Printf("grow returned %d\n", grow(2000))
	}
	for _, name := range []string{"ok", "maximilian"} {
		fmt.Printf("check(%q) = %v\n", name, check(name))
	}
}
