// Package localconsole is `piot console`: the console on the box's own
// terminal (serial or VGA in the image). It is an SSH client of the running
// appliance on loopback, so the console has exactly one implementation and
// one authorization path. Being able to read the data directory is what
// entitles the local user to it: the client key lives there and is listed
// in <data-dir>/authorized_keys, whose keys log in as the first admin.
package localconsole

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/piot-appliance/piot/tui/sshserver"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// ClientKeyFile is the console's own key in the data directory.
const ClientKeyFile = "console_ed25519"

// Run connects to the appliance's SSH console at addr and attaches the
// process's terminal to it until the session ends.
func Run(ctx context.Context, dataDir, addr string) error {
	signer, err := clientKey(dataDir)
	if err != nil {
		return err
	}
	if err := authorize(dataDir, signer.PublicKey()); err != nil {
		return err
	}
	hostKey, err := hostPublicKey(dataDir)
	if err != nil {
		return err
	}
	client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            "admin",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
	})
	if err != nil {
		return fmt.Errorf("console at %s: %w", addr, err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("console session: %w", err)
	}
	defer sess.Close()

	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return errors.New("piot console needs a terminal")
	}
	w, h, err := term.GetSize(fd)
	if err != nil {
		w, h = 80, 24
	}
	termType := os.Getenv("TERM")
	if termType == "" {
		termType = "xterm-256color"
	}
	if v := os.Getenv("NO_COLOR"); v != "" {
		_ = sess.Setenv("NO_COLOR", v)
	}
	if err := sess.RequestPty(termType, h, w, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		return fmt.Errorf("console pty: %w", err)
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("raw terminal: %w", err)
	}
	defer term.Restore(fd, old)
	sess.Stdin, sess.Stdout, sess.Stderr = os.Stdin, os.Stdout, os.Stderr

	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			if w, h, err := term.GetSize(fd); err == nil {
				_ = sess.WindowChange(h, w)
			}
		}
	}()
	if err := sess.Shell(); err != nil {
		return fmt.Errorf("console shell: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		var exit *ssh.ExitError
		if errors.As(err, &exit) || errors.Is(err, io.EOF) {
			return nil
		}
		return err
	case <-ctx.Done():
		return nil
	}
}

// clientKey loads or creates the console's key (0600).
func clientKey(dir string) (ssh.Signer, error) {
	path := filepath.Join(dir, ClientKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		block, merr := ssh.MarshalPrivateKey(priv, "piot local console")
		if merr != nil {
			return nil, merr
		}
		b = pem.EncodeToMemory(block)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// authorize lists the console key in authorized_keys once.
func authorize(dir string, pub ssh.PublicKey) error {
	path := filepath.Join(dir, "authorized_keys")
	line := bytes.TrimSpace(ssh.MarshalAuthorizedKey(pub))
	cur, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, l := range bytes.Split(cur, []byte("\n")) {
		if k, _, _, _, err := ssh.ParseAuthorizedKey(l); err == nil && bytes.Equal(k.Marshal(), pub.Marshal()) {
			return nil
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if len(cur) > 0 && cur[len(cur)-1] != '\n' {
		line = append([]byte("\n"), line...)
	}
	if _, err := f.Write(append(line, []byte(" piot-local-console\n")...)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// hostPublicKey pins the appliance's host key, read from the data dir.
func hostPublicKey(dir string) (ssh.PublicKey, error) {
	path := filepath.Join(dir, sshserver.HostKeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("appliance host key (is piot run started with this --data-dir?): %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s.PublicKey(), nil
}

// DialAddr turns the console's listen address (ssh-addr: ":2222",
// "0.0.0.0:2222", "[::]:2222", or a specific address) into the address to
// dial on this machine: an unspecified host means loopback.
func DialAddr(listen string) (string, error) {
	if listen == "" {
		return "", errors.New("the SSH console is disabled (ssh-addr is empty); set ssh-addr for piot run to use piot console")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("ssh-addr %q: %w", listen, err)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		if err == nil && ip.Is6() {
			return net.JoinHostPort("::1", port), nil
		}
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	return listen, nil
}
