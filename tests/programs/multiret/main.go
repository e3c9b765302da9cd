// multiret calls classify N times so that every one of its return paths is
// taken a known number of times, then prints how often each path was taken
// ("path VALUE COUNT"). The goret tests compare that with the probe hits.
package main

import (
	"fmt"
	"os"
	"strconv"
)

var sink int

//go:noinline
func work(n int) int {
	sink += n
	return sink
}

// classify has six return paths, each returning a distinct constant, and
// calls work() on most of them so that the compiler keeps separate epilogues.
//
//go:noinline
func classify(n int) int {
	if n%11 == 0 {
		return 1000
	}
	if n%7 == 0 {
		work(n)
		return 2000
	}
	if n%5 == 0 {
		work(n * 2)
		return 3000
	}
	if n%3 == 0 {
		work(n * 3)
		return 4000
	}
	if n%2 == 0 {
		work(n * 4)
		return 5000
	}
	work(n * 5)
	return 6000
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	counts := map[int]int{}
	for i := 0; i < n; i++ {
		counts[classify(i)]++
	}
	for _, v := range []int{1000, 2000, 3000, 4000, 5000, 6000} {
		fmt.Printf("path %d %d\n", v, counts[v])
	}
}
