package account

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// FuzzParseAccessToken feeds arbitrary strings to the access-token parser. Nothing but a token
// the key signed may pass, nothing may panic, and every refusal is token_invalid or token_expired.
func FuzzParseAccessToken(f *testing.F) {
	pemKey, err := GenerateKeyPEM()
	if err != nil {
		f.Fatal(err)
	}
	keys, err := ParseKeys(pemKey)
	if err != nil {
		f.Fatal(err)
	}
	cfg := TokenConfig{Issuer: "i", Audience: "a", TTL: time.Minute}
	now := time.Now()
	valid, err := keys.signAccessToken(cfg, &fieldsync.Identity{UserID: uuid.New(), DeviceID: uuid.New(), SessionID: uuid.New(), Role: "rep"}, now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := keys.parseAccessToken(cfg, token, now)
		if err == nil {
			if token != valid {
				// EdDSA signatures are not malleable, so no other string may verify.
				t.Fatalf("accepted a token that was never issued: %q (claims %+v)", token, claims)
			}
			return
		}
		var fe *fieldsync.Error
		if !errors.As(err, &fe) || (fe.Code != "token_invalid" && fe.Code != "token_expired") {
			t.Fatalf("refusal %v has no token_* code", err)
		}
	})
}

// FuzzLoginRequestValidate checks that validation never panics, that it reports every failure
// as invalid_value naming a field, and that nothing it lets through holds a NUL, which PostgreSQL
// would refuse to store (a 500).
func FuzzLoginRequestValidate(f *testing.F) {
	f.Add("rep", "secret", "android", "Pixel 8", "1.2.3", true)
	f.Add("", "", "", "", "", false)
	f.Add("\xff", "p", "ios", "", "", true)
	f.Add("re\x00p", "secret", "android", "Pixel\x00", "1.2.3\x00", true)
	f.Fuzz(func(t *testing.T, login, password, platform, name, appVersion string, withID bool) {
		r := LoginRequest{Login: login, Password: password, Device: Device{Platform: platform, Name: name, AppVersion: appVersion}}
		if withID {
			r.Device.ID = uuid.New()
		}
		err := r.validate()
		if err == nil {
			if strings.ContainsRune(login+name+appVersion, 0) {
				t.Fatalf("accepted a NUL in %q %q %q", login, name, appVersion)
			}
			return
		}
		var fe *fieldsync.Error
		if !errors.As(err, &fe) || fe.Code != "invalid_value" || fe.Details["field"] == "" {
			t.Fatalf("validation error %#v does not name a field", err)
		}
	})
}
