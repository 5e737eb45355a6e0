package media

// Config says where the object store is. Any S3-compatible service works (AWS S3, MinIO, Ceph RGW).
type Config struct {
	Endpoint  string // host:port, without scheme
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string // optional; empty lets the client discover it
	UseSSL    bool
}
