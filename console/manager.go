package console

// The managers' pages (the task board, claims, conflicts, alerts, figures, devices) are added
// here: their routes in managerRoutes, each screen in a file of its own as queue.go and claim.go
// are, their links in templates/_nav_manager.html.

// managerHome is the managers' first page (a path under Prefix); "" sends them to the queue.
const managerHome = ""

// managerRoutes registers the managers' pages on c.mux, each wrapped in c.page(h, manager).
func (c *Console) managerRoutes() {}
