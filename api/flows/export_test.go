package flows

// SetBeforeSecondFactorSession lets the tests of package flows_test run f
// between a second factor's acceptance and its session's creation; it
// returns a function that removes it.
func SetBeforeSecondFactorSession(f func(userID string)) (undo func()) {
	beforeSecondFactorSession = f
	return func() { beforeSecondFactorSession = nil }
}
