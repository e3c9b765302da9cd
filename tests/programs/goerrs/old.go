//go:build !go1.20
// +build !go1.20

package main

func more() []error { return nil }
