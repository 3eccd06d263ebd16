package main

import (
	"bufio"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/piot-appliance/piot/appliance/update"
)

// keysCmd prints the path of the signing key to use: the given one, or
// the development key in dir, generated on first use. It also writes the
// public keys the image will trust to -trusted-out.
func keysCmd(args []string) error {
	fs := flag.NewFlagSet("keys", flag.ExitOnError)
	key := fs.String("key", "", "signing key (PEM PKCS #8 ed25519); empty: the development key in -dir")
	dir := fs.String("dir", "image/keys", "where the development key pair is kept")
	trusted := fs.String("trusted", "", "PEM file of the public keys the image trusts; empty: the signing key's")
	out := fs.String("trusted-out", "", "write the trusted public keys here")
	_ = fs.Parse(args)
	if *key == "" {
		var err error
		if *key, err = devKey(*dir); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(*key)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	priv, err := update.ParsePrivateKey(data)
	if err != nil {
		return fmt.Errorf("signing key %s: %w", *key, err)
	}
	pub, err := update.PublicKeyPEM(priv)
	if err != nil {
		return err
	}
	if *trusted != "" {
		if pub, err = os.ReadFile(*trusted); err != nil {
			return fmt.Errorf("trusted keys: %w", err)
		}
		keys, err := update.ParsePublicKeys(pub)
		if err != nil {
			return fmt.Errorf("trusted keys %s: %w", *trusted, err)
		}
		// An image that cannot install its own bundles is a build mistake
		// found only in the field.
		if !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return k.Equal(priv.Public()) }) {
			return fmt.Errorf("trusted keys %s do not include the signing key %s", *trusted, *key)
		}
	}
	if *out != "" {
		if err := os.WriteFile(*out, pub, 0o644); err != nil {
			return fmt.Errorf("trusted keys: %w", err)
		}
	}
	fmt.Println(*key)
	return nil
}

// devKey returns the development private key in dir, generating the pair
// when it is missing. The directory is git-ignored: a development key
// signs bundles for machines its developer builds, nothing else.
func devKey(dir string) (string, error) {
	priv := filepath.Join(dir, "signing.pem")
	if _, err := os.Stat(priv); err == nil {
		return priv, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("development key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	privPEM, pubPEM, err := update.GenerateKey()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "signing.pub.pem"), pubPEM, 0o644); err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	fmt.Fprintf(os.Stderr, "mkimage: generated a development signing key in %s\n", dir)
	return priv, nil
}

type bundleOptions struct {
	Slot, Name, Key, Version, MinVersion, Target, BuildTime, Out string
}

func bundleCmd(args []string) error {
	fs := flag.NewFlagSet("bundle", flag.ExitOnError)
	var o bundleOptions
	fs.StringVar(&o.Slot, "slot", "", "system slot image (the UKI)")
	fs.StringVar(&o.Name, "name", "", "the slot image's file name in the manifest; empty: -slot's")
	fs.StringVar(&o.Key, "key", "", "signing key (PEM PKCS #8 ed25519)")
	fs.StringVar(&o.Version, "version", "", "the slot's version")
	fs.StringVar(&o.MinVersion, "min-version", "", "oldest running version that may install it (empty: any)")
	fs.StringVar(&o.Target, "target", "x86_64", "machine the slot boots on")
	fs.StringVar(&o.BuildTime, "build-time", "", "file holding the build time (RFC 3339); empty: now")
	fs.StringVar(&o.Out, "o", "", "output bundle")
	_ = fs.Parse(args)
	if o.Slot == "" || o.Key == "" || o.Version == "" || o.Out == "" {
		return fmt.Errorf("bundle: -slot, -key, -version and -o are required")
	}
	return buildBundle(o)
}

func buildBundle(o bundleOptions) error {
	data, err := os.ReadFile(o.Key)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	key, err := update.ParsePrivateKey(data)
	if err != nil {
		return fmt.Errorf("signing key %s: %w", o.Key, err)
	}
	built := time.Now().UTC().Truncate(time.Second)
	if o.BuildTime != "" {
		b, err := os.ReadFile(o.BuildTime)
		if err != nil {
			return fmt.Errorf("build time: %w", err)
		}
		if built, err = time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("build time: %w", err)
		}
	}
	slot, err := os.Open(o.Slot)
	if err != nil {
		return fmt.Errorf("slot image: %w", err)
	}
	defer slot.Close()
	sum := sha256.New()
	size, err := io.Copy(sum, slot)
	if err != nil {
		return fmt.Errorf("slot image: %w", err)
	}
	if _, err := slot.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("slot image: %w", err)
	}
	m := update.Manifest{
		Version:    o.Version,
		BuildTime:  built,
		Target:     o.Target,
		MinVersion: o.MinVersion,
		Slot:       update.Slot{File: cmp.Or(o.Name, filepath.Base(o.Slot)), SHA256: hex.EncodeToString(sum.Sum(nil)), Size: size},
	}
	tmp := o.Out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer os.Remove(tmp) // no-op after the rename
	w := bufio.NewWriterSize(f, 1<<20)
	err = update.Write(w, m, key, slot)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, o.Out)
	}
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}
