//go:build race

package decided

// raceDetector is whether the tests run with -race, which changes what
// allocations cost and makes large measurements slow.
const raceDetector = true
