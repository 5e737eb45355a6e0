package devenv

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// readRepoFile returns a file at the repository's root.
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../../" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestDockerfileBuildsWithTheToolchainOfGoMod checks that the image builds with the Go release
// go.mod names (its toolchain line, else its go line), already in the golang image, and that
// GOTOOLCHAIN=local forbids downloading another during the build.
func TestDockerfileBuildsWithTheToolchainOfGoMod(t *testing.T) {
	gomod := readRepoFile(t, "go.mod")
	want := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if want == nil {
		t.Fatal("go.mod has no go line")
	}
	goVersion := want[1]
	if m := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindStringSubmatch(gomod); m != nil {
		goVersion = m[1]
	}

	dockerfile := readRepoFile(t, "Dockerfile")
	froms := regexp.MustCompile(`(?m)^FROM golang:(\S+)`).FindAllStringSubmatch(dockerfile, -1)
	if len(froms) == 0 {
		t.Fatal("the Dockerfile builds from no golang image")
	}
	for _, from := range froms {
		if tag := from[1]; !strings.HasPrefix(tag, goVersion+"-") && tag != goVersion {
			t.Errorf("Dockerfile: FROM golang:%s, but go.mod asks for Go %s: use golang:%s-bookworm", tag, goVersion, goVersion)
		}
	}
	if !regexp.MustCompile(`(?m)^ENV GOTOOLCHAIN=local$`).MatchString(dockerfile) {
		t.Error("the Dockerfile does not set GOTOOLCHAIN=local: a go.mod ahead of the image would download a toolchain at build")
	}
}
