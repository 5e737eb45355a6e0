package main

import (
	"errors"
	"fmt"
	"github.com/fieldsync/fieldsync/console"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
	"github.com/fieldsync/fieldsync/media"
)

// config is everything the server is told at start (app.Config). It is read once, from the
// environment and then flags, and validated as a whole so that every mistake is reported at
// once, by name.
type config struct {
	app.Config
}

// envReader reads typed settings from the environment, remembering every malformed one.
type envReader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (r *envReader) str(name, def string) string {
	if v, ok := r.lookup(name); ok && v != "" {
		return v
	}
	return def
}

func (r *envReader) boolean(name string, def bool) bool {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not true or false", name, v))
	}
	return b
}

func (r *envReader) integer(name string, def int64) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a whole number", name, v))
	}
	return n
}

func (r *envReader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a duration such as 15m or 720h", name, v))
	}
	return d
}

func (r *envReader) list(name string) []string {
	var out []string
	for _, item := range strings.Split(r.str(name, ""), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// loadConfig reads the configuration from lookup (os.LookupEnv outside tests). It returns every
// malformed variable in one error.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	r := &envReader{lookup: lookup}
	c := config{app.Config{
		DatabaseURL:     r.str("DATABASE_URL", ""),
		ReadDatabaseURL: r.str("FIELDSYNC_READ_DATABASE_URL", ""),
		Addr:            r.str("FIELDSYNC_ADDR", ":8080"),
		JWTKeyFile:      r.str("FIELDSYNC_JWT_KEY_FILE", ""),
		JWTGenerateKey:  r.boolean("FIELDSYNC_JWT_GENERATE_KEY", false),
		JWTIssuer:       r.str("FIELDSYNC_JWT_ISSUER", "fieldsync"),
		JWTAudience:     r.str("FIELDSYNC_JWT_AUDIENCE", "fieldsync-api"),
		AccessTokenTTL:  r.duration("FIELDSYNC_ACCESS_TOKEN_TTL", 15*time.Minute),
		RefreshTokenTTL: r.duration("FIELDSYNC_REFRESH_TOKEN_TTL", 60*24*time.Hour),
		RefreshGrace:    r.duration("FIELDSYNC_REFRESH_GRACE", account.DefaultRefreshGrace),
		S3: media.Config{
			Endpoint:  r.str("FIELDSYNC_S3_ENDPOINT", ""),
			AccessKey: r.str("FIELDSYNC_S3_ACCESS_KEY", ""),
			SecretKey: r.str("FIELDSYNC_S3_SECRET_KEY", ""),
			Bucket:    r.str("FIELDSYNC_S3_BUCKET", "fieldsync"),
			Region:    r.str("FIELDSYNC_S3_REGION", ""),
			UseSSL:    r.boolean("FIELDSYNC_S3_USE_SSL", false),

			PublicEndpoint: r.str("FIELDSYNC_S3_PUBLIC_ENDPOINT", ""),
		},
		FirebaseCredentialsFile: r.str("FIELDSYNC_FIREBASE_CREDENTIALS_FILE", ""),
		FCMEndpoint:             r.str("FIELDSYNC_FCM_ENDPOINT", ""),
		PprofAddr:               r.str("FIELDSYNC_PPROF_ADDR", ""),
		MaxBodyBytes:            r.integer("FIELDSYNC_MAX_BODY_BYTES", 5<<20),
		BodyIdleTimeout:         r.duration("FIELDSYNC_BODY_IDLE_TIMEOUT", 30*time.Second),
		BodyReadTimeout:         r.duration("FIELDSYNC_BODY_READ_TIMEOUT", 60*time.Second),
		MaxUploadBytes:          r.integer("FIELDSYNC_MAX_UPLOAD_BYTES", 25<<20),
		UploadsPerUser:          int(r.integer("FIELDSYNC_UPLOADS_PER_USER", media.DefaultUploadsPerUser)),
		UploadsPerDevice:        int(r.integer("FIELDSYNC_UPLOADS_PER_DEVICE", media.DefaultUploadsPerDevice)),
		UploadBuffers:           r.integer("FIELDSYNC_UPLOAD_BUFFERS", media.DefaultBufferedParts),
		UploadBufferWait:        r.duration("FIELDSYNC_UPLOAD_BUFFER_WAIT", media.DefaultBufferWait),
		PublicURL:               r.str("FIELDSYNC_PUBLIC_URL", ""),
		MaxDecodeBytes:          r.integer("FIELDSYNC_MAX_DECODE_BYTES", media.DefaultMaxDecodeBytes),
		LoginFailuresPerLogin:   int(r.integer("FIELDSYNC_LOGIN_FAILURES_PER_LOGIN", 5)),
		LoginFailuresPerAddress: int(r.integer("FIELDSYNC_LOGIN_FAILURES_PER_ADDRESS", 50)),
		LoginWindow:             r.duration("FIELDSYNC_LOGIN_WINDOW", 15*time.Minute),
		LoginConcurrency:        int(r.integer("FIELDSYNC_LOGIN_CONCURRENCY", int64(account.DefaultHashConcurrency()))),
		MinAppVersion: map[string]string{
			"android": r.str("FIELDSYNC_MIN_APP_VERSION_ANDROID", ""),
			"ios":     r.str("FIELDSYNC_MIN_APP_VERSION_IOS", ""),
			"web":     r.str("FIELDSYNC_MIN_APP_VERSION_WEB", ""),
		},
		ScopeWindow:        r.duration("FIELDSYNC_SCOPE_WINDOW", 30*24*time.Hour),
		ChangeRetention:    r.duration("FIELDSYNC_RETENTION", 30*24*time.Hour),
		TargetsEvery:       r.duration("FIELDSYNC_TARGETS_EVERY", jobqueue.DefaultTargetsEvery),
		LongPollsPerUser:   int(r.integer("FIELDSYNC_LONGPOLLS_PER_USER", 8)),
		StreamsPerUser:     int(r.integer("FIELDSYNC_STREAMS_PER_USER", 4)),
		CORSOrigins:        r.list("FIELDSYNC_CORS_ORIGINS"),
		ConsoleIdleTimeout: r.duration("FIELDSYNC_CONSOLE_IDLE_TIMEOUT", console.DefaultIdleTimeout),
		ShutdownTimeout:    r.duration("FIELDSYNC_SHUTDOWN_TIMEOUT", 30*time.Second),
		MigrateOnStart:     r.boolean("FIELDSYNC_MIGRATE_ON_START", true),
		LogFormat:          r.str("FIELDSYNC_LOG_FORMAT", "json"),
	}}
	for _, cidr := range r.list("FIELDSYNC_TRUSTED_PROXIES") {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("FIELDSYNC_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8", cidr))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.str("FIELDSYNC_LOG_LEVEL", "info"))); err != nil {
		r.errs = append(r.errs, fmt.Errorf("FIELDSYNC_LOG_LEVEL: must be debug, info, warn or error"))
	}
	return c, errors.Join(r.errs...)
}

