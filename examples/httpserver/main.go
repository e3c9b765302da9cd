// httpserver serves a few paths with known latencies on 127.0.0.1 (a port
// the kernel picks), drives a bounded load against itself, prints how many
// requests it made per path, and exits. Nothing listens beyond loopback.
//
//	go build -o httpserver . && ./httpserver [requests-per-path]
package main

import (
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

// delays is what each path costs; anything else is a fast 404.
var delays = map[string]time.Duration{
	"/":        0,
	"/search":  2 * time.Millisecond,
	"/report":  10 * time.Millisecond,
	"/missing": 0,
}

type server struct{}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d, ok := delays[r.URL.Path]
	if !ok || r.URL.Path == "/missing" {
		http.NotFound(w, r)
		return
	}
	time.Sleep(d)
	fmt.Fprintf(w, "%s took %v\n", r.URL.Path, d)
}

func main() {
	n := 20
	if len(os.Args) > 1 {
		var err error
		if n, err = strconv.Atoi(os.Args[1]); err != nil {
			panic("the argument is the number of requests per path")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, &server{})
	base := "http://" + ln.Addr().String()
	fmt.Println("listening on", base)

	paths := make([]string, 0, len(delays))
	for p := range delays {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	// Four clients per path, n requests per path in all.
	var wg sync.WaitGroup
	for _, p := range paths {
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func(path string, count int) {
				defer wg.Done()
				for i := 0; i < count; i++ {
					resp, err := http.Get(base + path)
					if err != nil {
						panic(err)
					}
					io.Copy(ioutil.Discard, resp.Body)
					resp.Body.Close()
				}
			}(p, n/4+boolInt(c < n%4))
		}
	}
	wg.Wait()
	for _, p := range paths {
		fmt.Printf("requests %s %d\n", p, n)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
