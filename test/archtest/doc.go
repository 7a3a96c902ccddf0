// Package archtest holds tests of the module's shape: import directions and
// package documentation. It has no code of its own.
package archtest
