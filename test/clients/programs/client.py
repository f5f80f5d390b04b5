"""Client matrix program for Python's http.client (standard library only).

Usage: python3 client.py <base URL> <op,op,...>
Prints one JSON line per operation: {op, status, length, sha256, contentLength} or {op, error}.
"""
import hashlib
import http.client
import json
import sys
from urllib.parse import urlsplit

MiB = 1024 * 1024
BLOCK = bytes(i % 251 for i in range(251 * 261))
FAKE = {'API-Key': 'fake-key-from-caller', 'API-Token': 'fake-token-from-caller', 'API-Timestamp': '2001-02-03T04:05:06Z'}


def pattern(size):
    """The deterministic body, a block at a time: byte i is i % 251."""
    sent = 0
    while sent < size:
        chunk = BLOCK[:min(len(BLOCK), size - sent)]
        sent += len(chunk)
        yield chunk


def small(op):
    return ('{"op":"%s"}' % op).encode()


def request(op):
    """(method, headers, body, chunked) for one operation."""
    binary = {'Content-Type': 'application/octet-stream'}
    if op in ('get', 'download'):
        return 'GET', {}, None, False
    if op == 'head':
        return 'HEAD', {}, None, False
    if op == 'delete':
        return 'DELETE', {}, None, False
    if op == 'creds':
        return 'GET', dict(FAKE), None, False
    if op in ('post', 'put'):
        return op.upper(), {'Content-Type': 'application/json'}, small(op), False
    if op == 'post2m':
        return 'POST', binary, b''.join(pattern(2 * MiB)), False
    if op == 'upload':
        # An iterable body with encode_chunked: Transfer-Encoding: chunked, no Content-Length.
        return 'POST', dict(binary, **{'Transfer-Encoding': 'chunked'}), pattern(5 * MiB), True
    if op == 'expect':
        # http.client sends the body at once; it skips the interim 100 Continue it reads back.
        return 'POST', dict(binary, Expect='100-continue'), b''.join(pattern(2 * MiB)), False
    raise ValueError('unknown operation ' + op)


def main():
    base, ops = sys.argv[1], sys.argv[2].split(',')
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    for op in ops:
        try:
            method, headers, body, chunked = request(op)
            conn.request(method, '/v1/clients/python-http.client/' + op, body=body, headers=headers, encode_chunked=chunked)
            res = conn.getresponse()
            digest = hashlib.sha256()
            length = 0
            while True:
                chunk = res.read(65536)
                if not chunk:
                    break
                digest.update(chunk)
                length += len(chunk)
            print(json.dumps({'op': op, 'status': res.status, 'length': length, 'sha256': digest.hexdigest(),
                              'contentLength': res.getheader('content-length')}), flush=True)
        except Exception as error:  # reported, never hidden
            print(json.dumps({'op': op, 'error': '%s: %s' % (type(error).__name__, error)}), flush=True)
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.close()


main()
