//go:build go1.20
// +build go1.20

package main

import (
	"errors"
	"fmt"
	"io"
)

func more() []error {
	return []error{fmt.Errorf("both %w and %w", io.EOF, errors.New("second"))}
}
