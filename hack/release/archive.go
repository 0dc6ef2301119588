package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Archive is one plugin archive written to dist.
type Archive struct {
	Platform Platform
	Path     string // the file written
	SHA256   string // hex
	Bin      string // the binary's name inside it
}

// fixedTime is every archive entry's modification time: zip cannot say 1970, so both
// formats use zip's epoch, and the same binary gives the same archive.
var fixedTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// ArchiveName is the plugin archive's file name for version and p.
func ArchiveName(version string, p Platform) string {
	ext := ".tar.gz"
	if p.OS == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("kubectl-grantkeeper_%s_%s_%s%s", version, p.OS, p.Arch, ext)
}

// writePluginArchive packs the binary at bin (alone, at the archive's root, mode 0755)
// into dist: tar.gz, or zip for windows, which is what krew and Windows users unpack.
func writePluginArchive(dist, version string, p Platform, bin string) (Archive, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return Archive{}, err
	}
	name := filepath.Base(bin)
	var b bytes.Buffer
	if p.OS == "windows" {
		err = zipOne(&b, name, data)
	} else {
		err = tarGzOne(&b, name, data)
	}
	if err != nil {
		return Archive{}, err
	}
	out := filepath.Join(dist, ArchiveName(version, p))
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		return Archive{}, err
	}
	sum := sha256.Sum256(b.Bytes())
	return Archive{Platform: p, Path: out, SHA256: hex.EncodeToString(sum[:]), Bin: name}, nil
}

func tarGzOne(b *bytes.Buffer, name string, data []byte) error {
	gz, err := gzip.NewWriterLevel(b, gzip.BestCompression) // no name, no mtime in the header
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: fixedTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func zipOne(b *bytes.Buffer, name string, data []byte) error {
	zw := zip.NewWriter(b)
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: fixedTime}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return zw.Close()
}
