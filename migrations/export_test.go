package migrations

// UpFrom is Up with the migration files of fsys instead of the embedded ones.
var UpFrom = up
