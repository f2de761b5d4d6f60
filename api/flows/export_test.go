package flows

// SetBeforeSecondFactorSession lets the tests of package flows_test run f
// between a second factor's acceptance and its session's creation; it
// returns a function that removes it.
func SetBeforeSecondFactorSession(f func(userID string)) (undo func()) {
	beforeSecondFactorSession = f
	return func() { beforeSecondFactorSession = nil }
}

// SetAfterSecondFactorConsume lets the tests run f between a second
// factor's consumption of its mfa_token and the handing out of its tokens.
func SetAfterSecondFactorConsume(f func(userID string)) (undo func()) {
	afterSecondFactorConsume = f
	return func() { afterSecondFactorConsume = nil }
}
