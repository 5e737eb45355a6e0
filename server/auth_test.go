package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

func TestLoginReturnsTokensAndUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, userID := b.newUser(t, "rep")
	tokens := b.login(t, login)
	if tokens.TokenType != "Bearer" || tokens.ExpiresIn != 900 || tokens.AccessToken == "" || tokens.RefreshToken == "" {
		t.Fatalf("tokens: %+v", tokens)
	}
	if tokens.User.ID != userID || tokens.User.Role != "rep" || tokens.User.BranchID != b.branchID {
		t.Fatalf("user: %+v", tokens.User)
	}
	r := b.do(t, "GET", "/v1/me", tokens.AccessToken, nil)
	expect(t, r, http.StatusOK, "")
	var me account.User
	r.json(t, &me)
	if me.ID != userID {
		t.Fatalf("me: %+v", me)
	}
	// The login is not case sensitive; the password is.
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, "Correct horse battery", uuid.New())), 401, "invalid_credentials")
	up := b.do(t, "POST", "/v1/auth/login", "", loginBody(strings.ToUpper(login), testPassword, uuid.New()))
	expect(t, up, http.StatusOK, "")
}

func TestLoginRejectsBadCredentialsAndInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody("nobody", testPassword, uuid.New())), 401, "invalid_credentials")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, "wrong password", uuid.New())), 401, "invalid_credentials")

	bad := loginBody(login, testPassword, uuid.New())
	bad["device"].(map[string]any)["platform"] = "symbian"
	r := b.do(t, "POST", "/v1/auth/login", "", bad)
	expect(t, r, 400, "invalid_value")
	var e struct {
		Error struct {
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	r.json(t, &e)
	if e.Error.Details["field"] != "device.platform" {
		t.Fatalf("details: %s", r.body)
	}
	expect(t, b.do(t, "POST", "/v1/auth/login", "", `{"login":"x","password":"y","device":{"id":"not-a-uuid","platform":"ios"}}`), 400, "invalid_value")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", `{"login":"x","password":"y","device":{"id":"`+uuid.NewString()+`","platform":"ios"},"remember":true}`), 400, "unknown_field")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", `{"login": 12}`), 400, "invalid_value")
	r = b.do(t, "POST", "/v1/auth/login", "", `{"login":"x","password":"y","device":{"id":42,"platform":"ios"}}`)
	expect(t, r, 400, "invalid_value")
	if !strings.Contains(string(r.body), "device.id must be a UUID string") {
		t.Fatalf("message: %s", r.body)
	}
	expect(t, b.do(t, "POST", "/v1/auth/login", "", `{"login": "x",`), 400, "malformed_json")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", ``), 400, "malformed_json")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", `{} {}`), 400, "malformed_json")
}

func TestRefreshRotatesTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	first := b.login(t, login)

	r := b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken})
	expect(t, r, http.StatusOK, "")
	var second account.Tokens
	r.json(t, &second)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh returned the same tokens")
	}
	expect(t, b.do(t, "GET", "/v1/me", second.AccessToken, nil), http.StatusOK, "")

	r = b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": second.RefreshToken})
	expect(t, r, http.StatusOK, "")
	var third account.Tokens
	r.json(t, &third)
	expect(t, b.do(t, "GET", "/v1/me", third.AccessToken, nil), http.StatusOK, "")

	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": "made-up"}), 401, "refresh_token_invalid")
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{}), 401, "refresh_token_invalid")
}

func TestRefreshTokenReuseRevokesTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	stolen := b.login(t, login)

	// The owner refreshes and refreshes again with the new token (so it got the answer); then the
	// thief presents the old token, within the grace window of a lost answer.
	r := b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": stolen.RefreshToken})
	expect(t, r, http.StatusOK, "")
	var owners account.Tokens
	r.json(t, &owners)
	r = b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": owners.RefreshToken})
	expect(t, r, http.StatusOK, "")
	r.json(t, &owners)

	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": stolen.RefreshToken}), 401, "refresh_token_reused")

	// Every token of the session is dead now, the owner's newest included.
	expect(t, b.do(t, "GET", "/v1/me", owners.AccessToken, nil), 401, "session_revoked")
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": owners.RefreshToken}), 401, "session_revoked")

	// Signing in again works.
	expect(t, b.do(t, "GET", "/v1/me", b.login(t, login).AccessToken, nil), http.StatusOK, "")
}

