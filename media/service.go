package media

// Service is the documents part of the API: resumable uploads, downloads and processing.
// (Being built; see issue 4.)
type Service struct{}
