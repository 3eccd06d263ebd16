package exporter

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"sync"
	"time"
)

// grafanaFiles is the Grafana provisioning tree: unpacked into
// /etc/grafana it provisions the datasource, the dashboards and the
// "thing not seen" alert with its contact point.
//
//go:embed grafana/provisioning
var grafanaFiles embed.FS

// grafanaRoot is the directory of grafanaFiles that the archive holds.
const grafanaRoot = "grafana"

// bundleTime is the modification time of everything in the archive: the
// same files always make the same bytes (and ETag).
var bundleTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// BundleName is the file name the bundle is served under.
const BundleName = "piot-grafana.tar.gz"

var bundle = sync.OnceValues(func() ([]byte, error) { return buildBundle(grafanaFiles) })

// GrafanaBundle serves GET (and HEAD) of the provisioning tree as a
// .tar.gz holding provisioning/…, to unpack into /etc/grafana. It holds no
// secret: the datasource and the contact point read theirs from Grafana's
// environment.
func GrafanaBundle() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := bundle()
		if err != nil {
			http.Error(w, "cannot build the bundle", http.StatusInternalServerError)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="`+BundleName+`"`)
		http.ServeContent(w, r, BundleName, bundleTime, bytes.NewReader(b))
	})
}

// buildBundle writes the tree under grafanaRoot as a tar.gz, in lexical
// order, with fixed times, owners and modes.
func buildBundle(fsys fs.FS) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	gz.ModTime = bundleTime
	tw := tar.NewWriter(gz)
	err = fs.WalkDir(fsys, grafanaRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == grafanaRoot {
			return err
		}
		name := p[len(grafanaRoot)+1:]
		hdr := &tar.Header{
			Name:    name,
			ModTime: bundleTime,
			Mode:    0o644,
			Format:  tar.FormatUSTAR,
		}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
			return tw.WriteHeader(hdr)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
