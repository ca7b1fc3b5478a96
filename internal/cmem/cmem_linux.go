//go:build linux && cgo

package cmem

// #include <malloc.h>
//
// // glibc's setting; a C library without it (musl) is left as it is.
// static int careline_keep_freed(int bytes) {
// #ifdef M_TRIM_THRESHOLD
// 	return mallopt(M_TRIM_THRESHOLD, bytes);
// #else
// 	return -1;
// #endif
// }
import "C"

// KeepFreed makes the C heap keep freed memory up to keepFreed bytes per arena instead of
// returning it to the kernel at once. It reports false when the C library refused.
func KeepFreed() bool {
	return C.careline_keep_freed(C.int(keepFreed)) != 0
}
