// latency looks keys up in a pretend backend whose cost depends on the key:
// "user:*" keys are cached in memory, "order:*" keys cost a 1 ms round
// trip, and "report:*" keys a 5 ms one. It prints how often it looked up
// each key.
//
//	go build -gcflags=-l -o latency . && ./latency [rounds]
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

var cache = map[string]string{"user:1": "ann", "user:2": "ben"}

func lookup(key string) string {
	if v, ok := cache[key]; ok {
		return v
	}
	if strings.HasPrefix(key, "report:") {
		time.Sleep(5 * time.Millisecond)
	} else {
		time.Sleep(1 * time.Millisecond)
	}
	return "value of " + key
}

var keys = []string{"user:1", "order:7", "user:2", "report:2024", "user:1", "order:8"}

func main() {
	rounds := 10
	if len(os.Args) > 1 {
		var err error
		if rounds, err = strconv.Atoi(os.Args[1]); err != nil {
			panic("the argument is the number of rounds")
		}
	}
	counts := map[string]int{}
	for r := 0; r < rounds; r++ {
		for _, k := range keys {
			lookup(k)
			counts[k]++
		}
	}
	for k, n := range counts {
		fmt.Printf("looked up %s %d times\n", k, n)
	}
}
