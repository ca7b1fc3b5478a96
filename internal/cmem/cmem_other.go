//go:build !linux || !cgo

package cmem

// KeepFreed does nothing here: without glibc there is no such knob to set.
func KeepFreed() bool { return true }
