package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The deployment recipes in deploy/ name the server's flags, paths and
// addresses; these tests hold them to what the server accepts, so that a
// renamed flag or a moved default breaks here and not on an operator's host.

const deployDir = "../deploy"

// systemdUnit is a unit file: section → key → values (a key may repeat).
type systemdUnit map[string]map[string][]string

func readUnit(t *testing.T, path string) systemdUnit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := systemdUnit{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one returns the single value of key, failing when it is absent or repeated.
func (u systemdUnit) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: %d values, want one", section, key, len(v))
		return ""
	}
	return v[0]
}

// deployConfig loads a configuration of deploy/ with the server's loader.
func deployConfig(t *testing.T, name string) Config {
	t.Helper()
	cfg, err := loadConfig(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// localCopy writes a copy of the deploy/ configuration name whose listeners
// are on 127.0.0.1 port 0 and whose data is in a temporary directory, so
// that it can run here.
func localCopy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`(?m)^((?:metrics_)?address) = "[^"]*"`).ReplaceAllString(string(b), `$1 = "127.0.0.1:0"`)
	s = regexp.MustCompile(`(?m)^data_dir = "[^"]*"`).ReplaceAllString(s, `data_dir = "`+t.TempDir()+`"`)
	return writeTemp(t, s)
}

// runsAndStops runs the server (the test binary in server mode, see
// TestMain) with args, waits for it to serve, stops it with SIGTERM as
// systemd and docker do, and expects a clean exit.
func runsAndStops(t *testing.T, args []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XMPPWS_TEST_RUN_SERVER="+strings.Join(args, "\x1f"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	started := make(chan string, 1)
	var output strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil {
				started <- m[1]
			}
			output.WriteString(sc.Text() + "\n")
		}
		close(started)
	}()
	addr, ok := <-started
	if !ok {
		cmd.Wait()
		t.Fatalf("the server did not start with %q: %v\n%s", args, cmd.ProcessState, output.String())
	}
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Errorf("started, but %s does not accept: %v", addr, err)
	} else {
		c.Close()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("SIGTERM: %v, want a clean exit", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the server did not stop on SIGTERM")
	}
}

// substituteConfig replaces the value of -config in args by path.
func substituteConfig(t *testing.T, args []string, path string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == "-config" && i+1 < len(out) {
			out[i+1] = path
			return out
		}
	}
	t.Fatalf("%q has no -config", args)
	return nil
}

