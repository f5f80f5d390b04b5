<?php
// Client matrix program for PHP's curl extension (the language of PAVE's own samples).
// Usage: php client.php <base URL> <op,op,...>
// Prints one JSON line per operation: {op, status, length, sha256, contentLength, continued, sentExpect} or {op, error}.

const MiB = 1024 * 1024;
$block = '';
for ($i = 0; $i < 251 * 261; $i++) $block .= chr($i % 251);

/** The deterministic body: byte i is i % 251. */
function pattern(int $size): string {
  global $block;
  return substr(str_repeat($block, intdiv($size, strlen($block)) + 1), 0, $size);
}

$base = $argv[1];
$fake = ['API-Key: fake-key-from-caller', 'API-Token: fake-token-from-caller', 'API-Timestamp: 2001-02-03T04:05:06Z'];
$ch = curl_init(); // one handle: libcurl keeps the connection alive between operations

foreach (explode(',', $argv[2]) as $op) {
  curl_reset($ch);
  $hash = hash_init('sha256');
  $length = 0;
  $contentLength = null;
  $continued = false;
  $headers = [];
  $options = [
    CURLOPT_URL => "$base/v1/clients/php-curl/$op",
    CURLOPT_TIMEOUT => 60,
    CURLINFO_HEADER_OUT => true,
    CURLOPT_WRITEFUNCTION => function ($ch, $data) use ($hash, &$length) { hash_update($hash, $data); $length += strlen($data); return strlen($data); },
    CURLOPT_HEADERFUNCTION => function ($ch, $line) use (&$contentLength, &$continued) {
      if (preg_match('/^HTTP\/\S+ 100\b/', $line)) $continued = true;
      elseif (preg_match('/^HTTP\//', $line)) $contentLength = null; // a new response's head
      elseif (preg_match('/^content-length:\s*(\d+)/i', $line, $m)) $contentLength = $m[1];
      return strlen($line);
    },
  ];
  switch ($op) {
    case 'post': case 'put':
      $options[CURLOPT_CUSTOMREQUEST] = strtoupper($op);
      $options[CURLOPT_POSTFIELDS] = "{\"op\":\"$op\"}";
      $headers[] = 'Content-Type: application/json';
      break;
    case 'post2m': case 'expect':
      $options[CURLOPT_POSTFIELDS] = pattern(2 * MiB);
      $headers[] = 'Content-Type: application/octet-stream';
      // libcurl asks `Expect: 100-continue` by itself for bodies over 1 MiB: only `expect` keeps it.
      if ($op === 'post2m') $headers[] = 'Expect:';
      break;
    case 'upload':
      // A read callback and no size: libcurl sends it chunked.
      $sent = 0;
      $options[CURLOPT_UPLOAD] = true;
      $options[CURLOPT_CUSTOMREQUEST] = 'POST';
      $options[CURLOPT_READFUNCTION] = function ($ch, $fd, $max) use (&$sent) {
        global $block;
        $n = min($max, 5 * MiB - $sent);
        $out = '';
        while (strlen($out) < $n) {
          $offset = ($sent + strlen($out)) % strlen($block);
          $out .= substr($block, $offset, $n - strlen($out));
        }
        $sent += $n;
        return $out;
      };
      $headers[] = 'Content-Type: application/octet-stream';
      $headers[] = 'Transfer-Encoding: chunked';
      $headers[] = 'Expect:';
      break;
    case 'delete':
      $options[CURLOPT_CUSTOMREQUEST] = 'DELETE';
      break;
    case 'head':
      $options[CURLOPT_NOBODY] = true;
      break;
    case 'creds':
      $headers = array_merge($headers, $fake);
      break;
  }
  $options[CURLOPT_HTTPHEADER] = $headers;
  curl_setopt_array($ch, $options);
  if (curl_exec($ch) === false) {
    echo json_encode(['op' => $op, 'error' => curl_error($ch)]), "\n";
    continue;
  }
  $result = [
    'op' => $op,
    'status' => curl_getinfo($ch, CURLINFO_RESPONSE_CODE),
    'length' => $length,
    'sha256' => hash_final($hash),
    'contentLength' => $contentLength,
    'sentExpect' => stripos(curl_getinfo($ch, CURLINFO_HEADER_OUT), "\r\nExpect: 100-continue") !== false,
  ];
  if ($op === 'expect') $result['continued'] = $continued;
  echo json_encode($result), "\n";
}
