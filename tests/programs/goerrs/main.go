// goerrs makes one value of each error type gobt's goerr knows, and a few
// of other types, hands each to main.check's result, main.report's param
// and main.show's interface{} param, and prints what Go itself prints for
// them: "E i Error()" and "T i %T", for the test to compare with gobt's.
//
//	go build -gcflags=-l -o goerrs . && ./goerrs [rounds]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"
)

type tooLongError struct{ name string }

func (e *tooLongError) Error() string { return "name too long: " + e.name }

type point struct{ x, y int }

var made []error

func init() {
	_, openErr := os.Open("/nonexistent/x")
	_, atoiErr := strconv.Atoi("x4")
	_, urlErr := url.Parse(":")
	linkErr := os.Link("/nonexistent/a", "/nonexistent/b")
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, dialErr := net.Dial("tcp", "127.0.0.1:1")
	made = []error{
		nil,
		errors.New("plain error"),
		fmt.Errorf("wrapped: %w", io.EOF),
		openErr,
		os.NewSyscallError("bind", syscall.EADDRINUSE),
		linkErr,
		syscall.ENOENT,
		syscall.Errno(200),
		atoiErr,
		context.Canceled,
		ctx.Err(),
		io.EOF,
		urlErr,
		&tooLongError{"maximilian"},
		dialErr,
		fmt.Errorf("outer: %w", fmt.Errorf("middle: %w", openErr)),
		fmt.Errorf("no wrap %d", 7),
		&os.PathError{Op: "stat", Path: "/tmp/y", Err: errors.New("custom inner")},
		&net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5},
			Addr: &net.TCPAddr{IP: net.IPv4(192, 168, 1, 2).To4(), Port: 443},
			Err:  os.NewSyscallError("read", syscall.ECONNRESET)},
		&net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "no such host", Name: "example.invalid", Server: "127.0.0.53:53"}},
		&net.DNSError{Err: "server misbehaving", Name: "nowhere.invalid"},
		&net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: "/tmp/s", Net: "unix"},
			Err: errors.New("custom")},
		os.ErrDeadlineExceeded,
		// A path longer than bpftrace's strings (63 bytes by default).
		&os.PathError{Op: "open", Path: "/var/lib/a-rather-long-directory-name/with-a-longer-file-name-below-it.conf",
			Err: syscall.ENOENT},
	}
	made = append(made, more()...)
	// BPF cannot fault a page in: a type's name, which the runtime reads
	// only when it prints the type, is read after the program has touched it.
	for _, err := range made {
		fmt.Fprintf(ioutil.Discard, "%T %v", err, err)
	}
	for _, v := range values {
		fmt.Fprintf(ioutil.Discard, "%T", v)
	}
}

var values = []interface{}{nil, 42, "text", point{1, 2}, &point{3, 4}, errors.New("plain error"), syscall.ENOENT,
	int8(-3), []byte("b")}

//go:noinline
func check(i int) (err error) { return made[i] }

//go:noinline
func report(i int, e error) int { return i }

//go:noinline
func show(i int, v interface{}) int { return i }

func main() {
	rounds := 1
	if len(os.Args) > 1 {
		rounds, _ = strconv.Atoi(os.Args[1])
	}
	for r := 0; r < rounds; r++ {
		for i := range made {
			err := check(i)
			report(i, err)
			fmt.Printf("K %d %T\n", i, err)
			if err == nil {
				fmt.Printf("E %d <nil>\n", i)
			} else {
				fmt.Printf("E %d %s\n", i, err.Error())
			}
		}
		for i, v := range values {
			show(i, v)
			if v == nil {
				fmt.Printf("T %d \n", i)
			} else {
				fmt.Printf("T %d %T\n", i, v)
			}
		}
	}
}