func TestSystemdUnit(t *testing.T) {
	unitPath := filepath.Join(deployDir, "xmppws.service")
	u := readUnit(t, unitPath)
	const svc = "Service"
	for key, want := range map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "MemoryDenyWriteExecute": "yes",
		"LockPersonality": "yes", "PrivateDevices": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
		"SystemCallArchitectures": "native", "StateDirectory": "xmppws", "KillSignal": "SIGTERM",
	} {
		if got := u.one(t, svc, key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	if f := u[svc]["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first", f)
	}

	args := strings.Fields(u.one(t, svc, "ExecStart"))
	if len(args) != 3 || args[0] != "/usr/local/bin/xmppws" || args[1] != "-config" || args[2] != "/etc/xmppws/xmppws.toml" {
		t.Fatalf("ExecStart=%q, want /usr/local/bin/xmppws -config /etc/xmppws/xmppws.toml", args)
	}
	if got := "/etc/" + u.one(t, svc, "ConfigurationDirectory") + "/xmppws.toml"; got != args[2] {
		t.Errorf("ConfigurationDirectory gives %s, ExecStart reads %s", got, args[2])
	}
	cfg := deployConfig(t, "xmppws.toml")
	if want := "/var/lib/" + u.one(t, svc, "StateDirectory"); cfg.Storage.DataDir != want {
		t.Errorf("deploy/xmppws.toml data_dir = %q, the unit's StateDirectory is %s", cfg.Storage.DataDir, want)
	}
	stop, err := time.ParseDuration(u.one(t, svc, "TimeoutStopSec"))
	if err != nil || stop <= cfg.General.ShutdownTimeout.Duration {
		t.Errorf("TimeoutStopSec=%s must exceed general.shutdown_timeout %s, or systemd kills a graceful stop", stop, cfg.General.ShutdownTimeout)
	}
	if host, _, _ := net.SplitHostPort(cfg.HTTP.Address); !net.ParseIP(host).IsLoopback() {
		t.Errorf("behind the proxy the server should listen on loopback, not %s", cfg.HTTP.Address)
	}
	if cfg.WebSocket.MaxUnauthenticatedPerAddress != 0 {
		t.Error("behind a proxy every client is one address: max_unauthenticated_per_address must be 0")
	}

	runsAndStops(t, substituteConfig(t, args[1:], localCopy(t, "xmppws.toml")))

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	// verify wants ExecStart's binary to exist: this test binary stands in.
	b, _ := os.ReadFile(unitPath)
	unit := filepath.Join(t.TempDir(), "xmppws.service")
	os.WriteFile(unit, []byte(strings.Replace(string(b), "ExecStart="+args[0], "ExecStart="+os.Args[0], 1)), 0o644)
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// dockerfile is the final stage of a Dockerfile and the build commands.
type dockerfile struct {
	from       string
	runs       []string            // RUN commands of every stage
	copies     map[string]string   // final stage: destination → source
	copyLines  map[string]string   // final stage: destination → the whole COPY
	instr      map[string][]string // final stage: instruction → arguments
	entrypoint []string
	cmd        []string
}

func readDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var d dockerfile
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "FROM":
			d.from = strings.Fields(rest)[0]
			d.copies, d.copyLines, d.instr = map[string]string{}, map[string]string{}, map[string][]string{}
		case "RUN":
			d.runs = append(d.runs, rest)
		case "COPY":
			var plain []string
			for _, f := range strings.Fields(rest) {
				if !strings.HasPrefix(f, "--") {
					plain = append(plain, f)
				}
			}
			d.copies[plain[len(plain)-1]] = plain[0]
			d.copyLines[plain[len(plain)-1]] = rest
		case "ENTRYPOINT", "CMD":
			var argv []string
			if err := json.Unmarshal([]byte(rest), &argv); err != nil {
				t.Fatalf("%s %s: not the exec (JSON) form: %v", word, rest, err)
			}
			if word == "CMD" {
				d.cmd = argv
			} else {
				d.entrypoint = argv
			}
		}
		if d.instr != nil {
			d.instr[strings.ToUpper(word)] = append(d.instr[strings.ToUpper(word)], rest)
		}
	}
	return d
}

func TestDockerfile(t *testing.T) {
	d := readDockerfile(t, filepath.Join(deployDir, "Dockerfile"))
	if !strings.HasPrefix(d.from, "gcr.io/distroless/static") && d.from != "scratch" {
		t.Errorf("final stage FROM %s, want distroless/static or scratch (a static binary needs nothing)", d.from)
	}
	build := strings.Join(d.runs, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./server"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build does not use %s", want)
		}
	}
	argv := append(append([]string(nil), d.entrypoint...), d.cmd...)
	if len(argv) != 3 || argv[1] != "-config" {
		t.Fatalf("ENTRYPOINT+CMD = %q, want BINARY -config FILE", argv)
	}
	if src := d.copies[argv[0]]; !strings.HasPrefix(src, "/out/") || !strings.Contains(build, "-o "+src+" ./server") {
		t.Errorf("the image runs %s, copied from %q, which the build does not produce", argv[0], src)
	}
	src := d.copies[argv[2]]
	if src != "deploy/container.toml" {
		t.Fatalf("the image reads %s, copied from %q, want deploy/container.toml", argv[2], src)
	}
	cfg := deployConfig(t, "container.toml")

	user := d.instr["USER"]
	if len(user) != 1 {
		t.Fatalf("USER %q, want one", user)
	}
	for _, id := range strings.Split(user[0], ":") {
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("USER %s: want a numeric non-root uid:gid", user[0])
		}
	}
	var volumes []string
	for _, v := range d.instr["VOLUME"] {
		var list []string
		if json.Unmarshal([]byte(v), &list) != nil {
			list = strings.Fields(v)
		}
		volumes = append(volumes, list...)
	}
	if len(volumes) != 1 || volumes[0] != cfg.Storage.DataDir {
		t.Errorf("VOLUME %q, the configuration's data_dir is %s", volumes, cfg.Storage.DataDir)
	}
	if !strings.Contains(d.copyLines[cfg.Storage.DataDir], "--chown="+user[0]) {
		t.Errorf("the data directory is not created owned by %s, so the volume would not be writable", user[0])
	}
	exposed := map[string]bool{}
	for _, e := range d.instr["EXPOSE"] {
		for _, p := range strings.Fields(e) {
			exposed[p] = true
		}
	}
	for _, addr := range []string{cfg.HTTP.Address, cfg.HTTP.MetricsAddress} {
		host, port, _ := net.SplitHostPort(addr)
		if !exposed[port] {
			t.Errorf("%s is not EXPOSEd", addr)
		}
		if host != "0.0.0.0" && host != "" {
			t.Errorf("in a container %s is unreachable from outside it", addr)
		}
	}
	runsAndStops(t, substituteConfig(t, argv[1:], localCopy(t, "container.toml")))
}