// refresh presents token and returns the answer.
func (b *bundle) refresh(t *testing.T, token string) account.Tokens {
	t.Helper()
	r := b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": token})
	expect(t, r, http.StatusOK, "")
	var tokens account.Tokens
	r.json(t, &tokens)
	return tokens
}

func TestALostRefreshAnswerIsGivenAgainOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	first := b.login(t, login)

	// The refresh's answer is lost on the way; the phone presents the same token again.
	lost := b.refresh(t, first.RefreshToken)
	again := b.refresh(t, first.RefreshToken)
	if again.RefreshToken != lost.RefreshToken {
		t.Fatal("the retried refresh returned another refresh token")
	}
	if again.AccessToken == first.AccessToken || again.User.ID != first.User.ID {
		t.Fatalf("retried refresh: %+v", again)
	}
	// One session: both access tokens work, and the new refresh token refreshes.
	expect(t, b.do(t, "GET", "/v1/me", again.AccessToken, nil), http.StatusOK, "")
	expect(t, b.do(t, "GET", "/v1/me", lost.AccessToken, nil), http.StatusOK, "")
	next := b.refresh(t, again.RefreshToken)
	expect(t, b.do(t, "GET", "/v1/me", next.AccessToken, nil), http.StatusOK, "")

	// Once only: the second answer is lost too, and a third try is reuse.
	lost = b.refresh(t, next.RefreshToken)
	if b.refresh(t, next.RefreshToken).RefreshToken != lost.RefreshToken {
		t.Fatal("the retried refresh returned another refresh token")
	}
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": next.RefreshToken}), 401, "refresh_token_reused")
	expect(t, b.do(t, "GET", "/v1/me", lost.AccessToken, nil), 401, "session_revoked")
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": lost.RefreshToken}), 401, "session_revoked")
	var reason string
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT revoke_reason FROM sessions WHERE user_id = $1`, first.User.ID).Scan(&reason); err != nil || reason != "refresh_token_reused" {
		t.Fatalf("session revoked for %q (%v), want refresh_token_reused", reason, err)
	}
}

func TestARefreshPresentedAgainAfterTheGraceRevokesTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	first := b.login(t, login)
	lost := b.refresh(t, first.RefreshToken)

	b.clock.Set(account.DefaultRefreshGrace + time.Second)
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken}), 401, "refresh_token_reused")
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": lost.RefreshToken}), 401, "session_revoked")
}

func TestLogoutEndsTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	tokens := b.login(t, login)
	other := b.login(t, login) // the same person on a second device

	expect(t, b.do(t, "PUT", "/v1/devices/current/push-token", tokens.AccessToken, map[string]string{"token": "t-1", "platform": "ios"}), http.StatusNoContent, "")
	expect(t, b.do(t, "POST", "/v1/auth/logout", tokens.AccessToken, nil), http.StatusNoContent, "")
	var pushTokens int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(push_token) FROM devices`).Scan(&pushTokens); err != nil || pushTokens != 0 {
		t.Fatalf("push tokens left after logout: %d, %v", pushTokens, err)
	}
	expect(t, b.do(t, "GET", "/v1/me", tokens.AccessToken, nil), 401, "session_revoked")
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tokens.RefreshToken}), 401, "session_revoked")
	// Only that device's session ended.
	expect(t, b.do(t, "GET", "/v1/me", other.AccessToken, nil), http.StatusOK, "")
}

func TestExpiredAccessTokenIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	tokens := b.login(t, login)
	b.clock.Set(16 * time.Minute)
	expect(t, b.do(t, "GET", "/v1/me", tokens.AccessToken, nil), 401, "token_expired")
	// A phone back from a week offline refreshes rather than signing in again.
	b.clock.Set(7 * 24 * time.Hour)
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tokens.RefreshToken}), 401, "refresh_token_expired")
}

func TestForgedAccessTokensAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	tokens := b.login(t, login)

	// Take the genuine claims, so that only the forgery differs.
	var claims account.AccessClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tokens.AccessToken, &claims); err != nil {
		t.Fatal(err)
	}
	genuine, _, _ := jwt.NewParser().ParseUnverified(tokens.AccessToken, jwt.MapClaims{})
	kid := genuine.Header["kid"].(string)

	block, _ := pem.Decode(b.keyPEM)
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.(ed25519.PrivateKey).Public().(ed25519.PublicKey)
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	sign := func(method jwt.SigningMethod, key any, c jwt.Claims, kid string) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(change func(*account.AccessClaims)) account.AccessClaims {
		c := claims
		change(&c)
		return c
	}

	forgeries := map[string]string{
		"alg none": sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims, kid),
		// The classic confusion: HMAC keyed with the public key's bytes.
		"HS256 with the public key": sign(jwt.SigningMethodHS256, []byte(pub), claims, kid),
		"another key, same kid":     sign(jwt.SigningMethodEdDSA, otherKey, claims, kid),
		"another key, its own kid":  sign(jwt.SigningMethodEdDSA, otherKey, claims, account.KeyID(otherKey.Public().(ed25519.PublicKey))),
		"wrong issuer": sign(jwt.SigningMethodEdDSA, priv, with(func(c *account.AccessClaims) {
			c.Issuer = "someone-else"
		}), kid),
		"wrong audience": sign(jwt.SigningMethodEdDSA, priv, with(func(c *account.AccessClaims) {
			c.Audience = jwt.ClaimStrings{"another-api"}
		}), kid),
		"no expiry": sign(jwt.SigningMethodEdDSA, priv, with(func(c *account.AccessClaims) {
			c.ExpiresAt = nil
		}), kid),
		"another user's id": sign(jwt.SigningMethodEdDSA, priv, with(func(c *account.AccessClaims) {
			c.Subject = uuid.NewString()
		}), kid),
		"unknown session": sign(jwt.SigningMethodEdDSA, priv, with(func(c *account.AccessClaims) {
			c.SessionID = uuid.New()
		}), kid),
		"tampered payload": tokens.AccessToken[:len(tokens.AccessToken)-4] + "AAAA",
		"garbage":          "not.a.token",
	}
	for name, token := range forgeries {
		t.Run(name, func(t *testing.T) {
			expect(t, b.do(t, "GET", "/v1/me", token, nil), 401, "token_invalid")
		})
	}
	// The genuine one, resigned by the real key, still passes: the forgeries failed for their forgery.
	expect(t, b.do(t, "GET", "/v1/me", sign(jwt.SigningMethodEdDSA, priv, claims, kid), nil), http.StatusOK, "")
	expect(t, b.do(t, "GET", "/v1/me", "", nil), 401, "token_invalid")
}

func TestKeyRotationKeepsOldTokensValid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	old := b.login(t, login)

	// A new key goes first; the old one stays below it to verify what it signed.
	newPEM, err := account.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := account.ParseKeys(append(newPEM, b.keyPEM...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := account.ParseKeys(nil); err == nil {
		t.Fatal("ParseKeys accepted no key")
	}
	svc, err := account.NewService(b.db.Pool, keys, account.Config{
		Tokens:          account.TokenConfig{Issuer: "fieldsync-test", Audience: "fieldsync-api", TTL: 15 * time.Minute},
		RefreshTokenTTL: time.Hour, Password: account.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1},
		Throttle: account.ThrottleConfig{PerLogin: 5, PerAddress: 5, Window: time.Minute},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.Authenticate(ctx, old.AccessToken); err != nil {
		t.Fatalf("token signed by the previous key refused: %v", err)
	}
	fresh, err := svc.Refresh(ctx, old.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	// The new token is signed by the new key, which the old server does not know.
	if _, err := b.accounts.Authenticate(ctx, fresh.AccessToken); err == nil {
		t.Fatal("the old key ring accepted a token of the new key")
	}
}

func TestDisabledUserIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, userID := b.newUser(t, "rep")
	tokens := b.login(t, login)
	expect(t, b.do(t, "GET", "/v1/me", tokens.AccessToken, nil), http.StatusOK, "")

	if err := b.accounts.DisableUser(context.Background(), userID); err != nil {
		t.Fatal(err)
	}
	// The access token has not expired, and is refused all the same.
	expect(t, b.do(t, "GET", "/v1/me", tokens.AccessToken, nil), 401, "user_disabled")
	expect(t, b.do(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tokens.RefreshToken}), 401, "session_revoked")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, testPassword, uuid.New())), 403, "user_disabled")
}

func TestRevokedDeviceIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	adminLogin, _ := b.newUser(t, "admin")
	admin := b.login(t, adminLogin)
	login, _ := b.newUser(t, "rep")
	device := uuid.New()
	tokens := b.loginOn(t, login, device)

	// Only an admin may revoke.
	expect(t, b.do(t, "POST", "/v1/admin/devices/"+device.String()+"/revoke", tokens.AccessToken, nil), 403, "forbidden")
	expect(t, b.do(t, "POST", "/v1/admin/devices/"+uuid.NewString()+"/revoke", admin.AccessToken, nil), 404, "device_not_found")
	expect(t, b.do(t, "POST", "/v1/admin/devices/"+device.String()+"/revoke", admin.AccessToken, nil), http.StatusNoContent, "")

	expect(t, b.do(t, "GET", "/v1/me", tokens.AccessToken, nil), 401, "device_revoked")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, testPassword, device)), 403, "device_revoked")
	// The person can still sign in on another device.
	b.login(t, login)
}

func TestLoginOnATakenDeviceEndsThePreviousSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first, _ := b.newUser(t, "rep")
	second, _ := b.newUser(t, "rep")
	device := uuid.New()
	a := b.loginOn(t, first, device)
	expect(t, b.do(t, "PUT", "/v1/devices/current/push-token", a.AccessToken, map[string]string{"token": "fcm-token-1", "platform": "android"}), http.StatusNoContent, "")

	// A colleague signs in on the same phone.
	c := b.loginOn(t, second, device)
	expect(t, b.do(t, "GET", "/v1/me", a.AccessToken, nil), 401, "session_revoked")
	expect(t, b.do(t, "GET", "/v1/me", c.AccessToken, nil), http.StatusOK, "")
	// The first person's alerts no longer go to this phone.
	var token *string
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT push_token FROM devices WHERE id = $1`, device).Scan(&token); err != nil {
		t.Fatal(err)
	}
	if token != nil {
		t.Fatalf("push token kept across users: %q", *token)
	}
}

func TestPushTokenRegistration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	phone, tablet := uuid.New(), uuid.New()
	onPhone := b.loginOn(t, login, phone)
	onTablet := b.loginOn(t, login, tablet)

	path := "/v1/devices/current/push-token"
	expect(t, b.do(t, "PUT", path, "", map[string]string{"token": "t", "platform": "android"}), 401, "token_invalid")
	expect(t, b.do(t, "PUT", path, onPhone.AccessToken, map[string]string{"token": "", "platform": "android"}), 400, "invalid_value")
	expect(t, b.do(t, "PUT", path, onPhone.AccessToken, map[string]string{"token": "t", "platform": "blackberry"}), 400, "invalid_value")
	expect(t, b.do(t, "PUT", path, onPhone.AccessToken, map[string]string{"token": "shared-token", "platform": "android"}), http.StatusNoContent, "")

	tokenOf := func(device uuid.UUID) string {
		var tok *string
		if err := b.db.Pool.QueryRow(context.Background(), `SELECT push_token FROM devices WHERE id = $1`, device).Scan(&tok); err != nil {
			t.Fatal(err)
		}
		if tok == nil {
			return ""
		}
		return *tok
	}
	if got := tokenOf(phone); got != "shared-token" {
		t.Fatalf("phone token %q", got)
	}
	// The token moves with the app install: it leaves the device that held it.
	expect(t, b.do(t, "PUT", path, onTablet.AccessToken, map[string]string{"token": "shared-token", "platform": "ios"}), http.StatusNoContent, "")
	if tokenOf(phone) != "" || tokenOf(tablet) != "shared-token" {
		t.Fatalf("phone %q tablet %q", tokenOf(phone), tokenOf(tablet))
	}
}

func TestFailedLoginsAreRateLimitedPerLogin(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) { o.LoginFailuresPerLogin = 3 })
	login, _ := b.newUser(t, "rep")
	for range 3 {
		expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, "guess", uuid.New())), 401, "invalid_credentials")
	}
	r := b.do(t, "POST", "/v1/auth/login", "", loginBody(login, "guess", uuid.New()))
	expect(t, r, 429, "too_many_attempts")
	wait, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || wait < 1 || wait > 61 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Even the right password waits: the guesser must not learn it was right.
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, testPassword, uuid.New())), 429, "too_many_attempts")
	// Another person is not locked out by it.
	other, _ := b.newUser(t, "rep")
	b.login(t, other)
}

func TestFailedLoginsAreRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) { o.LoginFailuresPerLogin, o.LoginFailuresPerAddress = 100, 4 })
	for i := range 4 {
		expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody("sprayed-"+strconv.Itoa(i), "guess", uuid.New())), 401, "invalid_credentials")
	}
	login, _ := b.newUser(t, "rep")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody(login, testPassword, uuid.New())), 429, "too_many_attempts")
}

func TestAdminManagesBranchesAndUsers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	adminLogin, _ := b.newUser(t, "admin")
	admin := b.login(t, adminLogin)
	managerLogin, _ := b.newUser(t, "manager")
	manager := b.login(t, managerLogin)

	expect(t, b.do(t, "POST", "/v1/admin/branches", manager.AccessToken, map[string]string{"name": "North"}), 403, "forbidden")
	r := b.do(t, "POST", "/v1/admin/branches", admin.AccessToken, map[string]string{"name": "North"})
	expect(t, r, http.StatusCreated, "")
	var branch account.Branch
	r.json(t, &branch)
	expect(t, b.do(t, "POST", "/v1/admin/branches", admin.AccessToken, map[string]string{"name": "north"}), 409, "branch_exists")
	expect(t, b.do(t, "POST", "/v1/admin/branches", admin.AccessToken, map[string]string{"name": ""}), 400, "invalid_value")

	newUser := map[string]any{"branch_id": branch.ID, "role": "rep", "rep_kind": "hospital", "login": "nina", "name": "Nina", "password": "long enough password"}
	r = b.do(t, "POST", "/v1/admin/users", admin.AccessToken, newUser)
	expect(t, r, http.StatusCreated, "")
	var created struct{ ID uuid.UUID }
	r.json(t, &created)
	expect(t, b.do(t, "POST", "/v1/admin/users", admin.AccessToken, newUser), 409, "login_taken")
	newUser["login"], newUser["password"] = "nina2", "short"
	expect(t, b.do(t, "POST", "/v1/admin/users", admin.AccessToken, newUser), 400, "invalid_value")
	newUser["password"], newUser["role"] = "long enough password", "boss"
	expect(t, b.do(t, "POST", "/v1/admin/users", admin.AccessToken, newUser), 400, "invalid_value")
	newUser["role"], newUser["branch_id"] = "processor", uuid.New()
	newUser["rep_kind"] = ""
	expect(t, b.do(t, "POST", "/v1/admin/users", admin.AccessToken, newUser), 404, "branch_not_found")

	if branch.TimeZone != "UTC" || branch.Currency != "CNY" {
		t.Fatalf("a branch created without formats: %+v, want UTC and CNY", branch)
	}
	expect(t, b.do(t, "POST", "/v1/admin/branches", admin.AccessToken, map[string]string{"name": "East", "time_zone": "Mars/Olympus"}), 400, "invalid_value")
	expect(t, b.do(t, "POST", "/v1/admin/branches", admin.AccessToken, map[string]string{"name": "East", "currency": "cny"}), 400, "invalid_value")

	r = b.do(t, "GET", "/v1/admin/branches", admin.AccessToken, nil)
	expect(t, r, http.StatusOK, "")
	var list struct{ Branches []account.Branch }
	r.json(t, &list)
	if len(list.Branches) != 2 {
		t.Fatalf("branches: %+v", list.Branches)
	}

	nina := b.do(t, "POST", "/v1/auth/login", "", loginBody("nina", "long enough password", uuid.New()))
	expect(t, nina, http.StatusOK, "")
	expect(t, b.do(t, "POST", "/v1/admin/users/"+created.ID.String()+"/disable", admin.AccessToken, nil), http.StatusNoContent, "")
	expect(t, b.do(t, "POST", "/v1/admin/users/not-a-uuid/disable", admin.AccessToken, nil), 400, "invalid_value")
	expect(t, b.do(t, "POST", "/v1/auth/login", "", loginBody("nina", "long enough password", uuid.New())), 403, "user_disabled")
}
