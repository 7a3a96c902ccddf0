// Package demo holds the scripts behind make run and make demo. It has no
// Go code of its own.
package demo
