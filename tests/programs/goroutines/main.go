// goroutines runs N goroutines; goroutine i calls recurse(i, depth(i)), a
// recursion whose 1 KB frames make the runtime grow (copy) the goroutine
// stack, and whose innermost call sleeps sleepMS(i) milliseconds. It prints
// each goroutine's own id ("G i goid") and the number of calls made.
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func depth(i int) int   { return 1 + i%24 }
func sleepMS(i int) int { return 1 + i%5 }

//go:noinline
func touch(p *[128]int, i int) int {
	p[i%128] += i
	return p[(i+7)%128]
}

//go:noinline
func recurse(id, level int) int {
	var pad [128]int // 1 KB per frame: deep calls outgrow the initial stack
	pad[level%128] = level
	if level == 0 {
		time.Sleep(time.Duration(sleepMS(id)) * time.Millisecond)
		return touch(&pad, id)
	}
	return recurse(id, level-1) + touch(&pad, level)
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
	var mu sync.Mutex
	lines := make([]string, 0, n)
	calls := 0
	for i := 0; i < n; i++ {
		calls += depth(i) + 1
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			line := fmt.Sprintf("G %d %d", i, goid())
			recurse(i, depth(i))
			mu.Lock()
			lines = append(lines, line)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Printf("calls %d\n", calls)
}
