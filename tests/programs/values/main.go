// values passes Go values that bpftrace prints wrong unless told how: a
// 64-bit int beyond 32 bits, a uint64 beyond int64, a uint32 beyond int32,
// and strings longer than bpftrace's default string size. It prints what it
// passed, as Go prints it ("go NAME VALUE"), so the tests compare bpftrace's
// output with the truth.
package main

import (
	"fmt"
	"strings"
)

//go:noinline
func record(n int64, u uint64, w uint32, s string) int64 {
	return n + int64(len(s))
}

//go:noinline
func pair(a, b string) (string, string) {
	return b + "!", a + "?"
}

func main() {
	n := int64(-9000000000)
	u := uint64(18446744073709551615)
	w := uint32(4000000000)
	s := strings.Repeat("0123456789", 10) // 100 bytes
	fmt.Printf("go n %d\ngo u %d\ngo w %d\ngo s %s\n", n, u, w, s)
	fmt.Printf("go ret %d\n", record(n, u, w, s))
	x, y := pair(s, s[:90])
	fmt.Printf("go pair %s %s\n", x, y)
}
