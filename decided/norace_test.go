//go:build !race

package decided

const raceDetector = false
