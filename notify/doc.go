// Package notify tells the right people: the notification rules of BRIEF.md run as sync engine
// hooks in the writing transaction, and delivery to phones (FCM) and screens (Server-Sent Events)
// follows from what they wrote.
package notify

// Service is the notifications part of the API. (Being built; see issue 5.)
type Service struct{}
