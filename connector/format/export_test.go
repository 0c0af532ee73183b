package format

// SetScanBufferSize sets the initial read buffer of readers made after it,
// and returns the previous size.
func SetScanBufferSize(n int) int {
	old := scanBufferSize
	scanBufferSize = n
	return old
}
