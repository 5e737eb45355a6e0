package fakefcm

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtBearer is the grant type of a service account's token request (RFC 7523).
const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// signingKey returns the service account's private key, made on first use (an RSA key takes a
// moment to make, and a fake used through a token source never needs one).
func (s *Server) signingKey() (*rsa.PrivateKey, error) {
	s.keyOnce.Do(func() {
		s.key, s.keyErr = rsa.GenerateKey(rand.Reader, 2048)
	})
	return s.key, s.keyErr
}

// CredentialsJSON returns a Firebase service account's JSON key for the fake: type
// service_account, the fake's project, a private key made for this fake, and a token_uri naming
// the fake's token endpoint, which is where Google's auth library exchanges it for an access
// token (it reads token_uri from the file: cloud.google.com/go/auth/credentials, the library the
// SDK uses for WithAuthCredentialsJSON, as golang.org/x/oauth2/google does).
func (s *Server) CredentialsJSON() ([]byte, error) {
	key, err := s.signingKey()
	if err != nil {
		return nil, fmt.Errorf("fakefcm: make a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("fakefcm: encode the key: %w", err)
	}
	return json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  s.project,
		"private_key_id":              s.keyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                s.email,
		"client_id":                   "100000000000000000001",
		"auth_uri":                    s.srv.URL + "/auth",
		"token_uri":                   s.TokenURL(),
		"auth_provider_x509_cert_url": s.srv.URL + "/certs",
		"universe_domain":             "googleapis.com",
	}, "", "  ")
}

// WriteCredentials writes CredentialsJSON to path (readable by its owner only), for
// FIELDSYNC_FIREBASE_CREDENTIALS_FILE or notify.FCMConfig.CredentialsFile.
func (s *Server) WriteCredentials(path string) error {
	data, err := s.CredentialsJSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("fakefcm: write credentials: %w", err)
	}
	return nil
}

// serveToken is Google's token endpoint for a service account: it takes the signed JWT assertion
// the auth library makes from the key file, checks it against the fake's key (signature, key id,
// issuer, audience, expiry, a scope), and answers AccessToken. A bad assertion gets
// invalid_grant, as Google answers.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	refuse := func(why string) {
		s.mu.Lock()
		s.refusals++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": why})
	}
	if err := r.ParseForm(); err != nil {
		refuse("The request is not a form.")
		return
	}
	if r.PostForm.Get("grant_type") != jwtBearer {
		refuse("grant_type must be " + jwtBearer + ".")
		return
	}
	key, err := s.signingKey()
	if err != nil {
		refuse("The fake has no key.")
		return
	}
	var claims struct {
		jwt.RegisteredClaims
		Scope string `json:"scope"`
	}
	_, err = jwt.ParseWithClaims(r.PostForm.Get("assertion"), &claims, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.keyID {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return &key.PublicKey, nil
	},
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(s.email),
		jwt.WithAudience(s.TokenURL()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(time.Minute),
	)
	if err != nil {
		refuse("Invalid JWT assertion: " + err.Error())
		return
	}
	scopes := strings.Fields(claims.Scope)
	if !slices.Contains(scopes, "https://www.googleapis.com/auth/firebase.messaging") &&
		!slices.Contains(scopes, "https://www.googleapis.com/auth/cloud-platform") {
		refuse("The assertion's scopes do not cover FCM: " + claims.Scope)
		return
	}
	s.mu.Lock()
	s.tokens++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": AccessToken, "token_type": "Bearer", "expires_in": 3600})
}
