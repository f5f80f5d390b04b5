// Client matrix program for Java's HttpURLConnection and java.net.http.HttpClient (JDK 17, no build step).
// Usage: java Clients.java <base URL> <urlconnection,httpclient> <op,op,...>
// Prints one JSON line per client and operation: {client, op, status, length, sha256, contentLength, continued} or {client, op, error}.
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;

public class Clients {
  static final int MiB = 1024 * 1024;
  static final String[][] FAKE = { { "API-Key", "fake-key-from-caller" }, { "API-Token", "fake-token-from-caller" }, { "API-Timestamp", "2001-02-03T04:05:06Z" } };

  /** The deterministic body: byte i is i % 251. */
  static byte[] pattern(int size) {
    byte[] bytes = new byte[size];
    for (int i = 0; i < size; i++) bytes[i] = (byte) (i % 251);
    return bytes;
  }

  /** The same bytes as a stream of unknown length. */
  static InputStream patternStream(int size) {
    return new InputStream() {
      int position = 0;
      @Override public int read() { return position < size ? (position++ % 251) : -1; }
      @Override public int read(byte[] b, int off, int len) {
        if (position >= size) return -1;
        int n = Math.min(len, size - position);
        for (int i = 0; i < n; i++) b[off + i] = (byte) (position++ % 251);
        return n;
      }
    };
  }

  static byte[] small(String op) { return ("{\"op\":\"" + op + "\"}").getBytes(); }

  static String method(String op) {
    switch (op) {
      case "post": case "post2m": case "upload": case "expect": return "POST";
      case "put": return "PUT";
      case "delete": return "DELETE";
      case "head": return "HEAD";
      default: return "GET";
    }
  }

  static byte[] fixedBody(String op) {
    switch (op) {
      case "post": case "put": return small(op);
      case "post2m": case "expect": return pattern(2 * MiB);
      default: return null;
    }
  }

  static String digest(InputStream in, long[] length) throws Exception {
    MessageDigest sha = MessageDigest.getInstance("SHA-256");
    if (in != null) {
      byte[] buffer = new byte[65536];
      for (int n; (n = in.read(buffer)) != -1; ) { sha.update(buffer, 0, n); length[0] += n; }
      in.close();
    }
    return HexFormat.of().formatHex(sha.digest());
  }

  static String line(String client, String op, int status, long length, String sha256, String contentLength, Boolean continued) {
    return String.format("{\"client\":\"%s\",\"op\":\"%s\",\"status\":%d,\"length\":%d,\"sha256\":\"%s\",\"contentLength\":%s%s}",
      client, op, status, length, sha256, contentLength == null ? "null" : "\"" + contentLength + "\"", continued == null ? "" : ",\"continued\":" + continued);
  }

  static String urlConnection(String base, String op) throws Exception {
    HttpURLConnection c = (HttpURLConnection) new URL(base + "/v1/clients/java-urlconnection/" + op).openConnection();
    c.setRequestMethod(method(op));
    c.setConnectTimeout(10000);
    c.setReadTimeout(60000);
    if (op.equals("creds")) for (String[] h : FAKE) c.setRequestProperty(h[0], h[1]);
    byte[] body = fixedBody(op);
    if (body != null || op.equals("upload")) {
      c.setDoOutput(true);
      c.setRequestProperty("Content-Type", op.equals("post") || op.equals("put") ? "application/json" : "application/octet-stream");
      // HttpURLConnection waits for the 100 Continue itself when streaming with this header.
      if (op.equals("expect")) c.setRequestProperty("Expect", "100-continue");
      if (op.equals("upload")) c.setChunkedStreamingMode(65536);
      else c.setFixedLengthStreamingMode(body.length);
      try (OutputStream out = c.getOutputStream()) {
        if (op.equals("upload")) patternStream(5 * MiB).transferTo(out);
        else out.write(body);
      }
    }
    int status = c.getResponseCode();
    InputStream in = status >= 400 ? c.getErrorStream() : (op.equals("head") || status == 204 ? null : c.getInputStream());
    long[] length = { 0 };
    String sha = digest(in, length);
    return line("java-urlconnection", op, status, length[0], sha, c.getHeaderField("Content-Length"), null);
  }

  static final HttpClient HTTP_CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

  static String httpClient(String base, String op) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + "/v1/clients/java-httpclient/" + op)).timeout(Duration.ofSeconds(60));
    if (op.equals("creds")) for (String[] h : FAKE) b.header(h[0], h[1]);
    byte[] body = fixedBody(op);
    HttpRequest.BodyPublisher publisher;
    if (op.equals("upload")) publisher = HttpRequest.BodyPublishers.ofInputStream(() -> patternStream(5 * MiB)); // unknown length: chunked
    else if (body != null) publisher = HttpRequest.BodyPublishers.ofByteArray(body);
    else publisher = HttpRequest.BodyPublishers.noBody();
    if (body != null || op.equals("upload")) b.header("Content-Type", op.equals("post") || op.equals("put") ? "application/json" : "application/octet-stream");
    if (op.equals("expect")) b.expectContinue(true);
    b.method(method(op), publisher);
    HttpResponse<InputStream> res = HTTP_CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
    long[] length = { 0 };
    String sha = digest(res.body(), length);
    return line("java-httpclient", op, res.statusCode(), length[0], sha, res.headers().firstValue("content-length").orElse(null), null);
  }

  public static void main(String[] args) {
    String base = args[0];
    for (String client : args[1].split(",")) {
      for (String op : args[2].split(",")) {
        String out;
        try {
          out = client.equals("urlconnection") ? urlConnection(base, op) : httpClient(base, op);
        } catch (Exception e) {
          String message = (e.getClass().getSimpleName() + ": " + e.getMessage()).replace("\\", "\\\\").replace("\"", "'");
          out = String.format("{\"client\":\"java-%s\",\"op\":\"%s\",\"error\":\"%s\"}", client, op, message);
        }
        System.out.println(out);
        System.out.flush();
      }
    }
  }
}
