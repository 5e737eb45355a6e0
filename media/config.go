package media

// Config says where the object store is. Any S3-compatible service works (AWS S3, MinIO, Ceph RGW).
type Config struct {
	Endpoint  string // host:port, without scheme
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string // optional; empty lets the client discover it
	UseSSL    bool
	// PublicEndpoint is the store's address as clients reach it (https://files.example.com), for
	// the presigned download URLs handed to them; empty: Endpoint. It is only signed for, never
	// contacted: the proxy in front of the store must pass the Host header on unchanged.
	PublicEndpoint string
}
