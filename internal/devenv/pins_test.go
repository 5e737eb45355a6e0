package devenv

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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

// goModGo returns the Go release go.mod names: its toolchain line, else its go line.
func goModGo(t *testing.T) string {
	t.Helper()
	gomod := readRepoFile(t, "go.mod")
	if m := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindStringSubmatch(gomod); m != nil {
		return m[1]
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return m[1]
}

// TestDockerfileBuildsWithTheToolchainOfGoMod checks that the images (the server's, and the
// MinIO docker-compose.yml builds) build with the Go release go.mod names, already in the golang
// image, and that GOTOOLCHAIN=local forbids downloading another during the build.
func TestDockerfileBuildsWithTheToolchainOfGoMod(t *testing.T) {
	goVersion := goModGo(t)
	dockerfiles := map[string]string{"Dockerfile": readRepoFile(t, "Dockerfile")}
	for name, svc := range readCompose(t).Services {
		if svc.Build.DockerfileInline != "" {
			dockerfiles["docker-compose.yml service "+name] = svc.Build.DockerfileInline
		}
	}
	for where, dockerfile := range dockerfiles {
		froms := regexp.MustCompile(`(?m)^FROM golang:(\S+)`).FindAllStringSubmatch(dockerfile, -1)
		if len(froms) == 0 {
			t.Errorf("%s builds from no golang image", where)
		}
		for _, from := range froms {
			if tag := from[1]; !strings.HasPrefix(tag, goVersion+"-") && tag != goVersion {
				t.Errorf("%s: FROM golang:%s, but go.mod asks for Go %s: use golang:%s-bookworm", where, tag, goVersion, goVersion)
			}
		}
		if !regexp.MustCompile(`(?m)^ENV GOTOOLCHAIN=local\b`).MatchString(dockerfile) {
			t.Errorf("%s does not set GOTOOLCHAIN=local: a go.mod ahead of the image would download a toolchain at build", where)
		}
	}
}

// composeFile is the part of docker-compose.yml these tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image     string         `yaml:"image"`
	Build     composeBuild   `yaml:"build"`
	Command   composeCommand `yaml:"command"`
	Profiles  []string       `yaml:"profiles"`
	Ports     []any          `yaml:"ports"` // "host_ip:host:container", or a mapping with host_ip
	DependsOn map[string]any `yaml:"depends_on"`
}

// composeBuild is a service's build: a context path alone, or a mapping.
type composeBuild struct {
	Context          string `yaml:"context"`
	DockerfileInline string `yaml:"dockerfile_inline"`
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&b.Context)
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

// composeCommand is a service's command: a list, or a string split on spaces.
type composeCommand []string

func (c *composeCommand) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*c = strings.Fields(n.Value)
		return nil
	}
	return n.Decode((*[]string)(c))
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	var f composeFile
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return f
}

// TestComposeRunsTheSameMinIO checks that docker compose runs the MinIO the tests and `fieldsync
// dev` run (MinIOModule), built from the same module, and no MinIO server image of another
// release.
func TestComposeRunsTheSameMinIO(t *testing.T) {
	compose := readCompose(t)
	minio, ok := compose.Services["minio"]
	if !ok {
		t.Fatal("docker-compose.yml has no minio service")
	}
	if want := "go install " + MinIOModule + "\n"; !strings.Contains(minio.Build.DockerfileInline, want) {
		t.Errorf("docker-compose.yml's minio service does not build with %q: compose would run another MinIO than the tests", want)
	}
	for name, svc := range compose.Services {
		if image := svc.Image; strings.Contains(image, "minio/minio") {
			t.Errorf("docker-compose.yml service %s runs the image %s, not devenv.MinIOModule", name, image)
		}
	}
}

// TestComposePublishesOnLoopbackOnly checks that no port of the compose stack, whose passwords
// are written in the file, is reachable from another machine.
func TestComposePublishesOnLoopbackOnly(t *testing.T) {
	for name, svc := range readCompose(t).Services {
		for _, port := range svc.Ports {
			switch p := port.(type) {
			case string:
				if !strings.HasPrefix(p, "127.0.0.1:") {
					t.Errorf("docker-compose.yml service %s publishes %q: write it 127.0.0.1:HOST:CONTAINER", name, p)
				}
			case map[string]any:
				if p["host_ip"] != "127.0.0.1" {
					t.Errorf("docker-compose.yml service %s publishes %v without host_ip: 127.0.0.1", name, p)
				}
			default:
				t.Errorf("docker-compose.yml service %s publishes %v: write it \"127.0.0.1:HOST:CONTAINER\"", name, p)
			}
		}
	}
}

// TestComposeSeedsTheDemoOnlyInItsProfile checks the README's `docker compose --profile demo up
// demo`: the demo users, whose password is public, exist only when asked for, and nothing
// started without the profile depends on them.
func TestComposeSeedsTheDemoOnlyInItsProfile(t *testing.T) {
	if readme := readRepoFile(t, "README.md"); !strings.Contains(readme, "docker compose --profile demo up demo") {
		t.Error("the README no longer says how to seed the demo with docker compose: update this test")
	}
	compose := readCompose(t)
	demo, ok := compose.Services["demo"]
	if !ok || !slices.Contains(demo.Profiles, "demo") {
		t.Fatalf("docker-compose.yml has no service demo in the profile demo: %+v", demo)
	}
	for name, svc := range compose.Services {
		if slices.Contains(svc.Command, "demo") && !slices.Contains(svc.Profiles, "demo") {
			t.Errorf("docker-compose.yml service %s seeds the demo outside the demo profile", name)
		}
		if len(svc.Profiles) > 0 {
			continue
		}
		for dep := range svc.DependsOn {
			if len(compose.Services[dep].Profiles) > 0 {
				t.Errorf("docker-compose.yml service %s (no profile) depends on %s, which is only in profiles %v", name, dep, compose.Services[dep].Profiles)
			}
		}
	}
}