// TestProxySnippets: the nginx and Caddy snippets proxy to the address and
// path the systemd configuration serves, and nginx keeps a session open
// longer than the server's ping interval. nginx -t and caddy validate run
// when they are installed.
func TestProxySnippets(t *testing.T) {
	cfg := deployConfig(t, "xmppws.toml")
	nginxPath := filepath.Join(deployDir, "nginx.conf")
	b, err := os.ReadFile(nginxPath)
	if err != nil {
		t.Fatal(err)
	}
	nginx := string(b)
	loc := regexp.MustCompile(`(?s)location = ` + regexp.QuoteMeta(cfg.WebSocket.Path) + ` \{(.*?)\n    \}`).FindStringSubmatch(nginx)
	if loc == nil {
		t.Fatalf("nginx.conf has no location = %s", cfg.WebSocket.Path)
	}
	for _, want := range []string{
		"proxy_pass http://" + cfg.HTTP.Address + ";",
		"proxy_http_version 1.1;",
		"proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;",
		"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
		"proxy_set_header X-Forwarded-Proto $scheme;",
	} {
		if !strings.Contains(loc[1], want) {
			t.Errorf("nginx.conf's WebSocket location lacks %s", want)
		}
	}
	m := regexp.MustCompile(`proxy_read_timeout (\d+)([smh]);`).FindStringSubmatch(loc[1])
	if m == nil {
		t.Fatal("nginx.conf's WebSocket location sets no proxy_read_timeout")
	}
	read, _ := time.ParseDuration(m[1] + m[2])
	if ping := cfg.WebSocket.IdleTimeout.Duration + cfg.WebSocket.PingTimeout.Duration; read <= ping {
		t.Errorf("proxy_read_timeout %s: nginx would cut quiet sessions before the server's ping (%s)", read, ping)
	}

	caddyPath := filepath.Join(deployDir, "Caddyfile")
	c, err := os.ReadFile(caddyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(c), "reverse_proxy "+cfg.HTTP.Address) {
		t.Errorf("Caddyfile does not proxy to %s", cfg.HTTP.Address)
	}

	if bin, err := exec.LookPath("nginx"); err == nil {
		nginxTest(t, bin, nginx)
	} else {
		t.Log("nginx not installed: nginx -t skipped")
	}
	if bin, err := exec.LookPath("caddy"); err == nil {
		home := t.TempDir()
		cmd := exec.Command(bin, "validate", "--adapter", "caddyfile", "--config", caddyPath)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("caddy validate: %v\n%s", err, out)
		}
	} else {
		t.Log("caddy not installed: caddy validate skipped")
	}
}

// nginxTest runs nginx -t on the snippet inside a minimal nginx.conf, with a
// throwaway certificate in place of the snippet's paths.
func nginxTest(t *testing.T, bin, snippet string) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	snippet = regexp.MustCompile(`ssl_certificate\s+\S+;`).ReplaceAllString(snippet, "ssl_certificate "+cert+";")
	snippet = regexp.MustCompile(`ssl_certificate_key\s+\S+;`).ReplaceAllString(snippet, "ssl_certificate_key "+key+";")
	os.WriteFile(filepath.Join(dir, "xmppws.conf"), []byte(snippet), 0o644)
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte("pid "+dir+"/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  include "+dir+"/xmppws.conf;\n}\n"), 0o644)
	out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-e", "stderr", "-c", conf).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.com"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0), DNSNames: []string{"example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certPath, keyPath
}
