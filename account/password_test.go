package account

import (
	"strings"
	"testing"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	t.Parallel()
	p := PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	hash, err := HashPassword("correct horse", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q", hash)
	}
	again, _ := HashPassword("correct horse", p)
	if again == hash {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for password, want := range map[string]bool{"correct horse": true, "Correct horse": false, "": false, "correct horse ": false} {
		ok, err := VerifyPassword(password, hash)
		if err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", password, ok, err, want)
		}
	}
}

func TestVerifyPasswordRefusesMalformedHashes(t *testing.T) {
	t.Parallel()
	for _, hash := range []string{
		"", "plain", "$2a$10$bcrypthashbcrypthashbcrypthashbcrypthash",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=0,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$a2V5", // would make one login allocate 95 GiB
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$",
	} {
		if ok, err := VerifyPassword("x", hash); ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want an error", hash, ok, err)
		}
	}
}
