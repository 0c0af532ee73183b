//go:build race

package fs_test

// raceEnabled is true in builds with the race detector, which make the
// largest tests smaller: they test the same thing, ten times slower.
const raceEnabled = true
