package server

import "github.com/labstack/echo/v4"

// setNoStore keeps a response out of every cache (the browser's, a proxy's, the app's HTTP cache):
// tokens, the signed-in user and the screens' reads (customers, claims, amounts) are for this
// caller, now, and a shared or browser cache must not serve them again or to the next person.
func setNoStore(c echo.Context) {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
}

// noStore is setNoStore as route middleware, so the answer is marked whether the handler
// succeeds or fails.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		setNoStore(c)
		return next(c)
	}
}
