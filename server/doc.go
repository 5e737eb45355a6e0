// Package server is the HTTP layer: echo routes, middleware (request ids, logs, metrics, auth,
// limits), and the one error handler that turns domain errors into the protocol's error shape.
// Handlers are thin: decode, call the domain package, write JSON.
package server
