// goroutines runs a pool of four workers, each on its own goroutine, that
// take 1000 jobs from one channel and call main.process on each. How the
// jobs spread over the workers is up to the scheduler, so each worker
// prints its goroutine id (parsed from runtime.Stack, since Go hides it)
// and how many jobs it processed.
//
//	go build -gcflags=-l -o goroutines . && ./goroutines [jobs]
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
)

func process(job int) int {
	sum := 0
	for i := 0; i < job%64; i++ {
		sum += i * job
	}
	return sum
}

// goroutineID is for this demo only: "goroutine 18 [running]:..." -> 18.
func goroutineID() int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, _ := strconv.Atoi(string(buf[:bytes.IndexByte(buf, ' ')]))
	return id
}

func main() {
	jobs := 1000
	if len(os.Args) > 1 {
		var err error
		if jobs, err = strconv.Atoi(os.Args[1]); err != nil {
			panic("the argument is the number of jobs")
		}
	}
	queue := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n := 0
			for job := range queue {
				process(job)
				n++
			}
			mu.Lock()
			fmt.Printf("worker %d on goroutine %d processed %d jobs\n", w, goroutineID(), n)
			mu.Unlock()
		}(w)
	}
	for j := 0; j < jobs; j++ {
		queue <- j
	}
	close(queue)
	wg.Wait()
}
