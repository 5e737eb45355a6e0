// Package account keeps the people and their devices: branches, users, devices, sessions with
// rotating refresh tokens, short-lived access tokens (Ed25519-signed JWTs), password hashing and
// the login rate limit. It owns its SQL and never imports the HTTP layer.
//
// A login on a device opens a session. The session holds a chain of refresh tokens, each usable
// once: refreshing marks the presented token used and issues the next. A used token presented
// again means two parties hold the chain (a stolen token, or a replayed request), so the session is
// revoked and both must log in again. Access tokens are checked against their session, user and
// device on every request, so revocation and disabling take effect at the next request.
package account
