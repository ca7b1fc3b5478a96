//go:build !unix

package testenv

// lockFile is a no-op here: the atomic rename in buildBinaries still keeps the cache consistent,
// parallel cold builds just do the work twice.
func lockFile(string) (func(), error) { return func() {}, nil }
