// handlererrors serves /item/ID from a net/http server on 127.0.0.1: each
// request's ID goes to main.lookup, which parses it and reads the item's
// file, and may fail in several ways. The program requests a few IDs, logs
// each error as the handler sees it ("ERR /item/ID: text"), and exits.
//
//	go build -gcflags=-l -o handlererrors . && ./handlererrors [rounds]
package main

import (
	"errors"
	"fmt"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

var errNegative = errors.New("negative id")

type server struct {
	dir string
	mu  sync.Mutex
	log []string
}

// lookup returns the item's size: its ID parsed, its file read.
func (s *server) lookup(id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errNegative
	}
	data, err := ioutil.ReadFile(filepath.Join(s.dir, strconv.Itoa(n)))
	if err != nil {
		return 0, fmt.Errorf("item %d: %w", n, err)
	}
	return len(data), nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	size, err := s.lookup(strings.TrimPrefix(r.URL.Path, "/item/"))
	if err != nil {
		s.mu.Lock()
		s.log = append(s.log, fmt.Sprintf("ERR %s: %v", r.URL.Path, err))
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	fmt.Fprintf(w, "%d bytes\n", size)
}

func main() {
	rounds := 1
	if len(os.Args) > 1 {
		rounds, _ = strconv.Atoi(os.Args[1])
	}
	dir, err := ioutil.TempDir("", "items")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := ioutil.WriteFile(filepath.Join(dir, "7"), []byte("seven"), 0o644); err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &server{dir: dir}
	go http.Serve(ln, s)
	for r := 0; r < rounds; r++ {
		for _, id := range []string{"7", "42", "x4", "-1"} {
			resp, err := http.Get(fmt.Sprintf("http://%s/item/%s", ln.Addr(), id))
			if err != nil {
				panic(err)
			}
			ioutil.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}
	s.mu.Lock()
	for _, line := range s.log {
		fmt.Println(line)
	}
	s.mu.Unlock()
}
