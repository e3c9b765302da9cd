// detach makes a fixed set of calls to F00..F11 (each has four returns,
// 48 RETs in all) and says "done", then exits, or with "hold" waits to be
// stopped: for tests whose maps must come out the same in every run.
// F{j} is called 3(j+1) times, so every per-function count differs.
package main

import (
	"fmt"
	"os"
	"time"
)

//go:noinline
func F00(r int) int {
	switch r % 4 {
	case 0:
		return 0*100 + r
	case 1:
		return 0*100 + 2*r
	case 2:
		return 0*100 + 3*r + 1
	}
	return 0*100 + 50
}

//go:noinline
func F01(r int) int {
	switch r % 4 {
	case 0:
		return 1*100 + r
	case 1:
		return 1*100 + 2*r
	case 2:
		return 1*100 + 3*r + 1
	}
	return 1*100 + 50
}

//go:noinline
func F02(r int) int {
	switch r % 4 {
	case 0:
		return 2*100 + r
	case 1:
		return 2*100 + 2*r
	case 2:
		return 2*100 + 3*r + 1
	}
	return 2*100 + 50
}

//go:noinline
func F03(r int) int {
	switch r % 4 {
	case 0:
		return 3*100 + r
	case 1:
		return 3*100 + 2*r
	case 2:
		return 3*100 + 3*r + 1
	}
	return 3*100 + 50
}

//go:noinline
func F04(r int) int {
	switch r % 4 {
	case 0:
		return 4*100 + r
	case 1:
		return 4*100 + 2*r
	case 2:
		return 4*100 + 3*r + 1
	}
	return 4*100 + 50
}

//go:noinline
func F05(r int) int {
	switch r % 4 {
	case 0:
		return 5*100 + r
	case 1:
		return 5*100 + 2*r
	case 2:
		return 5*100 + 3*r + 1
	}
	return 5*100 + 50
}

//go:noinline
func F06(r int) int {
	switch r % 4 {
	case 0:
		return 6*100 + r
	case 1:
		return 6*100 + 2*r
	case 2:
		return 6*100 + 3*r + 1
	}
	return 6*100 + 50
}

//go:noinline
func F07(r int) int {
	switch r % 4 {
	case 0:
		return 7*100 + r
	case 1:
		return 7*100 + 2*r
	case 2:
		return 7*100 + 3*r + 1
	}
	return 7*100 + 50
}

//go:noinline
func F08(r int) int {
	switch r % 4 {
	case 0:
		return 8*100 + r
	case 1:
		return 8*100 + 2*r
	case 2:
		return 8*100 + 3*r + 1
	}
	return 8*100 + 50
}

//go:noinline
func F09(r int) int {
	switch r % 4 {
	case 0:
		return 9*100 + r
	case 1:
		return 9*100 + 2*r
	case 2:
		return 9*100 + 3*r + 1
	}
	return 9*100 + 50
}

//go:noinline
func F10(r int) int {
	switch r % 4 {
	case 0:
		return 10*100 + r
	case 1:
		return 10*100 + 2*r
	case 2:
		return 10*100 + 3*r + 1
	}
	return 10*100 + 50
}

//go:noinline
func F11(r int) int {
	switch r % 4 {
	case 0:
		return 11*100 + r
	case 1:
		return 11*100 + 2*r
	case 2:
		return 11*100 + 3*r + 1
	}
	return 11*100 + 50
}

//go:noinline
func Never(r int) int {
	if r > 0 {
		return r
	}
	return -r
}

func run(f func(int) int, n int) int {
	for r := 0; r < 3*n; r++ {
		f(r)
	}
	return 3 * n
}

func main() {
	calls := 0
	if len(os.Args) > 1 && os.Args[1] == "never" {
		calls += Never(1)
	}
	calls += run(F00, 1)
	calls += run(F01, 2)
	calls += run(F02, 3)
	calls += run(F03, 4)
	calls += run(F04, 5)
	calls += run(F05, 6)
	calls += run(F06, 7)
	calls += run(F07, 8)
	calls += run(F08, 9)
	calls += run(F09, 10)
	calls += run(F10, 11)
	calls += run(F11, 12)
	fmt.Println("done", calls)
	if len(os.Args) > 1 && os.Args[1] == "hold" {
		time.Sleep(time.Hour)
	}
}