// validateDatabase checks what every command that touches the database needs.
func (c *config) validateDatabase() error {
	if c.DatabaseURL == "" {
		return errors.New("DATABASE_URL is required (for example postgres://fieldsync:secret@db:5432/fieldsync)")
	}
	if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return errors.New("DATABASE_URL must be a postgres:// URL")
	}
	if c.ReadDatabaseURL != "" && !strings.HasPrefix(c.ReadDatabaseURL, "postgres://") && !strings.HasPrefix(c.ReadDatabaseURL, "postgresql://") {
		return errors.New("FIELDSYNC_READ_DATABASE_URL must be a postgres:// URL (a hot standby of DATABASE_URL)")
	}
	return nil
}

// validateServe checks everything serve needs, and returns every problem at once.
func (c *config) validateServe() error {
	var errs []error
	if err := c.validateDatabase(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("FIELDSYNC_ADDR: %q is not host:port (for example :8080)", c.Addr))
	}
	if c.JWTKeyFile == "" {
		errs = append(errs, errors.New("FIELDSYNC_JWT_KEY_FILE is required: the Ed25519 key file that signs access tokens (create one with `fieldsync keygen -o FILE`)"))
	} else if _, err := os.Stat(c.JWTKeyFile); err != nil && !(errors.Is(err, os.ErrNotExist) && c.JWTGenerateKey) {
		errs = append(errs, fmt.Errorf("FIELDSYNC_JWT_KEY_FILE: %w (set FIELDSYNC_JWT_GENERATE_KEY=true to create it on first start)", err))
	}
	if c.JWTIssuer == "" || c.JWTAudience == "" {
		errs = append(errs, errors.New("FIELDSYNC_JWT_ISSUER and FIELDSYNC_JWT_AUDIENCE must not be empty"))
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > time.Hour {
		errs = append(errs, errors.New("FIELDSYNC_ACCESS_TOKEN_TTL must be between 1m and 1h: access tokens are short-lived"))
	}
	if c.RefreshTokenTTL < time.Hour {
		errs = append(errs, errors.New("FIELDSYNC_REFRESH_TOKEN_TTL must be at least 1h (phones stay offline for days)"))
	}
	if c.RefreshGrace < time.Second || c.RefreshGrace > 5*time.Minute {
		errs = append(errs, errors.New("FIELDSYNC_REFRESH_GRACE must be between 1s and 5m: a lost answer is retried soon, and a stolen token must not be of use for long"))
	}
	if c.S3.Endpoint == "" {
		errs = append(errs, errors.New("FIELDSYNC_S3_ENDPOINT is required: host:port of the S3-compatible object store"))
	}
	if c.S3.AccessKey == "" || c.S3.SecretKey == "" {
		errs = append(errs, errors.New("FIELDSYNC_S3_ACCESS_KEY and FIELDSYNC_S3_SECRET_KEY are required"))
	}
	if c.S3.Bucket == "" {
		errs = append(errs, errors.New("FIELDSYNC_S3_BUCKET must not be empty"))
	}
	if c.FirebaseCredentialsFile != "" {
		if _, err := os.Stat(c.FirebaseCredentialsFile); err != nil {
			errs = append(errs, fmt.Errorf("FIELDSYNC_FIREBASE_CREDENTIALS_FILE: %w", err))
		}
	}
	if err := validPprofAddr(c.PprofAddr); err != nil {
		errs = append(errs, err)
	}
	if c.FCMEndpoint != "" && !strings.HasPrefix(c.FCMEndpoint, "https://") && !strings.HasPrefix(c.FCMEndpoint, "http://") {
		errs = append(errs, errors.New("FIELDSYNC_FCM_ENDPOINT must be an http:// or https:// URL (for example https://fcm.googleapis.com/v1)"))
	}
	if c.MaxBodyBytes < 64<<10 {
		errs = append(errs, errors.New("FIELDSYNC_MAX_BODY_BYTES must be at least 65536"))
	}
	if c.BodyIdleTimeout < time.Second || c.BodyReadTimeout < time.Second {
		errs = append(errs, errors.New("FIELDSYNC_BODY_IDLE_TIMEOUT and FIELDSYNC_BODY_READ_TIMEOUT must be at least 1s"))
	}
	if c.MaxUploadBytes < 1<<20 {
		errs = append(errs, errors.New("FIELDSYNC_MAX_UPLOAD_BYTES must be at least 1048576"))
	}
	if c.UploadsPerUser < 1 || c.UploadsPerDevice < 1 {
		errs = append(errs, errors.New("FIELDSYNC_UPLOADS_PER_USER and FIELDSYNC_UPLOADS_PER_DEVICE must be at least 1"))
	}
	if c.UploadBuffers < 1 {
		errs = append(errs, errors.New("FIELDSYNC_UPLOAD_BUFFERS must be at least 1 (each is 5 MiB)"))
	}
	if c.UploadBufferWait <= 0 {
		errs = append(errs, errors.New("FIELDSYNC_UPLOAD_BUFFER_WAIT must be positive (for example 10s)"))
	}
	if c.PublicURL != "" {
		if _, err := media.ParsePublicURL(c.PublicURL); err != nil {
			errs = append(errs, fmt.Errorf("FIELDSYNC_PUBLIC_URL: %w", err))
		}
	}
	if c.S3.PublicEndpoint != "" {
		if u, err := media.ParsePublicURL(c.S3.PublicEndpoint); err != nil {
			errs = append(errs, fmt.Errorf("FIELDSYNC_S3_PUBLIC_ENDPOINT: %w", err))
		} else if u.Path != "" {
			errs = append(errs, errors.New("FIELDSYNC_S3_PUBLIC_ENDPOINT must be a scheme and a host, without a path (for example https://files.example.com)"))
		}
	}
	if c.MaxDecodeBytes < 32<<20 {
		errs = append(errs, errors.New("FIELDSYNC_MAX_DECODE_BYTES must be at least 33554432 (a 12-megapixel photo takes about 70 MB to decode)"))
	}
	if c.LoginFailuresPerLogin < 1 || c.LoginFailuresPerAddress < 1 {
		errs = append(errs, errors.New("FIELDSYNC_LOGIN_FAILURES_PER_LOGIN and FIELDSYNC_LOGIN_FAILURES_PER_ADDRESS must be at least 1"))
	}
	if c.LoginWindow < time.Second {
		errs = append(errs, errors.New("FIELDSYNC_LOGIN_WINDOW must be at least 1s"))
	}
	for _, platform := range []string{"android", "ios", "web"} {
		if v := c.MinAppVersion[platform]; v != "" && !account.ValidVersion(v) {
			errs = append(errs, fmt.Errorf("FIELDSYNC_MIN_APP_VERSION_%s must be a version such as 2.4.0, not %q", strings.ToUpper(platform), v))
		}
	}
	if c.LoginConcurrency < 1 {
		errs = append(errs, errors.New("FIELDSYNC_LOGIN_CONCURRENCY must be at least 1"))
	}
	if c.ScopeWindow < time.Minute {
		errs = append(errs, errors.New("FIELDSYNC_SCOPE_WINDOW must be at least 1m (30 days is the default)"))
	}
	if c.ChangeRetention < time.Hour {
		errs = append(errs, errors.New("FIELDSYNC_RETENTION must be at least 1h (30 days is the default)"))
	}
	if c.TargetsEvery < time.Second {
		errs = append(errs, errors.New("FIELDSYNC_TARGETS_EVERY must be at least 1s (1m is the default)"))
	}
	if c.LongPollsPerUser < 1 || c.StreamsPerUser < 1 {
		errs = append(errs, errors.New("FIELDSYNC_LONGPOLLS_PER_USER and FIELDSYNC_STREAMS_PER_USER must be at least 1"))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, errors.New("FIELDSYNC_LOG_FORMAT must be json or text"))
	}
	return errors.Join(errs...)
}
