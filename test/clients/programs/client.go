// Client matrix program for Go's net/http (standard library only).
// Usage: go run client.go <base URL> <op,op,...>
// Prints one JSON line per operation: {op, status, length, sha256, contentLength, continued} or {op, error}.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"time"
)

const MiB = 1024 * 1024

// pattern is a reader of the deterministic body: byte i is i % 251.
type pattern struct{ position, size int }

func (p *pattern) Read(b []byte) (int, error) {
	if p.position >= p.size {
		return 0, io.EOF
	}
	n := len(b)
	if n > p.size-p.position {
		n = p.size - p.position
	}
	for i := 0; i < n; i++ {
		b[i] = byte(p.position % 251)
		p.position++
	}
	return n, nil
}

func patternBytes(size int) []byte {
	b, _ := io.ReadAll(&pattern{size: size})
	return b
}

type result struct {
	Op            string `json:"op"`
	Status        int    `json:"status,omitempty"`
	Length        int64  `json:"length"`
	Sha256        string `json:"sha256,omitempty"`
	ContentLength string `json:"contentLength,omitempty"`
	Continued     *bool  `json:"continued,omitempty"`
	Error         string `json:"error,omitempty"`
}

// The default transport: keep-alive, transparent gzip, a one-second wait for 100 Continue.
var client = &http.Client{Timeout: 60 * time.Second}

func do(base, op string) result {
	url := base + "/v1/clients/go-net-http/" + op
	var body io.Reader
	method := "GET"
	contentType := "application/octet-stream"
	switch op {
	case "post", "put":
		method, body, contentType = strings.ToUpper(op), strings.NewReader(`{"op":"`+op+`"}`), "application/json"
	case "post2m", "expect":
		method, body = "POST", bytes.NewReader(patternBytes(2*MiB))
	case "upload":
		method, body = "POST", &pattern{size: 5 * MiB}
	case "delete":
		method = "DELETE"
	case "head":
		method = "HEAD"
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return result{Op: op, Error: err.Error()}
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if op == "upload" {
		req.ContentLength = -1 // unknown: sent chunked
	}
	if op == "creds" {
		req.Header.Set("API-Key", "fake-key-from-caller")
		req.Header.Set("API-Token", "fake-token-from-caller")
		req.Header.Set("API-Timestamp", "2001-02-03T04:05:06Z")
	}
	var continued *bool
	if op == "expect" {
		req.Header.Set("Expect", "100-continue")
		no := false
		continued = &no
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got100Continue: func() { yes := true; continued = &yes },
		}))
	}
	res, err := client.Do(req)
	if err != nil {
		return result{Op: op, Error: err.Error()}
	}
	defer res.Body.Close()
	hash := sha256.New()
	n, err := io.Copy(hash, res.Body)
	if err != nil {
		return result{Op: op, Status: res.StatusCode, Error: err.Error()}
	}
	return result{Op: op, Status: res.StatusCode, Length: n, Sha256: hex.EncodeToString(hash.Sum(nil)), ContentLength: res.Header.Get("Content-Length"), Continued: continued}
}

func main() {
	out := json.NewEncoder(os.Stdout)
	for _, op := range strings.Split(os.Args[2], ",") {
		if err := out.Encode(do(os.Args[1], op)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
