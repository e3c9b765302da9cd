// errors validates a list of user names with main.validate, which returns
// an error for some of them (nil for the rest), and prints its own tally.
//
//	go build -gcflags=-l -o errors . && ./errors [rounds]
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

var errEmpty = errors.New("empty name")

// caseError is the program's own error type: goerr names it by its type.
type caseError struct{ name string }

func (e *caseError) Error() string { return fmt.Sprintf("%q is not lower case", e.name) }

var names = []string{"alice", "", "bob", "maximilian", "carol", "Dave", "eve", "bartholomew", "frank"}

// validate returns nil for a good name, and a different error for each
// kind of bad one.
func validate(name string) error {
	switch {
	case name == "":
		return errEmpty
	case len(name) > 8:
		return fmt.Errorf("name too long: %s", name)
	case strings.ToLower(name) != name:
		return &caseError{name}
	}
	return nil
}

func main() {
	rounds := 100
	if len(os.Args) > 1 {
		var err error
		if rounds, err = strconv.Atoi(os.Args[1]); err != nil {
			panic("the argument is the number of rounds")
		}
	}
	ok, bad := 0, 0
	for r := 0; r < rounds; r++ {
		for _, name := range names {
			if err := validate(name); err != nil {
				bad++
			} else {
				ok++
			}
		}
	}
	fmt.Printf("validated %d names: %d nil, %d errors\n", ok+bad, ok, bad)
}
