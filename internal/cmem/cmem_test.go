package cmem

import "testing"

// The C library takes the setting (glibc's mallopt answers 0 for a value it refuses).
func TestKeepFreedIsTaken(t *testing.T) {
	if !KeepFreed() {
		t.Fatal("the C library refused to keep freed heap memory")
	}
}
